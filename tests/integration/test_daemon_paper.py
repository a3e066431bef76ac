"""The whole cycle against the paper venue: the playbook's worked examples and failure cases."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from bot.clock import FakeClock
from bot.domain.models import OrderRequest, OrderResult
from bot.exchange.feeds import ManualFeed, SimFeed
from bot.exchange.gateway import RetryableError
from bot.exchange.paper import PaperVenue
from bot.service.daemon import HedgeDaemon
from bot.service.describe import pair_statuses
from bot.store.repository import Repository
from tests.support.builders import open_daemon, pair, settings

D = Decimal


async def run_cycles(daemon: HedgeDaemon, clock: FakeClock, count: int, first: int = 1) -> None:
    for cycle in range(first, first + count):
        report = await daemon.run_cycle(cycle)
        assert not report.errors, report.errors
        clock.advance(10)


async def hedge_ratio(venue: PaperVenue, spot_asset: str, perp_symbol: str) -> Decimal:
    balances = await venue.fetch_balances()
    positions = await venue.fetch_positions([perp_symbol])
    position = positions.get(perp_symbol)
    return -(position.qty if position else D(0)) / balances[spot_asset].total


async def test_full_hedge_of_10_eth_holds_value_within_fees_when_price_falls_or_rises(
    repository: Repository, clock: FakeClock
) -> None:
    feed = ManualFeed({"ETH": D(3000)})
    config = settings([pair("ETH")], balances={"ETH": "10", "USDT": "20000"})
    daemon, venue = await open_daemon(config, repository, clock, feed)
    start = (await venue.account_summary()).equity

    await run_cycles(daemon, clock, 2)
    assert await hedge_ratio(venue, "ETH", "ETH/USDT:USDT") == D(1)

    for price in (D(2700), D(3300)):  # -10 %, then +10 % of the start
        feed.set_price("ETH", price)
        await run_cycles(daemon, clock, 1, first=3)
        summary = await venue.account_summary()
        assert summary.fees_paid > 0
        assert abs(summary.equity - start) <= summary.fees_paid


async def test_half_hedged_btc_loses_about_5_percent_of_spot_on_a_10_percent_fall(
    repository: Repository, clock: FakeClock
) -> None:
    feed = ManualFeed({"BTC": D(60000)})
    config = settings([pair("BTC", target="0.5")])
    daemon, venue = await open_daemon(config, repository, clock, feed)
    await run_cycles(daemon, clock, 2)
    assert await hedge_ratio(venue, "BTC", "BTC/USDT:USDT") == D("0.5")
    before = await venue.account_summary()

    feed.set_price("BTC", D(54000))
    after = await venue.account_summary()
    loss = before.equity - after.equity
    spot_value = D(60000)
    assert abs(loss - spot_value * D("0.05")) <= D("0.001") * spot_value


async def test_double_short_loses_about_10_percent_of_spot_on_a_10_percent_rise(
    repository: Repository, clock: FakeClock
) -> None:
    feed = ManualFeed({"BTC": D(60000)})
    config = settings([pair("BTC", target="2.0")])
    daemon, venue = await open_daemon(config, repository, clock, feed)
    await run_cycles(daemon, clock, 2)
    assert await hedge_ratio(venue, "BTC", "BTC/USDT:USDT") == D(2)
    before = await venue.account_summary()

    feed.set_price("BTC", D(66000))
    after = await venue.account_summary()
    loss = before.equity - after.equity
    assert abs(loss - D(6000)) <= D(60)


async def test_both_pairs_reach_their_band_from_unhedged_on_a_random_walk(
    repository: Repository, clock: FakeClock
) -> None:
    config = settings(
        [pair("BTC", target="1.0", max_order_notional="20000"), pair("ETH", target="0.5")],
        spread_bps="2",
        balances={"BTC": "1", "ETH": "10", "USDT": "100000"},
    )
    feed = SimFeed(config.paper.sim, seed=7)
    daemon, _venue = await open_daemon(config, repository, clock, feed)
    await run_cycles(daemon, clock, 8)
    rows = {row.pair: row for row in await repository.pair_status()}
    for name in ("BTC", "ETH"):
        row = rows[name]
        assert row.ratio is not None
        assert abs(row.ratio - row.target_ratio) <= row.band, row
    # Each filled order is in the database with its fill.
    orders = await repository.orders()
    assert orders
    assert all(order.status == "filled" for order in orders)
    async with repository.engine.connect() as conn:
        fills = (await conn.execute(text("SELECT count(*) FROM fills"))).scalar()
    assert fills == len(orders)


async def test_restart_continues_with_the_saved_paper_account(
    repository: Repository, clock: FakeClock
) -> None:
    feed = ManualFeed({"BTC": D(60000)})
    config = settings([pair("BTC", target="0.5")])
    daemon, venue = await open_daemon(config, repository, clock, feed)
    await run_cycles(daemon, clock, 2)
    before = await venue.account_summary()
    await venue.close()

    daemon2, venue2 = await open_daemon(config, repository, clock, feed)
    after = await venue2.account_summary()
    assert after.quote_balance == before.quote_balance
    assert after.fees_paid == before.fees_paid
    positions = await venue2.fetch_positions(["BTC/USDT:USDT"])
    assert positions["BTC/USDT:USDT"].qty == D("-0.5")
    orders_before = len(await repository.orders())
    await run_cycles(daemon2, clock, 2, first=3)
    assert len(await repository.orders()) == orders_before  # already hedged: nothing new


class ExplodingVenue(PaperVenue):
    """A paper venue whose order path breaks for one symbol with an unexpected error."""

    broken_symbol = "ETH/USDT:USDT"

    async def create_order(self, request: OrderRequest) -> OrderResult:
        if request.symbol == self.broken_symbol:
            raise RuntimeError("venue bug")
        return await super().create_order(request)


async def test_one_pair_failing_is_audited_and_does_not_stop_the_other(
    repository: Repository, clock: FakeClock
) -> None:
    config = settings(
        [pair("BTC"), pair("ETH")], balances={"BTC": "1", "ETH": "10", "USDT": "100000"}
    )
    feed = ManualFeed({"BTC": D(60000), "ETH": D(3000)})
    daemon, _venue = await open_daemon(config, repository, clock, feed, ExplodingVenue)
    report = await daemon.run_cycle(1)
    assert "ETH" in report.errors
    assert report.actions["BTC"] == "order filled"
    [error] = await repository.audit_events(pair="ETH", kind="pair.error")
    assert "venue bug" in error.summary


class LostAnswerVenue(PaperVenue):
    """Fills the order, then loses the answer, as a dropped connection would."""

    async def create_order(self, request: OrderRequest) -> OrderResult:
        await super().create_order(request)
        raise RetryableError("read timeout")


async def test_lost_answer_is_resolved_by_lookup_never_by_sending_again(
    repository: Repository, clock: FakeClock
) -> None:
    config = settings([pair("BTC", target="0.5")])
    feed = ManualFeed({"BTC": D(60000)})
    daemon, venue = await open_daemon(config, repository, clock, feed, LostAnswerVenue)
    await run_cycles(daemon, clock, 3)
    orders = await repository.orders()
    assert len(orders) == 1
    assert orders[0].status == "filled"
    assert len(venue.state.orders) == 1
    assert await hedge_ratio(venue, "BTC", "BTC/USDT:USDT") == D("0.5")


async def test_rejected_order_is_audited_and_the_pair_goes_on_next_cycle(
    repository: Repository, clock: FakeClock
) -> None:
    class OverstatingVenue(PaperVenue):
        """Reports more free USDT than it holds (another client took it in between): the
        order the free margin seemed to pay is refused."""

        async def fetch_margin_balances(self) -> Any:
            balances = await super().fetch_margin_balances()
            usdt = balances["USDT"]
            return {**balances, "USDT": replace(usdt, free=usdt.free + D(100000))}

    # Equity passes the risk gate (13000 x max leverage 5 > 60000) but 1x margin does not;
    # the free margin the venue reports would pay it.
    config = settings([pair("BTC", leverage="1")], balances={"BTC": "1", "USDT": "13000"})
    feed = ManualFeed({"BTC": D(60000)})
    daemon, _venue = await open_daemon(config, repository, clock, feed, OverstatingVenue)
    await run_cycles(daemon, clock, 2)
    rejected = await repository.audit_events(kind="order.rejected")
    assert len(rejected) == 2
    assert "insufficient" in rejected[0].summary


async def test_stale_observation_is_denied_and_audited(
    repository: Repository, clock: FakeClock
) -> None:
    class StaleVenue(PaperVenue):
        async def fetch_tickers(self, symbols: Iterable[str]) -> Any:
            tickers = await super().fetch_tickers(symbols)
            clock.advance(3600)  # the data is an hour old by the time it is used
            return tickers

    config = settings([pair("BTC")])
    daemon, _venue = await open_daemon(
        config, repository, clock, ManualFeed({"BTC": D(60000)}), StaleVenue
    )
    report = await daemon.run_cycle(1)
    assert report.actions["BTC"] == "denied"
    [denied] = await repository.audit_events(kind="risk.denied")
    assert "old" in denied.summary
    assert await repository.orders() == []
    await daemon.pair_state.claim()  # the hour also lapsed the lease: the next cycle renews it
    [status] = await pair_statuses(repository)
    assert status.health.startswith("not trading: observation is 3600.0s old")


@pytest.mark.parametrize("target", ["0", "1"])
async def test_no_order_when_there_is_nothing_to_hedge_or_target_is_zero(
    repository: Repository, clock: FakeClock, target: str
) -> None:
    balances = {"USDT": "1000"} if target == "1" else {"BTC": "1", "USDT": "1000"}
    config = settings([pair("BTC", target=target)], balances=balances)
    daemon, _ = await open_daemon(config, repository, clock, ManualFeed({"BTC": D(60000)}))
    report = await daemon.run_cycle(1)
    assert report.actions["BTC"] == "none"


class FlakyStore(Repository):
    """A repository whose database is down while ``down`` is set: the driver's error is
    raised inside the store's sessions, which turn it into StoreUnavailable."""

    down = False

    async def unresolved_orders(self, pair: str | None = None) -> Any:
        if self.down:
            async with self._read():
                raise OperationalError("SELECT", {}, Exception("connection refused"))
        return await super().unresolved_orders(pair)

    async def insert_order_intent(self, *args: Any, **kwargs: Any) -> None:
        if self.down:
            async with self._write():
                raise OperationalError("INSERT", {}, Exception("connection refused"))
        await super().insert_order_intent(*args, **kwargs)


async def test_a_database_outage_sends_nothing_and_the_daemon_recovers_by_itself(
    engine: Any, clock: FakeClock
) -> None:
    import asyncio

    store = FlakyStore(engine, clock)
    config = settings([pair("BTC")])
    daemon, venue = await open_daemon(config, store, clock, ManualFeed({"BTC": D(60000)}))
    store.down = True
    stop = asyncio.Event()
    assert await daemon.run(stop, max_cycles=3) == 3  # survived three blind cycles
    assert venue.state.orders == {}
    store.down = False
    await daemon.run(stop, max_cycles=2)
    assert await hedge_ratio(venue, "BTC", "BTC/USDT:USDT") == D(1)
