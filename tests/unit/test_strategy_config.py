"""Per-pair strategy configuration: each strategy's table, defaults and one-line errors."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from bot.config import PairConfig, load_settings
from bot.config_view import ConfigError

PAIR = """
[[pairs]]
name = "BTC"
spot_symbol = "BTC/USDT"
perp_symbol = "BTC/USDT:USDT"
"""


def load(tmp_path: Path, extra: str) -> PairConfig:
    path = tmp_path / "hedgebot.toml"
    path.write_text(PAIR + extra)
    return load_settings(path).pairs[0]


def error(tmp_path: Path, extra: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, extra)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_a_config_with_only_target_ratio_is_the_fixed_strategy(tmp_path: Path) -> None:
    pair = load(tmp_path, 'target_ratio = "0.5"\n')
    assert pair.strategy == "fixed"
    assert pair.target_ratio == Decimal("0.5")


def test_trend_defaults_are_10_30_sma_on_4h_with_bull_0_and_bear_1(tmp_path: Path) -> None:
    pair = load(tmp_path, 'strategy = "trend"\n')
    trend = pair.trend_params
    assert (trend.fast, trend.slow, trend.ma, trend.timeframe) == (10, 30, "sma", "4h")
    assert (trend.bull_ratio, trend.bear_ratio, trend.max_net_long) == (0, 1, 0)
    assert trend.timeframe_s == 4 * 3600


def test_trend_table_sets_an_ema_on_1h_with_a_capped_net_long(tmp_path: Path) -> None:
    pair = load(
        tmp_path,
        'strategy = "trend"\n[pairs.trend]\nma = "ema"\ntimeframe = "1h"\n'
        'bull_ratio = "-0.2"\nmax_net_long = "0.2"\n',
    )
    trend = pair.trend_params
    assert (trend.ma, trend.timeframe, trend.bull_ratio) == ("ema", "1h", Decimal("-0.2"))


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ('strategy = "trend"\n[pairs.trend]\nfast = 30\nslow = 10\n', "fast 30 must be below"),
        ('strategy = "trend"\n[pairs.trend]\ntimeframe = "7m"\n', "timeframe '7m' is not one"),
        (
            'strategy = "trend"\n[pairs.trend]\nbull_ratio = "-0.1"\n',
            "net long beyond max_net_long 0",
        ),
        ('strategy = "trend"\n[pairs.trend]\nspeed = 3\n', "speed"),
        ("[pairs.trend]\nfast = 5\n", "strategy is 'fixed'"),
        (
            'strategy = "funding_carry"\n[pairs.funding_carry]\nentry_apr = "0.05"\n'
            'exit_apr = "0.1"\n',
            "exit must be at or below entry",
        ),
        ('strategy = "outlook"\n[pairs.outlook]\nview = "euphoric"\n', "euphoric"),
        ('strategy = "momentum"\n', "momentum"),
        ('strategy = "basis"\n', "needs a dated future as perp_symbol"),
        (
            'strategy = "basis"\n[pairs.basis]\nat_expiry = "roll"\n',
            "at_expiry = 'roll' needs roll_to",
        ),
        (
            'strategy = "basis"\n[pairs.basis]\nroll_to = ["BTC/USDT:USDT-270326"]\n',
            "roll_to is given but at_expiry is 'close'",
        ),
        (
            'strategy = "basis"\n[pairs.basis]\nat_expiry = "roll"\nroll_to = ["BTC/USDT:USDT"]\n',
            "is not a dated future",
        ),
        ("allow_spot_trades = 3\n", "allow_spot_trades"),
        ('target_ratio = "2.5"\n', "2.5"),
    ],
)
def test_bad_strategy_settings_are_one_line_errors(
    tmp_path: Path, extra: str, expected: str
) -> None:
    assert expected in error(tmp_path, extra)


def test_funding_carry_and_outlook_tables(tmp_path: Path) -> None:
    carry = load(
        tmp_path,
        'strategy = "funding_carry"\n[pairs.funding_carry]\nentry_apr = "0.08"\n'
        'exit_apr = "-0.02"\nfunding_interval_hours = 4\n',
    )
    params = carry.funding_carry_params
    assert (params.entry_apr, params.exit_apr, params.funding_interval_hours) == (
        Decimal("0.08"),
        Decimal("-0.02"),
        Decimal(4),
    )
    view = load(tmp_path, 'strategy = "outlook"\n[pairs.outlook]\nview = "bearish"\n')
    assert view.outlook_params.view == "bearish"
    assert not view.allow_spot_trades


def test_allow_spot_trades_is_accepted(tmp_path: Path) -> None:
    pair = load(
        tmp_path,
        'strategy = "outlook"\nallow_spot_trades = true\n[pairs.outlook]\nview = "bearish"\n',
    )
    assert pair.allow_spot_trades


DATED = PAIR.replace('"BTC/USDT:USDT"', '"BTC/USDT:USDT-261225"')


def test_basis_on_a_dated_future_with_a_roll_list(tmp_path: Path) -> None:
    path = tmp_path / "hedgebot.toml"
    path.write_text(
        DATED + 'strategy = "basis"\n[pairs.basis]\nentry_apr = "0.08"\nat_expiry = "roll"\n'
        'close_before_s = 7200\nroll_to = ["BTC/USDT:USDT-270326"]\n'
    )
    pair = load_settings(path).pairs[0]
    params = pair.basis_params
    assert (params.entry_apr, params.at_expiry, params.close_before_s) == (
        Decimal("0.08"),
        "roll",
        7200,
    )
    assert pair.contract_symbols == ("BTC/USDT:USDT-261225", "BTC/USDT:USDT-270326")


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ('strategy = "fixed"\n', "only strategy 'basis' trades"),
        (
            'strategy = "basis"\n[pairs.basis]\nat_expiry = "roll"\n'
            'roll_to = ["ETH/USDT:USDT-270326"]\n',
            "must be another BTC dated future",
        ),
    ],
)
def test_dated_future_config_errors_are_one_line(tmp_path: Path, extra: str, expected: str) -> None:
    path = tmp_path / "hedgebot.toml"
    path.write_text(DATED + extra)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert expected in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_paper_dated_future_takes_its_expiry_and_basis_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "hedgebot.toml"
    path.write_text(
        DATED + 'strategy = "basis"\n\n[paper.markets."BTC/USDT:USDT-261225"]\n'
        'expiry = 2026-12-25T08:00:00Z\nbasis_apr = "0.12"\n'
    )
    market = load_settings(path).paper.markets["BTC/USDT:USDT-261225"]
    assert market.expiry is not None
    assert (market.expiry.isoformat(), market.basis_apr) == (
        "2026-12-25T08:00:00+00:00",
        Decimal("0.12"),
    )
