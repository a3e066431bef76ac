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
