"""No naked residual short: when the spot is gone and the short left is below the min
notional (the venue's or the pair's own), the short is still closed with a reduce-only
order where the venue accepts reduce-only orders under its min notional (Binance USDⓈ-M:
-4164 "Order's notional must be no smaller than 5 (unless you choose reduce only)"), on
the paper venue and through ccxt against the Binance emulator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.clock import FakeClock, SystemClock
from bot.domain.models import ONE, Market
from bot.domain.quantize import amount_problem
from bot.exchange.ccxt_markets import market as ccxt_market
from bot.exchange.feeds import ManualFeed
from bot.exchange.venues import venue_class
from bot.service.wiring import BuiltDaemon, build_daemon
from bot.store.repository import Repository
from tests.scenarios.on_binance import binance_settings
from tests.support.builders import open_daemon, pair, settings
from tests.support.emulators.binance import BinanceEmulator

D = Decimal
XRP_PERP = "XRP/USDT:USDT"
BTC_PERP = "BTC/USDT:USDT"


async def test_a_residual_short_below_min_notional_is_closed_on_the_paper_venue(
    repository: Repository, clock: FakeClock
) -> None:
    """XRP at 2: 1 XRP short is 2 USDT, under the paper market's min notional of 5 and the
    pair's own 50; with the spot gone it is closed all the same."""
    config = settings([pair("XRP", min_notional="50")], balances={"XRP": "1000", "USDT": "100000"})
    daemon, venue = await open_daemon(config, repository, clock, ManualFeed({"XRP": D(2)}))
    await daemon.run_cycle(1)
    assert venue.state.positions[XRP_PERP].qty == D(-1000)

    venue.state.balances["XRP"] = D(1)  # 999 XRP sold elsewhere: the hedge follows
    clock.advance(10)
    await daemon.run_cycle(2)
    assert venue.state.positions[XRP_PERP].qty == D(-1)

    venue.state.balances["XRP"] = D(0)  # the last XRP gone: 1 XRP short is naked
    clock.advance(10)
    report = await daemon.run_cycle(3)

    assert report.actions["XRP"].startswith("order filled"), report.actions
    assert XRP_PERP not in venue.state.positions
    [last] = [o for o in venue.state.orders.values() if o.status.value == "filled"][-1:]
    assert last.amount == D(1)


def test_the_exemption_is_the_venues_rule() -> None:
    """The exemption is the venue's rule: a market without it keeps the floor."""
    market = Market(XRP_PERP, "XRP", "USDT", D(1), D("0.0001"), min_notional=D(5), is_perp=True)
    assert amount_problem(D(1), D(2), market, closes_position=True) is not None
    exempt = Market(
        XRP_PERP,
        "XRP",
        "USDT",
        D(1),
        D("0.0001"),
        min_notional=D(5),
        is_perp=True,
        reduce_only_below_min_notional=True,
    )
    assert amount_problem(D(1), D(2), exempt, closes_position=True) is None
    assert amount_problem(D(1), D(2), exempt, D(50), closes_position=True) is None
    # Not a close: the floors stand.
    assert amount_problem(D(1), D(2), exempt) is not None


def test_the_ccxt_adapter_marks_binance_futures_as_exempt() -> None:
    raw: dict[str, Any] = {
        "symbol": BTC_PERP,
        "base": "BTC",
        "quote": "USDT",
        "precision": {"amount": "0.001", "price": "0.1"},
        "limits": {"cost": {"min": 100}},
        "swap": True,
        "future": False,
        "linear": True,
    }
    tick_size = 4  # ccxt's TICK_SIZE precision mode

    def exempt(exchange: str, market: dict[str, Any]) -> bool:
        venue = venue_class(exchange)
        parsed = ccxt_market(market, tick_size, exchange, ONE, venue.reduce_only_below_min_notional)
        return parsed.reduce_only_below_min_notional

    assert exempt("binance", raw)
    assert exempt("binanceusdm", raw)
    assert not exempt("okx", raw)
    spot = {**raw, "symbol": "BTC/USDT", "swap": False}
    assert not exempt("binance", spot)


@pytest_asyncio.fixture
async def on_emulator(emulator: BinanceEmulator, engine: AsyncEngine) -> AsyncIterator[Any]:
    config = binance_settings(emulator)
    built: BuiltDaemon = await build_daemon(
        config, Repository(engine, SystemClock()), SystemClock()
    )
    await built.daemon.start()
    try:
        yield built.daemon
    finally:
        await built.close_gateways()


async def test_a_residual_short_below_min_notional_is_closed_on_binance(
    on_emulator: Any, emulator: BinanceEmulator
) -> None:
    """BTC at 60,000 and a perp min notional of 100: 0.001 BTC short (60 USDT) left
    after the spot is gone is closed reduce-only, and Binance (the emulator) takes it."""
    daemon = on_emulator
    await daemon.run_cycle(1)
    assert emulator.position(BTC_PERP) == D(-1)
    emulator.set_spot_balance("BTC", D("0.001"))
    await daemon.run_cycle(2)
    assert emulator.position(BTC_PERP) == D("-0.001")

    emulator.set_spot_balance("BTC", D(0))
    report = await daemon.run_cycle(3)

    assert report.errors == {}
    assert report.actions["BTC"].startswith("order filled"), report.actions
    assert emulator.position(BTC_PERP) == D(0)
    last = [e for e in emulator.order_log if e.outcome == "accepted"][-1]
    assert last.reduce_only is True
