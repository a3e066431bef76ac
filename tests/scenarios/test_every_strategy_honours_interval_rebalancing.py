"""Interval rebalancing (``rebalance = "interval"``) is honoured by every strategy, not
only by those whose target depends on the config alone: once the pair reached its target
in an interval it waits for the next, whatever the drift, whether its strategy reads
candles, funding or the basis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from bot.clock import FakeClock
from bot.config import Settings
from bot.domain.strategies.registry import STRATEGIES
from bot.exchange.feeds import ManualFeed
from bot.exchange.paper import PaperVenue
from bot.service.daemon import HedgeDaemon
from bot.store.repository import Repository
from tests.support import builders

D = Decimal
START = datetime(2026, 1, 1, tzinfo=UTC)  # the FakeClock fixture starts here
FUTURE = "BTC/USDT:USDT-260327"

# Per strategy, a pair that hedges (a target above 0) at a flat 50,000 and 0.01 % funding.
PAIRS: dict[str, dict[str, Any]] = {
    "fixed": {"target_ratio": "1"},
    "outlook": {"outlook": {"view": "neutral"}},
    "trend": {"trend": {"bull_ratio": "1", "bear_ratio": "1"}},
    "funding_carry": {"funding_carry": {"entry_apr": "0.05"}},
    "basis": {"perp_symbol": FUTURE, "basis": {"entry_apr": "0.05"}},
}


def config(strategy: str) -> Settings:
    pair = builders.pair(
        strategy=strategy,
        band="0.05",
        leverage="2",
        min_notional="1",
        rebalance="interval",
        rebalance_interval_s=3600,
        **PAIRS[strategy],
    )
    markets = {FUTURE: {"expiry": START + timedelta(days=85), "basis_apr": "0.10"}}
    return builders.settings([pair], balances={"BTC": "1", "USDT": "100000"}, markets=markets)


def short(venue: PaperVenue) -> Decimal:
    held = [p.qty for p in venue.state.positions.values()]
    return -sum(held, D(0))


async def cycle_at(daemon: HedgeDaemon, clock: FakeClock, at: datetime, number: int) -> str:
    clock.advance((at - clock.now()).total_seconds())
    report = await daemon.run_cycle(number)
    assert not report.errors, report.errors
    return report.actions["BTC"]


def test_every_strategy_is_covered() -> None:
    assert set(PAIRS) == set(STRATEGIES)


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
async def test_a_deposit_waits_for_the_next_interval(
    strategy: str, repository: Repository, clock: FakeClock
) -> None:
    feed = ManualFeed({"BTC": D(50000)}, funding_rates={"BTC": D("0.0001")})
    daemon, venue = await builders.open_daemon(config(strategy), repository, clock, feed)
    assert await cycle_at(daemon, clock, START, 1) == "order filled"
    hedged = short(venue)
    assert hedged > 0
    # At the target: this hour's rebalance is done.
    assert await cycle_at(daemon, clock, START + timedelta(seconds=10), 2) == "none"

    venue.state.balances["BTC"] += D("0.5")  # a deposit, far outside the band
    assert await cycle_at(daemon, clock, START + timedelta(minutes=30), 3) == "none"
    assert short(venue) == hedged

    assert await cycle_at(daemon, clock, START + timedelta(hours=1), 4) == "order filled"
    assert short(venue) > hedged


async def test_a_new_target_is_not_held_to_the_interval(
    repository: Repository, clock: FakeClock
) -> None:
    """Funding turning against the carry mid-interval: the strategy's new target (no
    hedge) is followed at once; only the drift of an unchanged target waits."""
    feed = ManualFeed({"BTC": D(50000)}, funding_rates={"BTC": D("0.0001")})
    daemon, venue = await builders.open_daemon(config("funding_carry"), repository, clock, feed)
    assert await cycle_at(daemon, clock, START, 1) == "order filled"
    assert await cycle_at(daemon, clock, START + timedelta(seconds=10), 2) == "none"

    feed.set_funding_rate("BTC", D("-0.0001"))
    assert await cycle_at(daemon, clock, START + timedelta(minutes=30), 3) == "order filled"
    assert short(venue) == 0
