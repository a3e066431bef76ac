"""The coins an inverse pair hedges on a unified account (Bybit): the spot wallet and the
wallet that margins the inverse short are one, so its coins are counted once."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from bot.domain.inverse import hedged_coins
from bot.domain.models import Balance
from tests.unit.test_inverse_hedge import BTCUSD  # 100 USD contracts: the count is in coins

D = Decimal
coins = st.decimals(min_value=0, max_value=100, places=8)
pnl = st.decimals(min_value=-50, max_value=50, places=8)


@given(wallet=coins, unrealized=pnl)
def test_a_unified_wallet_counts_its_coins_once_plus_the_inverse_pnl(
    wallet: Decimal, unrealized: Decimal
) -> None:
    # Bybit: the spot read and the margin read are the same BTC row of one wallet.
    row = Balance("BTC", free=wallet, total=wallet, equity=wallet + unrealized)
    assert hedged_coins(BTCUSD, wallet, row, one_wallet=True) == wallet + unrealized


@given(spot=coins, margin=coins, unrealized=pnl)
def test_separate_wallets_count_the_spot_and_the_coin_margin_wallet(
    spot: Decimal, margin: Decimal, unrealized: Decimal
) -> None:
    # Binance COIN-M / paper: the coin-margin wallet is apart from the spot wallet.
    row = Balance("BTC", free=margin, total=margin, equity=margin + unrealized)
    assert hedged_coins(BTCUSD, spot, row) == spot + margin + unrealized


def test_one_btc_on_a_unified_account_is_one_btc_not_two() -> None:
    row = Balance("BTC", free=D("0.2"), total=D(1), equity=D(1))
    assert hedged_coins(BTCUSD, D(1), row, one_wallet=True) == D(1)
    assert hedged_coins(BTCUSD, D(1), row) == D(2)  # what the count was before
