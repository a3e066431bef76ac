"""Strategies in the running daemon on the paper venue: the playbook's cases end to end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bot.clock import FakeClock
from bot.config import Settings
from bot.domain.models import Candle
from bot.exchange.candles import bar_start
from bot.exchange.feeds import ManualFeed, PriceFeed, ReplayFeed
from bot.exchange.paper import PaperVenue
from bot.service.daemon import HedgeDaemon
from bot.service.describe import pair_statuses
from bot.store.repository import Repository
from bot.store.tables import DecisionRow
from tests.support import builders

D = Decimal
T0 = datetime(2026, 1, 1, tzinfo=UTC)
PERP = "BTC/USDT:USDT"


def settings(paper: dict[str, Any] | None = None, **pair: Any) -> Settings:
    """10 BTC hedged at 2x (orders from 1 USDT), with ``pair`` and ``paper`` on top."""
    return builders.settings(
        [builders.pair(**{"leverage": "2", "min_notional": "1", **pair})],
        **{"balances": {"BTC": "10", "USDT": "100000"}, **(paper or {})},
    )


class CountingVenue(PaperVenue):
    """The paper venue, counting how often candles are asked for."""

    candle_requests = 0

    async def fetch_ohlcv(
        self, symbol: str, timeframe: str, since: datetime | None = None, limit: int | None = None
    ) -> list[Candle]:
        self.candle_requests += 1
        return await super().fetch_ohlcv(symbol, timeframe, since, limit)


async def open_daemon(
    config: Settings, repository: Repository, clock: FakeClock, feed: PriceFeed
) -> tuple[HedgeDaemon, CountingVenue]:
    """A started daemon on a venue that counts its candle requests."""
    return await builders.open_daemon(config, repository, clock, feed, CountingVenue)


async def cycle(daemon: HedgeDaemon, number: int) -> None:
    report = await daemon.run_cycle(number)
    assert not report.errors, report.errors


async def hedge(venue: PaperVenue) -> Decimal:
    position = (await venue.fetch_positions([PERP])).get(PERP)
    spot = (await venue.fetch_balances())["BTC"].total
    return -(position.qty if position else D(0)) / spot


async def last_inputs(repository: Repository) -> dict[str, Any]:
    async with repository.engine.connect() as conn:
        row = (
            await conn.execute(
                select(DecisionRow.inputs, DecisionRow.reason)
                .order_by(DecisionRow.id.desc())
                .limit(1)
            )
        ).one()
    inputs: dict[str, Any] = row[0]
    inputs["reason"] = row[1]
    return inputs


def replay(tmp_path: Path, prices: list[Decimal], step: timedelta) -> ReplayFeed:
    return replay_rows(tmp_path, [(T0 + i * step, p) for i, p in enumerate(prices)])


def replay_rows(tmp_path: Path, points: list[tuple[datetime, Decimal]]) -> ReplayFeed:
    rows = "\n".join(f"{at.isoformat()},{price}" for at, price in points)
    path = tmp_path / "btc.csv"
    path.write_text(f"timestamp,price\n{rows}\n", encoding="utf-8")
    return ReplayFeed({PERP: path})


# -- trend ------------------------------------------------------------------------------------


async def test_bearish_cross_on_a_falling_path_raises_the_hedge_before_the_fall_ends(
    repository: Repository, clock: FakeClock, tmp_path: Path
) -> None:
    # hourly prices: 6 days up from 100 to 244, then 6 days down to 100 again
    up = [D(100 + h) for h in range(144)]
    down = [D(244 - h) for h in range(1, 145)]
    feed = replay(tmp_path, up + down, timedelta(hours=1))
    clock.advance(140 * 3600)
    config = settings(strategy="trend")  # 10/30 SMA on 4h, bull 0, bear 1
    daemon, venue = await open_daemon(config, repository, clock, feed)

    await cycle(daemon, 1)
    assert await hedge(venue) == 0  # bull: unhedged
    hedged_at: int | None = None
    for number in range(2, 140):  # one cycle an hour through the fall
        clock.advance(3600)
        await cycle(daemon, number)
        if hedged_at is None and await hedge(venue) == 1:
            hedged_at = int((clock.now() - T0) / timedelta(hours=1))
            break
    assert hedged_at is not None, "the trend never hedged"
    low_at = len(up) + len(down) - 1
    assert 144 < hedged_at < low_at
    price = feed.quote(PERP, clock.now()).price
    assert price > D(100) + 40  # the hedge is on while most of the fall is still ahead

    inputs = await last_inputs(repository)
    strategy = inputs["strategy"]
    assert strategy["name"] == "trend"
    assert strategy["regime"] == "bear"
    assert D(strategy["fast_ma"]) < D(strategy["slow_ma"])
    assert strategy["timeframe"] == "4h"
    assert "trend sma 10" in inputs["reason"]
    # candles are fetched once per 4h bar, not once per hourly cycle
    cycles = hedged_at - 140 + 1
    assert venue.candle_requests <= cycles // 4 + 2


async def test_a_forming_candle_that_would_flip_the_cross_changes_nothing(
    repository: Repository, clock: FakeClock, tmp_path: Path
) -> None:
    # 40 closed 1h bars drifting down (bear), then a spike in the forming bar that would put
    # the fast SMA far above the slow one if it counted
    hourly = [(T0 + timedelta(hours=h), D(200) - D(h) / 10) for h in range(40)]
    spike = [(T0 + timedelta(hours=40, minutes=m), D(400)) for m in range(0, 31, 10)]
    feed = replay_rows(tmp_path, hourly + spike)
    clock.advance(40.5 * 3600)  # the 40th bar has been forming for 30 minutes
    config = settings(strategy="trend", trend={"timeframe": "1h"})
    daemon, venue = await open_daemon(config, repository, clock, feed)
    candles = await venue.fetch_ohlcv(PERP, "1h", limit=50)
    assert candles[-1].close == D(400)  # the venue does show the forming spike

    await cycle(daemon, 1)
    strategy = (await last_inputs(repository))["strategy"]
    assert strategy["regime"] == "bear"
    assert await hedge(venue) == 1
    last_closed = datetime.fromisoformat(strategy["last_closed_open_time"])
    assert last_closed + timedelta(hours=1) <= clock.now()
    assert last_closed < bar_start(clock.now(), timedelta(hours=1))


# -- funding carry ----------------------------------------------------------------------------


async def test_funding_carry_hedges_holds_between_thresholds_and_drops_below_exit(
    repository: Repository, clock: FakeClock
) -> None:
    feed = ManualFeed({"BTC": D(6000)}, {"BTC": D("0.0001")})  # 10.95 % a year
    config = settings(
        strategy="funding_carry", funding_carry={"entry_apr": "0.10", "exit_apr": "-0.02"}
    )
    daemon, venue = await open_daemon(config, repository, clock, feed)

    await cycle(daemon, 1)
    assert await hedge(venue) == 1
    strategy = (await last_inputs(repository))["strategy"]
    assert (strategy["regime"], D(strategy["annualized_funding"])) == ("carry", D("0.1095"))

    feed.set_funding_rate("BTC", D("-0.00001"))  # -1.095 %: between exit and entry, hold
    for number in (2, 3):
        clock.advance(10)
        await cycle(daemon, number)
        assert await hedge(venue) == 1

    feed.set_funding_rate("BTC", D("-0.00003"))  # -3.285 %: beyond the exit threshold
    clock.advance(10)
    await cycle(daemon, 4)
    assert await hedge(venue) == 0
    inputs = await last_inputs(repository)
    assert inputs["strategy"]["regime"] == "flat"
    assert "annualized funding -3.28% < exit -2.00%: flat" in inputs["reason"]


async def test_funding_carry_annualizes_with_the_venues_funding_interval(
    repository: Repository, clock: FakeClock
) -> None:
    # 0.005 % a payment: 5.475 % a year every 8 h, 10.95 % every 4 h (entry 10 %)
    feed = ManualFeed({"BTC": D(6000)}, {"BTC": D("0.00005")})
    config = settings(paper={"funding_interval_hours": 4}, strategy="funding_carry")
    daemon, venue = await open_daemon(config, repository, clock, feed)
    await cycle(daemon, 1)
    assert await hedge(venue) == 1
    strategy = (await last_inputs(repository))["strategy"]
    assert (D(strategy["interval_hours"]), D(strategy["annualized_funding"])) == (
        D(4),
        D("0.1095"),
    )


async def test_funding_carry_regime_survives_a_restart(
    repository: Repository, clock: FakeClock
) -> None:
    feed = ManualFeed({"BTC": D(6000)}, {"BTC": D("0.0001")})
    config = settings(strategy="funding_carry")  # entry 10 %, exit 0 %
    daemon, venue = await open_daemon(config, repository, clock, feed)
    await cycle(daemon, 1)
    assert await hedge(venue) == 1

    feed.set_funding_rate("BTC", D("0.00005"))  # 5.475 %: between, so the carry holds
    restarted, venue = await open_daemon(config, repository, clock, feed)
    clock.advance(10)
    await cycle(restarted, 2)
    assert await hedge(venue) == 1
    assert (await last_inputs(repository))["strategy"]["prior_regime"] == "carry"


# -- set-target and outlook -------------------------------------------------------------------


async def test_set_target_takes_effect_on_the_next_cycle_without_a_restart(
    repository: Repository, clock: FakeClock
) -> None:
    feed = ManualFeed({"BTC": D(6000)})
    daemon, venue = await open_daemon(settings(target_ratio="1"), repository, clock, feed)
    await cycle(daemon, 1)
    assert await hedge(venue) == 1

    await repository.set_pair_target("BTC", D("0.4"), None, "target set to ratio 0.4")
    clock.advance(10)
    await cycle(daemon, 2)
    assert await hedge(venue) == D("0.4")
    strategy = (await last_inputs(repository))["strategy"]
    assert (strategy["name"], D(strategy["ratio"]), strategy["set_target"]) == (
        "fixed",
        D("0.4"),
        True,
    )
    events = await repository.audit_events("BTC", "pair.target_set", None, None)
    assert [e.data["ratio"] for e in events] == ["0.4"]
    status = (await pair_statuses(repository))[0]
    assert status.target_ratio == D("0.4")
    assert status.target_text == "0.4 (fixed, set)"

    await repository.set_pair_target("BTC", None, None, "target set to the config's target")
    clock.advance(10)
    await cycle(daemon, 3)
    assert await hedge(venue) == 1
    assert (await last_inputs(repository))["strategy"]["set_target"] is False


async def test_bearish_outlook_without_spot_trades_hedges_all_and_audits_the_skip_once(
    repository: Repository, clock: FakeClock
) -> None:
    feed = ManualFeed({"BTC": D(6000)})
    config = settings(strategy="outlook", outlook={"view": "neutral"})
    daemon, venue = await open_daemon(config, repository, clock, feed)
    await cycle(daemon, 1)
    assert await hedge(venue) == D("0.7")

    clock.advance(5)
    await repository.set_pair_target("BTC", None, "bearish", "target set to outlook bearish")
    assert (await pair_statuses(repository))[0].pending_target == "bearish"
    for number in (2, 3, 4):
        clock.advance(5)
        await cycle(daemon, number)
    assert await hedge(venue) == 1
    assert (await venue.fetch_balances())["BTC"].total == 10  # no spot was sold
    skipped = await repository.audit_events("BTC", "strategy.sell_down_skipped", None, None)
    assert len(skipped) == 1
    assert "sell-down skipped" in skipped[0].summary
    assert (await pair_statuses(repository))[0].target_text == "1 (outlook bearish)"
