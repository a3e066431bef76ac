"""The hedging loop: observe, decide, check, execute, record — for every pair, each cycle."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol, TypeVar

import structlog
from ulid import ULID

from bot.clock import Clock
from bot.config import PairConfig, Settings
from bot.domain.inflight import RecentFill, unreflected_qty
from bot.domain.liquidity import estimate_slippage, largest_amount_within
from bot.domain.margin import lowest_leverage
from bot.domain.models import (
    ZERO,
    Balance,
    Decision,
    FundingPayment,
    FundingRate,
    HedgeParams,
    Market,
    MarketStats,
    Observation,
    OrderIntent,
    OrderStatus,
    Position,
    Side,
    Ticker,
    settle_asset,
)
from bot.domain.quantize import amount_problem, ioc_limit_price, round_down
from bot.domain.rebalance import (
    decide,
    holds_while_unchanged,
    interval_slot,
    interval_start,
    wait_for_interval,
)
from bot.domain.risk import (
    RiskLimits,
    Verdict,
    check,
    check_margin_transfer,
    check_spot_sell,
    liquidation_guard,
)
from bot.domain.strategies import Target
from bot.exchange.gateway import ExchangeGateway, GatewayError
from bot.execution.executor import Execution, Executor, OrderPlan
from bot.service.basis import contract_for, live_contracts, on_contract
from bot.service.targets import TargetSource, target_inputs
from bot.store.errors import StoreUnavailable
from bot.store.instance import runs_alone
from bot.store.leases import Lease, LeaseLostError
from bot.store.repository import (
    ALL_PAIRS,
    DecisionRecord,
    PairControl,
    Repository,
    StoredFill,
    StoredOrder,
    paused_reason,
)

log = structlog.get_logger(__name__)
T = TypeVar("T")

MAX_CONCURRENT_PAIRS = 8
ORDER_BOOK_DEPTH = 50
# Leverage at start covers the hedge's margin with this much of the wallet, leaving room
# for fees and price moves.
MARGIN_HEADROOM = Decimal("0.9")
FOREVER = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class AccountSnapshot:
    """One account's state, fetched once per cycle for every pair on it."""

    balances: Mapping[str, Balance] = field(default_factory=dict)  # spot wallet
    margin: Mapping[str, Balance] = field(default_factory=dict)  # perp wallet
    positions: Mapping[str, Position] = field(default_factory=dict)
    tickers: Mapping[str, Ticker] = field(default_factory=dict)
    funding: Mapping[str, FundingRate] = field(default_factory=dict)
    spot_tickers: Mapping[str, Ticker] = field(default_factory=dict)  # basis pairs' spot


@dataclass(frozen=True, slots=True)
class Assessment:
    """What the daemon would do for a pair now, and why."""

    pair: str
    observation: Observation
    decision: Decision
    verdict: Verdict | None
    action: str  # none | order | denied | waiting
    summary: str
    order: OrderPlan | None = None
    target: Target | None = None
    add_margin: Decimal | None = None  # the liquidation guard moves this much margin in
    liquidity: Mapping[str, Any] | None = None  # the book walk, when one was made


@dataclass(slots=True)
class CycleReport:
    cycle: int
    actions: dict[str, str] = field(default_factory=dict)  # pair -> action
    errors: dict[str, str] = field(default_factory=dict)  # pair -> error
    # What the cycle saw and did, for metrics and health (bot/service/runtime.py).
    decisions: list[DecisionRecord] = field(default_factory=list)
    executions: dict[str, Execution] = field(default_factory=dict)  # pair -> order outcome
    funding: list[tuple[str, FundingPayment]] = field(default_factory=list)  # new payments
    exchange_errors: list[str] = field(default_factory=list)  # GatewayError class names
    # Pairs that paused themselves after failing orders: a failed state until resumed.
    auto_paused: dict[str, str] = field(default_factory=dict)  # pair -> reason


class CycleObserver(Protocol):
    """Told when each cycle starts and ends (metrics, health, the systemd watchdog)."""

    def cycle_started(self, cycle: int) -> None: ...

    def cycle_finished(self, report: CycleReport, duration_s: float) -> None: ...


def observation_inputs(observation: Observation) -> dict[str, Any]:
    """The observation as the audit log shows it (decimals as strings)."""
    position = observation.position
    return {
        "spot_qty": observation.spot_qty,
        "perp_qty": observation.perp_qty,
        "reported_perp_qty": observation.perp_qty - observation.unreflected_qty,
        "unreflected_qty": observation.unreflected_qty,
        "price": observation.price,
        "bid": observation.bid,
        "ask": observation.ask,
        "funding_rate": observation.funding_rate,
        "observed_at": observation.observed_at,
        "entry_price": position.entry_price if position else None,
        "liquidation_price": position.liquidation_price if position else None,
        "unrealized_pnl": position.unrealized_pnl if position else None,
    }


class HedgeDaemon:
    """Runs the cycle for every configured pair over its accounts' gateways."""

    def __init__(
        self,
        settings: Settings,
        repository: Repository,
        gateways: Mapping[str, ExchangeGateway] | ExchangeGateway,
        clock: Clock,
        executor: Executor | None = None,
        instance_id: str | None = None,
        observer: CycleObserver | None = None,
    ) -> None:
        self._settings = settings
        self._observer = observer
        self._repo = repository
        if not isinstance(gateways, Mapping):
            gateways = {pair_account: gateways for pair_account in _account_names(settings)}
        self._gateways: Mapping[str, ExchangeGateway] = gateways
        self._clock = clock
        self._executor = executor or Executor(
            repository, settle_after=timedelta(seconds=float(settings.risk.order_settle_s))
        )
        self._markets: dict[str, Market] = {}
        self._pairs: Sequence[PairConfig] = settings.pairs
        # The pairs this daemon holds the lease of this cycle (all of them for `plan`).
        self._active: Sequence[PairConfig] = settings.pairs
        self.instance_id = instance_id or default_instance_id()
        self._leases: dict[str, Lease] = {}
        self._lease_period = timedelta(seconds=settings.lease_period_s)
        # An intent is stored only with a third of the lease still ahead, and sent only
        # before the lease, as renewed, could have lapsed by this daemon's own clock.
        self._lease_margin = self._lease_period / 3
        self._leases_renewed_at = float("-inf")
        # On SQLite, and for a paper daemon, the caller holds the only-daemon lock: a
        # lease someone else holds was left by a dead process and is taken at once.
        self._alone = runs_alone(settings.database_url, settings.mode)
        self._legs = {p.name: settings.accounts_of(p) for p in self._pairs}
        # Pairs overlap their venue waits, but hundreds at once only queue on the
        # database and starve its driver thread of the GIL; a few at a time is faster.
        self._pair_slots = asyncio.Semaphore(MAX_CONCURRENT_PAIRS)
        self._markets_loaded_at = 0.0
        # Until when a pair may have fills the venue does not show yet (None: unknown,
        # as after a restart, so the store is asked).
        self._fills_watch_until: dict[str, datetime] = {}
        self._fills_cache: dict[str, list[StoredFill]] | None = None
        # Reconciliation: what the last cycle saw, and foreign orders already reported.
        self._last_seen: dict[str, tuple[Decimal, Decimal]] = {}
        self._foreign_open: dict[str, int] = {}
        self._foreign_reported: set[tuple[str, str]] = set()
        # Listing every open order is a heavy request (Binance: weight 40, two seconds of a
        # 20/s budget): at start, then once a minute. Our own orders are looked up by id
        # every cycle regardless.
        self.foreign_orders_every_s = 60.0
        self._orders_reconciled_at = float("-inf")
        self._fills_lock = asyncio.Lock()
        self._targets = TargetSource(settings, repository)
        # Risk state read once per cycle: pauses (one small query) and today's traded notional.
        self._controls: dict[str, PairControl] = {}
        self._traded_today: dict[str, Decimal] = {}
        self._failures: dict[str, int] = {}  # consecutive rejected or failed orders per pair
        self._market_stats: dict[str, tuple[datetime, MarketStats]] = {}
        # Interval rebalancing: the last interval in which each pair reached its target.
        self._interval_done: dict[str, int] = {}
        # A hold that depends on quantities and params alone is reused while they stay the
        # same, rather than decided again (see quiet_until, which the backtest relies on).
        self._held: dict[str, tuple[tuple[Any, ...], Decision]] = {}
        # Per pair, until when its last cycle's hold would repeat (absent: no promise).
        self._quiet: dict[str, datetime] = {}
        # Pairs whose spot sell was sent: their next spot change is ours, not an outside one.
        self._spot_sold: set[str] = set()
        self._finished: set[str] = set()  # basis pairs whose contracts have all expired
        self._unannounced_finished: list[PairConfig] = []  # audited by the next cycle

    def _perp_gateway(self, pair: PairConfig) -> ExchangeGateway:
        return self._gateways[self._legs[pair.name][1]]

    def _spot_gateway(self, pair: PairConfig) -> ExchangeGateway:
        return self._gateways[self._legs[pair.name][0]]

    def _gateway_of(self, pair: PairConfig, plan: OrderPlan) -> ExchangeGateway:
        """The account an order goes to: the spot account for a spot sell, else the perp's."""
        if plan.intent.symbol == pair.spot_symbol:
            return self._spot_gateway(pair)
        return self._perp_gateway(pair)

    def _spot_traded_on(self, account: str) -> list[str]:
        """Spot symbols this account sells (pairs that allow spot trades)."""
        return [
            p.spot_symbol
            for p in self._pairs
            if p.allow_spot_trades and self._legs[p.name][0] == account
        ]

    def _perps_of(
        self, account: str, pairs: Sequence[PairConfig] | None = None
    ) -> list[PairConfig]:
        chosen = self._active if pairs is None else pairs
        return [p for p in chosen if self._legs[p.name][1] == account]

    def _spots_of(self, account: str) -> list[PairConfig]:
        return [p for p in self._active if self._legs[p.name][0] == account]

    async def load_markets(self, reload: bool = False) -> None:
        """Trading rules of every perp or live dated contract (and of every spot that may be
        sold or that prices a basis), from the account that trades it."""
        now = self._clock.now()
        for account, gateway in self._gateways.items():
            symbols = [
                symbol
                for p in self._perps_of(account, self._pairs)
                for symbol in live_contracts(p, self._markets, now)
            ]
            symbols += [s for s in self._spot_traded_on(account) if s not in symbols]
            # A basis pair prices its spot leg from the spot account's ticker.
            symbols += [
                p.spot_symbol
                for p in self._pairs
                if p.strategy == "basis"
                and self._legs[p.name][0] == account
                and p.spot_symbol not in symbols
            ]
            if not symbols:
                continue
            markets = await gateway.load_markets(symbols)
            missing = [s for s in symbols if s not in markets]
            if missing:
                raise GatewayError(f"account {account} has no market {', '.join(missing)}")
            self._markets.update(markets)
        self._markets_loaded_at = time.monotonic()

    async def start(self) -> None:
        """Load markets, set leverage and margin mode per pair, record the start."""
        await self.load_markets()
        self._active = self._unfinished(self._pairs)
        self._last_seen = await self._repo.last_seen()
        await self._targets.restore(self._pairs)
        await self._targets.load_overrides()
        leverages = await self._leverages()
        # Rejections before a restart still count toward the automatic pause.
        self._failures = await self._repo.trailing_rejections(
            self._settings.risk.max_consecutive_failures
        )
        now = self._clock.now()
        for pair in self._active:
            gateway = self._perp_gateway(pair)
            for symbol in live_contracts(pair, self._markets, now):
                await gateway.set_margin_mode(symbol, pair.margin_mode)
                await gateway.set_leverage(symbol, leverages[pair.name])
        await self._repo.append_audit(
            "daemon.start",
            f"hedgebot started in {self._settings.mode} mode with "
            f"{len(self._pairs)} pair(s): {', '.join(p.name for p in self._pairs)}",
            {
                "mode": self._settings.mode,
                "instance": self.instance_id,
                "accounts": sorted(self._gateways),
                "pairs": [p.name for p in self._pairs],
                "poll_interval_s": self._settings.poll_interval_s,
            },
        )
        log.info("daemon.started", mode=self._settings.mode, pairs=len(self._pairs))

    async def claim_pairs(self) -> list[str]:
        """Renew, take over and give back pair leases; returns the pairs newly held."""
        names = sorted(p.name for p in self._pairs)
        held, plan, live = await self._repo.claim_leases(
            self.instance_id, names, self._lease_period, alone=self._alone
        )
        self._leases_renewed_at = time.monotonic()
        self._leases = held
        self._active = self._unfinished([p for p in self._pairs if p.name in held])
        taken = [t.pair for t in plan.take]
        if taken:
            # Another daemon may have traded these since this one last did: start afresh
            # from what the store says.
            seen = await self._repo.last_seen()
            for name in taken:
                self._fills_watch_until.pop(name, None)
                if name in seen:
                    self._last_seen[name] = seen[name]
                else:
                    self._last_seen.pop(name, None)
            await self._targets.restore([p for p in self._pairs if p.name in taken])
            log.info("lease.acquired", pairs=taken, live_daemons=live)
        if plan.give_back:
            log.info("lease.released", pairs=plan.give_back, live_daemons=live)
        return taken

    async def _leverages(self) -> dict[str, Decimal]:
        """Per pair, the lowest leverage whose margin on the hedge (target x spot, or the
        position if larger) fits in its perp wallet; the pair's ``leverage`` is the cap."""
        snapshots = await self.observe()
        now = self._clock.now()
        result: dict[str, Decimal] = {}
        for account in self._gateways:
            pairs = self._perps_of(account)
            needs: dict[str, Decimal] = {}
            for pair in pairs:
                observation = self.observe_pair(
                    self._contract_pair(pair, snapshots, now)[0], snapshots
                )
                hedge = max(
                    self._targets.highest_ratio(pair) * observation.spot_qty,
                    abs(observation.perp_qty),
                )
                settle = settle_asset(pair.perp_symbol)
                needs[settle] = needs.get(settle, ZERO) + hedge * observation.price
            for pair in pairs:
                settle = settle_asset(pair.perp_symbol)
                wallet = snapshots[account].margin.get(settle)
                available = wallet.total * MARGIN_HEADROOM if wallet else ZERO
                result[pair.name] = lowest_leverage(needs[settle], available, pair.leverage)
        return result

    async def stop(self, reason: str) -> None:
        """Give back the leases and record the stop; the caller closes venues and database."""
        try:
            await self._repo.release_leases(self.instance_id)
        except Exception as exc:
            # They lapse by themselves after the lease period.
            log.warning("lease.release_failed", error=str(exc))
        self._leases = {}
        await self._repo.append_audit(
            "daemon.stop", f"hedgebot stopped: {reason}", {"reason": reason}
        )
        log.info("daemon.stopped", reason=reason)

    async def _observe_account(self, account: str) -> AccountSnapshot:
        gateway = self._gateways[account]
        now = self._clock.now()
        perps = [
            symbol
            for p in self._perps_of(account)
            for symbol in live_contracts(p, self._markets, now)
        ]
        balances: Mapping[str, Balance] = {}
        if self._spots_of(account):
            balances = await gateway.fetch_balances()
        # Basis pairs price their spot leg: one more tickers request, only when there are any.
        basis_spots = sorted(
            {p.spot_symbol for p in self._spots_of(account) if p.strategy == "basis"}
        )
        spot_tickers = await gateway.fetch_tickers(basis_spots) if basis_spots else {}
        if not perps:
            return AccountSnapshot(balances=balances, spot_tickers=spot_tickers)
        margin = await gateway.fetch_margin_balances()
        positions = await gateway.fetch_positions(perps)
        tickers = await gateway.fetch_tickers(perps)
        funding = await gateway.fetch_funding_rates(perps)
        return AccountSnapshot(balances, margin, positions, tickers, funding, spot_tickers)

    async def observe(self) -> dict[str, AccountSnapshot]:
        """One snapshot per account (its requests grow with accounts, not pairs)."""
        names = list(self._gateways)
        snapshots = await asyncio.gather(*(self._observe_account(n) for n in names))
        return dict(zip(names, snapshots, strict=True))

    async def _each_account(
        self, work: Callable[[str, ExchangeGateway], Awaitable[list[T]]]
    ) -> list[T]:
        """Run ``work`` for every account at once, each waiting only on its own limiter (one
        after the other, ten accounts' heavy requests took ten times as long); the first
        failure is raised once all have finished."""
        results = await asyncio.gather(
            *(work(account, gateway) for account, gateway in self._gateways.items()),
            return_exceptions=True,
        )
        collected: list[T] = []
        for result in results:
            if isinstance(result, BaseException):
                raise result
            collected.extend(result)
        return collected

    async def _collect_funding(self) -> list[tuple[str, FundingPayment]]:
        """Store the funding payments the venues report; returns the new ones."""
        return await self._each_account(self._collect_funding_of)

    async def _collect_funding_of(
        self, account: str, gateway: ExchangeGateway
    ) -> list[tuple[str, FundingPayment]]:
        by_symbol = {p.perp_symbol: p.name for p in self._perps_of(account)}
        if not by_symbol:
            return []
        payments = await gateway.fetch_funding_payments(list(by_symbol))
        # One transaction for all of them (many after an outage, or in a backtest).
        return await self._repo.record_fundings(
            account, [(by_symbol[p.symbol], p) for p in payments if p.symbol in by_symbol]
        )

    async def run_cycle(self, cycle: int) -> CycleReport:
        """One cycle over every pair; one pair's failure does not stop the others."""
        report = CycleReport(cycle)
        self._fills_cache = None
        self._quiet.clear()
        await self.claim_pairs()
        await self._audit_finished()
        if not self._active:
            log.info("cycle.no_pairs_held", live_pairs=len(self._pairs))
            return report
        structlog.contextvars.bind_contextvars(cycle=cycle)
        try:
            if time.monotonic() - self._markets_loaded_at >= self._settings.markets_refresh_s:
                await self.load_markets(reload=True)
            # Resolve orders of unknown outcome first, so the snapshot includes their fills.
            now = self._clock.now()
            pending = await self._executor.resolve_unresolved(
                self._gateways, now, skip_pairs={p.name for p in self._pairs} - set(self._leases)
            )
            snapshots = await self.observe()
            if time.monotonic() - self._orders_reconciled_at >= self.foreign_orders_every_s:
                await self._reconcile_orders()
                self._orders_reconciled_at = time.monotonic()
            report.funding = await self._collect_funding()
            await self._targets.load_overrides()
        except GatewayError as exc:
            report.exchange_errors.append(type(exc).__name__)
            reason = f"observing the venue failed: {exc}"
            log.warning("cycle.observe_failed", error=str(exc))
            await self._repo.append_audit("cycle.observe_failed", reason, {"error": str(exc)})
            report.errors = {p.name: reason for p in self._active}
            return report
        finally:
            structlog.contextvars.unbind_contextvars("cycle")
        now = self._clock.now()
        active = self._active
        await self._load_risk_state(now)
        report.auto_paused = self._auto_paused()
        assessed = await asyncio.gather(
            *(
                self._guarded(pair, cycle, self._record_of(pair, snapshots, cycle, pending, now))
                for pair in active
            ),
            return_exceptions=True,
        )
        holds: list[tuple[PairConfig, DecisionRecord]] = []
        orders: list[tuple[PairConfig, DecisionRecord, OrderPlan]] = []
        for pair, outcome in zip(active, assessed, strict=True):
            if isinstance(outcome, asyncio.CancelledError):
                raise outcome
            if isinstance(outcome, BaseException):
                report.errors[pair.name] = f"{type(outcome).__name__}: {outcome}"
                if isinstance(outcome, GatewayError):
                    report.exchange_errors.append(type(outcome).__name__)
                continue
            record, plan = outcome
            report.decisions.append(record)
            if plan is None:
                holds.append((pair, record))
            else:
                orders.append((pair, record, plan))
        await self._audit_outside_changes(
            [(pair, record) for pair, record in holds] + [(p, r) for p, r, _ in orders], now
        )
        # Pairs that send nothing are recorded together: one commit per cycle, not per pair.
        try:
            await self._repo.record_decisions([record for _, record in holds])
        except Exception as exc:
            log.exception("decisions.write_failed", error=str(exc))
            for pair, _ in holds:
                report.errors[pair.name] = f"{type(exc).__name__}: {exc}"
            holds = []
            self._quiet.clear()
        for pair, record in holds:
            report.actions[pair.name] = record.action
            log.info(
                "pair.decided",
                pair=pair.name,
                cycle=cycle,
                decision_id=record.decision_id,
                action=record.action,
                ratio=_fmt(record.decision.ratio),
                reason=record.summary,
            )
        # Each account's limiter paces its own orders: taking the accounts in turn keeps
        # the few pair slots spread over them rather than all queued behind one account.
        orders = _round_robin(orders, lambda order: self._legs[order[0].name][1])
        executed = await asyncio.gather(
            *(
                self._guarded(pair, cycle, self._send(pair, record, plan))
                for pair, record, plan in orders
            ),
            return_exceptions=True,
        )
        for (pair, _, _), sent in zip(orders, executed, strict=True):
            if isinstance(sent, asyncio.CancelledError):
                raise sent
            if isinstance(sent, BaseException):
                report.errors[pair.name] = f"{type(sent).__name__}: {sent}"
                if isinstance(sent, GatewayError):
                    report.exchange_errors.append(type(sent).__name__)
            elif isinstance(sent, str):
                report.actions[pair.name] = sent
            else:
                report.actions[pair.name] = f"order {sent.status.value}"
                report.executions[pair.name] = sent
        return report

    async def _audit_finished(self) -> None:
        """Say once that a basis pair's last contract has expired and it is no longer run."""
        while self._unannounced_finished:
            pair = self._unannounced_finished.pop(0)
            await self._repo.append_audit(
                "strategy.contracts_expired",
                f"every contract of pair {pair.name} has expired "
                f"({', '.join(pair.contract_symbols)}): nothing left to hedge; add roll_to "
                "contracts or remove the pair",
                {"contracts": list(pair.contract_symbols)},
                pair=pair.name,
            )

    async def _guarded(self, pair: PairConfig, cycle: int, work: Awaitable[T]) -> T:
        """Run one pair's step with its log context; audit and re-raise its failure."""
        structlog.contextvars.bind_contextvars(pair=pair.name, cycle=cycle)
        try:
            async with self._pair_slots:
                return await work
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("pair.failed", error=str(exc))
            try:
                await self._repo.append_audit(
                    "pair.error",
                    f"cycle {cycle} failed: {type(exc).__name__}: {exc}",
                    {"error": str(exc), "type": type(exc).__name__, "cycle": cycle},
                    pair=pair.name,
                )
            except Exception as audit_exc:
                log.error("audit.write_failed", error=str(audit_exc))
            raise

    async def _reconcile_orders(self) -> None:
        """Open orders at each exchange that the store never made: leave them, report them."""
        await self._each_account(self._reconcile_orders_of)

    async def _reconcile_orders_of(self, account: str, gateway: ExchangeGateway) -> list[None]:
        now = self._clock.now()
        pairs = {
            symbol: p.name
            for p in self._perps_of(account)
            for symbol in live_contracts(p, self._markets, now)
        }
        if not pairs:
            return []
        open_orders = await gateway.fetch_open_orders(list(pairs))
        known = await self._repo.known_client_order_ids(
            [o.client_order_id for o in open_orders if o.client_order_id]
        )
        counts = dict.fromkeys(pairs.values(), 0)
        for order in open_orders:
            if order.client_order_id and order.client_order_id in known:
                continue  # ours: resolve_unresolved follows it
            pair = pairs[order.symbol]
            counts[pair] += 1
            key = (account, order.exchange_order_id or order.client_order_id)
            if key in self._foreign_reported:
                continue
            self._foreign_reported.add(key)
            await self._repo.append_audit(
                "reconcile.foreign_order",
                f"open order {order.exchange_order_id} ({order.side.value} {order.amount} "
                f"{order.symbol}, client id {order.client_order_id or '-'}) was not placed "
                "by hedgebot: left alone",
                {
                    "account": account,
                    "exchange_order_id": order.exchange_order_id,
                    "client_order_id": order.client_order_id,
                    "side": order.side.value,
                    "amount": order.amount,
                    "filled": order.filled,
                },
                pair=pair,
            )
        self._foreign_open.update(counts)
        return []

    async def _audit_outside_changes(
        self, records: Sequence[tuple[PairConfig, DecisionRecord]], now: datetime
    ) -> None:
        """Say when the spot balance or the position moved without an order of ours."""
        for pair, record in records:
            observation = record.observation
            reported = observation.perp_qty - observation.unreflected_qty
            last = self._last_seen.get(pair.name)
            self._last_seen[pair.name] = (reported, observation.spot_qty)
            if last is None:
                continue
            last_perp, last_spot = last
            # A spot sell sent last cycle shows now: that change is ours, not an outside one.
            ours = pair.name in self._spot_sold
            self._spot_sold.discard(pair.name)
            if observation.spot_qty != last_spot and not ours:
                await self._repo.append_audit(
                    "reconcile.spot_changed",
                    f"spot {pair.spot_base} went from {last_spot} to {observation.spot_qty} "
                    "without a spot order of hedgebot's: the hedge follows",
                    {"before": last_spot, "after": observation.spot_qty},
                    pair=pair.name,
                )
            watch_until = self._fills_watch_until.get(pair.name)
            ours_settled = watch_until is not None and now > watch_until
            if reported != last_perp and ours_settled:
                await self._repo.append_audit(
                    "reconcile.position_changed",
                    f"{pair.perp_symbol} position went from {last_perp} to {reported} without "
                    "an order of hedgebot's (a manual trade, a liquidation or ADL)",
                    {"before": last_perp, "after": reported},
                    pair=pair.name,
                )

    def observe_pair(
        self, pair: PairConfig, snapshots: Mapping[str, AccountSnapshot]
    ) -> Observation:
        """The pair's slice of its accounts' snapshots (before in-flight fills)."""
        spot_account, perp_account = self._legs[pair.name]
        perp = snapshots[perp_account]
        ticker = perp.tickers[pair.perp_symbol]
        spot = snapshots[spot_account].balances.get(pair.spot_base)
        position = perp.positions.get(pair.perp_symbol)
        funding = perp.funding.get(pair.perp_symbol)
        spot_ticker = snapshots[spot_account].spot_tickers.get(pair.spot_symbol)
        market = self._markets.get(pair.perp_symbol)
        return Observation(
            pair=pair.name,
            spot_symbol=pair.spot_symbol,
            perp_symbol=pair.perp_symbol,
            spot_qty=spot.total if spot else ZERO,
            perp_qty=position.qty if position else ZERO,
            price=position.mark_price if position and position.mark_price else ticker.mid,
            bid=ticker.bid,
            ask=ticker.ask,
            funding_rate=funding.rate if funding else ZERO,
            observed_at=ticker.timestamp,
            position=position,
            funding_interval_hours=funding.interval_hours if funding else None,
            spot_price=spot_ticker.mid if spot_ticker else None,
            expiry=market.expiry if market else None,
        )

    async def _with_unreflected_fills(
        self, pair: PairConfig, observation: Observation, now: datetime
    ) -> Observation:
        settle = timedelta(seconds=float(self._settings.risk.fill_settle_s))
        watch_until = self._fills_watch_until.get(pair.name)
        if settle <= timedelta(0) or (watch_until is not None and now > watch_until):
            # No order of ours within the settle window: nothing can be unreflected.
            return observation
        market = self._markets[pair.perp_symbol]
        stored = (await self._recent_fills(now, settle)).get(pair.name, [])
        if watch_until is None:
            latest = max((f.filled_at for f in stored), default=now - settle)
            self._fills_watch_until[pair.name] = latest + settle
        fills = [
            RecentFill(
                delta_qty=(f.amount if f.side == Side.BUY.value else -f.amount)
                * market.contract_size,
                filled_at=f.filled_at,
                position_before=f.position_before,
            )
            for f in stored
            if f.symbol == pair.perp_symbol  # a spot sell does not move the position
        ]
        position = observation.position
        extra = unreflected_qty(
            observation.perp_qty,
            position.updated_at if position else None,
            fills,
            now,
            settle,
        )
        if extra == ZERO:
            return observation
        return replace(observation, perp_qty=observation.perp_qty + extra, unreflected_qty=extra)

    async def _recent_fills(self, now: datetime, settle: timedelta) -> dict[str, list[StoredFill]]:
        # One query per cycle for every pair that may need it, not one per pair.
        # Cleared at the start of each cycle (and plan), filled by the first pair that asks.
        async with self._fills_lock:
            if self._fills_cache is None:
                by_pair: dict[str, list[StoredFill]] = {}
                for fill in await self._repo.recent_fills(None, now - settle):
                    by_pair.setdefault(fill.pair, []).append(fill)
                self._fills_cache = by_pair
            return self._fills_cache

    def _risk_limits(
        self, pair: PairConfig, snapshots: Mapping[str, AccountSnapshot]
    ) -> RiskLimits:
        perp = snapshots[self._legs[pair.name][1]]
        settle = settle_asset(pair.perp_symbol)
        balance = perp.margin.get(settle)
        unrealized = sum((p.unrealized_pnl for p in perp.positions.values()), ZERO)
        risk = self._settings.risk
        return RiskLimits(
            max_data_age_s=risk.max_data_age_s,
            max_leverage=risk.max_leverage,
            pair_leverage=pair.leverage,
            kill_switch=risk.kill_switch,
            max_order_notional=pair.max_order_notional,
            account_equity=(balance.total + unrealized) if balance else None,
            paused=paused_reason(self._controls, pair.name),
            max_position_notional=pair.max_position_notional,
            max_daily_notional=pair.max_daily_notional,
            daily_traded_notional=self._traded_today.get(pair.name, ZERO)
            * self._markets[pair.perp_symbol].contract_size,
            min_liquidation_distance=risk.min_liquidation_distance,
        )

    async def _load_risk_state(self, now: datetime) -> None:
        """Pauses (one small query, so `hedgebot pause` acts on the next cycle) and, when a
        pair caps it, this UTC day's traded notional per pair."""
        self._controls = await self._repo.pair_controls()
        if any(p.max_daily_notional is not None for p in self._pairs):
            midnight = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
            self._traded_today = await self._repo.traded_notional_since(midnight)

    def _auto_paused(self) -> dict[str, str]:
        """The held pairs that paused themselves (after failed orders), with the reason."""
        result: dict[str, str] = {}
        for pair in self._active:
            for key in (pair.name, ALL_PAIRS):
                control = self._controls.get(key)
                if control is not None and control.paused and control.source == "auto":
                    result[pair.name] = control.reason
        return result

    def _order_plan(self, pair: PairConfig, intent: OrderIntent) -> OrderPlan:
        if pair.order_type == "market":
            return OrderPlan(intent=intent, order_type="market", price=None)
        market = self._markets[intent.symbol]
        price = ioc_limit_price(
            intent.side, intent.reference_price, pair.max_slippage_bps, market.price_step
        )
        return OrderPlan(intent=intent, order_type="limit", price=price)

    async def assess(
        self,
        pair: PairConfig,
        snapshots: Mapping[str, AccountSnapshot],
        pending: Sequence[StoredOrder],
        now: datetime,
    ) -> Assessment:
        """Observe, decide and check one pair; sends nothing."""
        pair, next_contract = self._contract_pair(pair, snapshots, now)
        observation = await self._with_unreflected_fills(
            pair, self.observe_pair(pair, snapshots), now
        )
        target = await self._target_for(pair, observation, now, next_contract)
        params = HedgeParams(
            target_ratio=target.ratio,
            band=pair.band,
            min_notional=pair.min_notional,
            max_order_notional=pair.max_order_notional,
        )
        decision = self._decide(pair, observation, params, now)
        decision = replace(decision, reason=f"{target.reason}; {decision.reason}")
        spot_leg = await self._spot_sell_step(
            pair, observation, decision, target, snapshots, pending, now
        )
        if spot_leg is not None and spot_leg.action != "denied":
            return replace(spot_leg, target=target)
        assessment = await self._check_step(pair, observation, decision, snapshots, pending, now)
        if spot_leg is not None:
            # A denied sell-down must not leave the spot unhedged: the hedge goes ahead.
            assessment = replace(
                assessment, summary=f"spot sell {spot_leg.summary}; {assessment.summary}"
            )
        return replace(assessment, target=target)

    async def _spot_sell_step(
        self,
        pair: PairConfig,
        observation: Observation,
        decision: Decision,
        target: Target,
        snapshots: Mapping[str, AccountSnapshot],
        pending: Sequence[StoredOrder],
        now: datetime,
    ) -> Assessment | None:
        """The bearish sell-down's spot sell, which goes before the hedge (one order per
        pair and cycle; the hedge follows next cycle from the new balance). None when there
        is nothing worth selling, or the liquidation guard must act first."""
        if not pair.allow_spot_trades or target.spot_sell_qty <= ZERO:
            return None
        risk = self._settings.risk
        guard = liquidation_guard(
            observation,
            risk.min_liquidation_distance,
            risk.on_liquidation_risk,
            self._markets[pair.perp_symbol],
            self._free_margin(pair, snapshots),
        )
        if guard is not None:
            return None
        market = self._markets[pair.spot_symbol]
        tickers = await self._spot_gateway(pair).fetch_tickers([pair.spot_symbol])
        price = tickers[pair.spot_symbol].bid
        if price <= ZERO:
            return None
        # Above max_order_notional the sale goes in parts, one per cycle.
        amount = round_down(
            min(target.spot_sell_qty, pair.max_order_notional / price), market.amount_step
        )
        if amount_problem(amount, price, market, pair.min_notional) is not None:
            return None  # dust: not worth an order; the hedge covers it
        intent = OrderIntent(pair.spot_symbol, Side.SELL, amount, False, price)
        rest = "" if amount == target.spot_sell_qty else " (the rest in later cycles)"
        reason = (
            f"{target.reason}; selling {amount:f} {pair.spot_base} on {pair.spot_symbol} "
            f"first{rest}, the hedge follows next cycle"
        )
        decision = replace(decision, action="order", reason=reason, intent=intent)
        if pending:
            summary = f"{reason}; waiting: order {pending[0].client_order_id} is not resolved yet"
            return Assessment(pair.name, observation, decision, None, "waiting", summary)
        verdict = check_spot_sell(intent, observation, self._risk_limits(pair, snapshots), now)
        if not verdict.approved:
            summary = f"denied: {verdict.reason}"
            return Assessment(pair.name, observation, decision, verdict, "denied", summary)
        plan = self._order_plan(pair, intent)
        if plan.price is not None:
            reason += f"; IOC limit {plan.price}"
        return Assessment(pair.name, observation, decision, verdict, "order", reason, plan)

    async def _check_step(
        self,
        pair: PairConfig,
        observation: Observation,
        decision: Decision,
        snapshots: Mapping[str, AccountSnapshot],
        pending: Sequence[StoredOrder],
        now: datetime,
    ) -> Assessment:
        """Liquidation guard first, then the risk gate, the market and the book."""
        risk = self._settings.risk
        market = self._markets[pair.perp_symbol]
        limits = self._risk_limits(pair, snapshots)
        guard = liquidation_guard(
            observation,
            risk.min_liquidation_distance,
            risk.on_liquidation_risk,
            market,
            self._free_margin(pair, snapshots),
        )
        if guard is not None:
            # Before anything else: the guard's action replaces the rebalance.
            decision = replace(
                decision,
                action="order" if guard.intent is not None else "none",
                reason=f"liquidation guard: {guard.reason}",
                intent=guard.intent,
            )
        verdict: Verdict | None = None
        plan: OrderPlan | None = None
        add_margin: Decimal | None = None
        liquidity: dict[str, Any] | None = None
        action = decision.action
        summary = decision.reason
        if guard is not None and guard.add_margin is not None:
            verdict = check_margin_transfer(observation, limits, now)
            if verdict.approved:
                action, add_margin = "add_margin", guard.add_margin
            else:
                action, summary = "denied", f"{summary}; denied: {verdict.reason}"
        elif decision.intent is not None and pending:
            action = "waiting"
            summary = (
                f"{decision.reason}; waiting: order {pending[0].client_order_id} "
                "is not resolved yet"
            )
        elif decision.intent is not None:
            intent = decision.intent
            verdict = check(intent, observation, limits, now, market.contract_size)
            if verdict.approved and not intent.reduce_only:
                verdict = await self._market_gate(pair, now) or verdict
            sent: OrderIntent | None = intent
            if verdict.approved and guard is None:
                # The guard's order is urgent: it is not held back for a thin book.
                sent, liquidity, note = await self._liquidity_step(pair, intent, market)
                if note:
                    summary += f"; {note}"
            if not verdict.approved:
                action = "denied"
                summary = f"denied: {verdict.reason}"
                if guard is not None:
                    summary = f"{decision.reason}; denied: {verdict.reason}"
            elif sent is None:
                action = "liquidity_wait"
            else:
                action = "order"
                plan = self._order_plan(pair, sent)
                if plan.price is not None:
                    summary += f"; IOC limit {plan.price}"
        if observation.unreflected_qty != ZERO:
            summary += f" (counting {observation.unreflected_qty} filled, not yet in the position)"
        return Assessment(
            pair.name,
            observation,
            decision,
            verdict,
            action,
            summary,
            plan,
            add_margin=add_margin,
            liquidity=liquidity,
        )

    async def _target_for(
        self,
        pair: PairConfig,
        observation: Observation,
        now: datetime,
        next_contract: str | None = None,
    ) -> Target:
        """The pair's target ratio from its strategy (and any run-time set-target)."""
        return await self._targets.target_for(
            pair, observation, self._perp_gateway(pair), now, next_contract=next_contract
        )

    def _contract_pair(
        self, pair: PairConfig, snapshots: Mapping[str, AccountSnapshot], now: datetime
    ) -> tuple[PairConfig, str | None]:
        """A basis pair on the dated future it trades now (and the next, for a roll)."""
        if pair.strategy != "basis":
            return pair, None
        positions = snapshots[self._legs[pair.name][1]].positions
        return contract_for(pair, self._markets, positions, now)

    def _unfinished(self, pairs: Sequence[PairConfig]) -> list[PairConfig]:
        """The pairs with a contract left to trade: a basis pair whose every contract has
        expired is done (its position settled at expiry) and is skipped, said once."""
        now = self._clock.now()
        kept = []
        for pair in pairs:
            if live_contracts(pair, self._markets, now):
                kept.append(pair)
            elif pair.name not in self._finished:
                self._finished.add(pair.name)
                self._unannounced_finished.append(pair)
                log.warning(
                    "pair.contracts_expired",
                    pair=pair.name,
                    contracts=list(pair.contract_symbols),
                    hint="add roll_to contracts or remove the pair",
                )
        return kept

    def _free_margin(
        self, pair: PairConfig, snapshots: Mapping[str, AccountSnapshot]
    ) -> Decimal | None:
        balance = snapshots[self._legs[pair.name][1]].margin.get(settle_asset(pair.perp_symbol))
        return balance.free if balance else None

    async def _market_gate(self, pair: PairConfig, now: datetime) -> Verdict | None:
        """A denial when the market's open interest or 24h volume is under the pair's
        minimum; the figures are fetched at most every ``market_stats_refresh_s``."""
        if pair.min_open_interest <= ZERO and pair.min_quote_volume_24h <= ZERO:
            return None
        cached = self._market_stats.get(pair.perp_symbol)
        refresh = timedelta(seconds=float(self._settings.risk.market_stats_refresh_s))
        if cached is None or now - cached[0] >= refresh:
            stats = await self._perp_gateway(pair).fetch_market_stats(pair.perp_symbol)
            cached = (now, stats)
            self._market_stats[pair.perp_symbol] = cached
        stats = cached[1]
        for label, value, floor in (
            ("open interest", stats.open_interest_value, pair.min_open_interest),
            ("24h quote volume", stats.quote_volume_24h, pair.min_quote_volume_24h),
        ):
            key = "min_open_interest" if label == "open interest" else "min_quote_volume_24h"
            if floor <= ZERO:
                continue
            if value is None:
                return Verdict(
                    False, f"the venue reports no {label} for {pair.perp_symbol}: not traded"
                )
            if value < floor:
                return Verdict(
                    False,
                    f"{pair.perp_symbol} {label} {value:.0f} < {key} {floor}: market not traded",
                )
        return None

    async def _liquidity_step(
        self, pair: PairConfig, intent: OrderIntent, market: Market
    ) -> tuple[OrderIntent | None, dict[str, Any], str]:
        """Walk the book for the order: send it, a part that fits ``max_slippage_bps``
        (split), or nothing this cycle (wait); the book is fetched only here."""
        book = await self._perp_gateway(pair).fetch_order_book(intent.symbol, ORDER_BOOK_DEPTH)
        estimate = estimate_slippage(book, intent.side, intent.amount)
        limit = pair.max_slippage_bps
        info: dict[str, Any] = {"amount": intent.amount, "max_slippage_bps": limit}
        if estimate is None:
            info["action"] = "wait"
            return None, info, "liquidity: the order book is empty, waiting"
        info.update(
            touch=estimate.touch,
            average_price=estimate.average_price,
            slippage_bps=estimate.slippage_bps.quantize(Decimal("0.01")),
            book_depth=estimate.available,
        )
        if estimate.complete and estimate.slippage_bps <= limit:
            info["action"] = "send"
            return intent, info, ""
        what = (
            f"liquidity: {intent.amount:f} would fill about {estimate.slippage_bps:.1f} bps "
            f"from the touch > max_slippage_bps {limit}"
            if estimate.complete
            else f"liquidity: the book shows {estimate.available:f}, less than {intent.amount:f}"
        )
        if pair.on_thin_book == "wait":
            info["action"] = "wait"
            return None, info, f"{what}: waiting for a deeper book (on_thin_book wait)"
        fit = min(
            largest_amount_within(book, intent.side, limit, market.amount_step), intent.amount
        )
        problem = amount_problem(fit, intent.reference_price, market, pair.min_notional)
        if problem is not None:
            info["action"] = "wait"
            return None, info, f"{what}: the part that fits is too small ({problem}), waiting"
        info.update(action="split", sent=fit)
        return (
            replace(intent, amount=fit),
            info,
            f"{what}: sending {fit:f} now, the rest in later cycles (on_thin_book split)",
        )

    def _decide(
        self, pair: PairConfig, observation: Observation, params: HedgeParams, now: datetime
    ) -> Decision:
        """The rebalance policy of the pair: the band every cycle, or the target once an
        interval; a price-independent hold is reused while its inputs are unchanged."""
        if pair.rebalance == "interval":
            slot = interval_slot(now, pair.rebalance_interval_s)
            if self._interval_done.get(pair.name) == slot:
                next_at = interval_start(slot + 1, pair.rebalance_interval_s)
                return wait_for_interval(observation, params, next_at)
            # Due: trade to the target itself (the min notional still applies).
            return decide(observation, replace(params, band=ZERO), self._markets[pair.perp_symbol])
        key = (observation.spot_qty, observation.perp_qty, params)
        held = self._held.get(pair.name)
        if held is not None and held[0] == key:
            return held[1]
        decision = decide(observation, params, self._markets[pair.perp_symbol])
        if holds_while_unchanged(decision, observation.spot_qty):
            self._held[pair.name] = (key, decision)
        return decision

    def _hold_horizon(self, pair: PairConfig, assessment: Assessment, now: datetime) -> datetime:
        """Until when this pair's hold repeats while its quantities stay the same (``now``:
        not past this cycle)."""
        if assessment.action != "none" or not _static_target(pair):
            return now
        if pair.rebalance == "interval":
            slot = interval_slot(now, pair.rebalance_interval_s)
            self._interval_done[pair.name] = slot  # at the target: done until the next one
            return interval_start(slot + 1, pair.rebalance_interval_s)
        if holds_while_unchanged(assessment.decision, assessment.observation.spot_qty):
            return FOREVER
        return now

    def quiet_until(self) -> datetime | None:
        """Until when further cycles would only repeat the last cycle's holds, provided no
        spot balance, position or configuration changes in between; None when the last
        cycle sent an order, failed, or a pair's target depends on market data.

        The backtest skips the cycles of such steps (the venue still settles funding and
        liquidations, and a change in quantities ends the quiet)."""
        if len(self._quiet) != len(self._pairs):
            return None
        return min(self._quiet.values())

    async def _record_of(
        self,
        pair: PairConfig,
        snapshots: Mapping[str, AccountSnapshot],
        cycle: int,
        pending: Mapping[str, list[StoredOrder]],
        now: datetime,
    ) -> tuple[DecisionRecord, OrderPlan | None]:
        assessment = await self.assess(pair, snapshots, pending.get(pair.name, []), now)
        if assessment.add_margin is not None:
            contract = on_contract(pair, assessment.observation.perp_symbol)
            assessment = await self._move_margin(contract, assessment)
        horizon = self._hold_horizon(pair, assessment, now)
        if horizon > now:
            self._quiet[pair.name] = horizon
        record = DecisionRecord(
            decision_id=str(ULID.from_datetime(now)),
            observation=assessment.observation,
            cycle=cycle,
            mode=self._settings.mode,
            decision=assessment.decision,
            action=assessment.action,
            verdict=(
                assessment.summary
                if assessment.action == "liquidity_wait"
                else None
                if assessment.verdict is None
                else assessment.verdict.reason
            ),
            inputs={
                "observation": observation_inputs(assessment.observation),
                "foreign_open_orders": self._foreign_open.get(pair.name, 0),
                "lease": _lease_inputs(self._leases.get(pair.name)),
                "liquidity": assessment.liquidity,
                "add_margin": assessment.add_margin,
                "params": {
                    "target_ratio": pair.target_ratio,
                    "band": pair.band,
                    "min_notional": pair.min_notional,
                    "max_order_notional": pair.max_order_notional,
                    "leverage": pair.leverage,
                    "order_type": pair.order_type,
                    "max_slippage_bps": pair.max_slippage_bps,
                },
                **self._strategy_inputs(pair, assessment.target),
            },
            summary=assessment.summary,
        )
        target = assessment.target
        if target is not None and self._targets.needs_skip_audit(pair.name, target):
            await self._repo.append_audit(
                "strategy.sell_down_skipped",
                target.reason,
                {"outlook": target.inputs.get("outlook")},
                pair=pair.name,
            )
        return record, assessment.order

    def _strategy_inputs(self, pair: PairConfig, target: Target | None) -> dict[str, Any]:
        if target is None:
            return {}
        return {"strategy": target_inputs(pair, target, self._targets.overridden(pair))}

    async def _send(
        self, pair: PairConfig, record: DecisionRecord, plan: OrderPlan
    ) -> Execution | str:
        """Record the decision, then the intent, then send and record the answer.

        Returns the execution, or why nothing was sent ("lease lost").
        """
        structlog.contextvars.bind_contextvars(decision_id=record.decision_id)
        await self._repo.record_decision(record)
        log.info(
            "pair.decided",
            action=record.action,
            ratio=_fmt(record.decision.ratio),
            reason=record.summary,
        )
        now = self._clock.now()
        settle = timedelta(seconds=float(self._settings.risk.fill_settle_s))
        # Set before sending: a fill may land even if the answer is lost.
        self._fills_watch_until[pair.name] = (
            now + settle + timedelta(seconds=float(self._settings.risk.order_settle_s))
        )
        lease = self._leases.get(pair.name)
        try:
            if plan.intent.symbol == pair.spot_symbol:
                self._spot_sold.add(pair.name)
            execution = await self._executor.execute(
                pair.name,
                record.decision_id,
                plan,
                self._gateway_of(pair, plan),
                lease=lease,
                lease_margin=self._lease_margin,
                send_by=self._leases_renewed_at
                + (self._lease_period - self._lease_margin).total_seconds(),
            )
        except LeaseLostError as exc:
            # Another daemon holds the pair now (this one stalled past its lease): it
            # trades the pair, this one stores and sends nothing.
            self._leases.pop(pair.name, None)
            log.warning("lease.lost", error=str(exc))
            await self._repo.append_audit(
                "lease.lost",
                f"order not stored or sent: {exc}",
                {"holder": self.instance_id, "token": lease.token if lease else None},
                pair=pair.name,
                decision_id=record.decision_id,
            )
            return "lease lost"
        except (asyncio.CancelledError, StoreUnavailable):
            raise  # shutdown, or nothing could be stored: not the venue's failure
        except Exception as exc:
            await self._count_failure(pair, f"{type(exc).__name__}: {exc}")
            raise
        if execution.status is OrderStatus.REJECTED:
            await self._count_failure(pair, execution.reason or "rejected")
        elif execution.status in (
            OrderStatus.FILLED,
            OrderStatus.PARTIALLY_FILLED,
            OrderStatus.ACCEPTED,
        ):
            self._failures.pop(pair.name, None)
        self._fills_watch_until[pair.name] = max(
            self._fills_watch_until[pair.name], self._clock.now() + settle
        )
        log.info(
            "order.done",
            client_order_id=execution.client_order_id,
            status=execution.status.value,
            reason=execution.reason,
        )
        return execution

    async def _count_failure(self, pair: PairConfig, reason: str) -> None:
        """Count a rejected or failed order; pause the pair after K in a row."""
        count = self._failures.get(pair.name, 0) + 1
        limit = self._settings.risk.max_consecutive_failures
        self._failures[pair.name] = count
        if count < limit:
            return
        self._failures.pop(pair.name, None)  # a resume starts the count afresh
        why = (
            f"{count} consecutive orders rejected or failed "
            f"(max_consecutive_failures {limit}); last: {reason}"
        )
        log.warning("pair.auto_paused", pair=pair.name, reason=why)
        await self._repo.set_pair_paused(pair.name, True, why, source="auto")

    async def _move_margin(self, pair: PairConfig, assessment: Assessment) -> Assessment:
        """The liquidation guard's margin transfer, audited as ``risk.margin_added``."""
        amount = assessment.add_margin
        if amount is None:
            return assessment
        settle = settle_asset(pair.perp_symbol)
        try:
            await self._perp_gateway(pair).add_margin(pair.perp_symbol, amount)
        except GatewayError as exc:
            await self._repo.append_audit(
                "risk.add_margin_failed",
                f"adding {amount} {settle} margin to {pair.perp_symbol} failed: {exc}",
                {"amount": amount, "error": str(exc)},
                pair=pair.name,
            )
            await self._count_failure(pair, f"add_margin: {exc}")
            return replace(
                assessment,
                action="add_margin_failed",
                summary=f"{assessment.summary}; failed: {exc}",
            )
        await self._repo.append_audit(
            "risk.margin_added",
            f"added {amount} {settle} margin to {pair.perp_symbol}: {assessment.decision.reason}",
            {"amount": amount, "asset": settle, "symbol": pair.perp_symbol},
            pair=pair.name,
        )
        return assessment

    async def plan(self) -> list[Assessment]:
        """What every pair would do now; sends no order and writes nothing."""
        now = self._clock.now()
        self._fills_cache = None
        snapshots = await self.observe()
        await self._targets.load_overrides()
        await self._load_risk_state(now)
        unresolved: dict[str, list[StoredOrder]] = {}
        for order in await self._repo.unresolved_orders():
            unresolved.setdefault(order.pair, []).append(order)
        return [
            await self.assess(pair, snapshots, unresolved.get(pair.name, []), now)
            for pair in self._unfinished(self._pairs)
        ]

    async def run(
        self, stop: asyncio.Event, max_cycles: int | None = None, first_cycle: int = 1
    ) -> int:
        """Run cycles at a fixed cadence until ``stop`` is set; returns cycles run."""
        interval = self._settings.poll_interval_s
        done = 0
        cycle = first_cycle
        while not stop.is_set():
            started = time.monotonic()
            if self._observer is not None:
                self._observer.cycle_started(cycle)
            try:
                report = await self.run_cycle(cycle)
            except StoreUnavailable as exc:
                # The store is down: no intent can be stored, so nothing was sent. Skip the
                # cycle and try again at the next one; the outage ends by itself.
                log.error("cycle.database_unavailable", cycle=cycle, error=str(exc))
                report = CycleReport(cycle, errors={"*": f"database unavailable: {exc}"})
            done += 1
            if self._observer is not None:
                self._observer.cycle_finished(report, time.monotonic() - started)
            if report.errors:
                log.warning("cycle.errors", cycle=cycle, errors=report.errors)
            if max_cycles is not None and done >= max_cycles:
                break
            cycle += 1
            elapsed = time.monotonic() - started
            await self._clock.wait_or_stop(max(interval - elapsed, 0.0), stop)
        return done


def default_instance_id() -> str:
    """Host, process and a random suffix: unique per start, readable in the audit log."""
    return f"{socket.gethostname()[:64]}:{os.getpid()}:{str(ULID())[-6:].lower()}"


def _lease_inputs(lease: Lease | None) -> dict[str, Any] | None:
    return None if lease is None else {"holder": lease.holder, "token": lease.token}


def _round_robin(items: Sequence[T], account: Callable[[T], str]) -> list[T]:
    """``items`` reordered to take one of each account in turn (stable within an account)."""
    queues: dict[str, list[T]] = {}
    for item in items:
        queues.setdefault(account(item), []).append(item)
    ordered: list[T] = []
    for rank in range(max((len(q) for q in queues.values()), default=0)):
        ordered.extend(q[rank] for q in queues.values() if rank < len(q))
    return ordered


def _static_target(pair: PairConfig) -> bool:
    """Whether the pair's target ratio depends on its configuration alone (a fixed ratio
    or an outlook view), not on market data.

    A pair whose strategy reads prices or funding is not: its holds are re-decided every
    cycle, and the backtest does not skip them."""
    return pair.strategy in ("fixed", "outlook")


def _account_names(settings: Settings) -> set[str]:
    names: set[str] = set()
    for pair in settings.pairs:
        names.update(settings.accounts_of(pair))
    return names


def _fmt(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.4f}"
