"""The daemon hedging coins with Binance COIN-M's inverse perpetual (``BTC/USD:BTC``,
``BTCUSD_PERP``, 100 USD contracts) through the real ccxt client against the Binance
emulator: the coins sit in the COIN-M wallet, apart from spot, and margin the short.

~1 BTC hedged 1x: the first cycles bring the ratio into the band; through 60,000 ->
120,000 -> 30,000 the USD value of the coins holds within fees and funding, no
liquidation, nothing sent twice; a restart finds an order of unknown outcome by its
client id and never resends it; funding is recorded in BTC. Coins left in spot only stop
the start in one line.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.clock import SystemClock
from bot.exchange.ccxt_gateway import CcxtGateway
from bot.exchange.gateway import FatalError
from bot.store.repository import Repository
from tests.support.daemon_stack import DaemonStack, daemon_stacks
from tests.support.emulators.binance import BinanceEmulator, Fault
from tests.support.emulators.binance._binance_coinm import DEFAULT_COINM_MARKETS
from tests.support.inverse_binance import (
    COINM_ID,
    INVERSE,
    START,
    CoinmBook,
    assert_in_band,
    coinm_settings,
    lost_order_found_after_restart,
    rally_and_crash,
)

D = Decimal
COINS = D("1.002")  # the coins; a thousandth or two beside the short pays its fees


@pytest_asyncio.fixture
async def emulator() -> AsyncIterator[BinanceEmulator]:
    async with BinanceEmulator(coinm_markets=DEFAULT_COINM_MARKETS) as emu:
        emu.set_coinm_balance("BTC", COINS)  # moved spot -> COIN-M by the user
        yield emu


@pytest_asyncio.fixture
async def open_stack(emulator: BinanceEmulator, engine: AsyncEngine) -> AsyncIterator[Any]:
    async with daemon_stacks(Repository(engine, SystemClock())) as start:

        async def build(**pair: Any) -> DaemonStack:
            return await start(coinm_settings(emulator, **pair))

        yield build


async def test_one_btc_hedged_1x_on_coinm_keeps_its_usd_value_through_a_rally_and_a_crash(
    open_stack: Any, emulator: BinanceEmulator
) -> None:
    stack = await open_stack()
    assert await stack.cycles(2) == [{}, {}]
    book = CoinmBook(emulator)
    assert_in_band(book, START)
    assert book.short_face() == 60100  # 601 contracts: ~1.002 BTC at 60,000, no more
    await rally_and_crash(stack, book, COINS)
    assert book.short_face() == 60100  # the short was never cut
    assert emulator.coinm_liquidations == []
    stored = {o.client_order_id for o in await stack.repository.orders()}
    assert set(book.accepted()) <= stored
    assert not emulator.unknown_requests


async def test_a_restart_finds_a_coinm_order_of_unknown_outcome_by_client_id(
    open_stack: Any, emulator: BinanceEmulator
) -> None:
    def add_half_a_coin() -> None:
        emulator.set_coinm_balance("BTC", emulator.coinm_balance("BTC") + D("0.5"))

    def lose_answers() -> None:
        emulator.inject(Fault.DROP_AFTER_ACCEPT)
        emulator.inject(Fault.SERVER_ERROR, path="/dapi/v1/order", method="GET", count=50)

    await lost_order_found_after_restart(
        open_stack, CoinmBook(emulator), add_half_a_coin, lose_answers, emulator.clear_faults
    )


async def test_coinm_funding_is_recorded_once_in_btc(
    open_stack: Any, emulator: BinanceEmulator
) -> None:
    stack = await open_stack()
    stack.gateway.funding_poll = timedelta(0)
    await stack.cycles(2)
    emulator.settle_funding()  # 601 contracts short at a 0.0001 rate: BTC received
    await stack.cycles(2)
    [event] = await stack.repository.audit_events(kind="funding")
    assert event.summary.startswith("funding received")
    assert "BTC" in event.summary
    received = D(60100) / START * D("0.0001")
    assert abs(await stack.repository.funding_total("BTC-coin") - received) < D("1e-12")
    # An inverse-only account asks COIN-M's income only, and its open orders there.
    assert emulator.requests_to("/dapi/v1/income") >= 1
    assert emulator.requests_to("/fapi/v1/income") == 0
    assert emulator.requests_to("/fapi/v1/openOrders") == 0
    assert emulator.requests_to("/dapi/v1/openOrders") >= 1


async def test_coins_in_spot_only_stop_the_start_in_one_line(
    open_stack: Any, emulator: BinanceEmulator
) -> None:
    emulator.set_coinm_balance("BTC", D(0))
    emulator.set_spot_balance("BTC", COINS)
    with pytest.raises(FatalError, match="coin-margined futures wallet") as refused:
        await open_stack()
    assert "\n" not in str(refused.value)
    assert "transfer the BTC" in str(refused.value)
    assert not [e for e in emulator.order_log if e.venue == "coinm"]


async def test_coins_split_between_spot_and_coinm_are_all_hedged(
    open_stack: Any, emulator: BinanceEmulator
) -> None:
    """Spot's coins count with COIN-M's (the pair's coins, wherever the user keeps them):
    0.5 BTC left in spot beside 1.002 in COIN-M is hedged at 2x of the COIN-M wallet."""
    emulator.set_spot_balance("BTC", D("0.5"))
    stack = await open_stack()
    assert await stack.cycles(2) == [{}, {}]
    book = CoinmBook(emulator)
    assert_in_band(book, START)
    assert book.short_face() > D("1.45") * START


async def test_binance_loads_coinm_as_100_usd_contracts_and_reads_its_wallet_apart(
    emulator: BinanceEmulator,
) -> None:
    account = coinm_settings(emulator).accounts["main"]
    gateway = CcxtGateway.from_config("main", account, "testnet", SystemClock())
    try:
        markets = await gateway.load_markets(["BTC/USDT", INVERSE, "BTC/USDT:USDT"])
        assert not gateway.one_wallet
        margin = await gateway.fetch_margin_balances()
        positions = await gateway.fetch_positions([INVERSE, "BTC/USDT:USDT"])
    finally:
        await gateway.close()
    market = markets[INVERSE]
    assert (market.inverse, market.contract_size, market.amount_step) == (True, D(100), D(1))
    assert margin["BTC"].total == COINS  # COIN-M's row, not USDⓈ-M's
    assert positions == {}
    assert emulator.requests_to("/dapi/v1/account") == 1
    assert emulator.requests_to("/dapi/v1/positionRisk") == 1
    assert emulator.coinm_position(COINM_ID) == 0


async def test_a_steady_coinm_cycle_asks_what_a_linear_one_does_from_dapi(
    open_stack: Any, emulator: BinanceEmulator
) -> None:
    """Five requests, as a USDⓈ-M pair's cycle: spot's wallet, and COIN-M's wallet,
    positions, bid/ask and mark/funding in place of USDⓈ-M's (no /fapi read at all)."""
    stack = await open_stack()
    await stack.cycles(3)
    emulator.request_log.clear()
    assert await stack.cycles(1) == [{}]
    assert sorted(emulator.request_log) == [
        ("GET", "/api/v3/account"),
        ("GET", "/dapi/v1/account"),
        ("GET", "/dapi/v1/positionRisk"),
        ("GET", "/dapi/v1/premiumIndex"),
        ("GET", "/dapi/v1/ticker/bookTicker"),
    ]


async def test_linear_and_inverse_pairs_on_one_account_add_one_request_per_endpoint(
    emulator: BinanceEmulator, engine: AsyncEngine
) -> None:
    """A BTC pair on USDⓈ-M beside an ETH pair on COIN-M (10 USD contracts): both hedged,
    and a steady cycle asks each futures endpoint once more, on /dapi."""
    emulator.set_spot_balance("BTC", D("0.5"))
    emulator.set_futures_balance("USDT", D(20000))
    emulator.set_coinm_balance("ETH", D("10.01"))
    base = coinm_settings(
        emulator, name="ETH-coin", spot_symbol="ETH/USDT", perp_symbol="ETH/USD:ETH"
    )
    linear = base.pairs[0].model_copy(
        update={
            "name": "BTC-linear",
            "spot_symbol": "BTC/USDT",
            "perp_symbol": "BTC/USDT:USDT",
            "margin_mode": "cross",
        }
    )
    settings = base.model_copy(update={"pairs": [linear, base.pairs[0]]})
    async with daemon_stacks(Repository(engine, SystemClock())) as start:
        stack = await start(settings)
        assert await stack.cycles(3) == [{}, {}, {}]
        emulator.request_log.clear()
        assert await stack.cycles(1) == [{}]
    assert emulator.position("BTC/USDT:USDT") == D("-0.5")
    assert emulator.coinm_position("ETHUSD_PERP") == -3003  # 10.01 ETH at 3,000: 10 USD each
    assert Counter(emulator.request_log) == {
        ("GET", "/api/v3/account"): 1,
        ("GET", "/fapi/v3/account"): 1,
        ("GET", "/dapi/v1/account"): 1,
        ("GET", "/fapi/v3/positionRisk"): 1,
        ("GET", "/dapi/v1/positionRisk"): 1,
        ("GET", "/fapi/v1/ticker/bookTicker"): 1,
        ("GET", "/dapi/v1/ticker/bookTicker"): 1,
        ("GET", "/fapi/v1/premiumIndex"): 1,
        ("GET", "/dapi/v1/premiumIndex"): 1,
    }


async def test_coinm_in_hedge_mode_shorts_the_short_side(
    open_stack: Any, emulator: BinanceEmulator
) -> None:
    emulator.coinm.set_dual_side(True)
    stack = await open_stack()
    assert stack.gateway.hedge_mode
    assert await stack.cycles(2) == [{}, {}]
    assert emulator.coinm_position(COINM_ID, "SHORT") == -601
    assert emulator.coinm_position(COINM_ID, "LONG") == 0
