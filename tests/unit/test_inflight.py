"""Fills the position view has not caught up with still count toward the hedge."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from bot.domain.inflight import RecentFill, unreflected_qty

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SETTLE = timedelta(seconds=30)
D = Decimal


def fill(delta: str, at_s: float, before: str | None = "0") -> RecentFill:
    return RecentFill(D(delta), T0 + timedelta(seconds=at_s), None if before is None else D(before))


def test_fill_after_the_position_update_time_is_added() -> None:
    extra = unreflected_qty(D(0), T0, [fill("-1", 5)], T0 + timedelta(seconds=6), SETTLE)
    assert extra == D(-1)


def test_fill_before_the_position_update_time_is_already_included() -> None:
    updated = T0 + timedelta(seconds=10)
    extra = unreflected_qty(D(-1), updated, [fill("-1", 5)], T0 + timedelta(seconds=11), SETTLE)
    assert extra == 0


def test_fill_older_than_the_settle_time_counts_as_included() -> None:
    extra = unreflected_qty(D(0), T0, [fill("-1", 5)], T0 + timedelta(seconds=40), SETTLE)
    assert extra == 0


def test_without_timestamps_a_view_equal_to_the_position_before_the_fill_is_stale() -> None:
    fills = [fill("-1", 1, before="0"), fill("-0.5", 2, before="-1")]
    now = T0 + timedelta(seconds=3)
    assert unreflected_qty(D(0), None, fills, now, SETTLE) == D("-1.5")
    assert unreflected_qty(D(-1), None, fills, now, SETTLE) == D("-0.5")
    assert unreflected_qty(D("-1.5"), None, fills, now, SETTLE) == 0


@given(
    deltas=st.lists(st.integers(min_value=-5000, max_value=5000), min_size=1, max_size=6),
    lag_s=st.integers(min_value=0, max_value=40),
)
def test_effective_position_equals_the_true_one_while_the_view_lags(
    deltas: list[int], lag_s: int
) -> None:
    # Fills one second apart; the venue's view shows each fill lag_s seconds later.
    fills = []
    position = D(0)
    for i, delta in enumerate(deltas):
        fills.append(fill(str(D(delta) / 1000), i, before=str(position)))
        position += D(delta) / 1000
    now = T0 + timedelta(seconds=len(deltas))
    shown = [f for f in fills if f.filled_at + timedelta(seconds=lag_s) <= now]
    view_qty = sum((f.delta_qty for f in shown), D(0))
    view_time = shown[-1].filled_at if shown else T0 - timedelta(seconds=1)
    effective = view_qty + unreflected_qty(view_qty, view_time, fills, now, SETTLE)
    assert effective == position
