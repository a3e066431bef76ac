"""Send: the intent is stored, then the order or margin transfer is sent, then the answer
is recorded. A lost answer is resolved by looking it up (an order by its client id, a
margin transfer in the venue's margin history), never by sending again."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

import structlog
from ulid import ULID

from bot.clock import Clock
from bot.config import PairConfig
from bot.domain.margin_transfers import MoveKind, TransferState
from bot.domain.models import OrderStatus
from bot.execution.executor import Execution, Executor, OrderPlan
from bot.execution.margin import MarginExecutor
from bot.service.cycle.accounts import Accounts
from bot.service.cycle.assess import Assessment
from bot.service.cycle.inflight import InflightStage
from bot.service.cycle.pair_state import PairState
from bot.service.cycle.reconcile import ReconcileStage
from bot.service.cycle.record import decision_record
from bot.service.cycle.view import PairView
from bot.store.errors import StoreUnavailable
from bot.store.leases import Lease, LeaseLostError
from bot.store.repository import DecisionRecord, Repository

log = structlog.get_logger(__name__)

# A spot sell that ended so sold less than it asked (an unknown outcome is looked up first).
SALE_MISSED = (OrderStatus.REJECTED, OrderStatus.CANCELED, OrderStatus.PARTIALLY_FILLED)


@dataclass(frozen=True, slots=True)
class Send:
    """One pair's outgoing action this cycle: an order, or the guard's margin transfer."""

    pair: PairConfig  # on the contract it trades this cycle
    record: DecisionRecord
    plan: OrderPlan | None = None
    add_margin: Decimal | None = None
    move: tuple[MoveKind, Decimal] | None = None  # the collateral keeper's other transfers
    then: Send | None = None  # the keeper's next transfer (its own decision), once done

    @property
    def spot_sell(self) -> bool:
        """A bearish sell-down's spot sell (sent beside the hedge, on the spot account)."""
        return self.plan is not None and self.plan.intent.symbol == self.pair.spot_symbol


class SendStage:
    """Sends what the assessment settled on; owns nothing but its collaborators."""

    def __init__(
        self,
        repository: Repository,
        executor: Executor,
        margin_executor: MarginExecutor,
        accounts: Accounts,
        inflight: InflightStage,
        reconcile: ReconcileStage,
        pair_state: PairState,
        clock: Clock,
    ) -> None:
        self._repo = repository
        self._executor = executor
        self._margin_executor = margin_executor
        self._accounts = accounts
        self._inflight = inflight
        self._reconcile = reconcile
        self._pair_state = pair_state
        self._clock = clock

    async def send(self, item: Send) -> Execution | str:
        """Record the decision, then send; returns the execution, or the action taken."""
        structlog.contextvars.bind_contextvars(decision_id=item.record.decision_id)
        await self._repo.record_decision(item.record)
        log.info(
            "pair.decided",
            action=item.record.action,
            ratio=fmt_ratio(item.record.decision.ratio),
            reason=item.record.summary,
        )
        if item.plan is not None:
            execution = await self._order(item.pair, item.record, item.plan)
            if (
                item.then is not None
                and isinstance(execution, Execution)
                and execution.status is OrderStatus.FILLED
            ):
                await self.send(item.then)  # the keeper's sale or transfer after its cut
            return execution
        move = item.move
        if move is None and item.add_margin is not None:
            move = (MoveKind.ADD_MARGIN, item.add_margin)
        if move is not None:
            done = await self._margin(item.pair, item.record, *move)
            if item.then is not None and done.endswith(TransferState.DONE.value):
                await self.send(item.then)
            return done
        raise ValueError(f"nothing to send for pair {item.pair.name}")

    async def _order(
        self, pair: PairConfig, record: DecisionRecord, plan: OrderPlan
    ) -> Execution | str:
        self._inflight.sending(pair.name, self._clock.now())
        lease = self._pair_state.lease(pair.name)
        # A refused spot sell is not the hedge's failure: it neither counts toward the
        # pair's automatic pause (which would stop the hedge too) nor resets the count.
        counts = plan.intent.symbol != pair.spot_symbol
        try:
            if not counts:
                self._reconcile.spot_sold(pair.name)
            execution = await self._executor.execute(
                pair.name,
                record.decision_id,
                plan,
                self._accounts.gateway_for(pair, plan.intent.symbol),
                lease=lease,
                lease_margin=self._pair_state.lease_margin,
                send_by=self._pair_state.send_by(),
            )
        except LeaseLostError as exc:
            return await self._lease_lost(pair, record, lease, exc, "order")
        except (asyncio.CancelledError, StoreUnavailable):
            raise  # shutdown, or nothing could be stored: not the venue's failure
        except Exception as exc:
            if counts:
                await self._pair_state.failed(pair.name, f"{type(exc).__name__}: {exc}")
            else:
                self._pair_state.spot_sell_done(pair.name, filled=False, refused=True)
            raise
        if counts:
            await self._count(pair.name, execution)
        else:
            self._pair_state.spot_sell_done(
                pair.name,
                execution.status not in SALE_MISSED,
                refused=execution.status is OrderStatus.REJECTED,
            )
        self._inflight.sent(pair.name, self._clock.now())
        log.info(
            "order.done",
            client_order_id=execution.client_order_id,
            status=execution.status.value,
            reason=execution.reason,
        )
        return execution

    async def _count(self, pair: str, execution: Execution) -> None:
        """A rejected order counts toward the pair's automatic pause; one that went through
        starts the count afresh."""
        if execution.status is OrderStatus.REJECTED:
            await self._pair_state.failed(pair, execution.reason or "rejected")
        elif execution.status in (
            OrderStatus.FILLED,
            OrderStatus.PARTIALLY_FILLED,
            OrderStatus.ACCEPTED,
        ):
            self._pair_state.succeeded(pair)

    async def _lease_lost(
        self,
        pair: PairConfig,
        record: DecisionRecord,
        lease: Lease | None,
        exc: LeaseLostError,
        what: str,
    ) -> str:
        """Another daemon holds the pair now (this one stalled past its lease): it trades
        the pair, this one stores and sends nothing."""
        self._pair_state.lost(pair.name)
        log.warning("lease.lost", error=str(exc))
        await self._repo.append_audit(
            "lease.lost",
            f"{what} not stored or sent: {exc}",
            {"holder": self._pair_state.instance_id, "token": lease.token if lease else None},
            pair=pair.name,
            decision_id=record.decision_id,
        )
        return "lease lost"

    async def _margin(
        self, pair: PairConfig, record: DecisionRecord, kind: MoveKind, amount: Decimal
    ) -> str:
        """The liquidation guard's margin transfer, or the collateral keeper's (``kind``):
        intent stored first, sent once, its outcome (``margin.done`` / ``failed`` /
        ``unknown``) stored and audited."""
        lease = self._pair_state.lease(pair.name)
        try:
            outcome = await self._margin_executor.transfer(
                pair.name,
                record.decision_id,
                pair.perp_symbol,
                amount,
                self._accounts.perp_gateway(pair),
                lease=lease,
                lease_margin=self._pair_state.lease_margin,
                send_by=self._pair_state.send_by(),
                kind=kind,
            )
        except LeaseLostError as exc:
            return await self._lease_lost(pair, record, lease, exc, "margin transfer")
        if outcome.state is TransferState.FAILED:
            await self._pair_state.failed(pair.name, f"{kind.value}: {outcome.reason}")
        elif outcome.state is TransferState.DONE:
            self._pair_state.succeeded(pair.name)
        log.info(
            "margin.transfer_done",
            client_id=outcome.client_id,
            state=outcome.state.value,
            reason=outcome.reason,
        )
        return f"{kind.value} {outcome.state.value}"


def fmt_ratio(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.4f}"


def keeper_chain(
    view: PairView,
    assessment: Assessment,
    cycle: int,
    mode: str,
    now: datetime,
    context: dict[str, Any],
    index: int = 0,
) -> Send | None:
    """The collateral keeper's next transfers after the assessment's own (``then``), each
    its own decision, chained: each is sent only once the one before is done."""
    if index >= len(assessment.then):
        return None
    kind, amount = assessment.then[index]
    step = replace(
        assessment,
        action=kind.value,
        move=(kind, amount),
        add_margin=None,
        then=(),
        summary=f"{assessment.summary} (then: {kind.value} {amount})",
    )
    record = decision_record(
        str(ULID.from_datetime(now)), view, step, cycle=cycle, mode=mode, context=context
    )
    following = keeper_chain(view, assessment, cycle, mode, now, context, index + 1)
    return Send(view.pair, record, move=(kind, amount), then=following)


def sends_of(
    view: PairView,
    assessment: Assessment,
    record: DecisionRecord,
    cycle: int,
    mode: str,
    now: datetime,
    context: dict[str, Any],
) -> tuple[Send | None, Send | None]:
    """What the assessment sends: its order or transfer (the keeper's next transfers
    chained after it), and a spot sell beside it (its own decision, so its own client
    order id); the keeper's sale is chained instead: the cut, the sale, the transfers."""
    then = keeper_chain(view, assessment, cycle, mode, now, context)
    spot_sell = None
    sale = assessment.spot_sell
    if sale is not None and sale.order is not None:
        sale_record = decision_record(
            str(ULID.from_datetime(now)), view, sale, cycle=cycle, mode=mode, context=context
        )
        spot_sell = Send(view.pair, sale_record, sale.order)
        if assessment.then:
            then, spot_sell = replace(spot_sell, then=then), None
    if assessment.order is None and assessment.add_margin is None and assessment.move is None:
        return None, spot_sell
    send = Send(view.pair, record, assessment.order, assessment.add_margin, assessment.move, then)
    return send, spot_sell
