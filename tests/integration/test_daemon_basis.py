"""The basis strategy in the running daemon on the paper venue: a dated future held to
expiry, closed or rolled ahead of it with reduce-only orders, its regime kept over a restart."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from bot.clock import FakeClock
from bot.config import Settings
from bot.domain.models import Ticker
from bot.exchange.feeds import FeedQuote, ManualFeed
from bot.exchange.paper import PaperVenue
from bot.service.daemon import HedgeDaemon
from bot.store.repository import Repository
from bot.store.tables import AuditEventRow, DecisionRow, OrderRow
from tests.support import builders

D = Decimal
T0 = datetime(2026, 1, 1, tzinfo=UTC)
DEC = "BTC/USDT:USDT-260215"
MAR = "BTC/USDT:USDT-260327"
DEC_EXPIRY = T0 + timedelta(days=45)
MAR_EXPIRY = T0 + timedelta(days=85)
LEAD_S = 3600


def settings(basis: dict[str, Any], basis_apr: str = "0.10") -> Settings:
    """A basis pair on the December future (March to roll to), both at ``basis_apr``."""
    pair = builders.pair(
        perp_symbol=DEC,
        leverage="1",
        min_notional="1",
        strategy="basis",
        basis={"entry_apr": "0.05", "close_before_s": LEAD_S, **basis},
    )
    markets = {
        DEC: {"expiry": DEC_EXPIRY, "basis_apr": basis_apr},
        MAR: {"expiry": MAR_EXPIRY, "basis_apr": basis_apr},
    }
    return builders.settings([pair], balances={"BTC": "2", "USDT": "200000"}, markets=markets)


class BasisVenue(PaperVenue):
    """The paper venue with a basis the test can move (the config's is fixed)."""

    basis_apr: Decimal | None = None

    def _quote(self, symbol: str, at: datetime) -> FeedQuote:
        quote = super()._quote(symbol, at)
        expiry = self._market(symbol).expiry
        if self.basis_apr is None or expiry is None:
            return quote
        spot = self._feed.quote(symbol, at).price
        left = D(max((expiry - at).total_seconds(), 0)) / D(365 * 86400)
        return FeedQuote(spot * (1 + self.basis_apr * left), quote.funding_rate, quote.timestamp)


async def open_daemon(
    config: Settings, repository: Repository, clock: FakeClock, feed: ManualFeed
) -> tuple[HedgeDaemon, BasisVenue]:
    """A started daemon on a venue whose basis the test can move."""
    return await builders.open_daemon(config, repository, clock, feed, BasisVenue)


async def cycle(daemon: HedgeDaemon, number: int) -> None:
    report = await daemon.run_cycle(number)
    assert not report.errors, report.errors


async def short(venue: PaperVenue, symbol: str) -> Decimal:
    position = (await venue.fetch_positions([symbol])).get(symbol)
    return -position.qty if position else D(0)


async def last_strategy(repository: Repository) -> dict[str, Any]:
    async with repository.engine.connect() as conn:
        row = (
            await conn.execute(
                select(DecisionRow.inputs, DecisionRow.reason)
                .order_by(DecisionRow.id.desc())
                .limit(1)
            )
        ).one()
    strategy: dict[str, Any] = row[0]["strategy"]
    strategy["reason"] = row[1]
    return strategy


async def orders(repository: Repository) -> list[tuple[str, str, bool]]:
    async with repository.engine.connect() as conn:
        rows = await conn.execute(
            select(OrderRow.symbol, OrderRow.side, OrderRow.reduce_only).order_by(OrderRow.id)
        )
        return [(r[0], r[1], r[2]) for r in rows]


async def audit_kinds(repository: Repository, kind: str) -> int:
    async with repository.engine.connect() as conn:
        rows = await conn.execute(select(AuditEventRow.id).where(AuditEventRow.kind == kind))
        return len(rows.all())


async def test_basis_above_entry_hedges_1_and_holds_when_the_basis_dips(
    repository: Repository, clock: FakeClock
) -> None:
    daemon, venue = await open_daemon(
        settings({"at_expiry": "close"}), repository, clock, ManualFeed({"BTC": D(60000)})
    )
    await cycle(daemon, 1)
    assert await short(venue, DEC) == 2  # hedge ratio 1 of the 2 BTC held
    strategy = await last_strategy(repository)
    assert (strategy["name"], strategy["regime"]) == ("basis", "carry")
    assert D(strategy["spot_price"]) == D(60000)
    assert D(strategy["future_price"]) > D(60000)
    assert D(strategy["days_to_expiry"]) == D(45)
    assert abs(D(strategy["annualized_basis"]) - D("0.10")) < D("0.0001")
    assert strategy["future_symbol"] == DEC

    venue.basis_apr = D("-0.05")  # backwardation, far below the entry threshold
    for number in (2, 3):
        clock.advance(86400)
        await cycle(daemon, number)
        assert await short(venue, DEC) == 2
    strategy = await last_strategy(repository)
    assert D(strategy["annualized_basis"]) < 0
    assert "held to expiry" in strategy["reason"]


async def test_basis_below_entry_stays_out(repository: Repository, clock: FakeClock) -> None:
    config = settings({"at_expiry": "close"}, basis_apr="0.02")
    daemon, venue = await open_daemon(config, repository, clock, ManualFeed({"BTC": D(60000)}))
    await cycle(daemon, 1)
    assert await short(venue, DEC) == 0
    assert (await last_strategy(repository))["regime"] == "flat"


async def test_close_buys_back_reduce_only_before_expiry_and_then_leaves_the_pair(
    repository: Repository, clock: FakeClock
) -> None:
    daemon, venue = await open_daemon(
        settings({"at_expiry": "close"}), repository, clock, ManualFeed({"BTC": D(60000)})
    )
    await cycle(daemon, 1)
    assert await short(venue, DEC) == 2
    clock.advance((DEC_EXPIRY - T0).total_seconds() - LEAD_S - 1)
    await cycle(daemon, 2)
    assert await short(venue, DEC) == 2  # one second before the lead time: still held
    clock.advance(2)
    await cycle(daemon, 3)
    assert await short(venue, DEC) == 0
    assert (await orders(repository))[-1] == (DEC, "buy", True)
    assert (await last_strategy(repository))["regime"] == "expired"
    clock.advance(LEAD_S)  # expired: nothing left to trade, and no error
    for number in (4, 5):
        report = await daemon.run_cycle(number)
        assert (report.errors, report.actions) == ({}, {})
    assert await audit_kinds(repository, "strategy.contracts_expired") == 1  # said once


async def test_roll_closes_the_expiring_contract_then_shorts_the_next(
    repository: Repository, clock: FakeClock
) -> None:
    config = settings({"at_expiry": "roll", "roll_to": [MAR]})
    daemon, venue = await open_daemon(config, repository, clock, ManualFeed({"BTC": D(60000)}))
    await cycle(daemon, 1)
    assert (await short(venue, DEC), await short(venue, MAR)) == (2, 0)
    venue.basis_apr = D("0.08")  # 7.1 % net of fees on March: >= entry, the roll goes on
    clock.advance((DEC_EXPIRY - T0).total_seconds() - LEAD_S / 2)
    await cycle(daemon, 2)
    assert (await short(venue, DEC), await short(venue, MAR)) == (0, 0)
    strategy = await last_strategy(repository)
    assert (strategy["future_symbol"], strategy["next_contract"]) == (DEC, MAR)
    clock.advance(10)
    await cycle(daemon, 3)
    assert (await short(venue, DEC), await short(venue, MAR)) == (0, 2)
    assert (await last_strategy(repository))["future_symbol"] == MAR
    assert (await orders(repository))[-2:] == [(DEC, "buy", True), (MAR, "sell", False)]
    clock.advance(LEAD_S)  # the December contract expires: the March one is still held
    await cycle(daemon, 4)
    assert await short(venue, MAR) == 2


async def test_the_carry_regime_survives_a_restart(
    repository: Repository, clock: FakeClock
) -> None:
    feed = ManualFeed({"BTC": D(60000)})
    daemon, venue = await open_daemon(settings({"at_expiry": "close"}), repository, clock, feed)
    await cycle(daemon, 1)
    assert await short(venue, DEC) == 2
    # restarted with a basis below entry: a fresh start would stay out, the restored carry holds
    restarted, venue = await open_daemon(
        settings({"at_expiry": "close"}, basis_apr="0.01"), repository, clock, feed
    )
    clock.advance(10)
    await cycle(restarted, 2)
    assert await short(venue, DEC) == 2
    assert (await last_strategy(repository))["prior_regime"] == "carry"


class CountingTickers(BasisVenue):
    """Counts tickers requests and the symbols each asked for."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ticker_requests: list[list[str]] = []

    async def fetch_tickers(self, symbols: Iterable[str]) -> Mapping[str, Ticker]:
        wanted = list(symbols)
        self.ticker_requests.append(wanted)
        return await super().fetch_tickers(wanted)


async def test_the_spot_price_costs_one_tickers_request_per_account_per_cycle(
    repository: Repository, clock: FakeClock
) -> None:
    config = settings({"at_expiry": "roll", "roll_to": [MAR]})
    daemon, venue = await builders.open_daemon(
        config, repository, clock, ManualFeed({"BTC": D(60000)}), CountingTickers
    )
    venue.ticker_requests = []
    await cycle(daemon, 1)
    # both live contracts in one request, the spot in one more
    assert sorted(map(sorted, venue.ticker_requests)) == [["BTC/USDT"], sorted([DEC, MAR])]


async def test_a_restart_between_closing_and_opening_a_roll_opens_the_next_contract(
    repository: Repository, clock: FakeClock
) -> None:
    feed = ManualFeed({"BTC": D(60000)})
    config = settings({"at_expiry": "roll", "roll_to": [MAR]})
    daemon, venue = await open_daemon(config, repository, clock, feed)
    await cycle(daemon, 1)
    clock.advance((DEC_EXPIRY - T0).total_seconds() - LEAD_S / 2)
    await cycle(daemon, 2)
    assert (await short(venue, DEC), await short(venue, MAR)) == (0, 0)
    # restarted between the close and the open: the roll completes (its net basis meets
    # entry_apr), on the contract restored from the last decision
    restarted, venue = await open_daemon(
        settings({"at_expiry": "roll", "roll_to": [MAR]}, basis_apr="0.08"),
        repository,
        clock,
        feed,
    )
    clock.advance(10)
    await cycle(restarted, 3)
    assert (await short(venue, DEC), await short(venue, MAR)) == (0, 2)
