"""A bad book sends nothing and says why: a bid or ask of 0, a crossed book (bid above
ask) or a touch far from the mark holds the pair — no order, a ``risk.denied`` audit
event, and ``hedgebot status`` naming the problem — and ``decide`` never prices an order
at 0."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from bot.clock import FakeClock
from bot.domain.models import HedgeParams, Market, Observation, Ticker
from bot.domain.rebalance import decide
from bot.exchange.feeds import ManualFeed
from bot.exchange.paper import PaperVenue
from bot.service.daemon import HedgeDaemon
from bot.service.describe import pair_statuses
from bot.store.repository import Repository
from tests.support.builders import open_daemon, pair, settings

D = Decimal
PERP = "BTC/USDT:USDT"


class BadBookVenue(PaperVenue):
    """A paper venue whose perp ticker can be replaced by a bad quote."""

    bad: tuple[Decimal, Decimal] | None = None  # (bid, ask) shown for the perp

    async def fetch_tickers(self, symbols: Iterable[str]) -> Mapping[str, Ticker]:
        tickers = dict(await super().fetch_tickers(symbols))
        if self.bad is not None and PERP in tickers:
            bid, ask = self.bad
            tickers[PERP] = dataclasses.replace(tickers[PERP], bid=bid, ask=ask)
        return tickers


async def unhedged(
    repository: Repository, clock: FakeClock, risk: Mapping[str, str] | None = None
) -> tuple[HedgeDaemon, BadBookVenue]:
    """1 BTC of spot, no hedge yet, BTC at 60,000: the next cycle would sell 1 BTC perp."""
    config = settings([pair("BTC")], risk=risk)
    return await open_daemon(config, repository, clock, ManualFeed({"BTC": D(60000)}), BadBookVenue)


async def held_with(repository: Repository, venue: BadBookVenue, fragment: str) -> None:
    """Nothing was sent, the denial is audited, and status names the problem."""
    assert await venue.fetch_positions([PERP]) == {}
    [denied] = await repository.audit_events(kind="risk.denied")
    assert fragment in denied.summary
    [status] = await pair_statuses(repository)
    assert status.health.startswith("not trading: ")
    assert fragment in status.health


@pytest.mark.parametrize(
    ("bid", "ask", "why"),
    [
        pytest.param("60100", "59900", "crossed book: bid 60100 > ask 59900", id="crossed"),
        # The book's touch at half the mark (60,000; the last trade without a position).
        pytest.param("30000", "30010", "from the reference price 60000", id="far-from-mark"),
    ],
)
async def test_a_bad_book_sends_nothing_and_status_says_why(
    bid: str, ask: str, why: str, repository: Repository, clock: FakeClock
) -> None:
    daemon, venue = await unhedged(repository, clock)
    venue.bad = (D(bid), D(ask))

    report = await daemon.run_cycle(1)

    assert report.actions["BTC"] == "denied"
    await held_with(repository, venue, why)

    # Once the book is sane again, the hedge goes out.
    venue.bad = None
    clock.advance(10)
    assert (await daemon.run_cycle(2)).actions["BTC"].startswith("order")


async def test_the_deviation_allowed_is_configurable(
    repository: Repository, clock: FakeClock
) -> None:
    daemon, venue = await unhedged(repository, clock, risk={"max_price_deviation": "0.6"})
    venue.bad = (D(30000), D(30010))

    report = await daemon.run_cycle(1)

    assert report.actions["BTC"].startswith("order")


async def test_a_bid_of_zero_sends_nothing_and_status_says_so(
    repository: Repository, clock: FakeClock
) -> None:
    daemon, venue = await unhedged(repository, clock)
    venue.bad = (D(0), D(60010))

    report = await daemon.run_cycle(1)

    assert "BTC" in report.errors or report.actions["BTC"] == "denied"
    assert await venue.fetch_positions([PERP]) == {}
    [status] = await pair_statuses(repository)
    assert "bid 0" in status.health


def test_decide_does_not_price_an_order_at_zero() -> None:
    """An observation without any usable price is no order, with the reason; not a crash."""
    at = datetime(2026, 1, 1, tzinfo=UTC)
    observation = Observation(
        pair="BTC",
        spot_symbol="BTC/USDT",
        perp_symbol=PERP,
        spot_qty=D(1),
        perp_qty=D(0),
        price=D(0),
        bid=D(0),
        ask=D(0),
        funding_rate=D(0),
        observed_at=at,
    )
    market = Market(PERP, "BTC", "USDT", D("0.001"), D("0.1"), min_notional=D(5), is_perp=True)
    params = HedgeParams(
        target_ratio=D(1), band=D("0.02"), min_notional=D(0), max_order_notional=D(1000000)
    )

    decision = decide(observation, params, market)

    assert decision.intent is None
    assert "no usable price" in decision.reason
