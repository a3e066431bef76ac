"""One bad symbol errors one pair, on the Binance emulator (issue 12, item 6): the ETH perp
is suspended (exchangeInfo status SETTLING, its ticker gone) and the SOL perp delisted
(gone from exchangeInfo, -1121 for anything naming it), while BTC on the same account
keeps hedging and guarding, and ``status`` says why ETH and SOL are not trading. Nothing
is sent on the bad symbols."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.clock import SystemClock
from bot.config import Settings
from bot.exchange.ccxt_gateway import CcxtGateway
from bot.service.daemon import HedgeDaemon
from bot.service.describe import pair_statuses
from bot.service.wiring import BuiltDaemon, build_daemon
from bot.store.repository import Repository
from tests.support.builders import emulator_pair, emulator_settings
from tests.support.emulators.binance import BinanceEmulator
from tests.support.emulators.binance._binance_models import DEFAULT_MARKETS, EmulatedMarket

D = Decimal
BTC, ETH, SOL = "BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"
SOL_MARKET = EmulatedMarket(
    base="SOL",
    step_size=D("0.01"),
    tick_size=D("0.01"),
    min_qty=D("0.01"),
    min_notional=D(5),
    price=D(150),
    level_qty=D(1000),
)


def three_pairs(emulator: BinanceEmulator) -> Settings:
    pairs = [emulator_pair(name) for name in ("BTC", "ETH", "SOL")]
    settings = emulator_settings(emulator, pairs, {"on_liquidation_risk": "add_margin"})
    # Every cycle reloads the markets (the config's floor is 60 s): a change shows at once.
    return settings.model_copy(update={"markets_refresh_s": 0})


@pytest_asyncio.fixture
async def emulator() -> AsyncIterator[BinanceEmulator]:
    """BTC, ETH and SOL, spot and perp; 1 BTC, 10 ETH and 100 SOL on spot."""
    emu = BinanceEmulator(markets=(*DEFAULT_MARKETS, SOL_MARKET))
    await emu.start()
    emu.set_spot_balance("BTC", D(1))
    emu.set_spot_balance("ETH", D(10))
    emu.set_spot_balance("SOL", D(100))
    emu.set_futures_balance("USDT", D(1000000))
    try:
        yield emu
    finally:
        await emu.stop()


@pytest_asyncio.fixture
async def daemon(
    emulator: BinanceEmulator, engine: AsyncEngine
) -> AsyncIterator[tuple[HedgeDaemon, CcxtGateway, Repository]]:
    repository = Repository(engine, SystemClock())
    built: BuiltDaemon = await build_daemon(three_pairs(emulator), repository, SystemClock())
    try:
        await built.daemon.start()
        gateway = built.gateways["main"]
        assert isinstance(gateway, CcxtGateway)
        yield built.daemon, gateway, repository
    finally:
        await built.close_gateways()


def order_requests(emulator: BinanceEmulator, symbol_id: str) -> int:
    return sum(1 for e in emulator.order_log if e.symbol == symbol_id)


async def test_a_suspended_and_a_delisted_perp_error_only_their_pairs_while_btc_hedges_and_guards(
    emulator: BinanceEmulator, daemon: tuple[HedgeDaemon, CcxtGateway, Repository]
) -> None:
    hedger, gateway, repository = daemon
    first = await hedger.run_cycle(1)
    assert first.errors == {}
    assert (emulator.position(BTC), emulator.position(ETH), emulator.position(SOL)) == (
        D(-1),
        D(-10),
        D(-100),
    )

    emulator.suspend("ETH")
    emulator.delist("SOL")
    # More spot everywhere: every pair would sell more perp.
    emulator.set_spot_balance("BTC", D("1.5"))
    emulator.set_spot_balance("ETH", D(12))
    emulator.set_spot_balance("SOL", D(120))
    second = await hedger.run_cycle(2)

    assert set(second.errors) == {"ETH", "SOL"}
    assert ETH in second.errors["ETH"]
    assert SOL in second.errors["SOL"]
    assert second.actions["BTC"] == "order filled"
    assert emulator.position(BTC) == D("-1.5")
    assert order_requests(emulator, "ETHUSDT") == order_requests(emulator, "SOLUSDT") == 1

    # BTC keeps guarding: its mark 8 % under its liquidation price, the guard adds margin.
    liquidation = (await gateway.fetch_positions([BTC]))[BTC].liquidation_price
    assert liquidation is not None
    emulator.set_price("BTC", (liquidation / D("1.08")).quantize(D("0.1")))
    third = await hedger.run_cycle(3)

    assert set(third.errors) == {"ETH", "SOL"}
    assert third.actions["BTC"] == "add_margin done"
    assert [c.symbol for c in emulator.margin_log] == ["BTCUSDT"]
    statuses = {s.pair: s for s in await pair_statuses(repository)}
    assert statuses["BTC"].health == "ok"
    assert statuses["ETH"].health.startswith("error: ")
    assert ETH in statuses["ETH"].health
    assert statuses["SOL"].health.startswith("error: ")
    assert SOL in statuses["SOL"].health
    assert order_requests(emulator, "ETHUSDT") == order_requests(emulator, "SOLUSDT") == 1


async def test_a_suspended_perp_still_quoted_is_not_traded_and_says_it_is_not_trading(
    emulator: BinanceEmulator, daemon: tuple[HedgeDaemon, CcxtGateway, Repository]
) -> None:
    hedger, _, repository = daemon
    assert (await hedger.run_cycle(1)).errors == {}
    # Suspended, yet its (stale) bid/ask still in the tickers answer.
    emulator.suspend("ETH", quoted=True)
    emulator.set_spot_balance("ETH", D(12))
    emulator.set_spot_balance("BTC", D("1.5"))

    second = await hedger.run_cycle(2)
    third = await hedger.run_cycle(3)

    assert order_requests(emulator, "ETHUSDT") == 1  # cycle 1's only: nothing refused -4140
    assert set(second.errors) == set(third.errors) == {"ETH"}
    assert "not trading" in second.errors["ETH"]
    assert "SETTLING" in second.errors["ETH"]
    assert second.actions["BTC"] == "order filled"
    statuses = {s.pair: s for s in await pair_statuses(repository)}
    assert statuses["ETH"].paused is None  # no auto-pause from orders the venue refused
    assert ETH in statuses["ETH"].health
