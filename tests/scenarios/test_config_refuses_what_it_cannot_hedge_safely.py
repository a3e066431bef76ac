"""The config refuses what it cannot hedge safely (issue 12 items 1, 5a, 5c): one coin
hedged twice, a leverage whose fresh position opens inside the liquidation guard's
distance, add_margin on cross margin. Each refusal is one line, exit 2 at start."""

from __future__ import annotations

from pathlib import Path

from bot.config import load_settings
from tests.unit.test_config import MINIMAL, one_line_error, write

USDC_PERP_PAIR = """
[[pairs]]
name = "BTC-USDC"
spot_symbol = "BTC/USDC"
perp_symbol = "BTC/USDC:USDC"
"""

BASIS_PAIR = """
[[pairs]]
name = "BTC-basis"
spot_symbol = "BTC/USDT"
perp_symbol = "BTC/USDT:USDT-261225"
strategy = "basis"
"""


def test_two_perp_pairs_hedging_one_coin_on_one_spot_account_are_refused(
    tmp_path: Path,
) -> None:
    # Each would short the whole balance: 1 BTC spot, 2 BTC short, both "hedged".
    message = one_line_error(write(tmp_path, MINIMAL + USDC_PERP_PAIR))
    assert "pairs BTC and BTC-USDC both hedge BTC on account paper" in message
    assert "one coin can be hedged by one pair; remove one" in message


def test_a_perp_pair_and_a_basis_pair_on_one_coin_are_refused(tmp_path: Path) -> None:
    message = one_line_error(write(tmp_path, MINIMAL + BASIS_PAIR))
    assert "pairs BTC and BTC-basis both hedge BTC on account paper" in message


def test_pairs_on_different_spot_accounts_may_hedge_the_same_coin(tmp_path: Path) -> None:
    text = (
        'mode = "testnet"\n'
        + MINIMAL
        + 'spot_account = "a"\nperp_account = "a"\n'
        + USDC_PERP_PAIR
        + 'spot_account = "b"\nperp_account = "b"\n'
        + '\n[accounts.a]\nexchange = "binance"\n[accounts.b]\nexchange = "bybit"\n'
    )
    settings = load_settings(write(tmp_path, text))
    assert [settings.accounts_of(p)[0] for p in settings.pairs] == ["a", "b"]
    same = text.replace('spot_account = "b"', 'spot_account = "a"')
    message = one_line_error(write(tmp_path, same))
    assert "pairs BTC and BTC-USDC both hedge BTC on account a" in message


def test_leverage_whose_liquidation_after_maintenance_margin_is_inside_the_guard_is_refused(
    tmp_path: Path,
) -> None:
    # 1/9 = 0.111 clears 0.11, but the maintenance margin (0.4 %) puts a fresh position's
    # liquidation 0.107 away: inside the guard, closed as soon as it opens.
    path = write(tmp_path, 'mode = "testnet"\n' + MINIMAL + 'leverage = "9"\n')
    path.write_text(path.read_text() + '\n[accounts.main]\nexchange = "binance"\n')
    message = one_line_error(path, risk={"min_liquidation_distance": "0.11"})
    assert "pair BTC: leverage 9 opens positions about 10.7% from liquidation" in message
    assert "(maintenance margin rate 0.004 of risk.maintenance_margin_rate)" in message
    assert "inside risk.min_liquidation_distance 0.11" in message
    assert "lower the leverage or the distance" in message


def test_paper_mode_checks_leverage_with_the_paper_venues_maintenance_tiers(
    tmp_path: Path,
) -> None:
    # The paper venue liquidates BTC with BTCUSDT's tiers: a position of unknown size is
    # taken in the first, 0.4 %: (1 + 1/9) / 1.004 - 1 = 10.67 %.
    path = write(tmp_path, MINIMAL + 'leverage = "9"\n')
    message = one_line_error(path, risk={"min_liquidation_distance": "0.107"})
    assert "about 10.7% from liquidation" in message
    assert "(maintenance margin rate 0.004 of paper.maintenance_tiers.BTC)" in message
    assert load_settings(path, risk={"min_liquidation_distance": "0.106"}).pairs[0].leverage == 9


def test_leverage_is_checked_in_the_tier_of_the_pairs_max_position_notional(
    tmp_path: Path,
) -> None:
    # 5x opens a small short 19.5 % from liquidation; one of 15 M notional is liquidated
    # in the 5 % tier (amount 266300): (1.2 + 266300 / 15 M) / 1.05 - 1 = 16.0 %.
    path = write(tmp_path, MINIMAL + 'leverage = "5"\n')
    assert load_settings(path, risk={"min_liquidation_distance": "0.17"}).pairs[0].leverage == 5
    capped = write(tmp_path, MINIMAL + 'leverage = "5"\nmax_position_notional = "15000000"\n')
    message = one_line_error(capped, risk={"min_liquidation_distance": "0.17"})
    assert "leverage 5 opens positions about 16.0% from liquidation" in message
    assert (
        "(maintenance margin rate 0.05 of paper.maintenance_tiers.BTC for "
        "max_position_notional 15000000)" in message
    )


def test_a_paper_coin_without_tiers_uses_the_paper_maintenance_margin_rate(
    tmp_path: Path,
) -> None:
    text = MINIMAL.replace("BTC", "SOL") + 'leverage = "9"\n'
    message = one_line_error(write(tmp_path, text), risk={"min_liquidation_distance": "0.107"})
    # (1 + 1/9) / 1.005 - 1 = 10.56 %
    assert "about 10.6% from liquidation" in message
    assert "(maintenance margin rate 0.005 of paper.maintenance_margin_rate)" in message


def test_a_paper_maintenance_table_with_a_gap_is_a_one_line_config_error(tmp_path: Path) -> None:
    text = (
        MINIMAL
        + "[[paper.maintenance_tiers.BTC]]\nfloor = 0\ncap = 50000\nrate = 0.004\n"
        + "[[paper.maintenance_tiers.BTC]]\nfloor = 60000\nrate = 0.005\namount = 50\n"
    )
    message = one_line_error(write(tmp_path, text))
    assert "paper.maintenance_tiers.BTC: maintenance tier 2: floor 60000 must be the cap" in (
        message
    )


def test_add_margin_is_refused_when_a_pair_uses_cross_margin(tmp_path: Path) -> None:
    text = (
        MINIMAL
        + 'margin_mode = "cross"\n'
        + MINIMAL.replace('"BTC"', '"ETH"').replace("BTC/", "ETH/")
        + 'margin_mode = "cross"\n'
        + '[paper]\naccount = "cross"\n'
    )
    path = write(tmp_path, text)
    message = one_line_error(path, risk={"on_liquidation_risk": "add_margin"})
    assert "on_liquidation_risk 'add_margin' moves margin into isolated positions only" in message
    assert "pairs BTC, ETH use margin_mode 'cross'" in message
    assert "set margin_mode = 'isolated' or on_liquidation_risk = 'reduce'" in message
    assert load_settings(path).risk.on_liquidation_risk == "reduce"
