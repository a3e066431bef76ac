"""The matching rule that finds a margin transfer of ours in the venue's history (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.margin_transfers import (
    MarginChange,
    history_is_complete,
    margin_client_id,
    match_transfer,
)

D = Decimal
PERP = "BTC/USDT:USDT"
STORED = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SETTLE = timedelta(seconds=60)


def change(amount: str = "7746.05", seconds: float = 1, **extra: object) -> MarginChange:
    fields: dict[str, object] = {
        "symbol": PERP,
        "amount": D(amount),
        "asset": "USDT",
        "added": True,
        "at": STORED + timedelta(seconds=seconds),
        **extra,
    }
    return MarginChange(**fields)  # type: ignore[arg-type]


def match(*changes: MarginChange, claimed: tuple[datetime, ...] = ()) -> MarginChange | None:
    return match_transfer(PERP, D("7746.05"), STORED, SETTLE, changes, claimed)


def test_the_client_id_is_the_decisions_and_fits_binances_36_characters() -> None:
    decision = "01M8SDZ23ATMDE4EN1VYVH7KFH"
    assert margin_client_id(decision) == margin_client_id(decision) == f"hbm{decision}"
    assert len(margin_client_id(decision)) <= 36
    with pytest.raises(ValueError, match="exceeds 36"):
        margin_client_id("x" * 34)


def test_an_addition_of_the_exact_amount_to_the_symbol_after_the_intent_matches() -> None:
    ours = change()
    assert match(ours) == ours


@pytest.mark.parametrize(
    "other",
    [
        change(amount="7746.06"),  # another amount
        change(symbol="ETH/USDT:USDT"),  # another symbol
        change(added=False),  # margin taken out
        change(seconds=-31),  # before the intent, beyond the clocks' difference
        change(seconds=60 + 31),  # after the venue would have executed it
    ],
)
def test_a_change_that_differs_in_any_respect_is_not_ours(other: MarginChange) -> None:
    assert match(other) is None


def test_a_change_already_matched_to_another_transfer_is_not_matched_again() -> None:
    earlier, later = change(seconds=1), change(seconds=2)
    assert match(earlier, later, claimed=(earlier.at,)) == later
    assert match(earlier, claimed=(earlier.at,)) is None


@given(
    st.lists(st.integers(min_value=-30_000, max_value=90_000), min_size=1, max_size=5),
)
def test_the_earliest_change_inside_the_window_is_the_match(offsets_ms: list[int]) -> None:
    changes = [change(seconds=ms / 1000) for ms in offsets_ms]
    found = match(*changes)
    assert found is not None
    assert found.at == STORED + timedelta(milliseconds=min(offsets_ms))


def test_the_history_is_complete_once_settle_has_passed_since_the_intent() -> None:
    assert not history_is_complete(STORED, SETTLE, STORED + SETTLE - timedelta(seconds=1))
    assert history_is_complete(STORED, SETTLE, STORED + SETTLE)
