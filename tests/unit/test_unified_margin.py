"""A unified account's margin: coins as collateral at a ratio, the account's liquidation
prices per coin (bot/domain/unified.py)."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.config import PaperConfig
from bot.domain.margin import MaintenanceTiers, isolated_liquidation_price_with_margin
from bot.domain.unified import CrossPosition, Holding, UnifiedAccount, holdings_of

D = Decimal
FLAT = MaintenanceTiers.flat(D("0.005"))
BTC_TIERS = PaperConfig().maintenance("BTC/USDT:USDT")[1]


def short(
    qty: Decimal, entry: Decimal, mark: Decimal, tiers: MaintenanceTiers = FLAT
) -> CrossPosition:
    return CrossPosition("BTC/USDT:USDT", "BTC", -qty, entry, mark, D(1), tiers)


def hedged(
    coins: Decimal,
    usdt: Decimal,
    entry: Decimal,
    mark: Decimal,
    ratio: Decimal,
    tiers: MaintenanceTiers = FLAT,
) -> UnifiedAccount:
    return UnifiedAccount(
        (Holding("BTC", coins, mark, ratio), Holding("USDT", usdt, D(1), D(1))),
        (short(coins, entry, mark, tiers),),
    )


def test_one_btc_hedged_1x_with_its_own_coin_as_collateral_liquidates_only_after_an_18x_rally() -> (
    None
):
    account = hedged(D(1), D(0), D(60000), D(60000), D("0.95"))

    prices = account.liquidation_prices("BTC", D(60000))

    # (K + q x entry) / (q x (1 - ratio + rate)) = 60000 / 0.055
    assert prices.below is None
    assert prices.above == D(60000) / D("0.055")
    assert round(prices.above, 2) == D("1090909.09")
    assert round(account.distance("BTC", D(60000)), 4) == D("17.1818")


def test_the_same_short_without_the_coins_as_collateral_liquidates_like_an_isolated_one() -> None:
    # 1 BTC short at 60000 backed by 60000 USDT only (the coin's ratio 0): the cross
    # account is one isolated position holding the whole wallet.
    account = hedged(D(1), D(60000), D(60000), D(60000), D(0))

    above = account.liquidation_prices("BTC", D(60000)).above

    assert above == isolated_liquidation_price_with_margin(D(-1), D(60000), D(60000), FLAT)


def test_margin_balance_counts_coins_at_their_ratio_and_a_debt_at_full_value() -> None:
    account = UnifiedAccount(
        (Holding("BTC", D(2), D(50000), D("0.9")), Holding("USDT", D(-10000), D(1), D(1))),
        (),
    )

    assert account.margin_balance == D(2) * D(50000) * D("0.9") - D(10000)
    assert not account.liquidated  # nothing to liquidate without a position


def test_available_is_the_margin_balance_less_the_positions_initial_margin() -> None:
    position = CrossPosition("BTC/USDT:USDT", "BTC", D(-1), D(60000), D(60000), D(5), FLAT)
    account = UnifiedAccount((Holding("BTC", D(1), D(60000), D("0.95")),), (position,))

    assert account.initial == D(12000)
    assert account.available == D(57000) - D(12000)


def test_holdings_of_skips_what_has_no_price_and_gives_the_quote_ratio_one() -> None:
    held = holdings_of(
        [("BTC", D(1)), ("USDT", D(5)), ("DOGE", D(100)), ("ETH", D(0))],
        {"BTC": D(60000), "ETH": D(3000)},
        {"BTC": D("0.95")},
        "USDT",
    )

    assert held == (Holding("BTC", D(1), D(60000), D("0.95")), Holding("USDT", D(5), D(1), D(1)))


def test_a_leveraged_long_without_collateral_liquidates_below() -> None:
    position = CrossPosition("BTC/USDT:USDT", "BTC", D(1), D(60000), D(60000), D(5), FLAT)
    account = UnifiedAccount((Holding("USDT", D(12000), D(1), D(1)),), (position,))

    prices = account.liquidation_prices("BTC", D(60000))

    assert prices.above is None
    assert prices.below == isolated_liquidation_price_with_margin(D(1), D(60000), D(12000), FLAT)


coins = st.decimals(D("0.01"), D(200), places=3)
prices = st.decimals(D(100), D(200_000), places=2)
ratios = st.decimals(D(0), D(1), places=2)
cash = st.decimals(D(-50_000), D(500_000), places=2)


@given(qty=coins, spot=coins, usdt=cash, entry=prices, mark=prices, ratio=ratios)
def test_the_account_is_exactly_at_maintenance_at_each_liquidation_price_and_safe_between(
    qty: Decimal, spot: Decimal, usdt: Decimal, entry: Decimal, mark: Decimal, ratio: Decimal
) -> None:
    def at(price: Decimal) -> UnifiedAccount:
        return UnifiedAccount(
            (Holding("BTC", spot, price, ratio), Holding("USDT", usdt, D(1), D(1))),
            (short(qty, entry, price, BTC_TIERS),),
        )

    now = at(mark)
    if now.liquidated:
        return
    found = now.liquidation_prices("BTC", mark)
    for root in (found.below, found.above):
        if root is not None:
            edge = at(root)
            assert abs(edge.margin_balance - edge.maintenance) <= D("1e-12") * root * (qty + spot)
    # Between the two (or out to 100x and down to 1/100 where there is none) it is safe.
    low = found.below or mark / 100
    high = found.above or mark * 100
    for step in range(1, 10):
        price = low + (high - low) * step / 10
        assert not at(price).liquidated


@given(qty=coins, entry=prices, mark=prices, ratio=st.decimals(D("0.5"), D(1), places=2))
def test_a_spot_hedged_short_can_only_be_liquidated_by_a_rally(
    qty: Decimal, entry: Decimal, mark: Decimal, ratio: Decimal
) -> None:
    account = hedged(qty, D(0), entry, mark, ratio, BTC_TIERS)
    if account.liquidated:
        return

    assert account.liquidation_prices("BTC", mark).below is None


@pytest.mark.parametrize("ratio", ["0.95", "0.8", "0.5"])
def test_more_collateral_ratio_puts_the_liquidation_further(ratio: str) -> None:
    lower = hedged(D(1), D(0), D(60000), D(60000), D(ratio) - D("0.1"))
    higher = hedged(D(1), D(0), D(60000), D(60000), D(ratio))

    assert (
        higher.liquidation_prices("BTC", D(60000)).above
        > lower.liquidation_prices("BTC", D(60000)).above
    )
