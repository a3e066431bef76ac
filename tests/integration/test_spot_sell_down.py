"""The bearish outlook's spot sell-down in the running daemon on the paper venue."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from bot.clock import FakeClock
from bot.exchange.feeds import ManualFeed
from bot.exchange.paper import PaperVenue
from bot.service.daemon import HedgeDaemon
from bot.store.repository import Repository
from bot.store.tables import OrderRow
from tests.integration.test_daemon_strategies import (
    PERP,
    cycle,
    last_inputs,
    open_daemon,
    settings,
)

D = Decimal
SPOT = "BTC/USDT"


async def spot_and_short(venue: PaperVenue) -> tuple[Decimal, Decimal]:
    position = (await venue.fetch_positions([PERP])).get(PERP)
    spot = (await venue.fetch_balances())["BTC"].total
    return spot, -(position.qty if position else D(0))


async def orders(repository: Repository) -> list[tuple[str, str, str, Decimal, str]]:
    async with repository.engine.connect() as conn:
        rows = await conn.execute(
            select(
                OrderRow.client_order_id,
                OrderRow.symbol,
                OrderRow.side,
                OrderRow.amount,
                OrderRow.venue,
            ).order_by(OrderRow.id)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


async def test_bearish_sells_spot_to_half_then_hedges_all_of_the_rest_and_sells_no_more(
    repository: Repository, clock: FakeClock
) -> None:
    feed = ManualFeed({"BTC": D(6000)})
    config = settings(strategy="outlook", outlook={"view": "neutral"}, allow_spot_trades=True)
    daemon, venue = await open_daemon(config, repository, clock, feed)
    await cycle(daemon, 1)
    assert await spot_and_short(venue) == (D(10), D(7))

    await repository.set_pair_target("BTC", None, "bearish", "target set to outlook bearish")
    clock.advance(5)
    await cycle(daemon, 2)
    # The spot sell and the hedge of what it leaves go in the same cycle: 2 of the 7 short
    # are bought back (reduce-only), so 100% of the 5 BTC kept is hedged at once.
    assert await spot_and_short(venue) == (D(5), D(5))
    inputs = await last_inputs(repository)
    assert (
        "outlook bearish: sell 5 BTC spot down to 50.00% of 10 BTC (reference)" in inputs["reason"]
    )
    assert D(inputs["strategy"]["sell_down_reference"]) == 10
    assert inputs["strategy"]["sell_down_skipped"] is False
    spot_order = next(o for o in await orders(repository) if o[1] == SPOT)
    assert spot_order[1:4] == (SPOT, "sell", D(5))
    assert spot_order[0].startswith("hb")
    assert len(spot_order[0]) <= 36
    assert sorted(o[1:4] for o in (await orders(repository))[1:]) == [
        (SPOT, "sell", D(5)),
        (PERP, "buy", D(2)),
    ]

    # Within the fill settle window: the spot fill must not count as a perp change.
    clock.advance(5)
    await cycle(daemon, 3)
    assert await spot_and_short(venue) == (D(5), D(5))  # 100% of what remains
    for number in (4, 5, 6):
        clock.advance(5)
        await cycle(daemon, number)
    assert await spot_and_short(venue) == (D(5), D(5))
    assert [o[1] for o in await orders(repository)].count(SPOT) == 1
    assert not await repository.audit_events("BTC", "reconcile.spot_changed", None, None)
    assert not await repository.audit_events("BTC", "strategy.sell_down_skipped", None, None)


async def test_leaving_bearish_drops_the_reference_and_buys_nothing_back(
    repository: Repository, clock: FakeClock
) -> None:
    feed = ManualFeed({"BTC": D(6000)})
    config = settings(strategy="outlook", outlook={"view": "bearish"}, allow_spot_trades=True)
    daemon, venue = await open_daemon(config, repository, clock, feed)
    for number in (1, 2):
        clock.advance(5)
        await cycle(daemon, number)
    assert await spot_and_short(venue) == (D(5), D(5))

    await repository.set_pair_target("BTC", None, "neutral", "target set to outlook neutral")
    clock.advance(5)
    await cycle(daemon, 3)
    assert await spot_and_short(venue) == (D(5), D("3.5"))  # no buy-back
    assert "sell_down_reference" not in (await last_inputs(repository))["strategy"]

    # A new bearish view takes a new reference: the spot held now.
    await repository.set_pair_target("BTC", None, "bearish", "target set to outlook bearish")
    for number in (4, 5):
        clock.advance(5)
        await cycle(daemon, number)
    assert await spot_and_short(venue) == (D("2.5"), D("2.5"))


async def test_a_restart_mid_sell_down_resumes_from_the_stored_reference(
    repository: Repository, clock: FakeClock
) -> None:
    feed = ManualFeed({"BTC": D(6000)})
    # 12000 per order: the sale of 5 BTC at 6000 takes three cycles (2, 2, 1).
    config = settings(
        strategy="outlook",
        outlook={"view": "bearish"},
        allow_spot_trades=True,
        max_order_notional="12000",
    )
    daemon, venue = await open_daemon(config, repository, clock, feed)
    clock.advance(5)
    await cycle(daemon, 1)
    # 2 BTC sold, and 2 of the 8 left hedged beside it (12000 per order too).
    assert await spot_and_short(venue) == (D(8), D(2))
    reasons = [d.summary for d in await repository.audit_events("BTC", "decision", None, None)]
    assert any("the rest in later cycles" in r for r in reasons)

    # A new daemon (a restart) on the same store: it must keep the reference of 10, not
    # take the 8 held now (which would stop at 4).
    restarted = HedgeDaemon(config, repository, venue, clock)
    await restarted.start()
    for number in range(2, 9):
        clock.advance(5)
        await cycle(restarted, number)
    spot, short = await spot_and_short(venue)
    assert spot == 5
    assert short == 5
    spot_orders = [o for o in await orders(repository) if o[1] == SPOT]
    assert [o[3] for o in spot_orders] == [D(2), D(2), D(1)]
    assert len({o[0] for o in spot_orders}) == 3  # one client id per decision


async def test_a_denied_spot_sell_does_not_hold_the_hedge_back(
    repository: Repository, clock: FakeClock
) -> None:
    feed = ManualFeed({"BTC": D(6000)})
    # Neutral first trades 7 x 6000 = 42000. Then the sale (5 x 6000 = 30000) would
    # take the day to 72000 > 65000 and is denied; the hedge of the other 3 BTC (18000,
    # to 60000) fits and goes ahead, so the spot held is fully hedged.
    config = settings(
        strategy="outlook",
        outlook={"view": "neutral"},
        allow_spot_trades=True,
        max_daily_notional="65000",
    )
    daemon, venue = await open_daemon(config, repository, clock, feed)
    await cycle(daemon, 1)
    assert await spot_and_short(venue) == (D(10), D(7))

    await repository.set_pair_target("BTC", None, "bearish", "target set to outlook bearish")
    clock.advance(5)
    await cycle(daemon, 2)
    assert await spot_and_short(venue) == (D(10), D(10))
    summary = (await last_inputs(repository))["reason"]
    assert [o[1] for o in await orders(repository)] == [PERP, PERP]
    decisions = await repository.audit_events("BTC", "decision", None, None)
    assert "spot sell denied: traded today 42000.00 + order 30000.00" in decisions[-1].summary
    assert "outlook bearish: sell 5 BTC spot" in summary
