"""The collateral keeper holds an isolated 3x short through a rally (issue 15, item 3).

The paper daemon with separate spot and futures wallets and a fake clock: 1 BTC hedged
by a 3x isolated short at 60,000, then +50 % and +100 % within a day, then -50 %. The
keeper moves quote spot -> futures and into the position while the spot wallet has some,
then sells a slice of the coins and cuts the short by the same amount, and returns the
excess when the price falls; nothing is liquidated and the ratio stays in its band.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from bot.clock import FakeClock
from bot.config import Settings
from bot.domain.margin_transfers import FUTURES_WALLET, WalletTransfer
from bot.exchange.feeds import ManualFeed
from bot.exchange.gateway import RetryableError
from bot.exchange.paper import PaperVenue
from bot.service.daemon import HedgeDaemon
from bot.store.repository import Repository
from tests.support import builders

D = Decimal
START = datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC)  # between funding times
PERP = "BTC/USDT:USDT"
BAND = D("0.02")


def settings(spot_usdt: str = "30000") -> Settings:
    pair = builders.pair(leverage="3", allow_spot_trades=True, margin_mode="isolated")
    return builders.settings(
        [pair],
        {"on_liquidation_risk": "keep", "min_liquidation_distance": "0.1"},
        balances={"BTC": "1", "USDT": spot_usdt},
        separate_wallets=True,
        futures_balances={"USDT": "20500"},
        taker_fee_rate="0.0005",
    )


async def spot_and_short(venue: PaperVenue) -> tuple[Decimal, Decimal]:
    position = (await venue.fetch_positions([PERP])).get(PERP)
    spot = (await venue.fetch_balances())["BTC"].total
    return spot, -(position.qty if position else D(0))


def path() -> list[Decimal]:
    """60,000 -> 120,000 in steps of 2 % (a cycle every 20 minutes: within a day), then
    down to 60,000 in steps of 4 %."""
    prices = [D(60000)]
    while prices[-1] < D(120000):
        prices.append(min((prices[-1] * D("1.02")).quantize(D(1)), D(120000)))
    while prices[-1] > D(60000):
        prices.append(max((prices[-1] * D("0.96")).quantize(D(1)), D(60000)))
    return prices


async def run(
    daemon: HedgeDaemon, venue: PaperVenue, feed: ManualFeed, clock: FakeClock
) -> list[tuple[Decimal, Decimal, Decimal]]:
    """Each price of the path, one cycle at it: (price, spot, short) after the cycle."""
    seen = []
    for cycle, price in enumerate(path(), start=1):
        feed.set_price("BTC", price)
        report = await daemon.run_cycle(cycle)
        assert not report.errors, report.errors
        seen.append((price, *await spot_and_short(venue)))
        clock.advance(1200)
    return seen


async def test_the_keeper_holds_a_3x_short_through_plus_100pc_and_back_without_liquidation(
    repository: Repository, clock: FakeClock
) -> None:
    clock.advance((START - clock.now()).total_seconds())  # the store's clock, too
    feed = ManualFeed({"BTC": D(60000)})
    daemon, venue = await builders.open_daemon(settings(), repository, clock, feed)
    seen = await run(daemon, venue, feed, clock)

    assert venue.liquidations() == []
    # The ratio (short / spot) inside its band after every cycle once hedged.
    hedged = [(p, s, q) for p, s, q in seen if q > 0]
    assert len(hedged) == len(seen)
    assert all(abs(q / s - 1) <= BAND for _, s, q in hedged), hedged
    assert max(p for p, _, _ in seen) == D(120000)

    done = await repository.audit_events(kind="margin.done")
    kinds = [e.data["kind"] for e in done]
    # Quote went spot -> futures and into the position on the way up...
    assert "to_futures" in kinds
    assert "add_margin" in kinds
    # ...and the excess came out of the position and back to spot on the way down.
    assert "remove_margin" in kinds
    assert kinds.index("remove_margin") > kinds.index("add_margin")
    assert "to_spot" in kinds[kinds.index("remove_margin") :]
    # Every transfer was an intent first, and has one outcome.
    intents = await repository.audit_events(kind="margin.intent")
    failed = await repository.audit_events(kind="margin.failed")
    assert len(intents) == len(done) + len(failed)
    assert failed == []

    # With the spot quote gone, a slice of the coins was sold and the short cut alike.
    spot_end, short_end = seen[-1][1], seen[-1][2]
    assert spot_end < D(1)
    assert short_end == spot_end
    decisions = await repository.audit_events(kind="decision")
    sales = [e for e in decisions if "sell" in e.summary and "cut the short" in e.summary]
    assert sales
    # The guard's close never ran: the keeper kept the hedge.
    assert not any("last resort" in e.summary for e in decisions)


class LosesOneTransferAnswer(PaperVenue):
    """Applies the first spot -> futures transfer, then loses its answer."""

    lost = 0

    async def transfer(
        self, asset: str, amount: Decimal, source: str, destination: str, client_id: str
    ) -> None:
        await super().transfer(asset, amount, source, destination, client_id)
        if destination == FUTURES_WALLET and not type(self).lost:
            type(self).lost += 1
            raise RetryableError("connection reset after the venue moved it")


class NoTransferIds(LosesOneTransferAnswer):
    """As Binance: the transfer history keeps no client id (matched by route, amount and
    time), and the first spot -> futures answer is lost."""

    async def fetch_transfers(self, asset: str, since: datetime) -> list[WalletTransfer]:
        listed = await super().fetch_transfers(asset, since)
        return [replace(t, client_id=None) for t in listed]


@pytest.mark.parametrize("venue_class", [LosesOneTransferAnswer, NoTransferIds])
async def test_a_lost_transfer_answer_is_resolved_by_look_up_and_never_sent_twice(
    repository: Repository, clock: FakeClock, venue_class: type[LosesOneTransferAnswer]
) -> None:
    """By our client id where the venue keeps it, else by route, amount and time."""
    venue_class.lost = 0
    clock.advance((START - clock.now()).total_seconds())  # the store's clock, too
    feed = ManualFeed({"BTC": D(60000)})
    daemon, venue = await builders.open_daemon(settings(), repository, clock, feed, venue_class)
    await run(daemon, venue, feed, clock)

    assert venue_class.lost == 1
    [unknown] = await repository.audit_events(kind="margin.unknown")
    client_id = unknown.data["client_id"]
    done = await repository.audit_events(kind="margin.done")
    [resolved] = [e for e in done if e.data["client_id"] == client_id]
    assert "found in the venue's history" in resolved.data["reason"]
    assert resolved.data["venue_time"] is not None
    # Sent once: one transfer with that id, of that amount, in the venue's books.
    moved = [t for t in venue.state.transfers if t.client_id == client_id]
    assert len(moved) == 1
    assert moved[0].amount == D(unknown.data["amount"])
    assert await repository.audit_events(kind="margin.failed") == []
    assert venue.liquidations() == []
