"""Transfers between the spot and futures wallets, on every venue that keeps them apart:
the paper venue with separate wallets and the ccxt adapter on the Binance emulator
(``POST``/``GET /sapi/v1/asset/transfer``). The collateral keeper relies on all of it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import pytest_asyncio

from bot.clock import FakeClock, SystemClock
from bot.config import AccountConfig, PaperConfig
from bot.domain.margin_transfers import (
    FUTURES_WALLET,
    SPOT_WALLET,
    MoveKind,
    WalletTransfer,
    match_wallet_transfer,
)
from bot.domain.models import OrderRequest, Side
from bot.domain.paper_account import InMemoryPaperAccountStore
from bot.exchange.ccxt_gateway import CcxtGateway
from bot.exchange.feeds import ManualFeed
from bot.exchange.gateway import ExchangeGateway, OrderRejectedError, RetryableError
from bot.exchange.paper import PaperVenue
from tests.support.emulators.binance import Fault
from tests.support.venue_harness import BinanceHarness, open_harness

D = Decimal
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)
SETTLE = timedelta(seconds=60)


@dataclass
class Wallets:
    gateway: ExchangeGateway
    lose_next_answer: Callable[[], None] | None  # None: the venue keeps our ids anyway


@pytest_asyncio.fixture(params=["paper", "binance"])
async def wallets(request: pytest.FixtureRequest) -> AsyncIterator[Wallets]:
    if request.param == "paper":
        feed = ManualFeed({"BTC": D(60000)})
        config = PaperConfig(
            balances={"BTC": D(1), "USDT": D(5000)},
            separate_wallets=True,
            futures_balances={"USDT": D(1000)},
        )
        paper = await PaperVenue.open(config, feed, FakeClock(), InMemoryPaperAccountStore())
        yield Wallets(paper, None)
        await paper.close()
        return
    harness = await open_harness("binance")
    assert isinstance(harness, BinanceHarness)
    harness.fund(margin=D(1000))
    harness.emulator.set_spot_balance("USDT", D(5000))
    gateway = CcxtGateway.from_config(
        "main", AccountConfig(**harness.account()), "testnet", SystemClock()
    )
    emulator = harness.emulator

    def lose() -> None:
        emulator.inject(Fault.DROP_AFTER_ACCEPT, path="/sapi/v1/asset/transfer", method="POST")

    try:
        yield Wallets(gateway, lose)
    finally:
        await gateway.close()
        await harness.close()


async def _quote(gateway: ExchangeGateway) -> tuple[Decimal, Decimal]:
    spot = (await gateway.fetch_balances())["USDT"].free
    futures = (await gateway.fetch_margin_balances())["USDT"].free
    return spot, futures


async def test_quote_moves_between_the_wallets_both_ways_and_is_listed_with_its_route(
    wallets: Wallets,
) -> None:
    gateway = wallets.gateway
    await gateway.load_markets(["BTC/USDT:USDT", "BTC/USDT"])
    assert gateway.separate_wallets
    await gateway.transfer("USDT", D("812.4"), SPOT_WALLET, FUTURES_WALLET, "hbmkeep1")
    assert await _quote(gateway) == (D("4187.6"), D("1812.4"))
    await gateway.transfer("USDT", D(300), FUTURES_WALLET, SPOT_WALLET, "hbmkeep2")
    assert await _quote(gateway) == (D("4487.6"), D("1512.4"))
    listed = await gateway.fetch_transfers("USDT", LONG_AGO)
    routes = [(t.amount, t.source, t.destination) for t in listed]
    assert routes == [(D("812.4"), "spot", "futures"), (D(300), "futures", "spot")]
    assert all(t.at.tzinfo is not None for t in listed)


async def test_a_transfer_beyond_the_sources_free_balance_is_refused_and_moves_nothing(
    wallets: Wallets,
) -> None:
    gateway = wallets.gateway
    await gateway.load_markets(["BTC/USDT:USDT", "BTC/USDT"])
    with pytest.raises(OrderRejectedError):
        await gateway.transfer("USDT", D(5001), SPOT_WALLET, FUTURES_WALLET, "hbmkeep3")
    with pytest.raises(OrderRejectedError):
        await gateway.transfer("USDT", D(1001), FUTURES_WALLET, SPOT_WALLET, "hbmkeep4")
    assert await _quote(gateway) == (D(5000), D(1000))
    assert await gateway.fetch_transfers("USDT", LONG_AGO) == []


async def test_a_transfer_whose_answer_was_lost_is_found_in_the_history_by_the_match_rule(
    wallets: Wallets,
) -> None:
    gateway = wallets.gateway
    await gateway.load_markets(["BTC/USDT:USDT", "BTC/USDT"])
    stored_at = datetime.now(UTC)
    if wallets.lose_next_answer is not None:
        wallets.lose_next_answer()
        with pytest.raises(RetryableError):
            await gateway.transfer("USDT", D("123.45"), SPOT_WALLET, FUTURES_WALLET, "hbmlost")
    else:
        await gateway.transfer("USDT", D("123.45"), SPOT_WALLET, FUTURES_WALLET, "hbmlost")
    listed = await gateway.fetch_transfers("USDT", LONG_AGO)
    found = match_wallet_transfer(
        "hbmlost", MoveKind.TO_FUTURES, "USDT", D("123.45"), stored_at, SETTLE, listed
    )
    assert found is not None
    assert (found.amount, found.source, found.destination) == (D("123.45"), "spot", "futures")
    # Moved once: the look-up found it, nothing was sent again.
    assert await _quote(gateway) == (D("4876.55"), D("1123.45"))


def test_a_venue_that_keeps_our_id_is_matched_by_it_whatever_the_amount() -> None:
    ours = WalletTransfer("USDT", D(5), SPOT_WALLET, FUTURES_WALLET, LONG_AGO, "hbmours")
    found = match_wallet_transfer(
        "hbmours", MoveKind.TO_FUTURES, "USDT", D(6), datetime.now(UTC), SETTLE, [ours]
    )
    assert found is ours


async def test_margin_taken_out_of_a_position_is_listed_as_a_reduction_and_freed(
    wallets: Wallets,
) -> None:
    gateway = wallets.gateway
    perp = "BTC/USDT:USDT"
    await gateway.load_markets([perp, "BTC/USDT"])
    await gateway.set_margin_mode(perp, "isolated")
    await gateway.set_leverage(perp, D(2))
    await gateway.create_order(OrderRequest(perp, Side.SELL, D("0.01"), "ckeepcut"))
    await gateway.add_margin(perp, D(300))
    free = (await gateway.fetch_margin_balances())["USDT"].free
    await gateway.remove_margin(perp, D(100))
    assert (await gateway.fetch_margin_balances())["USDT"].free == free + D(100)
    changes = await gateway.fetch_margin_history(perp, LONG_AGO)
    assert [(c.amount, c.added) for c in changes] == [(D(300), True), (D(100), False)]
