"""The liquidation guard's margin transfer on a paper daemon: stored before it is sent,
resolved from the venue's margin history when its outcome is not known, never sent twice."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from bot.clock import FakeClock
from bot.exchange.feeds import ManualFeed
from bot.exchange.gateway import RetryableError
from bot.exchange.paper import PaperVenue
from bot.service.daemon import HedgeDaemon
from bot.service.describe import pair_statuses
from bot.store.repository import Repository
from tests.support import builders
from tests.support.builders import open_daemon

D = Decimal
PERP = "BTC/USDT:USDT"
START = datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC)
# 16,000 USDT: the start picks 5x for the 1 BTC hedge, liquidated at about 71700.
CONFIG = builders.settings(
    [builders.pair()],
    {"on_liquidation_risk": "add_margin", "order_settle_s": "60"},
    balances={"BTC": "1", "USDT": "16000"},
)


class ProcessKilled(BaseException):
    """The daemon's process dies here: no handler of the daemon's runs after it."""


class LossyVenue(PaperVenue):
    """A paper venue whose margin requests can time out unexecuted, and whose margin
    history can be unreachable."""

    requests_lost = False
    history_down = False

    async def add_margin(self, symbol: str, amount: Decimal) -> None:
        if self.requests_lost:
            raise RetryableError("add_margin: RequestTimeout")
        await super().add_margin(symbol, amount)

    async def fetch_margin_history(self, symbol: str, since: datetime) -> list[object]:  # type: ignore[override]
        if self.history_down:
            raise RetryableError("fetch_margin_adjustment_history: 503")
        return await super().fetch_margin_history(symbol, since)  # type: ignore[return-value]


async def near_liquidation(
    repository: Repository, clock: FakeClock, venue_class: type[PaperVenue] = PaperVenue
) -> tuple[HedgeDaemon, PaperVenue, ManualFeed]:
    """The 1 BTC short opened at 60000 at 5x (liquidation 71700), then the mark at 65400:
    0.096 from it, inside min_liquidation_distance 0.1; the guard adds 3510 USDT."""
    feed = ManualFeed({"BTC": D(60000)})
    daemon, venue = await open_daemon(CONFIG, repository, clock, feed, venue_class)
    assert not (await daemon.run_cycle(1)).errors
    feed.set_price("BTC", D(65400))
    clock.advance(10)
    return daemon, venue, feed


async def test_an_intent_left_by_a_daemon_killed_before_sending_is_never_sent_and_decided_afresh(
    repository: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock(START)
    daemon, venue, feed = await near_liquidation(repository, clock)

    async def killed(*_: object, **__: object) -> bool:
        raise ProcessKilled

    with monkeypatch.context() as patch:
        patch.setattr(repository, "mark_margin_sent", killed)
        await daemon.run_cycle(2)
    [left] = await repository.margin_transfers()
    assert left.state == "intent"
    await venue.close()

    # The restart resolves it at once (it was never marked sent), then decides again.
    restarted, paper = await open_daemon(CONFIG, repository, clock, feed)
    report = await restarted.run_cycle(1)

    lost, fresh = await repository.margin_transfers()
    assert (lost.state, fresh.state) == ("failed", "done")
    assert "not sent" in (lost.reason or "")
    assert report.actions["BTC"] == "add_margin done"
    [moved] = await paper.fetch_margin_history(PERP, START)
    assert moved.amount == fresh.amount


async def test_while_a_transfer_cannot_be_looked_up_the_pair_waits_and_sends_no_other(
    repository: Repository,
) -> None:
    clock = FakeClock(START)
    daemon, venue, _ = await near_liquidation(repository, clock, LossyVenue)
    assert isinstance(venue, LossyVenue)
    venue.requests_lost = venue.history_down = True

    assert (await daemon.run_cycle(2)).actions["BTC"] == "add_margin unknown"
    clock.advance(120)  # past order_settle_s, but the history cannot be read
    waiting = await daemon.run_cycle(3)

    assert waiting.actions["BTC"] == "waiting"
    [status] = await pair_statuses(repository)
    assert status.health == "waiting: an order's or a margin transfer's outcome is not known yet"
    [decision] = (await repository.audit_events(kind="decision"))[-1:]
    assert "waiting: margin transfer hbm" in decision.summary
    # The history back: the lost request is not in it, so it was never executed; the
    # same cycle decides afresh and the new transfer goes through.
    venue.requests_lost = venue.history_down = False
    clock.advance(10)
    assert (await daemon.run_cycle(4)).actions["BTC"] == "add_margin done"
    lost, fresh = await repository.margin_transfers()
    assert (lost.state, fresh.state) == ("failed", "done")
    [moved] = await venue.fetch_margin_history(PERP, START)
    assert moved.amount == fresh.amount
