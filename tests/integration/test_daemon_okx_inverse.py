"""The daemon hedging coins with OKX's coin-margined swap (``BTC/USD:BTC``, OKX
``BTC-USD-SWAP``, contracts of 100 USD) through the real ccxt client against the OKX
emulator's trading account: the spot coins and the swap's BTC margin are one row
(``cashBal``; ``eq`` with the swap's PnL), counted once. The scenarios are shared with
Bybit and Binance (``tests.support.inverse_scenarios``); the harness margins the pair
cross (``OkxHarness.inverse_pair``).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support import inverse_scenarios as scenario
from tests.support.inverse_scenarios import INVERSE, InverseVenue, inverse_venue, loaded_markets

D = Decimal
OKX_CLIENT_ID = re.compile(r"[A-Za-z0-9]{1,32}")


@pytest_asyncio.fixture
async def okx(engine: AsyncEngine) -> AsyncIterator[InverseVenue]:
    async with inverse_venue("okx", engine) as setup:
        yield setup


async def test_one_btc_hedged_1x_with_coin_margined_swaps_keeps_its_usd_value(
    okx: InverseVenue,
) -> None:
    await scenario.keeps_its_usd_value_through_a_rally_and_a_crash(okx)
    # Contracts of 100 USD: the coins' 60,120 USD rounded down to the contract.
    assert okx.harness.inverse_face() == 60100


async def test_a_restart_finds_a_coin_margined_order_of_unknown_outcome_by_client_id(
    okx: InverseVenue,
) -> None:
    client_id = await scenario.finds_an_order_of_unknown_outcome_after_a_restart(okx)
    assert OKX_CLIENT_ID.fullmatch(client_id), client_id  # OKX: 1-32 letters and digits


async def test_a_steady_cycle_asks_what_a_linear_pair_asks(okx: InverseVenue) -> None:
    """No request for the inverse swap alone: positions without an instrument type and
    the SWAP tickers list it with the linear swaps (as do the funding rates, read once a
    minute, not in every steady cycle: ``bot.exchange.rate_poll``)."""
    requests = await scenario.steady_cycle_requests(okx)
    assert requests == {
        ("GET", "/api/v5/account/balance"): 1,  # the spot coins and the swap's margin
        ("GET", "/api/v5/account/positions"): 1,
        ("GET", "/api/v5/market/tickers"): 1,  # instType SWAP
    }
    emulator = okx.harness.emulator
    asked = dict(zip(emulator.request_log, emulator.request_queries, strict=True))
    assert asked["GET", "/api/v5/market/tickers"] == {"instType": "SWAP"}


async def test_coin_margined_funding_is_recorded_once_in_the_coin(okx: InverseVenue) -> None:
    await scenario.records_funding_once_in_the_coin(okx)


async def test_okx_loads_the_coin_margined_swap_as_100_usd_contracts_settled_in_the_coin(
    okx: InverseVenue,
) -> None:
    markets, one_wallet = await loaded_markets(okx.harness, "BTC/USDT", INVERSE, "ETH/USD:ETH")
    assert one_wallet
    btc, eth = markets[INVERSE], markets["ETH/USD:ETH"]
    assert (btc.inverse, btc.contract_size, btc.amount_step, btc.min_amount) == (
        True,
        D(100),
        D(1),
        D(1),
    )
    assert (eth.inverse, eth.contract_size) == (True, D(10))
