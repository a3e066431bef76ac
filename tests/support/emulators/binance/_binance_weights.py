"""Binance futures' request weight and order counts, as the emulator enforces them.

As Binance documents its USDⓈ-M REST limits (``/fapi/v1/exchangeInfo`` ``rateLimits``):

* ``REQUEST_WEIGHT``: 2,400 per IP and minute. Each endpoint has a weight (``WEIGHTS``:
  with ``symbol``, without), the order book and candles one by ``limit``; a request that
  would take the minute past 2,400 is answered HTTP 429, code -1003, with ``Retry-After``.
* ``ORDERS``: 300 per 10 seconds and 1,200 per minute per account. A new order (POST or
  PUT ``/fapi/v1/order``) is "1 on 10s order rate limit ... 0 on IP rate limit": it
  counts there and not in the weight; past either count: HTTP 429, code -1015.

COIN-M (``/dapi``) weighs its requests in a minute of its own
(``_binance_coinm_api.WEIGHTS``), 2,400 too, with 1,200 new orders a minute. Spot
(``/api``) is not limited here. The windows are wall-clock time (a test's emulator clock
may stand still), each request counted when it arrives.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

F = "/fapi/v1"

#: USDⓈ-M request weight per endpoint (with ``symbol``, without), as Binance documents them;
#: an endpoint not listed weighs 1.
WEIGHTS: dict[tuple[str, str], tuple[int, int]] = {
    ("GET", f"{F}/exchangeInfo"): (1, 1),
    ("GET", f"{F}/trades"): (5, 5),
    ("GET", f"{F}/premiumIndex"): (1, 10),
    ("GET", f"{F}/ticker/24hr"): (1, 40),
    ("GET", f"{F}/ticker/price"): (1, 2),
    ("GET", "/fapi/v2/ticker/price"): (1, 2),
    ("GET", f"{F}/ticker/bookTicker"): (2, 5),
    ("GET", f"{F}/order"): (1, 1),
    ("DELETE", f"{F}/order"): (1, 1),
    ("POST", f"{F}/order"): (0, 0),
    ("PUT", f"{F}/order"): (0, 0),
    ("POST", f"{F}/batchOrders"): (5, 5),
    ("GET", f"{F}/openOrder"): (1, 1),
    ("GET", f"{F}/openOrders"): (1, 40),
    ("GET", f"{F}/allOrders"): (5, 5),
    ("GET", f"{F}/userTrades"): (5, 5),
    ("GET", f"{F}/income"): (30, 30),
    ("GET", "/fapi/v2/account"): (5, 5),
    ("GET", "/fapi/v3/account"): (5, 5),
    ("GET", "/fapi/v2/balance"): (5, 5),
    ("GET", "/fapi/v3/balance"): (5, 5),
    ("GET", "/fapi/v2/positionRisk"): (5, 5),
    ("GET", "/fapi/v3/positionRisk"): (5, 5),
    ("GET", f"{F}/positionSide/dual"): (30, 30),
    ("GET", f"{F}/symbolConfig"): (5, 5),
    ("GET", f"{F}/accountConfig"): (5, 5),
    ("GET", f"{F}/commissionRate"): (20, 20),
    ("GET", f"{F}/multiAssetsMargin"): (30, 30),
}

#: (``limit`` at most, weight): the order book's weight by its depth (default 500).
DEPTH_WEIGHTS = ((50, 2), (100, 5), (500, 10), (1000, 20))
#: (``limit`` below, weight): candles' weight by their count (default 500).
KLINE_WEIGHTS = ((100, 1), (500, 2), (1001, 5))
ORDER_PATHS = frozenset({("POST", f"{F}/order"), ("PUT", f"{F}/order")})

WEIGHT_LIMIT = 2400
ORDERS_10S = 300
ORDERS_1M = 1200
TOO_MUCH_WEIGHT = (
    "Too much request weight used; current limit is 2400 request weight per 1 MINUTE. "
    "Please use WebSocket Streams for live updates to avoid polling the API."
)
TOO_MANY_ORDERS = "Too many new orders; current limit is {limit} orders per {interval}."


def weight(method: str, path: str, params: Mapping[str, str]) -> int:
    """The documented weight of one USDⓈ-M request (1 where none is listed)."""
    if path == f"{F}/depth":
        limit = int(params.get("limit", 500))
        return next((w for most, w in DEPTH_WEIGHTS if limit <= most), 50)
    if path in (f"{F}/klines", f"{F}/markPriceKlines", f"{F}/indexPriceKlines"):
        limit = int(params.get("limit", 500))
        return next((w for below, w in KLINE_WEIGHTS if limit < below), 10)
    return listed_weight(WEIGHTS, method, path, params)


def listed_weight(
    table: Mapping[tuple[str, str], tuple[int, int]],
    method: str,
    path: str,
    params: Mapping[str, str],
) -> int:
    """An endpoint's weight in ``table`` (with ``symbol``, without; 1 where not listed)."""
    with_symbol, without = table.get((method, path), (1, 1))
    return with_symbol if "symbol" in params else without


class Refused(Exception):
    """A request over a limit: its code, message and ``Retry-After`` seconds (or None)."""

    def __init__(self, code: int, msg: str, retry_after: int | None) -> None:
        super().__init__(f"{code} {msg}")
        self.code, self.msg, self.retry_after = code, msg, retry_after


@dataclass
class Minute:
    """The (time, units) of the last ``period_s`` seconds and their sum."""

    period_s: float
    entries: deque[tuple[float, int]] = field(default_factory=deque)
    used: int = 0

    def at(self, now: float) -> int:
        """The units counted in the window ending ``now``."""
        while self.entries and self.entries[0][0] <= now - self.period_s:
            self.used -= self.entries.popleft()[1]
        return self.used

    def add(self, now: float, units: int) -> None:
        self.entries.append((now, units))
        self.used += units

    def free_in(self, now: float) -> int:
        """Whole seconds until the oldest entry leaves the window (at least 1)."""
        oldest = self.entries[0][0] if self.entries else now
        return max(1, int(oldest + self.period_s - now + 0.999))


@dataclass
class FuturesLimits:
    """One futures API's (USDⓈ-M or COIN-M) weight minute and order windows."""

    weigh: Callable[[str, str, Mapping[str, str]], int]
    orders: frozenset[tuple[str, str]]
    order_windows: tuple[tuple[int, float, str], ...] = (
        (ORDERS_10S, 10.0, "10 SECOND"),
        (ORDERS_1M, 60.0, "1 MINUTE"),
    )
    clock: Callable[[], float] = time.monotonic
    #: The weight a minute allows: Binance's 2,400; a test that plays days of cycles in
    #: seconds (its own requests far from what is tested) may raise it.
    weight_limit: int = WEIGHT_LIMIT
    weight: Minute = field(default_factory=lambda: Minute(60.0))
    refused: list[tuple[str, str, int]] = field(default_factory=list)  # (method, path, code)
    _windows: list[Minute] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._windows = [Minute(period) for _, period, _ in self.order_windows]

    def take(self, method: str, path: str, params: Mapping[str, str]) -> None:
        """Count the request, or refuse it (:class:`Refused`) when it is over a limit."""
        now = self.clock()
        units = self.weigh(method, path, params)
        if self.weight.at(now) + units > self.weight_limit:
            self.refused.append((method, path, -1003))
            raise Refused(-1003, TOO_MUCH_WEIGHT, self.weight.free_in(now))
        if (method, path) in self.orders:
            for (limit, _, interval), window in zip(self.order_windows, self._windows, strict=True):
                if window.at(now) >= limit:
                    self.refused.append((method, path, -1015))
                    raise Refused(
                        -1015, TOO_MANY_ORDERS.format(limit=limit, interval=interval), None
                    )
            for window in self._windows:
                window.add(now, 1)
        self.weight.add(now, units)

    @property
    def used_weight(self) -> int:
        return self.weight.at(self.clock())
