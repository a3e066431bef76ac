"""A contract's start-up settings (margin mode and leverage) as the venue holds them, and
the sets that make them as asked.

Start-up reads what the venue holds for every contract of an account in as few requests
as the venue allows (``CcxtVenue.held_settings``), then sets only what differs: a set the
venue accepts is the proof, nothing is read back. The sets go out a few at a time; the
account's limiter (``bot.exchange.ccxt_limits``) paces them at the venue's rate for the
set endpoint.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

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


async def concurrently(
    calls: Iterable[Callable[[], Awaitable[None]]], limit: int = SET_CONCURRENCY
) -> None:
    """Run the calls, at most ``limit`` at once; the first failure is raised once all
    have ended (a set already sent is not abandoned half-way)."""
    slots = asyncio.Semaphore(limit)

    async def one(call: Callable[[], Awaitable[None]]) -> None:
        async with slots:
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
