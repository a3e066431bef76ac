"""Price feeds of the paper venue: sim walk, CSV replay, manual prices."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from bot.config import PaperConfig, SimFeedConfig
from bot.exchange.feeds import (
    FeedError,
    ManualFeed,
    PriceFeed,
    ReplayFeed,
    SimFeed,
    base_coin,
    feed_from_config,
)
from bot.exchange.gateway import FatalError

D = Decimal
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _path(feed: SimFeed, symbol: str, seconds: list[int]) -> list[Decimal]:
    return [feed.quote(symbol, T0 + timedelta(seconds=s)).price for s in seconds]


def test_base_coin_of_spot_perp_and_plain_coin() -> None:
    assert base_coin("BTC/USDT:USDT") == "BTC"
    assert base_coin("BTC/USDT") == "BTC"
    assert base_coin("BTC") == "BTC"


def test_sim_same_seed_gives_same_path() -> None:
    times = [0, 1, 5, 60, 3600]
    first = _path(SimFeed(SimFeedConfig(), seed=7), "BTC/USDT:USDT", times)
    second = _path(SimFeed(SimFeedConfig(), seed=7), "BTC/USDT:USDT", times)
    assert first == second
    assert len(set(first)) > 1  # it does move


def test_sim_path_depends_on_step_index_not_on_how_often_it_is_asked() -> None:
    often = SimFeed(SimFeedConfig(), seed=7)
    for s in range(0, 301, 10):
        often.quote("ETH/USDT", T0 + timedelta(seconds=s))
    rarely = SimFeed(SimFeedConfig(), seed=7)
    rarely.quote("ETH/USDT", T0)
    now = T0 + timedelta(seconds=300)
    assert often.quote("ETH/USDT", now) == rarely.quote("ETH/USDT", now)


def test_sim_different_seed_gives_different_path() -> None:
    times = [0, 60, 600]
    assert _path(SimFeed(SimFeedConfig(), seed=1), "BTC/USDT", times) != _path(
        SimFeed(SimFeedConfig(), seed=2), "BTC/USDT", times
    )


def test_sim_starts_at_configured_price_else_default() -> None:
    config = SimFeedConfig(initial_prices={"BTC": D(50000)}, default_initial_price=D(7))
    feed = SimFeed(config, seed=1)
    assert feed.quote("BTC/USDT:USDT", T0).price == D(50000)
    assert feed.quote("DOGE/USDT", T0).price == D(7)
    assert feed.quote("BTC/USDT:USDT", T0).funding_rate == config.initial_funding_rate


def test_sim_restored_state_continues_the_same_path() -> None:
    reference = SimFeed(SimFeedConfig(), seed=11)
    reference.quote("BTC/USDT:USDT", T0)
    reference.quote("BTC/USDT:USDT", T0 + timedelta(seconds=100))
    saved = json.loads(json.dumps(reference.state()))  # survives JSON
    later = T0 + timedelta(seconds=250)
    expected = reference.quote("BTC/USDT:USDT", later)

    restored = SimFeed(SimFeedConfig(), seed=11)
    restored.restore(saved)
    assert restored.quote("BTC/USDT:USDT", later) == expected


def test_sim_spot_and_perp_of_one_coin_share_the_price() -> None:
    feed = SimFeed(SimFeedConfig(), seed=3)
    feed.quote("BTC/USDT", T0)
    later = T0 + timedelta(seconds=500)
    assert feed.quote("BTC/USDT:USDT", later).price == feed.quote("BTC/USDT", later).price


def test_sim_prices_are_decimals_with_at_most_8_significant_digits() -> None:
    feed = SimFeed(SimFeedConfig(), seed=5)
    feed.quote("BTC/USDT", T0)
    price = feed.quote("BTC/USDT", T0 + timedelta(seconds=1000)).price
    assert isinstance(price, Decimal)
    assert len(price.as_tuple().digits) <= 8
    assert price > 0


def test_sim_funding_rate_stays_within_the_clamp() -> None:
    config = SimFeedConfig(funding_drift=D("0.01"), step_seconds=D(1))
    feed = SimFeed(config, seed=9)
    feed.quote("ETH/USDT:USDT", T0)
    rates = [
        feed.quote("ETH/USDT:USDT", T0 + timedelta(seconds=s)).funding_rate
        for s in range(1, 2000, 7)
    ]
    assert all(D("-0.003") <= r <= D("0.003") for r in rates)
    assert len(set(rates)) > 1


def test_sim_caps_steps_per_call_after_a_long_outage() -> None:
    feed = SimFeed(SimFeedConfig(step_seconds=D(1)), seed=1, max_steps_per_call=50)
    feed.quote("BTC/USDT", T0)
    quote = feed.quote("BTC/USDT", T0 + timedelta(days=3))
    assert feed.state()["coins"]["BTC"]["step"] == 50
    # Time is consumed all the same: the walk resumes from now, not from three days ago.
    assert quote.timestamp == T0 + timedelta(days=3)


def test_sim_does_not_step_before_step_seconds_have_passed() -> None:
    feed = SimFeed(SimFeedConfig(step_seconds=D(60)), seed=1)
    start = feed.quote("BTC/USDT", T0)
    assert feed.quote("BTC/USDT", T0 + timedelta(seconds=59)) == start
    assert feed.quote("BTC/USDT", T0 + timedelta(seconds=60)).timestamp == T0 + timedelta(
        seconds=60
    )


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_replay_returns_the_row_at_or_before_now(tmp_path: Path) -> None:
    csv = _write(
        tmp_path / "btc.csv",
        "timestamp,price,funding_rate\n"
        "2026-01-01T00:00:00Z,60000,0.0001\n"
        "2026-01-01T00:01:00Z,60100.5,0.0002\n"
        "2026-01-01T00:02:00Z,59900,-0.0001\n",
    )
    feed = ReplayFeed({"BTC/USDT:USDT": csv})
    at_row = feed.quote("BTC/USDT:USDT", T0 + timedelta(minutes=1))
    assert at_row.price == D("60100.5")
    assert at_row.funding_rate == D("0.0002")
    between = feed.quote("BTC/USDT:USDT", T0 + timedelta(seconds=119))
    assert between.price == D("60100.5")
    assert between.timestamp == T0 + timedelta(minutes=1)
    assert feed.quote("BTC/USDT:USDT", T0 + timedelta(days=1)).price == D(59900)


def test_replay_before_the_first_row_gives_the_first_row(tmp_path: Path) -> None:
    csv = _write(tmp_path / "eth.csv", "timestamp,price\n1767225600,3000\n1767225660,3010\n")
    feed = ReplayFeed({"ETH/USDT": csv})
    quote = feed.quote("ETH/USDT", T0 - timedelta(hours=1))
    assert quote.price == D(3000)
    assert quote.funding_rate == D(0)


def test_replay_reads_epoch_milliseconds(tmp_path: Path) -> None:
    csv = _write(tmp_path / "eth.csv", "timestamp,price\n1767225600000,3000\n1767225660000,3010\n")
    feed = ReplayFeed({"ETH/USDT": csv})
    assert feed.quote("ETH/USDT", T0 + timedelta(minutes=1)).price == D(3010)


def test_replay_spot_symbol_uses_the_perp_file_and_vice_versa(tmp_path: Path) -> None:
    btc = _write(tmp_path / "btc.csv", "timestamp,price\n2026-01-01T00:00:00+00:00,60000\n")
    eth = _write(tmp_path / "eth.csv", "timestamp,price\n2026-01-01T00:00:00+00:00,3000\n")
    feed = ReplayFeed({"BTC/USDT:USDT": btc, "ETH/USDT": eth})
    assert feed.quote("BTC/USDT", T0).price == feed.quote("BTC/USDT:USDT", T0).price == D(60000)
    assert feed.quote("ETH/USDT:USDT", T0).price == D(3000)


def test_replay_rejects_a_bad_price_with_file_and_line(tmp_path: Path) -> None:
    csv = _write(
        tmp_path / "btc.csv",
        "timestamp,price\n2026-01-01T00:00:00Z,60000\n2026-01-01T00:01:00Z,sixty\n",
    )
    with pytest.raises(FeedError, match=r"btc\.csv:3: price 'sixty' is not a decimal number"):
        ReplayFeed({"BTC/USDT": csv})


def test_replay_rejects_a_bad_timestamp_with_file_and_line(tmp_path: Path) -> None:
    csv = _write(tmp_path / "btc.csv", "timestamp,price\nyesterday,60000\n")
    with pytest.raises(FeedError, match=r"btc\.csv:2: timestamp 'yesterday'"):
        ReplayFeed({"BTC/USDT": csv})


def test_replay_rejects_rows_out_of_order(tmp_path: Path) -> None:
    csv = _write(
        tmp_path / "btc.csv",
        "timestamp,price\n2026-01-01T00:01:00Z,60000\n2026-01-01T00:00:00Z,60000\n",
    )
    with pytest.raises(FeedError, match=r"btc\.csv:3: .* not after the previous row"):
        ReplayFeed({"BTC/USDT": csv})


def test_replay_rejects_a_wrong_header_and_a_non_positive_price(tmp_path: Path) -> None:
    header = _write(tmp_path / "a.csv", "time,close\n2026-01-01T00:00:00Z,1\n")
    with pytest.raises(FeedError, match=r"a\.csv:1: header must be"):
        ReplayFeed({"BTC/USDT": header})
    zero = _write(tmp_path / "b.csv", "timestamp,price\n2026-01-01T00:00:00Z,0\n")
    with pytest.raises(FeedError, match=r"b\.csv:2: price '0' must be positive"):
        ReplayFeed({"BTC/USDT": zero})


def test_replay_unknown_symbol_is_a_fatal_feed_error(tmp_path: Path) -> None:
    csv = _write(tmp_path / "btc.csv", "timestamp,price\n2026-01-01T00:00:00Z,60000\n")
    feed = ReplayFeed({"BTC/USDT": csv})
    with pytest.raises(FatalError, match="no file for 'ETH/USDT'"):
        feed.quote("ETH/USDT", T0)


def test_manual_feed_prices_a_coin_for_spot_and_perp() -> None:
    feed = ManualFeed({"BTC": D(60000)})
    feed.set_price("ETH/USDT:USDT", D(3000))
    feed.set_funding_rate("ETH", D("0.0002"))
    assert feed.quote("BTC/USDT", T0).price == feed.quote("BTC/USDT:USDT", T0).price
    assert feed.quote("ETH/USDT", T0) == feed.quote("ETH/USDT:USDT", T0)
    assert feed.quote("ETH/USDT", T0).funding_rate == D("0.0002")
    assert feed.quote("BTC/USDT", T0).funding_rate == D(0)


def test_manual_feed_without_a_price_raises_feed_error() -> None:
    with pytest.raises(FeedError, match="no price for 'SOL/USDT'"):
        ManualFeed().quote("SOL/USDT", T0)


def test_every_feed_satisfies_the_price_feed_protocol(tmp_path: Path) -> None:
    csv = _write(tmp_path / "btc.csv", "timestamp,price\n2026-01-01T00:00:00Z,60000\n")
    feeds: list[PriceFeed] = [SimFeed(SimFeedConfig(), 1), ReplayFeed({"BTC": csv}), ManualFeed()]
    for feed in feeds:
        assert isinstance(feed, PriceFeed)
        json.dumps(feed.state())


def test_feed_from_config_builds_sim_or_replay(tmp_path: Path) -> None:
    assert isinstance(feed_from_config(PaperConfig()), SimFeed)
    csv = _write(tmp_path / "btc.csv", "timestamp,price\n2026-01-01T00:00:00Z,60000\n")
    config = PaperConfig(feed="replay", replay_files={"BTC/USDT:USDT": csv})
    assert isinstance(feed_from_config(config), ReplayFeed)
