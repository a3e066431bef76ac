"""The backtest loop: the daemon's cycle on the paper venue, one step per recorded row.

Each step sets the simulated clock to the row's time. The daemon runs a full cycle
(observe, decide, check, execute, record) unless it promised, after its last cycle,
that the next ones would only repeat the same holds (``HedgeDaemon.quiet_until``): then
the step only lets the paper venue settle funding and liquidations, and a change in a
spot balance or a position ends the quiet at once. Nothing sleeps; the same inputs give
the same outputs.

The database is a temporary SQLite file (migrated like any other), written only by the
cycles that run: on a quiet path that is a few hundred rows, so it costs little.

An inverse (coin-margined) pair's money is in its coin: the run values it in the quote
(USD) as it goes (``CoinLeg``), so its figures read like a linear pair's.
"""

from __future__ import annotations

import bisect
import math
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import numpy.typing as npt

from bot.backtest.path import RecordedPath
from bot.config import PairConfig, Settings
from bot.domain.inverse import coin_pnl
from bot.domain.margin_transfers import TransferState
from bot.domain.paper_account import PaperPosition
from bot.domain.symbols import Symbol
from bot.exchange.feeds import base_coin
from bot.exchange.paper import PaperAccountState, PaperVenue
from bot.service.daemon import HedgeDaemon
from bot.service.database import open_fresh
from bot.service.wiring import open_daemon
from bot.store.repository import Repository, StoredOrder

ZERO = Decimal(0)
PROGRESS_UPDATES = 200
Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.intp]


class SteppedClock:
    """The backtest's clock: it shows the time of the step being replayed, never sleeps."""

    def __init__(self, at: datetime) -> None:
        """Start at ``at``."""
        self.at = at

    def now(self) -> datetime:
        return self.at

    async def sleep(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)

    async def wait_or_stop(self, seconds: float, stop: object) -> None:
        """The backtest sets the time itself between cycles."""


@dataclass(slots=True)
class Snapshots:
    """The account's quantities after every change, by step index (float: for statistics)."""

    steps: list[int] = field(default_factory=list)
    quote: list[float] = field(default_factory=list)
    spot: dict[str, list[float]] = field(default_factory=dict)  # by pair
    # By pair, signed base qty; an inverse position's face / entry (its coins at entry:
    # its PnL in the quote is then qty x (price - entry), as a linear position's).
    perp: dict[str, list[float]] = field(default_factory=dict)
    entry: dict[str, list[float]] = field(default_factory=dict)  # by pair
    # The position's liquidation price by pair (nan: no position; inf: none liquidates it).
    liquidation: dict[str, list[float]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BacktestRun:
    """What a backtest produced, for the summary and the chart."""

    settings: Settings
    path: RecordedPath
    snapshots: Snapshots = field(repr=False)
    targets: Mapping[str, list[tuple[datetime, Decimal]]] = field(repr=False)  # by pair
    # Margin the daemon moved that the venue carried out: (when, pair, quote amount).
    margin_moves: list[tuple[datetime, str, Decimal]] = field(repr=False)
    orders: list[StoredOrder] = field(repr=False)
    cycles: int
    quiet_steps: int
    initial_balances: Mapping[str, Decimal]
    final_balances: Mapping[str, Decimal]
    fees: Decimal  # in the quote, an inverse contract's (in its coin) at its fill price
    funding: Decimal  # in the quote, an inverse contract's at the mark it was paid at
    realized_pnl: Decimal  # linear positions'
    final_unrealized: Decimal  # linear positions'
    final_prices: Mapping[str, Decimal]  # by pair (base coin price at the last step)
    liquidations: int
    # USD a contract, by inverse symbol traded (an inverse order's notional: contracts x it).
    contract_sizes: Mapping[str, Decimal] = field(default_factory=dict)
    # The coins that margin inverse contracts (``CoinLeg``), in the quote: their price
    # change while held, and the PnL of the inverse positions.
    coin_spot_pnl: Decimal = ZERO
    coin_perp_pnl: Decimal = ZERO
    coin_assets: frozenset[str] = frozenset()


def backtest_settings(settings: Settings, database_url: str) -> Settings:
    """The configuration as a backtest runs it: paper mode on its own database."""
    return settings.model_copy(update={"mode": "paper", "database_url": database_url})


def held(state: PaperAccountState) -> dict[str, Decimal]:
    """Every asset the account holds: its spot, futures and coin-margin wallets together
    (a coin-margin wallet's balance counts its locked margin, not its positions' PnL)."""
    total = dict(state.balances)
    for wallet in (state.spot_wallet or {}, state.coin_margin):
        for asset, amount in wallet.items():
            total[asset] = total.get(asset, ZERO) + amount
    return total


def _position(state: PaperAccountState, symbol: str) -> PaperPosition | None:
    """The open position on ``symbol``, linear or inverse (``qty``: face value, USD)."""
    return state.positions.get(symbol) or state.inverse_positions.get(symbol)


def _quantities(venue: PaperVenue, pairs: list[PairConfig]) -> tuple[Decimal, ...]:
    state = venue.state
    values: list[Decimal] = []
    for pair in pairs:
        values.append(held(state).get(pair.spot_base, ZERO))
        position = _position(state, pair.perp_symbol)
        values.append(position.qty if position else ZERO)
    return tuple(values)


def _snapshot(shots: Snapshots, index: int, venue: PaperVenue, settings: Settings) -> None:
    state = venue.state
    if shots.steps and shots.steps[-1] == index:
        for values in (shots.quote, *shots.spot.values(), *shots.perp.values()):
            values.pop()
        for values in (*shots.entry.values(), *shots.liquidation.values()):
            values.pop()
        shots.steps.pop()
    shots.steps.append(index)
    wallets = held(state)
    shots.quote.append(float(wallets.get(settings.paper.quote_asset, ZERO)))
    for pair in settings.pairs:
        qty, entry, liquidation = _leg(venue, pair.perp_symbol)
        shots.spot.setdefault(pair.name, []).append(float(wallets.get(pair.spot_base, ZERO)))
        shots.perp.setdefault(pair.name, []).append(qty)
        shots.entry.setdefault(pair.name, []).append(entry)
        shots.liquidation.setdefault(pair.name, []).append(liquidation)


def _leg(venue: PaperVenue, symbol: str) -> tuple[float, float, float]:
    """The position on ``symbol`` for the snapshots: its quantity in coins (an inverse
    one's at its entry price), its entry and its liquidation price (nan: no position,
    inf: a position no price liquidates, as a 1x inverse short)."""
    position = _position(venue.state, symbol)
    if position is None:
        return 0.0, 0.0, math.nan
    qty = position.qty
    if symbol in venue.state.inverse_positions:
        qty = position.qty / position.entry_price
    liquidation = venue.liquidation_price(symbol)
    return (
        float(qty),
        float(position.entry_price),
        math.inf if liquidation is None else float(liquidation),
    )


async def run_backtest(
    settings: Settings,
    path: RecordedPath,
    *,
    database_dir: Path | None = None,
    progress: Callable[[int], None] | None = None,
    step_every: bool = False,
) -> BacktestRun:
    """Replay ``path`` through the daemon's cycle on a fresh paper account.

    ``step_every`` visits every step (settling the venue at each, cycling where the daemon
    made no promise): slower, the same results; the tests compare the two."""
    with tempfile.TemporaryDirectory(prefix="hedgebot-backtest-") as tmp:
        folder = database_dir or Path(tmp)
        url = f"sqlite+aiosqlite:///{folder / 'backtest.db'}"
        return await _run(backtest_settings(settings, url), path, progress, step_every)


async def _run(
    settings: Settings,
    path: RecordedPath,
    progress: Callable[[int], None] | None,
    step_every: bool,
) -> BacktestRun:
    steps = path.steps
    clock = SteppedClock(steps[0])
    engine = await open_fresh(settings.database_url)
    try:
        repository = Repository(engine, clock)
        async with open_daemon(
            settings, clock=clock, repository=repository, feed=path.feed
        ) as built:
            venue = built.venue
            initial = held(venue.state)
            leg = CoinLeg(settings, path, venue.state)
            markets = await venue.load_markets(leg.symbols)
            shots, cycles = await _replay(
                settings, built.daemon, venue, clock, path, progress, step_every, leg
            )
            await built.daemon.stop("backtest finished")
        orders = await repository.orders()
        targets: dict[str, list[tuple[datetime, Decimal]]] = {p.name: [] for p in settings.pairs}
        for pair_name, created_at, target in await repository.decision_targets():
            targets.setdefault(pair_name, []).append((created_at, target))
        moves = [
            (t.venue_time or t.updated_at, t.pair, t.amount)
            for t in await repository.margin_transfers()
            if t.state == TransferState.DONE
        ]
        coin_funding = await repository.coin_funding_value(settings.paper.quote_asset)
    finally:
        await engine.dispose()
    state = venue.state
    final_prices, unrealized = _final_marks(settings, path, state)
    coin_fees = leg.fees(orders)
    return BacktestRun(
        settings=settings,
        path=path,
        snapshots=shots,
        targets=targets,
        margin_moves=moves,
        orders=orders,
        cycles=cycles,
        quiet_steps=len(steps) - cycles,
        initial_balances=initial,
        final_balances=held(state),
        fees=state.fees_paid + coin_fees,
        funding=state.funding_total + coin_funding,
        realized_pnl=state.realized_pnl,
        final_unrealized=unrealized,
        final_prices=final_prices,
        liquidations=len(venue.liquidations()),
        contract_sizes={s: m.contract_size for s, m in markets.items()},
        coin_spot_pnl=leg.gain,
        coin_perp_pnl=leg.perp_pnl(state, steps[-1]) + coin_fees - coin_funding,
        coin_assets=leg.coins,
    )


def _final_marks(
    settings: Settings, path: RecordedPath, state: PaperAccountState
) -> tuple[dict[str, Decimal], Decimal]:
    """Each pair's price at the last step, and the linear positions' unrealized PnL there."""
    final_prices: dict[str, Decimal] = {}
    unrealized = ZERO
    for pair in settings.pairs:
        price = path.feed.quote(pair.perp_symbol, path.steps[-1]).price
        final_prices[pair.name] = price
        position = state.positions.get(pair.perp_symbol)
        if position is not None:
            unrealized += position.qty * (price - position.entry_price)
    return final_prices, unrealized


class CoinLeg:
    """The coins that margin inverse contracts, valued in the quote as the path goes
    (Decimal, exact).

    Everything that changes the account happens at a visited step, at that step's price,
    so between two visited steps the coins held stay the same: ``gain`` (their spot PnL)
    adds the coins held x the price change since the last visited step, ``changes`` each
    change in the coins (coin PnL realized, fees, funding, a liquidation's lost margin)
    at the price of its step. The inverse positions' PnL in the quote is then
    ``changes`` and the open positions' coin PnL at the last price, less the fees and
    funding among those changes (each valued at its own fill or mark price)."""

    def __init__(self, settings: Settings, path: RecordedPath, state: PaperAccountState) -> None:
        """Start from the account's coins at the path's first step."""
        self._path = path
        self.symbols = [
            p.perp_symbol for p in settings.pairs if Symbol.parse(p.perp_symbol).inverse
        ]
        # Each coin that margins an inverse contract, and one such contract (its price).
        self._by_coin = {base_coin(symbol): symbol for symbol in reversed(self.symbols)}
        wallets = held(state)
        self._held = {coin: wallets.get(coin, ZERO) for coin in self._by_coin}
        self._price = {coin: self._at(coin, path.steps[0]) for coin in self._by_coin}
        self.gain = ZERO
        self.changes = ZERO

    @property
    def coins(self) -> frozenset[str]:
        return frozenset(self._by_coin)

    def _at(self, coin: str, at: datetime) -> Decimal:
        return self._path.feed.quote(self._by_coin[coin], at).price

    def visit(self, at: datetime, state: PaperAccountState) -> None:
        """The step at ``at`` was visited (its cycle or settlement done)."""
        wallets = held(state)
        for coin in self._by_coin:
            price, now = self._at(coin, at), wallets.get(coin, ZERO)
            self.gain += self._held[coin] * (price - self._price[coin])
            self.changes += (now - self._held[coin]) * price
            self._held[coin], self._price[coin] = now, price

    def fees(self, orders: list[StoredOrder]) -> Decimal:
        """The inverse orders' fees (in the coin) at their fill price, in the quote."""
        inverse = [o for o in orders if o.symbol in self.symbols]
        return sum((o.fee * (o.average_price or ZERO) for o in inverse), ZERO)

    def perp_pnl(self, state: PaperAccountState, at: datetime) -> Decimal:
        """``changes`` and the open inverse positions' coin PnL at ``at``, in the quote."""
        open_pnl = ZERO
        for position in state.inverse_positions.values():
            price = self._path.feed.quote(position.symbol, at).price
            open_pnl += coin_pnl(position.qty, position.entry_price, price) * price
        return self.changes + open_pnl


async def _replay(
    settings: Settings,
    daemon: HedgeDaemon,
    venue: PaperVenue,
    clock: SteppedClock,
    path: RecordedPath,
    progress: Callable[[int], None] | None,
    step_every: bool,
    leg: CoinLeg,
) -> tuple[Snapshots, int]:
    """Step through ``path``: a cycle where the daemon made no promise, else a settle;
    returns the snapshots and how many cycles ran."""
    steps = path.steps
    pairs = list(settings.pairs)
    shots = Snapshots()
    # A unified account's liquidation price of one coin holds the other coins' prices
    # still: with several coins moving, only visiting every step is exact.
    unified_coins = settings.paper.account == "unified" and len(coins_of(settings)) > 1
    stepper = _Stepper(path, step_every or unified_coins, settings.risk.min_liquidation_distance)
    cycles = 0
    seen: tuple[Decimal, ...] = ()
    index = 0
    last = len(steps) - 1
    next_report = 0
    quiet_until: datetime | None = None
    while True:
        at = clock.at = steps[index]
        if progress is not None and index >= next_report:
            progress(index)
            next_report = index + max(1, len(steps) // PROGRESS_UPDATES)
        cycle_now = (
            quiet_until is None
            or at >= quiet_until
            or index == last
            or stepper.guard_due(index, venue)
        )
        if not cycle_now and venue.settle_due():
            # Funding paid (the balance moved) or a liquidation (the hedge moved too).
            cycle_now = _quantities(venue, pairs) != seen
            if not cycle_now:
                _snapshot(shots, index, venue, settings)
        if cycle_now:
            cycles += 1
            await daemon.run_cycle(cycles)
            quiet_until = daemon.quiet_until()
            seen = _quantities(venue, pairs)
            _snapshot(shots, index, venue, settings)
        leg.visit(at, venue.state)
        if index == last:
            break
        index = stepper.next_step(index + 1, quiet_until, venue)
    if progress is not None:
        progress(len(steps))
    return shots, cycles


class _Stepper:
    """Finds the next step at which anything can happen.

    Between two such steps the daemon promised to repeat its holds, no funding falls due
    and no price comes within the liquidation guard's distance of a liquidation price
    (where the daemon would act instead of holding), so those steps are passed over.
    Prices are compared as floats with a margin, so a step that only might qualify is
    still visited (the daemon and the venue then check in Decimal)."""

    MARGIN = 1e-9

    def __init__(self, path: RecordedPath, step_every: bool, guard_distance: Decimal) -> None:
        self._steps = path.steps
        self._path = path
        self._every = step_every
        self._guard = float(guard_distance)

    def next_step(self, start: int, quiet_until: datetime | None, venue: PaperVenue) -> int:
        """The first step from ``start`` on that must be visited."""
        last = len(self._steps) - 1
        if self._every or quiet_until is None or start >= last:
            return start
        funding_at, triggers = venue.settle_horizon()
        until = min(quiet_until, funding_at)
        stop = min(bisect.bisect_left(self._steps, until, lo=start), last)
        for symbol, liquidation, short in triggers:
            hits = self._guard_hits(self._path.prices(symbol)[start:stop], liquidation, short)
            if len(hits):
                stop = start + int(hits[0])
        return stop

    def guard_due(self, index: int, venue: PaperVenue) -> bool:
        """Whether the price at step ``index`` may bring a position within the guard's
        distance of its liquidation price: the daemon's cycle runs there, quiet or not,
        as the live daemon's would (its guard acts before the venue liquidates)."""
        _, triggers = venue.settle_horizon()
        return any(
            len(self._guard_hits(self._path.prices(symbol)[index : index + 1], level, short))
            for symbol, level, short in triggers
        )

    def _guard_hits(self, window: Floats, liquidation: Decimal, short: bool) -> Ints:
        """The steps of ``window`` where the guard may act on a position liquidated at
        ``liquidation``: once |mark - liquidation| / mark < distance, for a short at mark >
        liquidation / (1 + distance), for a long below liquidation / (1 - distance)."""
        if short:
            level = float(liquidation) / (1 + self._guard)
            return np.flatnonzero(window >= level * (1 - self.MARGIN))
        level = float(liquidation) / (1 - self._guard) if self._guard < 1 else math.inf
        return np.flatnonzero(window <= level * (1 + self.MARGIN))


def coins_of(settings: Settings) -> list[str]:
    """The base coins the pairs hedge, in pair order, each once."""
    coins: list[str] = []
    for pair in settings.pairs:
        coin = base_coin(pair.perp_symbol)
        if coin not in coins:
            coins.append(coin)
    return coins
