"""The paper venue as a unified account (``paper.account = "unified"``): the coins held back
the short at their collateral ratio; margin, equity and liquidation are the account's."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pydantic import ValidationError

from bot.clock import FakeClock
from bot.config import PaperConfig
from bot.domain.margin import MaintenanceTiers, isolated_liquidation_price_with_margin
from bot.domain.models import OrderRequest, Side
from bot.domain.paper_account import InMemoryPaperAccountStore
from bot.exchange.feeds import ManualFeed
from bot.exchange.gateway import OrderRejectedError
from bot.exchange.paper import PaperVenue
from tests.support import builders

D = Decimal
T0 = datetime(2026, 1, 1, 1, tzinfo=UTC)
PERP = "BTC/USDT:USDT"


async def venue(
    balances: dict[str, str], account: str = "unified", **extra: object
) -> tuple[PaperVenue, ManualFeed]:
    config = PaperConfig.model_validate(
        {
            "balances": balances,
            "spread_bps": "0",
            "taker_fee_rate": "0",
            "maintenance_margin_rate": "0.005",
            "maintenance_tiers": {},
            "account": account,
            **extra,
        }
    )
    feed = ManualFeed({"BTC": D(60000)})
    paper = await PaperVenue.open(config, feed, FakeClock(T0), InMemoryPaperAccountStore())
    await paper.set_leverage(PERP, D(2))
    return paper, feed


def sell(amount: str, cid: str) -> OrderRequest:
    return OrderRequest(symbol=PERP, side=Side.SELL, amount=D(amount), client_order_id=cid)


@pytest.mark.asyncio
async def test_the_coins_alone_margin_a_short_of_their_own_size_on_a_unified_account() -> None:
    # 1 BTC and no USDT: the BTC (0.95 x 60000 = 57000) backs a 2x short of 1 BTC.
    unified, _ = await venue({"BTC": "1"})
    isolated, _ = await venue({"BTC": "1"}, account="isolated")

    order = await unified.create_order(sell("1", "u1"))

    assert order.filled == D(1)
    with pytest.raises(OrderRejectedError, match="insufficient USDT"):
        await isolated.create_order(sell("1", "c1"))


@pytest.mark.asyncio
async def test_margin_balance_and_liquidation_price_are_the_accounts() -> None:
    paper, feed = await venue({"BTC": "1"})
    await paper.create_order(sell("1", "u1"))
    feed.set_price("BTC", D(120000))  # +100 %

    usdt = (await paper.fetch_margin_balances())["USDT"]
    position = (await paper.fetch_positions([PERP]))[PERP]

    # 0.95 x 120000 - 60000 of loss on the short
    assert usdt.equity == D(54000)
    assert usdt.free == D(54000) - D(30000)  # less the initial margin held at entry
    # (K + q x entry) / (q x (1 - ratio + rate)) with K = 0: 60000 / 0.055
    assert position.liquidation_price == D(60000) / D("0.055")
    assert paper.liquidations() == []


@pytest.mark.asyncio
async def test_the_whole_account_is_liquidated_when_its_margin_balance_reaches_maintenance() -> (
    None
):
    # 1 BTC backs a 3 BTC short: the rally's loss outruns the collateral's gain.
    paper, feed = await venue({"BTC": "1"}, collateral_ratios={"BTC": "0.8"})
    await paper.set_leverage(PERP, D(5))
    await paper.create_order(sell("2", "u1"))
    position = (await paper.fetch_positions([PERP]))[PERP]
    # 0.8 P - 2 (P - 60000) - 0.005 x 2 P = 0  ->  P = 120000 / 1.21
    assert position.liquidation_price == D(120000) / D("1.21")

    feed.set_price("BTC", D(100000))
    assert await paper.fetch_positions([PERP]) == {}

    [liquidation] = paper.liquidations()
    assert liquidation.filled == D(2)
    assert "the account's margin balance" in (liquidation.reason or "")


@pytest.mark.asyncio
async def test_a_spot_buy_on_a_unified_account_still_needs_the_quote_it_pays() -> None:
    paper, _ = await venue({"BTC": "1", "USDT": "100"})

    with pytest.raises(OrderRejectedError, match="insufficient USDT"):
        await paper.create_order(
            OrderRequest(symbol="BTC/USDT", side=Side.BUY, amount=D("0.01"), client_order_id="b")
        )


@pytest.mark.asyncio
async def test_a_unified_account_has_no_isolated_margin_to_add() -> None:
    paper, _ = await venue({"BTC": "1"})
    await paper.create_order(sell("1", "u1"))

    with pytest.raises(OrderRejectedError, match="no isolated margin"):
        await paper.add_margin(PERP, D(100))


def test_a_unified_paper_account_with_an_isolated_pair_is_a_one_line_config_error() -> None:
    with pytest.raises(ValidationError) as caught:
        builders.settings([builders.pair()], account="unified")

    assert (
        "paper.account 'unified' takes margin_mode 'cross', but pair BTC uses margin_mode "
        "'isolated'; set margin_mode = 'cross', or paper.account = 'isolated'"
    ) in str(caught.value)


def test_an_isolated_paper_account_with_a_cross_pair_is_a_one_line_config_error() -> None:
    with pytest.raises(ValidationError) as caught:
        builders.settings([builders.pair(margin_mode="cross")])

    assert (
        "paper.account 'isolated' takes margin_mode 'isolated', but pair BTC uses margin_mode "
        "'cross'; set margin_mode = 'isolated', or paper.account = 'cross' or 'unified'"
    ) in str(caught.value)


@pytest.mark.asyncio
async def test_a_cross_account_backs_the_short_with_its_quote_only() -> None:
    # 1 BTC and 30000 USDT, 2 BTC short at 2x: the coin counts for nothing on a cross
    # account, so the whole 30000 USDT is the short's margin (one isolated position
    # holding the wallet), and 1 more BTC of short needs more than is available.
    paper, _ = await venue({"BTC": "1", "USDT": "30000"}, account="cross")
    await paper.create_order(sell("0.9", "x1"))

    position = (await paper.fetch_positions([PERP]))[PERP]
    usdt = (await paper.fetch_margin_balances())["USDT"]

    assert position.liquidation_price == isolated_liquidation_price_with_margin(
        D("-0.9"), D(60000), D(30000), MaintenanceTiers.flat(D("0.005"))
    )
    assert usdt.equity == D(30000)
    assert usdt.free == D(30000) - D(27000)
    with pytest.raises(OrderRejectedError, match="insufficient USDT"):
        await paper.create_order(sell("0.2", "x2"))


def test_a_unified_paper_account_with_separate_wallets_is_a_one_line_config_error() -> None:
    with pytest.raises(ValidationError) as caught:
        builders.settings(
            [builders.pair(margin_mode="cross")], account="unified", separate_wallets=True
        )

    assert (
        "paper.account 'unified' keeps the coins and the margin in one wallet, but "
        "paper.separate_wallets is set; set one of them"
    ) in str(caught.value)
