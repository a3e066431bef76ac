"""What `hedgebot set-target PAIR VALUE` means for a pair, and its one-line refusals."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest

from bot.config import PairConfig
from bot.service.targets import parse_target_value


def pair(**extra: Any) -> PairConfig:
    return PairConfig(name="BTC", spot_symbol="BTC/USDT", perp_symbol="BTC/USDT:USDT", **extra)


def test_a_ratio_for_a_fixed_pair_and_an_outlook_for_an_outlook_pair() -> None:
    assert parse_target_value(pair(), "0.5") == (Decimal("0.5"), None)
    assert parse_target_value(pair(), " 2 ") == (Decimal(2), None)
    assert parse_target_value(pair(strategy="outlook"), "bearish") == (None, "bearish")


def test_config_drops_the_run_time_target_for_any_strategy() -> None:
    assert parse_target_value(pair(), "config") == (None, None)
    assert parse_target_value(pair(strategy="trend"), "config") == (None, None)


@pytest.mark.parametrize(
    ("extra", "value", "message"),
    [
        ({}, "2.01", "ratio 2.01 is outside 0..2"),
        ({}, "NaN", "ratio NaN is outside 0..2"),
        ({}, "neutral", "uses strategy 'fixed', not 'outlook'"),
        ({"strategy": "outlook"}, "0.3", "give an outlook instead"),
        ({"strategy": "trend"}, "0.3", "uses strategy 'trend', not 'fixed'"),
        ({"strategy": "funding_carry"}, "bearish", "not 'outlook'"),
        ({}, "moon", "neither a ratio (0..2), an outlook"),
    ],
)
def test_values_that_do_not_fit_the_pair_are_refused_in_one_line(
    extra: dict[str, Any], value: str, message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as caught:
        parse_target_value(pair(**extra), value)
    assert "\n" not in str(caught.value)
