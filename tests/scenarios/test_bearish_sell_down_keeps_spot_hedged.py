"""A bearish sell-down never leaves the spot unhedged (issue 12, item 2).

The paper daemon with a fake clock: 10 BTC at 6000, first hedged by the view held before
(extremely bullish: no hedge), then bearish with spot trades allowed, which sells half of
the spot and hedges the rest. The unhedged coins are measured after every cycle of the
sale: the spot held minus the short.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from bot.clock import FakeClock
from bot.config import Settings
from bot.domain.models import Balance, OrderRequest, OrderResult, Side, Ticker
from bot.exchange.feeds import ManualFeed
from bot.exchange.gateway import OrderRejectedError
from bot.exchange.paper import PaperVenue
from bot.service.daemon import HedgeDaemon
from bot.store.repository import Repository
from bot.store.tables import OrderRow
from tests.support import builders

D = Decimal
SPOT = "BTC/USDT"
PERP = "BTC/USDT:USDT"
PRICE = D(6000)


def settings(max_order_notional: str = "1000000", **risk: Any) -> Settings:
    """10 BTC at 2x, hedged first by the extremely bullish view (no hedge)."""
    pair = builders.pair(
        leverage="2",
        min_notional="1",
        strategy="outlook",
        outlook={"view": "extremely_bullish"},
        allow_spot_trades=True,
        max_order_notional=max_order_notional,
    )
    return builders.settings([pair], risk, balances={"BTC": "10", "USDT": "100000"})


async def spot_and_short(venue: PaperVenue) -> tuple[Decimal, Decimal]:
    position = (await venue.fetch_positions([PERP])).get(PERP)
    spot = (await venue.fetch_balances())["BTC"].total
    return spot, -(position.qty if position else D(0))


async def orders(repository: Repository) -> list[tuple[str, str, Decimal, str]]:
    async with repository.engine.connect() as conn:
        rows = await conn.execute(
            select(OrderRow.symbol, OrderRow.side, OrderRow.amount, OrderRow.status).order_by(
                OrderRow.id
            )
        )
        return [(r[0], r[1], D(r[2]), r[3]) for r in rows]


async def turn_bearish(
    config: Settings, repository: Repository, clock: FakeClock, venue_class: type[PaperVenue]
) -> tuple[HedgeDaemon, PaperVenue]:
    """A daemon that ran one cycle unhedged (extremely bullish), then set to bearish."""
    daemon, venue = await builders.open_daemon(
        config, repository, clock, ManualFeed({"BTC": PRICE}), venue_class
    )
    assert not (await daemon.run_cycle(1)).errors
    assert await spot_and_short(venue) == (D(10), D(0))
    await repository.set_pair_target("BTC", None, "bearish", "target set to outlook bearish")
    return daemon, venue


async def unhedged_per_cycle(
    daemon: HedgeDaemon, venue: PaperVenue, clock: FakeClock, cycles: int
) -> list[Decimal]:
    """Run ``cycles`` cycles; the coins unhedged (spot - short) after each."""
    unhedged = []
    for number in range(2, 2 + cycles):
        clock.advance(5)
        report = await daemon.run_cycle(number)
        assert not report.errors, report.errors
        spot, short = await spot_and_short(venue)
        unhedged.append(spot - short)
    return unhedged


async def test_the_spot_kept_is_hedged_in_the_cycle_the_sell_down_starts(
    repository: Repository, clock: FakeClock
) -> None:
    daemon, venue = await turn_bearish(settings(), repository, clock, PaperVenue)
    unhedged = await unhedged_per_cycle(daemon, venue, clock, 3)
    # Before: the hedge waited for the sale: 5 BTC unhedged after the first cycle.
    assert max(unhedged) == 0, unhedged
    assert await spot_and_short(venue) == (D(5), D(5))
    # The sale and the hedge went in the same cycle, each its own order.
    assert sorted((o[0], o[1], o[2]) for o in await orders(repository)) == [
        (SPOT, "sell", D(5)),
        (PERP, "sell", D(5)),
    ]


async def test_a_sale_in_parts_hedges_what_remains_alongside_each_part(
    repository: Repository, clock: FakeClock
) -> None:
    # 6000 per order: one BTC per order, so the sale takes five parts.
    daemon, venue = await turn_bearish(settings("6000"), repository, clock, PaperVenue)
    unhedged = await unhedged_per_cycle(daemon, venue, clock, 10)
    # Before: 9, 8, 7, 6, 5 (the sale alone), then 4, 3, 2, 1, 0 (the hedge alone): 45
    # coin-cycles unhedged, fully hedged after ten cycles.
    assert unhedged == [D(8), D(6), D(4), D(2)] + [D(0)] * 6
    assert sum(unhedged) == 20
    assert await spot_and_short(venue) == (D(5), D(5))
    # The hedge covers what the sale leaves: never more than the spot, never bought back.
    assert all(o[1] == "sell" for o in await orders(repository))


class LockedSpotVenue(PaperVenue):
    """The paper venue with 8 of the BTC on spot locked (an order of the user's outside
    hedgebot): they are not free, and a spot sell above the free balance is refused."""

    locked = D(8)

    async def fetch_balances(self) -> Mapping[str, Balance]:
        balances = dict(await super().fetch_balances())
        btc = balances["BTC"]
        balances["BTC"] = replace(btc, free=max(btc.free - self.locked, D(0)))
        return balances

    async def create_order(self, request: OrderRequest) -> OrderResult:
        if request.symbol == SPOT and request.side is Side.SELL:
            free = (await self.fetch_balances())["BTC"].free
            if request.amount > free:
                raise OrderRejectedError(
                    f"insufficient balance: sell {request.amount} BTC, {free} free"
                )
        return await super().create_order(request)


async def test_the_sale_is_sized_on_the_free_spot_not_the_locked_coins(
    repository: Repository, clock: FakeClock
) -> None:
    daemon, venue = await turn_bearish(settings(), repository, clock, LockedSpotVenue)
    unhedged = await unhedged_per_cycle(daemon, venue, clock, 3)
    # Before: a sell of 5 BTC with 2 free, refused every cycle.
    spot_orders = [o for o in await orders(repository) if o[0] == SPOT]
    assert [(o[2], o[3]) for o in spot_orders] == [(D(2), "filled")]
    assert await spot_and_short(venue) == (D(8), D(8))
    assert max(unhedged) == 0, unhedged


class RefusingSpotVenue(PaperVenue):
    """The paper venue refusing every spot sell (say, the spot API key may not trade) and,
    once ``refuse_perp`` is set, every perp order too."""

    refuse_perp = False

    async def create_order(self, request: OrderRequest) -> OrderResult:
        if request.symbol == SPOT:
            raise OrderRejectedError("this API key may not trade spot")
        if self.refuse_perp:
            raise OrderRejectedError("the perp order is refused")
        return await super().create_order(request)


async def test_refused_spot_sells_do_not_pause_the_hedge(
    repository: Repository, clock: FakeClock
) -> None:
    config = settings(max_consecutive_failures=3)
    daemon, venue = await turn_bearish(config, repository, clock, RefusingSpotVenue)
    unhedged = await unhedged_per_cycle(daemon, venue, clock, 5)
    # Before: three refused spot sells paused the pair, its 10 BTC never hedged. Now the
    # first cycle hedges the 5 BTC the sell would leave; once it is refused, all of it.
    assert await repository.pair_controls() == {}
    assert unhedged == [D(5)] + [D(0)] * 4
    assert await spot_and_short(venue) == (D(10), D(10))
    refused = [o for o in await orders(repository) if o[0] == SPOT]
    # Tried at 5 s and 15 s; the third waits 20 s after the second (the back-off below).
    assert len(refused) == 2
    assert {o[3] for o in refused} == {"rejected"}


async def test_refused_spot_sells_are_retried_with_a_back_off_not_every_cycle(
    repository: Repository, clock: FakeClock
) -> None:
    daemon, venue = await turn_bearish(settings(), repository, clock, RefusingSpotVenue)
    for number in range(2, 62):  # 60 cycles of 10 s: ten minutes of a venue refusing
        clock.advance(10)
        assert not (await daemon.run_cycle(number)).errors
    # Before: 60 refused orders, one a cycle. Now the next try waits poll_interval_s x
    # 2^(n-1) after the n-th refusal in a row: tried at 10, 20, 40, 80, 160 and 320 s.
    refused = [o for o in await orders(repository) if o[0] == SPOT]
    assert len(refused) == 6
    assert await spot_and_short(venue) == (D(10), D(10))  # the hedge covers all the spot
    held = [
        e.summary
        for e in await repository.audit_events(pair="BTC", limit=500)
        if "spot sell held back" in e.summary
    ]
    assert held, "the audit says why no sale was tried"
    assert "after 6 refusals in a row; next try at " in held[-1]


async def test_refused_spot_sells_before_a_restart_do_not_count_toward_the_pause(
    repository: Repository, clock: FakeClock
) -> None:
    config = settings(max_consecutive_failures=3)
    daemon, venue = await turn_bearish(config, repository, clock, RefusingSpotVenue)
    await unhedged_per_cycle(daemon, venue, clock, 4)  # two refused spot sells (back-off)
    assert isinstance(venue, RefusingSpotVenue)
    restarted = HedgeDaemon(config, repository, venue, clock)
    await restarted.start()
    # The hedge's first refused order after the restart is its first failure, not its
    # fifth (before: the spot sells counted, and this one paused the pair).
    venue.refuse_perp = True
    await repository.set_pair_target("BTC", None, "neutral", "target set to outlook neutral")
    clock.advance(5)
    assert not (await restarted.run_cycle(10)).errors
    assert await repository.pair_controls() == {}
    assert [o[3] for o in await orders(repository) if o[0] == PERP][-1] == "rejected"


class NoSpotTickerVenue(PaperVenue):
    """The paper venue leaving the spot symbol out of its tickers answer (suspended)."""

    async def fetch_tickers(self, symbols: Iterable[str]) -> Mapping[str, Ticker]:
        return {s: t for s, t in (await super().fetch_tickers(symbols)).items() if s != SPOT}


async def test_a_spot_symbol_without_a_ticker_holds_the_sale_back_not_the_hedge(
    repository: Repository, clock: FakeClock
) -> None:
    daemon, venue = await turn_bearish(settings(), repository, clock, NoSpotTickerVenue)
    # Before: a KeyError failed the pair's cycle, and so its hedge, every cycle.
    unhedged = await unhedged_per_cycle(daemon, venue, clock, 2)
    assert await spot_and_short(venue) == (D(10), D(10))
    assert max(unhedged) == 0, unhedged
    decisions = await repository.audit_events("BTC", "decision", None, None)
    assert (
        f"spot sell not sold this cycle: no bid/ask for {SPOT} in account" in decisions[-1].summary
    )


class CountingVenue(PaperVenue):
    """The paper venue counting the tickers requests that ask for spot symbols."""

    spot_requests = 0

    async def fetch_tickers(self, symbols: Iterable[str]) -> Mapping[str, Ticker]:
        wanted = list(symbols)
        if any(":" not in s for s in wanted):
            CountingVenue.spot_requests += 1
        return await super().fetch_tickers(wanted)


async def test_a_sell_down_over_many_pairs_asks_the_spot_tickers_once_a_cycle(
    repository: Repository, clock: FakeClock
) -> None:
    coins = ["BTC", "ETH", "SOL", "XRP"]
    pairs = [
        builders.pair(
            coin,
            leverage="2",
            min_notional="1",
            strategy="outlook",
            outlook={"view": "bearish"},
            allow_spot_trades=True,
            max_order_notional="1000",  # the sale goes in parts: several cycles sell
        )
        for coin in coins
    ]
    balances = {coin: "10" for coin in coins} | {"USDT": "1000000"}
    config = builders.settings(pairs, balances=balances)
    feed = ManualFeed(dict.fromkeys(coins, PRICE))
    daemon, _ = await builders.open_daemon(config, repository, clock, feed, CountingVenue)
    for number in range(1, 4):
        CountingVenue.spot_requests = 0
        clock.advance(10)
        assert not (await daemon.run_cycle(number)).errors
        # Before: one spot tickers request per selling pair (4 a cycle).
        assert CountingVenue.spot_requests == 1, number
    spot_orders = [o for o in await orders(repository) if ":" not in o[0]]
    assert len({o[0] for o in spot_orders}) == len(coins)  # every pair sold
