"""The venue's funding interval, as the ccxt adapter reads it."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bot.exchange.ccxt_gateway import _interval_hours


@pytest.mark.parametrize(
    ("raw", "hours"),
    [("8h", Decimal(8)), ("4h", Decimal(4)), ("60m", Decimal(1)), (None, None), ("", None)],
)
def test_ccxt_funding_interval_becomes_hours(raw: str | None, hours: Decimal | None) -> None:
    assert _interval_hours(raw) == hours


def test_an_unreadable_or_zero_interval_is_unknown() -> None:
    assert _interval_hours("8 hours") is None
    assert _interval_hours("0h") is None
