"""Candles of the paper venue, cut from its feed's price path."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from bot.clock import FakeClock
from bot.config import PaperConfig, SimFeedConfig
from bot.domain.paper_account import InMemoryPaperAccountStore
from bot.exchange.candles import bar_start, candles_from_path
from bot.exchange.feeds import ReplayFeed, SimFeed
from bot.exchange.paper import PaperVenue

D = Decimal
T0 = datetime(2026, 1, 1, tzinfo=UTC)
H4 = timedelta(hours=4)
PERP = "BTC/USDT:USDT"


def test_bars_are_aligned_to_the_epoch() -> None:
    assert bar_start(T0 + timedelta(hours=5, minutes=7), H4) == T0 + H4
    assert bar_start(T0, H4) == T0


def test_bars_join_up_and_gaps_are_flat_at_the_last_price() -> None:
    points = [
        (T0 + timedelta(hours=1), D(100)),
        (T0 + timedelta(hours=2), D(110)),
        (T0 + timedelta(hours=3), D(90)),
        (T0 + timedelta(hours=13), D(120)),  # nothing in the 4h-8h and 8h-12h bars
    ]
    bars = candles_from_path(points, H4, T0, T0 + timedelta(hours=13), limit=10)
    assert [(b.opened_at - T0, b.open, b.high, b.low, b.close) for b in bars] == [
        (timedelta(0), D(100), D(110), D(90), D(90)),
        (H4, D(90), D(90), D(90), D(90)),
        (2 * H4, D(90), D(90), D(90), D(90)),
        (3 * H4, D(90), D(120), D(90), D(120)),  # opens at the previous close
    ]


def test_bars_before_the_path_starts_are_left_out_and_limit_applies() -> None:
    points = [(T0 + 2 * H4, D(100))]
    assert [b.opened_at for b in candles_from_path(points, H4, T0, T0 + 5 * H4, 10)] == [
        T0 + 2 * H4 + i * H4 for i in range(4)
    ]
    assert len(candles_from_path(points, H4, T0, T0 + 5 * H4, 2)) == 2


def _replay(tmp_path: Path, hours: int) -> Path:
    rows = "\n".join(f"{(T0 + timedelta(hours=h)).isoformat()},{100 + h}" for h in range(hours))
    path = tmp_path / "btc.csv"
    path.write_text(f"timestamp,price\n{rows}\n", encoding="utf-8")
    return path


async def test_paper_venue_cuts_4h_candles_from_a_replay_with_the_forming_one_last(
    tmp_path: Path,
) -> None:
    clock = FakeClock(T0 + timedelta(hours=9, minutes=30))
    feed = ReplayFeed({PERP: _replay(tmp_path, 24)})
    venue = await PaperVenue.open(PaperConfig(), feed, clock, InMemoryPaperAccountStore())
    bars = await venue.fetch_ohlcv(PERP, "4h", limit=3)
    # bars at 00:00 and 04:00 are closed; 08:00 is forming (rows at 08:00 and 09:00 so far)
    assert [(b.opened_at - T0, b.open, b.high, b.low, b.close) for b in bars] == [
        (timedelta(0), D(100), D(103), D(100), D(103)),
        (H4, D(103), D(107), D(103), D(107)),
        (2 * H4, D(107), D(109), D(107), D(109)),
    ]


async def test_paper_venue_candles_from_the_sim_walk_match_its_quotes() -> None:
    clock = FakeClock(T0)
    feed = SimFeed(SimFeedConfig(volatility=D("0.01")), seed=7)
    venue = await PaperVenue.open(PaperConfig(), feed, clock, InMemoryPaperAccountStore())
    await venue.fetch_tickers([PERP])
    clock.advance(3 * 3600)
    bars = await venue.fetch_ohlcv(PERP, "1h", since=T0, limit=10)
    price = (await venue.fetch_tickers([PERP]))[PERP].last
    assert [b.opened_at for b in bars] == [T0 + timedelta(hours=h) for h in range(4)]
    assert bars[-1].close == price
    assert len({b.close for b in bars}) > 1  # the walk moved
