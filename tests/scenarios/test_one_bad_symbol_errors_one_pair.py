"""One bad symbol errors one pair: a ticker missing from the tickers answer or a market
the venue no longer lists (a bid of 0 holds it) stops only the pair that trades it; every other
pair on the account keeps hedging and guarding in the same cycle."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from decimal import Decimal

from bot.clock import FakeClock
from bot.domain.models import Market, Ticker
from bot.exchange.feeds import ManualFeed
from bot.exchange.gateway import RetryableError
from bot.exchange.paper import PaperVenue
from bot.service.daemon import CycleReport, HedgeDaemon
from bot.service.describe import pair_statuses
from bot.store.repository import Repository
from tests.support.builders import open_daemon, pair, settings

D = Decimal
ETH_PERP = "ETH/USDT:USDT"
BALANCES = {"BTC": "1", "ETH": "10", "USDT": "100000"}


class FlakyVenue(PaperVenue):
    """A paper venue whose tickers answer can drop one symbol, or quote it at 0."""

    dropped: frozenset[str] = frozenset()
    zero_bid: frozenset[str] = frozenset()
    markets_fail = False
    unlisted: frozenset[str] = frozenset()

    async def fetch_tickers(self, symbols: Iterable[str]) -> Mapping[str, Ticker]:
        tickers = await super().fetch_tickers(symbols)
        return {
            s: dataclasses.replace(t, bid=D(0)) if s in self.zero_bid else t
            for s, t in tickers.items()
            if s not in self.dropped
        }

    async def load_markets(
        self, symbols: Iterable[str], reload: bool = False
    ) -> Mapping[str, Market]:
        if self.markets_fail:
            raise RetryableError("exchangeInfo: 503 service unavailable")
        markets = await super().load_markets(symbols, reload=reload)
        return {s: m for s, m in markets.items() if s not in self.unlisted}


async def two_pairs(
    repository: Repository, clock: FakeClock, refresh_s: int | None = None
) -> tuple[HedgeDaemon, FlakyVenue]:
    config = settings([pair("BTC"), pair("ETH")], balances=BALANCES)
    if refresh_s is not None:
        config = config.model_copy(update={"markets_refresh_s": refresh_s})
    feed = ManualFeed({"BTC": D(60000), "ETH": D(3000)})
    return await open_daemon(config, repository, clock, feed, FlakyVenue)


def only_eth_failed(report: CycleReport) -> None:
    """ETH's pair error names its symbol; BTC, on the same account, ordered this cycle."""
    assert set(report.errors) == {"ETH"}
    assert ETH_PERP in report.errors["ETH"]
    assert report.actions["BTC"].startswith("order")


async def test_a_ticker_missing_from_the_answer_errors_only_its_pair(
    repository: Repository, clock: FakeClock
) -> None:
    daemon, venue = await two_pairs(repository, clock)
    venue.dropped = frozenset({ETH_PERP})

    report = await daemon.run_cycle(1)

    only_eth_failed(report)
    assert "no bid/ask" in report.errors["ETH"]
    assert await repository.audit_events(kind="cycle.observe_failed") == []
    [error] = await repository.audit_events(kind="pair.error")
    assert error.pair == "ETH"
    assert ETH_PERP in error.summary

    # Back in the answer, ETH hedges; gone again, `hedgebot status` says why.
    venue.dropped = frozenset()
    clock.advance(10)
    assert (await daemon.run_cycle(2)).actions["ETH"].startswith("order")
    venue.dropped = frozenset({ETH_PERP})
    clock.advance(10)
    report = await daemon.run_cycle(3)
    assert set(report.errors) == {"ETH"}
    assert report.actions["BTC"] == "none"  # BTC still decided (and guarded)
    statuses = {s.pair: s for s in await pair_statuses(repository)}
    assert statuses["ETH"].health.startswith("error: ")
    assert ETH_PERP in statuses["ETH"].health
    assert statuses["BTC"].health == "ok"


async def test_a_bid_of_zero_for_one_symbol_holds_only_its_pair(
    repository: Repository, clock: FakeClock
) -> None:
    """A bid of 0 holds its pair (denied, status says why; see
    tests/scenarios/test_bad_book_sends_nothing.py); BTC orders in the same cycle."""
    daemon, venue = await two_pairs(repository, clock)
    venue.zero_bid = frozenset({ETH_PERP})

    report = await daemon.run_cycle(1)

    assert report.errors == {}
    assert report.actions["ETH"] == "denied"
    assert report.actions["BTC"].startswith("order")
    assert await venue.fetch_positions([ETH_PERP]) == {}  # nothing sent on a bid of 0


async def test_a_failed_market_reload_keeps_the_loaded_markets_and_the_cycle(
    repository: Repository, clock: FakeClock
) -> None:
    daemon, venue = await two_pairs(repository, clock, refresh_s=0)
    venue.markets_fail = True

    report = await daemon.run_cycle(1)

    assert report.errors == {}
    assert report.actions["BTC"].startswith("order")
    assert report.actions["ETH"].startswith("order")
    [failed] = await repository.audit_events(kind="markets.refresh_failed")
    assert "503" in failed.summary


async def test_a_market_missing_at_reload_errors_only_its_pair(
    repository: Repository, clock: FakeClock
) -> None:
    daemon, venue = await two_pairs(repository, clock, refresh_s=0)
    venue.unlisted = frozenset({ETH_PERP})

    report = await daemon.run_cycle(1)

    only_eth_failed(report)
