"""The paper venue with separate spot and futures wallets (bot/exchange/paper/wallets.py)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bot.clock import FakeClock
from bot.config import PaperConfig
from bot.domain.margin_transfers import FUTURES_WALLET, SPOT_WALLET
from bot.domain.models import OrderRequest, Side
from bot.domain.paper_account import InMemoryPaperAccountStore, state_from_json, state_to_json
from bot.exchange.feeds import ManualFeed
from bot.exchange.gateway import OrderRejectedError
from bot.exchange.paper import PaperVenue

D = Decimal
PERP, SPOT = "BTC/USDT:USDT", "BTC/USDT"


async def _venue(separate: bool = True) -> tuple[PaperVenue, ManualFeed]:
    feed = ManualFeed({"BTC": D(60000)})
    config = PaperConfig(
        balances={"BTC": D(1), "USDT": D(5000)},
        separate_wallets=separate,
        futures_balances={"USDT": D(30000)} if separate else {},
        taker_fee_rate=D(0),
        spread_bps=D(0),
    )
    return await PaperVenue.open(config, feed, FakeClock(), InMemoryPaperAccountStore()), feed


async def test_spot_and_futures_are_apart_and_a_spot_sale_pays_into_the_spot_wallet() -> None:
    venue, _ = await _venue()
    assert venue.separate_wallets
    assert {a: b.total for a, b in (await venue.fetch_balances()).items()} == {
        "BTC": D(1),
        "USDT": D(5000),
    }
    assert (await venue.fetch_margin_balances())["USDT"].total == D(30000)
    await venue.create_order(OrderRequest(SPOT, Side.SELL, D("0.1"), "sale1"))
    assert (await venue.fetch_balances())["USDT"].free == D(11000)
    assert (await venue.fetch_margin_balances())["USDT"].total == D(30000)


async def test_a_short_is_margined_from_the_futures_wallet_only() -> None:
    venue, _ = await _venue()
    await venue.set_leverage(PERP, D(3))
    await venue.create_order(OrderRequest(PERP, Side.SELL, D(1), "short1"))
    assert (await venue.fetch_margin_balances())["USDT"].free == D(10000)
    assert (await venue.fetch_balances())["USDT"].free == D(5000)


async def test_a_transfer_leaves_the_account_worth_the_same() -> None:
    venue, _ = await _venue()
    before = (await venue.account_summary()).equity
    await venue.transfer("USDT", D(2000), SPOT_WALLET, FUTURES_WALLET, "hbmt1")
    assert (await venue.account_summary()).equity == before
    with pytest.raises(OrderRejectedError, match="made before"):
        await venue.transfer("USDT", D(1), SPOT_WALLET, FUTURES_WALLET, "hbmt1")


async def test_one_wallet_accounts_refuse_transfers() -> None:
    venue, _ = await _venue(separate=False)
    assert not venue.separate_wallets
    with pytest.raises(OrderRejectedError, match="one wallet"):
        await venue.transfer("USDT", D(1), SPOT_WALLET, FUTURES_WALLET, "hbmt2")


async def test_margin_taken_out_of_a_position_lands_in_the_futures_wallet_within_bounds() -> None:
    venue, feed = await _venue()
    await venue.set_leverage(PERP, D(3))
    await venue.create_order(OrderRequest(PERP, Side.SELL, D(1), "short2"))
    feed.set_price("BTC", D(30000))
    await venue.remove_margin(PERP, D(5000))
    assert (await venue.fetch_positions([PERP]))[PERP].margin == D(15000)
    assert (await venue.fetch_margin_balances())["USDT"].free == D(15000)
    [change] = await venue.fetch_margin_history(PERP, venue.state.margin_changes[0].at)
    assert (change.amount, change.added) == (D(5000), False)
    feed.set_price("BTC", D(70000))  # liquidation near 74,600 now; 64,700 without 10,000
    with pytest.raises(OrderRejectedError, match="past the mark"):
        await venue.remove_margin(PERP, D(10000))


async def test_the_wallets_and_transfers_survive_a_save() -> None:
    venue, _ = await _venue()
    await venue.transfer("USDT", D(2000), SPOT_WALLET, FUTURES_WALLET, "hbmt3")
    again = state_from_json(state_to_json(venue.state))
    assert again.spot_wallet == {"BTC": D(1), "USDT": D(3000)}
    assert again.transfers == venue.state.transfers
