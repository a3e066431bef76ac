"""The account's limiter sized from the venues' documented limits (bot.exchange.ccxt_limits),
on a fake clock: what it lets through at once and what it holds back."""

from __future__ import annotations

from typing import Any

import pytest

from bot.exchange.ccxt_limits import LATENESS_S, Limiter, RateLimits, Window
from bot.exchange.venues.binance import BinanceVenue
from bot.exchange.venues.bybit import BybitVenue
from bot.exchange.venues.okx import OkxVenue


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class FakeClient:
    """ccxt's part the limiter uses: ``rateLimit`` and the cost of an endpoint."""

    def __init__(self, rate_limit_ms: float, costs: dict[str, float]) -> None:
        self.rateLimit = rate_limit_ms
        self.costs = costs

    def calculate_rate_limiter_cost(
        self, api: Any, method: str, path: str, params: Any, config: Any
    ) -> float:
        return self.costs[path]


async def request(limiter: Limiter, client: Any, path: str) -> bool:
    """What ccxt's ``fetch2`` does: cost the request, then throttle it."""
    cost = client.calculate_rate_limiter_cost(["private"], "POST", path, {}, {})
    return await limiter.wait(cost)


# Binance USDⓈ-M: ccxt's cost is the weight; a 2-pair start and its first cycle.
BINANCE_START = {
    "exchangeInfo": 1,
    "leverageBracket": 1,
    "positionSide/dual": 30,
    "account": 5,
    "positionRisk": 5,
    "symbolConfig": 5,
    "openOrders": 40,  # no symbol: every contract's
    "income": 30,
}


async def test_binance_lets_a_start_s_weight_through_at_once() -> None:
    clock = FakeClock()
    client = FakeClient(50, BINANCE_START)
    limiter = Limiter(client, BinanceVenue.rate_limits, clock=clock, sleep=clock.sleep)
    limiter.watch(client)
    held = [await request(limiter, client, path) for path in BINANCE_START]
    assert held == [False] * len(BINANCE_START)
    assert clock.slept == []


async def test_ccxt_s_own_bucket_would_hold_the_same_start_back() -> None:
    clock = FakeClock()
    client = FakeClient(50, BINANCE_START)
    # 20 cost units a second, ccxt's rate
    limiter = Limiter(client, RateLimits(), clock=clock, sleep=clock.sleep)
    held = [await request(limiter, client, path) for path in BINANCE_START]
    assert held.count(True) >= 3  # position mode, open orders, income
    assert sum(clock.slept) >= 4


async def test_binance_s_weight_budget_holds_past_2160_a_minute() -> None:
    clock = FakeClock()
    client = FakeClient(50, {"openOrders": 40})
    limiter = Limiter(client, BinanceVenue.rate_limits, clock=clock, sleep=clock.sleep)
    held = [await request(limiter, client, "openOrders") for _ in range(55)]
    assert held[:54] == [False] * 54  # 54 x 40 = 2160: 90% of 2,400 a minute
    assert held[54]
    assert clock.now - 1000.0 == pytest.approx(60 + LATENESS_S, abs=0.01)


@pytest.mark.parametrize("venue", [BybitVenue, OkxVenue])
async def test_each_endpoint_is_paced_on_its_own(venue: Any) -> None:
    clock = FakeClock()
    # Bybit: set-leverage cost 5 of 50 a second (10 a second, as documented); OKX's
    # set-leverage cost 1 of 9 a second (ccxt's rate under OKX's 20 per 2 s).
    rate_ms, cost = (20, 5) if venue is BybitVenue else (110, 1)
    client = FakeClient(rate_ms, {"set-leverage": cost, "position/list": cost})
    limiter = Limiter(client, venue.rate_limits, clock=clock, sleep=clock.sleep)
    limiter.watch(client)
    sets = [await request(limiter, client, "set-leverage") for _ in range(20)]
    free = int(1000 / rate_ms / cost * 0.9)  # 90% of the endpoint's rate
    assert sets[:free] == [False] * free
    assert sets[free]
    started = clock.now
    # Another endpoint has a window of its own: not held by the sets.
    assert not await request(limiter, client, "position/list")
    assert clock.now == started


async def test_a_window_lets_a_later_burst_through_once_the_first_has_left() -> None:
    clock = FakeClock()
    window = Window(3, 1.1, clock, clock.sleep)
    assert [await window.take() for _ in range(3)] == [False, False, False]
    clock.now += 0.5
    assert await window.take()  # held until the first three are 1.1 s old
    assert clock.now == pytest.approx(1001.1, abs=0.01)
    assert not await window.take(2)


async def test_bybit_orders_go_no_faster_than_its_documented_10_a_second() -> None:
    clock = FakeClock()
    client = FakeClient(20, {"v5/order/create": 2.5})  # ccxt's cost: 20 a second
    limiter = Limiter(client, BybitVenue.rate_limits, clock=clock, sleep=clock.sleep)
    limiter.watch(client)
    held = [await request(limiter, client, "v5/order/create") for _ in range(10)]
    assert held == [False] * 9 + [True]


async def ccxt_request(limiter: Limiter, client: Any, api: str, method: str, path: str) -> bool:
    """``request`` with ccxt's own api name and method (Binance's entries name a list)."""
    cost = client.calculate_rate_limiter_cost([api], method, path, {}, {})
    return await limiter.wait(cost)


async def test_a_binance_futures_order_takes_no_request_weight_but_counts_as_an_order() -> None:
    clock = FakeClock()
    # ccxt's table costs a USDⓈ-M new order 4; Binance: "0 on IP rate limit", 1 on the
    # order windows (300 per 10 s, 1,200 a minute).
    client = FakeClient(50, {"order": 4, "openOrders": 40})
    limiter = Limiter(client, BinanceVenue.rate_limits, clock=clock, sleep=clock.sleep)
    limiter.watch(client)
    orders = [
        await ccxt_request(limiter, client, "fapiPrivate", "POST", "order") for _ in range(271)
    ]
    # 270 orders (90% of 300) leave at once: ccxt's cost would have held the 541st weight.
    assert orders[:270] == [False] * 270
    assert orders[270]  # the 271st waits for the 10-second window
    assert clock.now - 1000.0 == pytest.approx(10 + LATENESS_S, abs=0.01)
    # ... and the orders took none of the minute's 2,160 weight: 54 reads of 40 still pass.
    started = clock.now
    reads = [
        await ccxt_request(limiter, client, "fapiPrivate", "GET", "openOrders") for _ in range(54)
    ]
    assert reads == [False] * 54
    assert clock.now == started


async def test_binance_orders_past_1080_a_minute_wait_for_the_minute() -> None:
    clock = FakeClock()
    client = FakeClient(50, {"order": 4})
    limiter = Limiter(client, BinanceVenue.rate_limits, clock=clock, sleep=clock.sleep)
    limiter.watch(client)
    for _ in range(1080):  # 90% of 1,200 a minute, 270 per 10.1 s
        await ccxt_request(limiter, client, "dapiPrivate", "POST", "order")
    before = clock.now
    assert await ccxt_request(limiter, client, "fapiPrivate", "POST", "order")
    assert clock.now - 1000.0 == pytest.approx(60 + LATENESS_S, abs=0.01)
    assert clock.now > before
