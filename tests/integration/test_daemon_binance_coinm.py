"""The daemon hedging coins with Binance COIN-M's inverse perpetual (``BTC/USD:BTC``,
``BTCUSD_PERP``, 100 USD contracts) through the real ccxt client against the Binance
emulator: the coins sit in the COIN-M wallet, apart from spot, and margin the short
(cross). The scenarios are shared with Bybit and OKX (``tests.support.inverse_scenarios``);
coins left in spot only stop the start in one line.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.exchange.gateway import FatalError
from tests.support import inverse_scenarios as scenario
from tests.support.inverse_scenarios import (
    BAND,
    COINS,
    INVERSE,
    START,
    InverseVenue,
    inverse_venue,
    keyed_gateway,
)

D = Decimal
COINM_ID = "BTCUSD_PERP"


@pytest_asyncio.fixture
async def binance(engine: AsyncEngine) -> AsyncIterator[InverseVenue]:
    async with inverse_venue("binance", engine) as setup:
        yield setup


async def test_one_btc_hedged_1x_on_coinm_keeps_its_usd_value_through_a_rally_and_a_crash(
    binance: InverseVenue,
) -> None:
    await scenario.keeps_its_usd_value_through_a_rally_and_a_crash(binance)
    assert binance.harness.inverse_face() == 60100  # 601 contracts: ~1.002 BTC at 60,000
    assert binance.harness.emulator.coinm_liquidations == []
    assert not binance.harness.emulator.unknown_requests


async def test_a_restart_finds_a_coinm_order_of_unknown_outcome_by_client_id(
    binance: InverseVenue,
) -> None:
    await scenario.finds_an_order_of_unknown_outcome_after_a_restart(binance)


async def test_coinm_funding_is_recorded_once_in_btc(binance: InverseVenue) -> None:
    await scenario.records_funding_once_in_the_coin(binance)
    emulator = binance.harness.emulator
    # An inverse-only account asks COIN-M's income only, and its open orders there.
    assert emulator.requests_to("/dapi/v1/income") >= 1
    assert emulator.requests_to("/fapi/v1/income") == 0
    assert emulator.requests_to("/fapi/v1/openOrders") == 0
    assert emulator.requests_to("/dapi/v1/openOrders") >= 1


async def test_coins_in_spot_only_stop_the_start_in_one_line(binance: InverseVenue) -> None:
    emulator = binance.harness.emulator
    emulator.set_coinm_balance("BTC", D(0))
    emulator.set_spot_balance("BTC", COINS)
    with pytest.raises(FatalError, match="coin-margined futures wallet") as refused:
        await binance.start()
    assert "\n" not in str(refused.value)
    assert "transfer the BTC" in str(refused.value)
    assert not [e for e in emulator.order_log if e.venue == "coinm"]


async def test_coins_split_between_spot_and_coinm_are_all_hedged(binance: InverseVenue) -> None:
    """Spot's coins count with COIN-M's (the pair's coins, wherever the user keeps them):
    0.5 BTC left in spot beside 1.002 in COIN-M is hedged at 2x of the COIN-M wallet."""
    binance.harness.emulator.set_spot_balance("BTC", D("0.5"))
    stack = await binance.start()
    assert await stack.cycles(2) == [{}, {}]
    assert abs(scenario.ratio(binance.harness, START) - 1) <= BAND
    assert binance.harness.inverse_face() > D("1.45") * START


async def test_binance_loads_coinm_as_100_usd_contracts_and_reads_its_wallet_apart(
    binance: InverseVenue,
) -> None:
    emulator = binance.harness.emulator
    async with keyed_gateway(binance.harness) as gateway:
        markets = await gateway.load_markets(["BTC/USDT", INVERSE, "BTC/USDT:USDT"])
        assert not gateway.one_wallet
        margin = await gateway.fetch_margin_balances()
        positions = await gateway.fetch_positions([INVERSE, "BTC/USDT:USDT"])
    market = markets[INVERSE]
    assert (market.inverse, market.contract_size, market.amount_step) == (True, D(100), D(1))
    assert margin["BTC"].total == COINS  # COIN-M's row, not USDⓈ-M's
    assert positions == {}
    assert emulator.requests_to("/dapi/v1/account") == 1
    assert emulator.requests_to("/dapi/v1/positionRisk") == 1
    assert emulator.coinm_position(COINM_ID) == 0


async def test_a_steady_coinm_cycle_asks_what_a_linear_one_does_from_dapi(
    binance: InverseVenue,
) -> None:
    """Four requests, as a USDⓈ-M pair's cycle: spot's wallet, and COIN-M's wallet,
    positions and bid/ask in place of USDⓈ-M's (no /fapi read at all); the mark/funding
    read (/dapi/v1/premiumIndex) is once a minute, not in every steady cycle
    (``bot.exchange.rate_poll``)."""
    requests = await scenario.steady_cycle_requests(binance)
    assert requests == {
        ("GET", "/api/v3/account"): 1,
        ("GET", "/dapi/v1/account"): 1,
        ("GET", "/dapi/v1/positionRisk"): 1,
        ("GET", "/dapi/v1/ticker/bookTicker"): 1,
    }


async def test_linear_and_inverse_pairs_on_one_account_add_one_request_per_endpoint(
    binance: InverseVenue,
) -> None:
    """A BTC pair on USDⓈ-M beside an ETH pair on COIN-M (10 USD contracts): both hedged,
    and a steady cycle asks each futures endpoint once more, on /dapi."""
    emulator = binance.harness.emulator
    emulator.set_spot_balance("BTC", D("0.5"))
    emulator.set_futures_balance("USDT", D(20000))
    emulator.set_coinm_balance("ETH", D("10.01"))
    base = scenario.settings(
        binance.harness, name="ETH-coin", spot_symbol="ETH/USDT", perp_symbol="ETH/USD:ETH"
    )
    linear = base.pairs[0].model_copy(
        update={"name": "BTC-linear", "spot_symbol": "BTC/USDT", "perp_symbol": "BTC/USDT:USDT"}
    )
    stack = await binance.start(base.model_copy(update={"pairs": [linear, base.pairs[0]]}))
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
    }  # the funding rates (premiumIndex, both) once a minute, not in this cycle


async def test_coinm_in_hedge_mode_shorts_the_short_side(binance: InverseVenue) -> None:
    emulator = binance.harness.emulator
    emulator.coinm.set_dual_side(True)
    stack = await binance.start()
    assert stack.gateway.hedge_mode
    assert await stack.cycles(2) == [{}, {}]
    assert emulator.coinm_position(COINM_ID, "SHORT") == -601
    assert emulator.coinm_position(COINM_ID, "LONG") == 0


async def test_a_coin_hedged_linear_from_the_futures_wallet_and_inverse_is_refused_at_start(
    binance: InverseVenue,
) -> None:
    """BTC hedged with the USDⓈ-M perpetual, its coins counted in the futures wallet
    (``coin_wallets = ["futures"]``), and with COIN-M's inverse one on the same account:
    Binance keeps the two wallets' BTC apart, and the daemon reads one BTC row for an
    account's futures wallets (COIN-M's, when an inverse pair is traded). The linear pair
    would count the COIN-M coins as its own and short them a second time; the start is
    refused in one line instead, before any order."""
    emulator = binance.harness.emulator
    emulator.set_futures_balance("USDT", D(100_000))
    emulator.set_futures_balance("BTC", D("0.5"))
    config = scenario.settings(binance.harness)
    linear = config.pairs[0].model_copy(
        update={
            "name": "BTC-linear",
            "perp_symbol": "BTC/USDT:USDT",
            "coin_wallets": ("futures",),
            "margin_mode": "cross",
        }
    )
    config = config.model_copy(update={"pairs": [*config.pairs, linear]})
    with pytest.raises(FatalError, match="BTC-linear") as refused:
        await binance.start(config)
    assert "\n" not in str(refused.value)
    assert "coin-margined futures wallet" in str(refused.value)
    assert [e for e in emulator.order_log if e.outcome == "accepted"] == []
