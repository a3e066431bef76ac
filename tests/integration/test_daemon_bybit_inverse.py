"""The daemon hedging coins with Bybit's inverse perpetual (``BTC/USD:BTC``, 1 USD
contracts) through the real ccxt client against the Bybit emulator, a unified account:
the coins and the short's BTC margin are one wallet row, counted once. The scenarios are
shared with OKX and
Binance (``tests.support.inverse_scenarios``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support import inverse_scenarios as scenario
from tests.support.inverse_scenarios import INVERSE, InverseVenue, inverse_venue, loaded_markets

D = Decimal


@pytest_asyncio.fixture
async def bybit(engine: AsyncEngine) -> AsyncIterator[InverseVenue]:
    async with inverse_venue("bybit", engine) as setup:
        yield setup


async def test_one_btc_hedged_1x_with_inverse_contracts_keeps_its_usd_value(
    bybit: InverseVenue,
) -> None:
    await scenario.keeps_its_usd_value_through_a_rally_and_a_crash(bybit)
    assert bybit.harness.inverse_face() == 60120  # 1 USD contracts: to the dollar


async def test_a_restart_finds_an_inverse_order_of_unknown_outcome_by_client_id(
    bybit: InverseVenue,
) -> None:
    await scenario.finds_an_order_of_unknown_outcome_after_a_restart(bybit)


async def test_a_steady_cycle_asks_the_inverse_category_once_per_endpoint(
    bybit: InverseVenue,
) -> None:
    """An inverse pair alone: its settle coin's positions and its category's tickers."""
    requests = await scenario.steady_cycle_requests(bybit)
    assert requests == {
        ("GET", "/v5/account/wallet-balance"): 1,  # the coins and the short's margin
        ("GET", "/v5/position/list"): 1,  # settleCoin BTC, subType inverse
        ("GET", "/v5/market/tickers"): 1,  # category inverse: bid/ask and funding
    }


async def test_inverse_funding_is_recorded_once_in_the_coin(bybit: InverseVenue) -> None:
    await scenario.records_funding_once_in_the_coin(bybit)


async def test_bybit_loads_the_inverse_market_as_one_usd_contracts_settled_in_the_coin(
    bybit: InverseVenue,
) -> None:
    markets, one_wallet = await loaded_markets(bybit.harness, "BTC/USDT", INVERSE)
    assert one_wallet
    market = markets[INVERSE]
    assert (market.inverse, market.contract_size, market.amount_step) == (True, D(1), D(1))


async def test_a_1x_inverse_short_on_all_the_coins_is_sized_at_its_limit_price_and_not_refused(
    engine: AsyncEngine,
) -> None:
    """At 1x the coins' margin pays the short with nothing beside it, so the free-margin
    cap sizes it. Bybit checks an inverse limit sell's margin at its limit price (the bid
    less max_slippage_bps), where the coins of a USD contract cost more than at the bid:
    sized at the bid, the order was refused for margin (110007) every cycle and the
    coins stayed unhedged."""
    async with inverse_venue("bybit", engine, leverage="1") as bybit:
        stack = await bybit.start()
        assert await stack.cycles(3) == [{}, {}, {}]
        venue = bybit.harness
        refused = [e.outcome for e in venue.emulator.order_log if e.outcome != "accepted"]
        assert refused == []
        face = venue.inverse_face()
        # capped by the free margin: nearly all of the 1.002 BTC (60,120 USD), not more
        assert D(59000) < face <= D(60120), face
        events = [e.summary for e in await stack.repository.audit_events()]
        assert any("capped by free margin" in s for s in events), events
