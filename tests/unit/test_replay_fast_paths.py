"""The replay feed's shortcuts give what the plain parse and search give."""

from __future__ import annotations

import bisect
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.exchange.feeds import FeedError, ReplayFeed, row_at

START = datetime(2026, 1, 1, tzinfo=UTC)


def test_evenly_spaced_epoch_rows_read_as_the_same_times_as_iso_rows(tmp_path: Path) -> None:
    epochs = tmp_path / "epochs.csv"
    iso = tmp_path / "iso.csv"
    gaps = [0, 60, 120, 180, 600, 660, 720]  # two runs of even gaps, broken once
    first = int(START.timestamp())
    epochs.write_text(
        "timestamp,price\n" + "".join(f"{first + g},{100 + i}\n" for i, g in enumerate(gaps))
    )
    iso.write_text(
        "timestamp,price\n"
        + "".join(
            f"{(START + timedelta(seconds=g)).isoformat()},{100 + i}\n" for i, g in enumerate(gaps)
        )
    )

    assert ReplayFeed({"A": epochs}).series("A") == ReplayFeed({"A": iso}).series("A")


def test_a_repeated_epoch_after_even_gaps_is_still_refused(tmp_path: Path) -> None:
    first = int(START.timestamp())
    path = tmp_path / "dup.csv"
    path.write_text(
        f"timestamp,price\n{first},1\n{first + 60},2\n{first + 120},3\n{first + 120},4\n"
    )

    with pytest.raises(FeedError, match=r"dup.csv:5: timestamp .* is not after"):
        ReplayFeed({"A": path})


@given(
    gaps=st.lists(st.integers(min_value=1, max_value=100), min_size=1, max_size=30),
    probes=st.lists(st.integers(min_value=-50, max_value=3500), min_size=1, max_size=40),
    hint=st.integers(min_value=-1, max_value=40),
)
def test_row_at_finds_the_row_a_binary_search_finds(
    gaps: list[int], probes: list[int], hint: int
) -> None:
    times = []
    at = START
    for gap in gaps:
        at += timedelta(seconds=gap)
        times.append(at)
    for probe in probes:
        now = START + timedelta(seconds=probe)
        expected = max(0, bisect.bisect_right(times, now) - 1)
        found = row_at(times, now, hint)
        assert found == expected
        hint = found
