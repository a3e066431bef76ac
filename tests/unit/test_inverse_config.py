"""An inverse (coin-margined) pair in the config: accepted where it can hedge, refused in
one line where it cannot."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from bot.cli.render import at_step
from bot.config import load_settings, paper_start_problems
from tests.unit.test_config import one_line_error, write

INVERSE_PAIR = """
[[pairs]]
name = "BTC-inverse"
spot_symbol = "BTC/USDT"
perp_symbol = "{perp}"
"""


def test_an_inverse_perpetual_hedging_the_spot_coin_is_accepted(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, INVERSE_PAIR.format(perp="BTC/USD:BTC")))
    assert [p.perp_symbol for p in settings.pairs] == ["BTC/USD:BTC"]


def test_a_contract_settled_in_a_third_coin_is_refused(tmp_path: Path) -> None:
    message = one_line_error(write(tmp_path, INVERSE_PAIR.format(perp="BTC/USD:ETH")))
    assert "perp_symbol 'BTC/USD:ETH' settles in ETH, neither its base coin nor its quote" in (
        message
    )
    assert "'BTC/USD:BTC' (inverse, coin-margined)" in message


def test_an_inverse_contract_of_another_coin_is_refused(tmp_path: Path) -> None:
    message = one_line_error(write(tmp_path, INVERSE_PAIR.format(perp="ETH/USD:ETH")))
    assert "does not hedge the base coin of spot_symbol 'BTC/USDT'" in message


def test_a_dated_inverse_future_is_refused(tmp_path: Path) -> None:
    text = INVERSE_PAIR.format(perp="BTC/USD:BTC-261225") + 'strategy = "basis"\n'
    message = one_line_error(write(tmp_path, text))
    assert "is a dated inverse future" in message
    assert "use 'BTC/USD:BTC'" in message


def test_add_margin_on_a_leveraged_inverse_pair_is_refused(tmp_path: Path) -> None:
    text = INVERSE_PAIR.format(perp="BTC/USD:BTC") + 'leverage = "2"\n'
    message = one_line_error(write(tmp_path, text), risk={"on_liquidation_risk": "add_margin"})
    assert "pair BTC-inverse: risk.on_liquidation_risk 'add_margin' adds margin in the quote" in (
        message
    )
    assert "set leverage = 1 (a 1x inverse short cannot be liquidated)" in message
    at_1x = INVERSE_PAIR.format(perp="BTC/USD:BTC") + 'leverage = "1"\n'
    path = write(tmp_path, at_1x + '\n[risk]\non_liquidation_risk = "add_margin"\n')
    assert load_settings(path).pairs[0].leverage == 1


def test_the_inverse_example_config_loads() -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "paper-inverse.toml"
    settings = load_settings(example)
    assert [(p.perp_symbol, p.leverage) for p in settings.pairs] == [("BTC/USD:BTC", 1)]
    assert settings.paper.coin_margin_balances == {"BTC": Decimal("1.001")}


def test_paper_mode_counts_the_coin_margin_wallet_for_an_inverse_pair(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "paper-inverse.toml"
    assert paper_start_problems(load_settings(example)) == []
    text = example.read_text().replace('coin_margin_balances = { BTC = "1.001" }', "")
    problems = paper_start_problems(load_settings(write(tmp_path, text)))
    assert problems == [
        "pair BTC-coin: the paper account holds no BTC, so there is nothing to hedge; add "
        "BTC = <amount> to [paper] balances or coin_margin_balances",
        "pair BTC-coin: the paper account holds no BTC to margin BTC/USD:BTC; add BTC = "
        "<amount> to [paper] coin_margin_balances",
    ]


def test_a_quantity_step_of_an_inverse_market_in_coins_is_shown_to_a_satoshi() -> None:
    # 1 contract of 100 USD at 60,000 is 0.0016666… BTC: 28 places would not fit.
    step = Decimal(100) / Decimal(60000)
    assert at_step(Decimal("1.001"), step) == "1.00100000"
    assert at_step(Decimal("1.001"), Decimal("0.001")) == "1.001"
