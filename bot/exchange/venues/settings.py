"""A contract's start-up settings (margin mode and leverage) as the venue holds them, and
the sets that make them as asked.

Start-up reads what the venue holds for every contract of an account in as few requests
as the venue allows (``CcxtVenue.held_settings``), then sets only what differs: a set the
venue accepts is the proof, nothing is read back. The sets go out a few at a time; the
account's limiter (``CcxtCalls``) spaces them at the venue's rate.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from asyncio_throttle.throttler import Throttler

from bot.exchange.ccxt_parse import dec_or_none

#: Set requests in flight at once per account: enough to keep the limiter busy on a
#: loopback or a far venue, few enough that the waiting ones do not poll it by the hundred.
SET_CONCURRENCY = 8


@dataclass(frozen=True, slots=True)
class Held:
    """What the venue holds for one contract; None: it did not say (then it is set)."""

    margin_mode: str | None = None
    leverage: Decimal | None = None


UNKNOWN = Held()

#: The share of a venue's documented rate of its set endpoints the sets are paced at: our
#: pace counts when a request leaves, the venue's window when it arrives, so at the full
#: rate a late request and the next prompt one could fall in one window of the venue's.
SET_RATE_SHARE = Decimal("0.9")


def set_pace(requests_per_s: Decimal | None) -> Throttler | None:
    """The pace of the sets of a venue whose set endpoints have a rate of their own
    (Bybit, OKX: 10 a second), beside the account's limiter; None: the limiter alone.
    Evenly spaced (one per 1/rate s), not a burst per second: a request held up on its
    way then still finds the venue's window with room."""
    if requests_per_s is None:
        return None
    return Throttler(rate_limit=1, period=float(1 / (requests_per_s * SET_RATE_SHARE)))


async def concurrently(
    calls: Iterable[Callable[[], Awaitable[None]]],
    pace: Throttler | None = None,
    limit: int = SET_CONCURRENCY,
) -> None:
    """Run the calls, at most ``limit`` at once and each after ``pace`` lets it; the first
    failure is raised once all have ended (a set already sent is not abandoned half-way)."""
    slots = asyncio.Semaphore(limit)

    async def one(call: Callable[[], Awaitable[None]]) -> None:
        async with slots:
            if pace is not None:
                async with pace:
                    pass
            await call()

    results = await asyncio.gather(*(one(c) for c in calls), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result


def held_from_leverages(raw: Mapping[str, Any]) -> dict[str, Held]:
    """ccxt's ``fetch_leverages`` answer (by symbol: ``marginMode``, ``shortLeverage``,
    ``longLeverage``) as what the venue holds; our hedge is the short side."""
    held: dict[str, Held] = {}
    for symbol, row in raw.items():
        seen = row.get("shortLeverage") or row.get("longLeverage")
        mode = row.get("marginMode")
        held[symbol] = Held(None if mode is None else str(mode), dec_or_none(seen))
    return held
