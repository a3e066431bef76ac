"""The hedging loop: the cycle's stages, wired, run at a fixed cadence.

One cycle: claim the pairs (leases) → observe (markets, one snapshot per account, funding)
→ build one ``PairView`` per pair → assess each (target, decision, guard, risk, liquidity)
→ reconcile outside changes → record the holds → send orders and margin transfers. Each
stage lives in ``bot.service.cycle`` and owns its own state; this class only wires them.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

import structlog
from ulid import ULID

from bot.clock import Clock
from bot.config import PairConfig, Settings
from bot.domain.models import FundingPayment
from bot.domain.strategies import Target
from bot.domain.words import plural
from bot.exchange.gateway import ExchangeGateway, GatewayError
from bot.execution.executor import Execution, Executor
from bot.execution.margin import MarginExecutor
from bot.service.cycle.accounts import Accounts, account_names, round_robin
from bot.service.cycle.assess import FOREVER, Assessment, AssessStage
from bot.service.cycle.inflight import InflightStage
from bot.service.cycle.leverage import (
    apply_start_leverages,
    refuse_add_margin_without_history,
    refuse_inverse_coins_in_spot_only,
    refuse_net_long_in_hedge_mode,
    refuse_one_coin_read_for_two_wallets,
    start_leverages,
)
from bot.service.cycle.observe import AccountSnapshot, ObserveStage
from bot.service.cycle.pair_state import PairState
from bot.service.cycle.reconcile import ReconcileStage
from bot.service.cycle.record import decision_record, observation_inputs
from bot.service.cycle.recording import RecordStage
from bot.service.cycle.send import Send, SendStage, fmt_ratio, sends_of
from bot.service.cycle.view import Unresolved, ViewBuilder
from bot.service.targets import TargetSource, target_inputs
from bot.store.errors import StoreUnavailable
from bot.store.repository import (
    DecisionRecord,
    Repository,
    StoredMarginTransfer,
    StoredOrder,
)

__all__ = [
    "FOREVER",
    "AccountSnapshot",
    "Assessment",
    "CycleObserver",
    "CycleReport",
    "HedgeDaemon",
    "default_instance_id",
    "observation_inputs",
]

log = structlog.get_logger(__name__)
T = TypeVar("T")

# Pairs overlap their venue waits, but hundreds at once only queue on the database and
# starve its driver thread of the GIL; a few at a time is faster.
MAX_CONCURRENT_PAIRS = 8


@dataclass(slots=True)
class CycleReport:
    cycle: int
    actions: dict[str, str] = field(default_factory=dict)  # pair -> action
    errors: dict[str, str] = field(default_factory=dict)  # pair -> error
    # What the cycle saw and did, for metrics and health (bot/service/runtime.py).
    decisions: list[DecisionRecord] = field(default_factory=list)
    # (pair, order outcome): a sell-down cycle sends the hedge and a spot sell.
    executions: list[tuple[str, Execution]] = field(default_factory=list)
    funding: list[tuple[str, FundingPayment]] = field(default_factory=list)  # new payments
    exchange_errors: list[str] = field(default_factory=list)  # GatewayError class names
    # Pairs that paused themselves after failing orders: a failed state until resumed.
    auto_paused: dict[str, str] = field(default_factory=dict)  # pair -> reason

    def acted(self, pair: str, action: str) -> None:
        """The pair's action, beside any other this cycle (a sell-down's spot sell)."""
        before = self.actions.get(pair)
        self.actions[pair] = action if before in (None, "none") else f"{before}; {action}"

    def failed(self, pair: str, exc: BaseException) -> None:
        self.errors[pair] = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, GatewayError):
            self.exchange_errors.append(type(exc).__name__)


class CycleObserver(Protocol):
    """Told when each cycle starts and ends (metrics, health, the systemd watchdog)."""

    def cycle_started(self, cycle: int) -> None: ...

    def cycle_finished(self, report: CycleReport, duration_s: float) -> None: ...


@dataclass(frozen=True, slots=True)
class _Assessed:
    """One pair's assessment this cycle, recorded as a hold or sent."""

    pair: PairConfig
    record: DecisionRecord
    send: Send | None
    spot_sell: Send | None = None  # a bearish sell-down's spot sell, beside the hedge


def _log_holds(holds: Sequence[_Assessed], report: CycleReport) -> None:
    """Each hold's action in the report and the log (stored or not)."""
    for held in holds:
        record = held.record
        report.actions[held.pair.name] = record.action
        log.info(
            "pair.decided",
            pair=held.pair.name,
            cycle=report.cycle,
            decision_id=record.decision_id,
            action=record.action,
            ratio=fmt_ratio(record.decision.ratio),
            reason=record.summary,
        )


class HedgeDaemon:
    """Wires the cycle's stages for every configured pair and runs the loop."""

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
        if not isinstance(gateways, Mapping):
            gateways = {name: gateways for name in account_names(settings)}
        risk = settings.risk
        self._settings = settings
        self._repo = repository
        self._clock = clock
        self._observer = observer
        settle_after = timedelta(seconds=float(risk.order_settle_s))
        self._executor = executor or Executor(repository, settle_after=settle_after)
        self._margin = MarginExecutor(repository, settle_after=settle_after)
        self.instance_id = instance_id or default_instance_id()
        self.accounts = Accounts(settings, gateways)
        self.observing = ObserveStage(self.accounts, repository, clock, settings.markets_refresh_s)
        markets = self.observing.markets
        self.pair_state = PairState(settings, repository, clock, markets, self.instance_id)
        self.inflight = InflightStage(
            repository,
            fill_settle=timedelta(seconds=float(risk.fill_settle_s)),
            order_settle=timedelta(seconds=float(risk.order_settle_s)),
        )
        self.reconcile = ReconcileStage(self.accounts, self.observing, self.inflight, repository)
        self.targets = TargetSource(settings, repository)
        self.views = ViewBuilder(self.accounts, markets, self.inflight, risk.max_price_deviation)
        self.assessing = AssessStage(settings, self.accounts, self.targets, self.pair_state)
        self.recording = RecordStage(settings.storage, repository)
        self.sending = SendStage(
            repository,
            self._executor,
            self._margin,
            self.accounts,
            self.inflight,
            self.reconcile,
            self.pair_state,
            clock,
        )
        self._pairs: Sequence[PairConfig] = settings.pairs
        # The pairs this daemon holds the lease of this cycle (all of them for `plan`).
        self._active: Sequence[PairConfig] = settings.pairs
        self._pair_slots = asyncio.Semaphore(MAX_CONCURRENT_PAIRS)

    # Start and stop ------------------------------------------------------------------------

    async def load_markets(self) -> None:
        """Trading rules of every symbol the pairs trade or price."""
        await self.observing.load_markets()

    async def start(self) -> None:
        """Load markets, set leverage and margin mode per pair, record the start."""
        await self.load_markets()
        self._active = self.pair_state.unfinished(self._pairs)
        refuse_net_long_in_hedge_mode(self._active, self.accounts)
        refuse_one_coin_read_for_two_wallets(self._active, self.accounts)
        refuse_add_margin_without_history(
            self._active, self.accounts, self._settings.risk.on_liquidation_risk
        )
        now = self._clock.now()
        # The store's reads and the venue's are independent: the store is read during
        # the venue's round trips instead of before them. Each error is raised as is.
        restoring = asyncio.create_task(self._restore())
        try:
            snapshots = await self.observe()
        except BaseException:
            restoring.cancel()
            await asyncio.gather(restoring, return_exceptions=True)
            raise
        await restoring
        refuse_inverse_coins_in_spot_only(self._active, self.accounts, snapshots)
        leverages = start_leverages(
            self._active, self.accounts, snapshots, self.observing.markets, self.targets, now
        )
        await self.pair_state.restore_failures()
        self.assessing.use_leverages(leverages)
        await apply_start_leverages(
            self._active, self.accounts, self.observing.markets, leverages, now
        )
        await _record_start(self._repo, self._settings, self.instance_id, self.accounts)

    async def _restore(self) -> None:
        """What the store says of the pairs: last seen state, regimes, set targets."""
        await self.reconcile.restore()
        await self.targets.restore(self._pairs)
        await self.targets.load_overrides()

    async def stop(self, reason: str) -> None:
        """Give back the leases and record the stop; the caller closes venues and database."""
        await self.pair_state.release()
        await self._repo.append_audit(
            "daemon.stop", f"hedgebot stopped: {reason}", {"reason": reason}
        )
        log.info("daemon.stopped", reason=reason)

    async def claim_pairs(self) -> list[str]:
        """Renew (when due), take over and give back pair leases; returns the pairs newly
        held."""
        claim = await self.pair_state.renew()
        self._active = claim.active
        taken = list(claim.taken)
        if taken:
            # Another daemon may have traded these since this one last did: start afresh
            # from what the store says.
            self.inflight.forget(taken)
            self._executor.unresolved.forget()
            self._margin.unresolved.forget()
            await self.reconcile.restore(taken)
            await self.targets.restore([p for p in self._pairs if p.name in taken])
        return taken

    async def observe(self) -> dict[str, AccountSnapshot]:
        """One snapshot per account for the pairs held (requests grow with accounts)."""
        return await self.observing.snapshots(self._active)

    # The cycle -----------------------------------------------------------------------------

    async def run_cycle(self, cycle: int) -> CycleReport:
        """One cycle over every pair; one pair's failure does not stop the others."""
        report = CycleReport(cycle)
        self.inflight.new_cycle()
        self.assessing.new_cycle()
        await self.claim_pairs()
        await self.pair_state.audit_finished()
        if not self._active:
            log.info("cycle.no_pairs_held", live_pairs=len(self._pairs))
            return report
        observed = await self._observe_stage(cycle, report)
        if observed is None:
            return report
        snapshots, pending = observed
        now = self._clock.now()
        # `hedgebot set-target` and `hedgebot pause` act on the next cycle: one read of both.
        overrides, controls = await self._repo.run_time_controls()
        self.targets.use_overrides(overrides)
        await self.pair_state.load_risk_state(now, controls)
        report.auto_paused = self.pair_state.auto_paused(self._active)
        assessed = await self._assess_stage(cycle, snapshots, pending, now, report)
        holds = [a for a in assessed if a.send is None]
        sends = [a.send for a in assessed if a.send is not None]
        sends += [a.spot_sell for a in assessed if a.spot_sell is not None]
        await self.reconcile.outside_changes([(a.pair, a.record) for a in assessed], now)
        await self._record_holds(holds, [s.record for s in sends], now, report)
        await self._send_stage(cycle, sends, report)
        return report

    async def _observe_stage(
        self, cycle: int, report: CycleReport
    ) -> tuple[dict[str, AccountSnapshot], Unresolved] | None:
        """Markets, orders and margin transfers of unknown outcome, snapshots, foreign
        orders, funding; None (and every pair errored) when the venue cannot be
        observed."""
        structlog.contextvars.bind_contextvars(cycle=cycle)
        try:
            await self.observing.refresh_markets()
            # Resolve orders of unknown outcome first, so the snapshot includes their fills.
            skipped = self.pair_state.skipped()
            orders = await self._executor.resolve_unresolved(
                self.accounts.gateways, self._clock.now(), skip_pairs=skipped
            )
            margin = await self._margin.resolve_unresolved(
                self.accounts.gateways, self._clock.now(), skip_pairs=skipped
            )
            pending = Unresolved(orders, margin)
            snapshots = await self.observe()
            await self.reconcile.foreign_orders(self._active)
            report.funding = await self.observing.collect_funding(self._active)
        except GatewayError as exc:
            report.exchange_errors.append(type(exc).__name__)
            reason = f"observing the venue failed: {exc}"
            log.warning("cycle.observe_failed", error=str(exc))
            await self._repo.append_audit("cycle.observe_failed", reason, {"error": str(exc)})
            report.errors = {p.name: reason for p in self._active}
            return None
        finally:
            structlog.contextvars.unbind_contextvars("cycle")
        return snapshots, pending

    async def _assess_stage(
        self,
        cycle: int,
        snapshots: Mapping[str, AccountSnapshot],
        pending: Unresolved,
        now: datetime,
        report: CycleReport,
    ) -> list[_Assessed]:
        """Every held pair's view and assessment, at once; a pair's failure is its own."""
        active = self._active
        outcomes = await asyncio.gather(
            *(
                self._guarded(pair, cycle, self._assess_pair(pair, snapshots, pending, cycle, now))
                for pair in active
            ),
            return_exceptions=True,
        )
        assessed: list[_Assessed] = []
        for pair, outcome in zip(active, outcomes, strict=True):
            if isinstance(outcome, asyncio.CancelledError):
                raise outcome
            if isinstance(outcome, BaseException):
                report.failed(pair.name, outcome)
                continue
            report.decisions.append(outcome.record)
            if outcome.spot_sell is not None:
                report.decisions.append(outcome.spot_sell.record)
            assessed.append(outcome)
        return assessed

    async def _assess_pair(
        self,
        pair: PairConfig,
        snapshots: Mapping[str, AccountSnapshot],
        pending: Unresolved,
        cycle: int,
        now: datetime,
    ) -> _Assessed:
        view = await self.views.build(
            pair,
            snapshots,
            pending.orders.get(pair.name, []),
            now,
            pending_margin=pending.margin.get(pair.name, ()),
        )
        assessment = await self.assessing.assess(view, now)
        self.assessing.note_hold(pair, assessment, now)
        target = assessment.target
        strategy = None
        if target is not None:
            strategy = target_inputs(pair, target, self.targets.overridden(pair))
        context = {
            "foreign_open_orders": self.reconcile.foreign_open(pair.name),
            "lease": self.pair_state.lease_inputs(pair.name),
            "strategy": strategy,
        }
        mode = self._settings.mode
        record = decision_record(
            str(ULID.from_datetime(now)), view, assessment, cycle=cycle, mode=mode, context=context
        )
        if target is not None:
            await self._audit_target(pair, target)
        send, spot_sell = sends_of(view, assessment, record, cycle, mode, now, context)
        return _Assessed(pair, record, send, spot_sell)

    async def _audit_target(self, pair: PairConfig, target: Target) -> None:
        """What the strategy declined to do: a sell-down the pair does not allow (said once
        per stretch), a basis roll whose net basis is below entry_apr (its one decision)."""
        if self.targets.needs_skip_audit(pair.name, target):
            await self._repo.append_audit(
                "strategy.sell_down_skipped",
                target.reason,
                {"outlook": target.inputs.get("outlook")},
                pair=pair.name,
            )
        if target.roll_declined:
            keys = ("rolled_from", "future_symbol", "annualized_basis", "net_annualized_basis")
            data = {key: target.inputs.get(key) for key in (*keys, "taker_fee", "entry_apr")}
            await self._repo.append_audit(
                "strategy.roll_declined", target.reason, data, pair=pair.name
            )

    async def _record_holds(
        self,
        holds: Sequence[_Assessed],
        sent: Sequence[DecisionRecord],
        now: datetime,
        report: CycleReport,
    ) -> None:
        """Pairs that send nothing are recorded together: one commit per cycle, not per
        pair; a hold that changes nothing only as a heartbeat (cycle/recording.py)."""
        try:
            await self.recording.record(report.cycle, now, [a.record for a in holds], sent)
        except Exception as exc:
            log.exception("decisions.write_failed", error=str(exc))
            for held in holds:
                report.failed(held.pair.name, exc)
            self.assessing.forget_holds()
            return
        _log_holds(holds, report)

    async def _send_stage(self, cycle: int, sends: Sequence[Send], report: CycleReport) -> None:
        """Each account's limiter paces its own orders: taking the accounts in turn keeps
        the few pair slots spread over them rather than all queued behind one account."""
        sends = round_robin(sends, lambda s: self.accounts.perp_account(s.pair))
        results = await asyncio.gather(
            *(self._guarded(s.pair, cycle, self.sending.send(s)) for s in sends),
            return_exceptions=True,
        )
        for item, sent in zip(sends, results, strict=True):
            name = item.pair.name
            if isinstance(sent, asyncio.CancelledError):
                raise sent
            if isinstance(sent, BaseException):
                report.failed(name, sent)
            elif isinstance(sent, str):
                report.actions[name] = sent
            else:
                report.executions.append((name, sent))
                kind = "spot sell" if item.spot_sell else "order"
                report.acted(name, f"{kind} {sent.status.value}")

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

    # Plan and loop -------------------------------------------------------------------------

    async def plan(self) -> list[Assessment]:
        """What every pair would do now; sends no order and writes nothing."""
        now = self._clock.now()
        self.inflight.new_cycle()
        self.assessing.new_cycle()
        snapshots = await self.observe()
        await self.targets.load_overrides()
        await self.pair_state.load_risk_state(now)
        unresolved: dict[str, list[StoredOrder]] = {}
        for order in await self._repo.unresolved_orders():
            unresolved.setdefault(order.pair, []).append(order)
        transfers: dict[str, list[StoredMarginTransfer]] = {}
        for transfer in await self._repo.unresolved_margin_transfers():
            transfers.setdefault(transfer.pair, []).append(transfer)
        assessments = []
        for pair in self.pair_state.unfinished(self._pairs):
            view = await self.views.build(
                pair,
                snapshots,
                unresolved.get(pair.name, []),
                now,
                pending_margin=transfers.get(pair.name, ()),
            )
            assessment = await self.assessing.assess(view, now)
            assessments.append(assessment)
            if assessment.spot_sell is not None:  # a row of its own: its own order
                assessments.append(assessment.spot_sell)
        return assessments

    def quiet_until(self) -> datetime | None:
        """Until when further cycles would only repeat the last cycle's holds, provided no
        spot balance, position or configuration changes in between; None when the last
        cycle sent an order, failed, or a pair's target depends on market data.

        The backtest skips the cycles of such steps (the venue still settles funding and
        liquidations, and a change in quantities ends the quiet)."""
        return self.assessing.quiet_until(len(self._pairs))

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


async def _record_start(
    repository: Repository, settings: Settings, instance_id: str, accounts: Accounts
) -> None:
    """Audit (``daemon.start``) and log the start: mode, instance, accounts, pairs."""
    names = [p.name for p in settings.pairs]
    await repository.append_audit(
        "daemon.start",
        f"hedgebot started in {settings.mode} mode with {plural(len(names), 'pair')}: "
        f"{', '.join(names)}",
        {
            "mode": settings.mode,
            "instance": instance_id,
            "accounts": sorted(accounts.gateways),
            "pairs": names,
            "poll_interval_s": settings.poll_interval_s,
        },
    )
    log.info("daemon.started", mode=settings.mode, pairs=len(names))
