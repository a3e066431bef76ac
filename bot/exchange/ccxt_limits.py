"""The request limiter of one exchange account, sized from the venue's documented limits
and counted with ccxt's own cost table.

ccxt's own limiter treats every venue as one bucket of ``1000 / rateLimit`` cost units a
second, each endpoint costing what makes its own documented rate (Bybit's
``/v5/position/set-leverage``: 10 a second, cost 5 of 50). Sharing that one bucket across
endpoints makes it stricter than the venues, which limit otherwise:

* Binance counts request weight per IP and minute (2,400 on USDⓈ-M futures; ccxt's
  cost is the weight there): a start's few hundred weight is allowed at once, where
  ccxt's bucket of 20 a second held an account-wide open-orders read (weight 40) for 2 s;
* Bybit limits each endpoint per UID and rolling second, and every request per IP (600
  per 5 s); OKX limits each endpoint (``/account/set-leverage``: 20 per 2 s), with no
  account-wide request limit beside the order endpoints'.

So a venue module declares its :class:`RateLimits`: one pool every request counts in
(its weight, or one per request), and whether each endpoint is paced on its own at the
rate ccxt's cost table gives it. A request waits for both. This limiter counts a request
when it leaves, the venue's window when it arrives: each window holds :data:`SHARE` of
the documented count and lasts :data:`LATENESS_S` longer than the venue's, so a burst
whose requests arrive up to that much later than the previous burst's (a loaded event
loop, a slower route) still finds the venue's window with room.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from asyncio_throttle.throttler import Throttler

#: The share of a documented limit the limiter uses.
SHARE = Decimal("0.9")
#: How much later than its predecessors a request may reach the venue, beyond the gap
#: between their departures, and still be counted there as it was here.
LATENESS_S = 0.1

#: The endpoint of the request ccxt is about to throttle (set where ccxt costs it).
_ENDPOINT: ContextVar[str] = ContextVar("endpoint", default="")


class Window(Throttler):
    """At most ``limit`` units in any ``period_s`` seconds: a sliding window, as the venues
    count (Binance per minute, Bybit per rolling second, OKX per 2 s).

    asyncio-throttle's window (its log of entries, ``rate_limit`` a ``period``), taken
    differently: a request of several units takes them at once when there is room, and a
    full window sleeps once until its oldest entries leave it, where the library's
    ``acquire`` wakes every 10 ms to look again (a held request cost a loop iteration
    every 10 ms, each waiting request its own)."""

    def __init__(
        self,
        limit: int,
        period_s: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        super().__init__(rate_limit=limit, period=period_s)
        self._clock = clock
        self._sleep = sleep
        self._taken: deque[float] = self._task_logs

    @property
    def limit(self) -> int:
        return int(self.rate_limit)

    @property
    def period_s(self) -> float:
        return float(self.period)

    async def take(self, units: int = 1) -> bool:
        """Take ``units`` (at most the whole window), sleeping until the window has room;
        whether it had to sleep."""
        units = min(max(units, 1), self.limit)
        held = False
        while True:
            now = self._clock()
            while self._taken and now - self._taken[0] >= self.period_s:
                self._taken.popleft()
            over = len(self._taken) + units - self.limit
            if over <= 0:
                break
            held = True
            # Room once the ``over`` oldest units have left the window.
            await self._sleep(max(self._taken[over - 1] + self.period_s - now, 0.001))
        self._taken.extend([now] * units)
        return held


Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


def rate_window(requests_per_s: Decimal, clock: Clock, sleep: Sleep) -> Window:
    """A window of a (possibly fractional) rate a second, as ccxt's own limiter counts."""
    if requests_per_s >= 1:
        return Window(int(requests_per_s), 1.0, clock, sleep)
    return Window(1, float(1 / requests_per_s), clock, sleep)


def venue_window(limit: Decimal, period_s: float, clock: Clock, sleep: Sleep) -> Window:
    """A window for a venue's documented ``limit`` per ``period_s``: :data:`SHARE` of
    the count, :data:`LATENESS_S` longer (one request per ``period_s / limit`` where the
    share is less than one request)."""
    units = int(limit * SHARE)
    if units >= 1:
        return Window(units, period_s + LATENESS_S, clock, sleep)
    period = float(Decimal(str(period_s)) / (limit * SHARE)) + LATENESS_S
    return Window(1, period, clock, sleep)


@dataclass(frozen=True, slots=True)
class Pool:
    """``limit`` units per ``period_s`` seconds for every request of the account: its
    ccxt cost (``by_cost``, a venue whose cost is its weight) or one per request."""

    limit: int
    period_s: float
    by_cost: bool = True


@dataclass(frozen=True, slots=True)
class OrderCount:
    """A venue's count of new orders kept apart from its request pool: Binance's new-order
    endpoints take no IP weight ("0 on IP rate limit") and count instead in the account's
    order windows (USDⓈ-M: 300 per 10 s and 1,200 a minute). ``endpoints`` are named as
    the limiter keys them: ``"<ccxt api> <METHOD> <path>"``."""

    endpoints: frozenset[str]
    windows: tuple[Pool, ...]


@dataclass(frozen=True, slots=True)
class RateLimits:
    """How a venue limits an account's requests: the ``pool`` all of them count in, and
    whether ``per_endpoint`` each endpoint is paced at ccxt's rate for it (``1000 /
    rateLimit / cost`` a second). Neither (the default, any other ccxt exchange): ccxt's
    own rate, one bucket of cost units a second for every request."""

    pool: Pool | None = None
    per_endpoint: bool = False
    #: The most a write (POST) endpoint takes a second where the venue documents less
    #: than ccxt's table gives it (Bybit: 10 a second per UID for orders and settings,
    #: where ccxt's cost lets an order through 20 times).
    writes_per_s: Decimal | None = None
    #: New orders counted in order windows of their own instead of the pool.
    orders: OrderCount | None = None


def endpoint_key(api: Any, method: Any, path: Any) -> str:
    """How the limiter names an endpoint: ``"fapiPrivate POST order"``."""
    name = "/".join(map(str, api)) if isinstance(api, list | tuple) else str(api)
    return f"{name} {method} {path}"


class Limiter:
    """One account's limiter: the venue's pool, and each endpoint's pace where it has one.

    ``requests_per_s`` (the account's ``rate_limit_per_s``) replaces the pool with one
    bucket of that many ccxt cost units a second, as ccxt's own limiter would; a venue's
    per-endpoint pace holds whatever it is (past it the venue refuses, whatever the
    account's budget)."""

    def __init__(
        self,
        client: Any,
        limits: RateLimits,
        requests_per_s: Decimal | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._base = Decimal(1000) / Decimal(str(client.rateLimit or 100))
        self._by_cost = True
        self._per_endpoint = limits.per_endpoint
        self._writes_per_s = limits.writes_per_s
        self._endpoints: dict[str, Window] = {}
        self._orders: frozenset[str] = frozenset()
        self._order_windows: list[Window] = []
        self.pool: Window | None = None
        self.requests_per_s = requests_per_s or self._base
        pool = limits.pool
        if requests_per_s is not None or (pool is None and not limits.per_endpoint):
            self.pool = rate_window(self.requests_per_s, clock, sleep)
        elif pool is not None:
            self.pool = venue_window(Decimal(pool.limit), pool.period_s, clock, sleep)
            self.requests_per_s = Decimal(self.pool.limit) / Decimal(str(self.pool.period_s))
            self._by_cost = pool.by_cost
            if limits.orders is not None:
                self._orders = limits.orders.endpoints
                self._order_windows = [
                    venue_window(Decimal(w.limit), w.period_s, clock, sleep)
                    for w in limits.orders.windows
                ]

    def watch(self, client: Any) -> None:
        """Learn each request's endpoint where ccxt costs it (ccxt's ``fetch2`` costs a
        request, then throttles it, in the same task); only a venue paced per endpoint
        or counting its orders apart needs it."""
        cost_of = getattr(client, "calculate_rate_limiter_cost", None)
        if not (self._per_endpoint or self._orders) or cost_of is None:
            return

        def costed(api: Any, method: Any, path: Any, params: Any, config: Any = None) -> Any:
            _ENDPOINT.set(endpoint_key(api, method, path))
            return cost_of(api, method, path, params, config or {})

        client.calculate_rate_limiter_cost = costed

    async def wait(self, cost: Any) -> bool:
        """Hold the request until the endpoint's pace and the pool let it; whether it was
        held back."""
        units = float(cost or 1)
        held = False
        if self._orders and _ENDPOINT.get() in self._orders:
            for window in self._order_windows:
                held = await window.take() or held
            return held
        if self._per_endpoint:
            held = await self._endpoint(_ENDPOINT.get(), units).take()
        if self.pool is not None:
            held = await self.pool.take(math.ceil(units) if self._by_cost else 1) or held
        return held

    def _endpoint(self, key: str, cost: float) -> Window:
        window = self._endpoints.get(key)
        if window is None:
            rate = self._base / Decimal(str(max(cost, 1e-6)))
            if self._writes_per_s is not None and " POST " in key:
                rate = min(rate, self._writes_per_s)
            window = self._endpoints[key] = venue_window(rate, 1.0, self._clock, self._sleep)
        return window
