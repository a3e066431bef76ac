"""The risk guards on a paper daemon: liquidation guard, pauses, auto-pause, caps, liquidity."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from bot.clock import FakeClock
from bot.config import Settings
from bot.domain.models import OrderRequest, OrderResult
from bot.exchange.feeds import ManualFeed, ReplayFeed
from bot.exchange.gateway import OrderRejectedError
from bot.exchange.paper import PaperVenue
from bot.service.daemon import HedgeDaemon
from bot.service.describe import pair_statuses
from bot.store.repository import Repository
from tests.support import builders
from tests.support.builders import open_daemon

D = Decimal
START = datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC)  # between funding times
PERP = "BTC/USDT:USDT"
# A 1 BTC 5x short opened at 60000 (12000 margin), by Binance's formula with BTCUSDT's tiers.
LIQUIDATION = (D(12000) + 50 + 60000) / D("1.005")


def settings(pair: dict[str, Any], risk: dict[str, Any] | None = None, **paper: Any) -> Settings:
    """One BTC pair (the shared builder's, with ``pair`` on top) under ``risk``."""
    return builders.settings([builders.pair(**pair)], risk, **paper)


def rising_path(tmp_path: Path, start: Decimal, rise: Decimal, steps: int) -> Path:
    """A replay file rising linearly by ``rise`` (a fraction) over ``steps`` rows 10 s apart."""
    path = tmp_path / "btc.csv"
    rows = ["timestamp,price"]
    for i in range(steps + 1):
        at = START + timedelta(seconds=10 * i)
        rows.append(f"{at.isoformat()},{start * (1 + rise * i / steps)}")
    path.write_text("\n".join(rows) + "\n")
    return path


async def run_path(daemon: HedgeDaemon, clock: FakeClock, cycles: int) -> None:
    for cycle in range(1, cycles + 1):
        report = await daemon.run_cycle(cycle)
        assert not report.errors, report.errors
        clock.advance(10)


async def test_liquidation_guard_closes_a_5x_short_before_the_venue_liquidates_it_on_a_25pc_rise(
    repository: Repository, tmp_path: Path
) -> None:
    clock = FakeClock(START)
    feed = ReplayFeed({PERP: rising_path(tmp_path, D(60000), D("0.25"), 25)})
    # 13000 USDT of margin for a 60000 hedge: the lowest leverage that covers it is 5x.
    config = settings({}, balances={"BTC": "1", "USDT": "13000"})
    daemon, venue = await open_daemon(config, repository, clock, feed)
    await run_path(daemon, clock, 26)

    assert venue.liquidations() == []
    guards = [
        e
        for e in await repository.audit_events(kind="decision")
        if e.summary.startswith("liquidation guard")
    ]
    assert guards
    first = guards[0]
    # The short opened at 60000 and 5x holds 12000; Binance's formula in BTCUSDT's second
    # tier (0.5 %, amount 50) liquidates it at (12000 + 50 + 60000) / 1.005 = 71691.54; the
    # guard (distance 0.1) acts at the first mark above 71691.54 / 1.1 = 65174.1: 65400.
    observed = first.data["inputs"]["observation"]
    # Stored JSON keeps 12 places.
    assert D(observed["liquidation_price"]) == round(LIQUIDATION, 12)
    assert D(observed["price"]) == D(65400)
    closing = [o for o in await repository.orders() if o.reduce_only]
    assert closing[0].status == "filled"
    assert closing[0].average_price == D(65400)
    assert closing[0].amount == D(1)


async def test_without_the_guard_the_same_path_liquidates_the_5x_short(
    repository: Repository, tmp_path: Path
) -> None:
    clock = FakeClock(START)
    feed = ReplayFeed({PERP: rising_path(tmp_path, D(60000), D("0.25"), 25)})
    config = settings(
        {}, risk={"min_liquidation_distance": "0.001"}, balances={"BTC": "1", "USDT": "13000"}
    )
    daemon, venue = await open_daemon(config, repository, clock, feed)
    for cycle in range(1, 27):
        await daemon.run_cycle(cycle)
        clock.advance(10)
    [liquidation] = venue.liquidations()
    assert liquidation.average_price == LIQUIDATION


async def test_add_margin_guard_moves_the_liquidation_price_then_reduces_when_funds_run_out(
    repository: Repository, tmp_path: Path
) -> None:
    clock = FakeClock(START)
    feed = ReplayFeed({PERP: rising_path(tmp_path, D(60000), D("0.25"), 25)})
    config = settings(
        {}, risk={"on_liquidation_risk": "add_margin"}, balances={"BTC": "1", "USDT": "16000"}
    )
    daemon, venue = await open_daemon(config, repository, clock, feed)
    await run_path(daemon, clock, 26)

    assert venue.liquidations() == []
    [added] = await repository.audit_events(kind="margin.done")
    # At 65400 the target is 65400 x 1.15 = 75210: on 1 BTC in the same tier the margin
    # that moves the liquidation price there is (75210 - 71691.54) x 1.005 = 3536.05 USDT.
    assert added.data["amount"] == "3536.05"
    # Later about 3470 more would be needed with about 430 free: the guard closes the short.
    closing = [o for o in await repository.orders() if o.reduce_only]
    assert closing
    assert closing[0].status == "filled"
    decisions = await repository.audit_events(kind="decision")
    assert any("is not possible" in e.summary for e in decisions)


async def test_pause_holds_orders_across_a_restart_until_resumed(
    repository: Repository, clock: FakeClock
) -> None:
    feed = ManualFeed({"BTC": D(60000)})
    config = settings({})
    daemon, venue = await open_daemon(config, repository, clock, feed)
    assert await repository.set_pair_paused("BTC", True, "maintenance")
    await daemon.run_cycle(1)
    [denied] = await repository.audit_events(kind="risk.denied")
    assert "paused by the user: maintenance" in denied.summary
    assert await repository.orders() == []
    await venue.close()

    # A new daemon on the same database still sees the pause.
    clock.advance(10)
    daemon2, _venue2 = await open_daemon(config, repository, clock, feed)
    await daemon2.run_cycle(2)
    assert await repository.orders() == []
    [status] = await pair_statuses(repository)
    assert status.paused == "paused by the user: maintenance"
    assert status.health == status.paused

    assert await repository.set_pair_paused("BTC", False, "done")
    clock.advance(10)
    await daemon2.run_cycle(3)
    [order] = await repository.orders()
    assert order.status == "filled"
    kinds = [e.kind for e in await repository.audit_events(kind="pair")]
    assert kinds == ["pair.paused", "pair.resumed"]


async def test_pausing_every_pair_holds_each_and_resuming_all_releases_them(
    repository: Repository, clock: FakeClock
) -> None:
    feed = ManualFeed({"BTC": D(60000)})
    daemon, _venue = await open_daemon(settings({}), repository, clock, feed)
    await repository.set_pair_paused("*", True, "weekend")
    await daemon.run_cycle(1)
    assert await repository.orders() == []
    # Resuming the one pair leaves the pause of every pair in force.
    assert not await repository.set_pair_paused("BTC", False, "try")
    await repository.set_pair_paused("*", False, "monday")
    clock.advance(10)
    await daemon.run_cycle(2)
    assert len(await repository.orders()) == 1


class RejectingVenue(PaperVenue):
    """A paper venue that refuses every order, as an exchange in maintenance would."""

    async def create_order(self, request: OrderRequest) -> OrderResult:
        raise OrderRejectedError("-1013: the venue refuses orders")


async def test_three_rejected_orders_in_a_row_pause_the_pair_with_the_reason(
    repository: Repository, clock: FakeClock
) -> None:
    feed = ManualFeed({"BTC": D(60000)})
    daemon, _venue = await open_daemon(settings({}), repository, clock, feed, RejectingVenue)
    for cycle in range(1, 6):
        await daemon.run_cycle(cycle)
        clock.advance(10)
    orders = await repository.orders()
    assert [o.status for o in orders] == ["rejected"] * 3  # nothing sent after the pause
    [paused] = await repository.audit_events(kind="pair.paused")
    assert paused.pair == "BTC"
    assert paused.data["source"] == "auto"
    assert "3 consecutive orders rejected or failed" in paused.summary
    assert "the venue refuses orders" in paused.summary
    [status] = await pair_statuses(repository)
    assert status.paused is not None
    assert status.paused.startswith("paused automatically: 3 consecutive orders")


async def test_a_fill_resets_the_failure_count(repository: Repository, clock: FakeClock) -> None:
    class FlakyVenue(PaperVenue):
        calls = 0

        async def create_order(self, request: OrderRequest) -> OrderResult:
            FlakyVenue.calls += 1
            if FlakyVenue.calls % 3 == 0:
                return await super().create_order(request)
            raise OrderRejectedError("busy")

    feed = ManualFeed({"BTC": D(60000)})
    config = settings({"max_order_notional": "6000"})
    daemon, _venue = await open_daemon(config, repository, clock, feed, FlakyVenue)
    for cycle in range(1, 10):
        await daemon.run_cycle(cycle)
        clock.advance(10)
    assert await repository.audit_events(kind="pair.paused") == []
    statuses = [o.status for o in await repository.orders()]
    assert statuses.count("filled") == 3


async def test_daily_notional_cap_denies_the_order_that_would_exceed_it(
    repository: Repository, clock: FakeClock
) -> None:
    feed = ManualFeed({"BTC": D(60000)})
    config = settings({"max_order_notional": "30000", "max_daily_notional": "50000"})
    daemon, _venue = await open_daemon(config, repository, clock, feed)
    for cycle in range(1, 4):
        await daemon.run_cycle(cycle)
        clock.advance(10)
    [order] = await repository.orders()
    assert order.amount == D("0.5")
    denied = await repository.audit_events(kind="risk.denied")
    assert "traded today 30000.00 + order 30000.00 > max_daily_notional 50000" in (
        denied[0].summary
    )
    # The next UTC day starts a new count.
    clock.advance(86400)
    await daemon.run_cycle(4)
    assert len(await repository.orders()) == 2


async def test_thin_book_sends_the_part_that_fits_and_the_rest_later(
    repository: Repository, clock: FakeClock
) -> None:
    feed = ManualFeed({"BTC": D(60000)})
    # Levels 1 bp apart, 6000 USDT each: 1 BTC walks 10 levels, about 4.5 bp on average.
    config = settings({"max_slippage_bps": "2"}, book_level_notional="6000")
    daemon, _venue = await open_daemon(config, repository, clock, feed)
    await daemon.run_cycle(1)
    [decision] = await repository.audit_events(kind="decision")
    liquidity = decision.data["inputs"]["liquidity"]
    assert liquidity["action"] == "split"
    assert "sending" in decision.summary
    assert "the rest in later cycles" in decision.summary
    [first] = await repository.orders()
    # Average within 2 bp: the first 5 levels (0.5 BTC, average 2 bp) make it.
    assert first.amount == D("0.5")
    for cycle in range(2, 5):
        clock.advance(10)
        await daemon.run_cycle(cycle)
    assert sum(o.filled for o in await repository.orders()) == D(1)


async def test_thin_book_with_wait_sends_nothing_and_says_why(
    repository: Repository, clock: FakeClock
) -> None:
    feed = ManualFeed({"BTC": D(60000)})
    config = settings({"max_slippage_bps": "2", "on_thin_book": "wait"}, book_level_notional="6000")
    daemon, _venue = await open_daemon(config, repository, clock, feed)
    report = await daemon.run_cycle(1)
    assert report.actions["BTC"] == "liquidity_wait"
    assert await repository.orders() == []
    [decision] = await repository.audit_events(kind="decision")
    assert decision.data["inputs"]["liquidity"]["action"] == "wait"
    assert "waiting for a deeper book" in decision.summary
    [status] = await pair_statuses(repository)
    assert status.health.startswith("waiting for liquidity:")


async def test_market_under_the_open_interest_minimum_is_not_traded(
    repository: Repository, clock: FakeClock
) -> None:
    feed = ManualFeed({"BTC": D(60000)})
    config = settings(
        {"min_open_interest": "5000000"},
        markets={PERP: {"open_interest_value": "1000000"}},
    )
    daemon, _venue = await open_daemon(config, repository, clock, feed)
    await daemon.run_cycle(1)
    assert await repository.orders() == []
    [denied] = await repository.audit_events(kind="risk.denied")
    assert "open interest 1000000 < min_open_interest 5000000: market not traded" in (
        denied.summary
    )


# -- the report, on numbers checked by hand -------------------------------------------------


async def hedged_run(
    repository: Repository, clock: FakeClock, target: str
) -> tuple[HedgeDaemon, ManualFeed]:
    feed = ManualFeed({"BTC": D(60000)})
    feed.set_funding_rate("BTC", D("0.0001"))
    config = settings({"target_ratio": target})
    daemon, _venue = await open_daemon(config, repository, clock, feed)
    cycle = 1
    for price in (60000, 60000, 61000, 59000, 62000):  # the hedge is placed in cycle 1
        feed.set_price("BTC", D(price))
        report = await daemon.run_cycle(cycle)
        assert not report.errors
        cycle += 1
        clock.advance(60)
    # Across 08:00 UTC: the short is paid funding at 62000 and rate 0.0001.
    clock.advance(8 * 3600)
    await daemon.run_cycle(cycle)
    return daemon, feed


async def test_report_of_a_full_hedge_by_hand(repository: Repository) -> None:
    clock = FakeClock(START)
    await hedged_run(repository, clock, "1")
    [report] = await repository.report()
    assert report.observations == 6
    assert report.spot_pnl == D(2000)  # 1 BTC from 60000 to 62000
    assert report.perp_pnl == D(-2000)  # 1 BTC short from 60000 to 62000
    assert report.fees == D(30)  # 0.05 % of 60000
    assert report.funding == D("6.2")  # 1 x 62000 x 0.0001
    assert report.net == D("-23.8")
    assert report.hedge_effectiveness == 1


async def test_report_of_a_half_hedge_by_hand(repository: Repository) -> None:
    clock = FakeClock(START)
    await hedged_run(repository, clock, "0.5")
    [report] = await repository.report(pair="BTC")
    assert report.spot_pnl == D(2000)
    assert report.perp_pnl == D(-1000)
    assert report.fees == D(15)
    assert report.funding == D("3.1")
    assert report.net == D("988.1")
    # Changes of the spot value 0, 1000, -2000, 3000, 0; of the hedged value half of those
    # (the first is before the hedge, with no price move): 1 - 0.25.
    assert report.hedge_effectiveness == D("0.75")


async def test_report_since_leaves_out_what_came_before(repository: Repository) -> None:
    clock = FakeClock(START)
    await hedged_run(repository, clock, "1")
    since = START + timedelta(seconds=150)  # after the 61000 observation
    [report] = await repository.report(since=since)
    assert report.observations == 3  # 59000, 62000, 62000
    assert report.spot_pnl == D(3000)
    assert report.perp_pnl == D(-3000)
    assert report.fees == 0
    assert report.funding == D("6.2")


async def test_rejections_before_a_restart_still_count_toward_the_pause(
    repository: Repository, clock: FakeClock
) -> None:
    feed = ManualFeed({"BTC": D(60000)})
    daemon, venue = await open_daemon(settings({}), repository, clock, feed, RejectingVenue)
    for cycle in (1, 2):
        await daemon.run_cycle(cycle)
        clock.advance(10)
    await venue.close()
    daemon2, _venue2 = await open_daemon(settings({}), repository, clock, feed, RejectingVenue)
    await daemon2.run_cycle(3)
    [paused] = await repository.audit_events(kind="pair.paused")
    assert "3 consecutive orders" in paused.summary
    # After a resume the count starts afresh, restart or not.
    await repository.set_pair_paused("BTC", False, "retry")
    clock.advance(10)
    daemon3, _venue3 = await open_daemon(settings({}), repository, clock, feed, RejectingVenue)
    await daemon3.run_cycle(4)
    assert len(await repository.audit_events(kind="pair.paused")) == 1
