"""Reads across aggregates for ``hedgebot status`` and ``hedgebot report``.

They return data; sentences for people are made in bot/service/describe.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.controls import PairControl, active_pause
from bot.domain.rebalance import drift, hedge_ratio
from bot.domain.report import PairReport
from bot.store.audit_log import AuditEvent, event_from_row
from bot.store.controls import PairTarget, load_controls
from bot.store.database import StoreBase
from bot.store.orders import StoredOrder, order_from_row
from bot.store.report_days import DayPlan, store_days
from bot.store.report_series import load_report_series
from bot.store.status_facts import DaemonFacts, FilledSince, daemon_facts, filled_since
from bot.store.tables import (
    AuditEventRow,
    DecisionRow,
    ObservationRow,
    OrderRow,
    PairCycleRow,
    PairTargetRow,
)

# A daemon beats at every cycle; one silent this long is not running (status without a
# config does not know the poll interval: an hour covers any sensible one).
HEARTBEAT_WITHIN_S = 3600.0
# Audit kinds that say a pair is not trading normally since its last decision.
FAILURE_KINDS = ("cycle.observe_failed", "pair.error")


@dataclass(frozen=True, slots=True)
class PairFigures:
    """The figures of a pair's latest decision and the observation it was made on."""

    pair: str
    mode: str
    price: Decimal
    spot_qty: Decimal
    hedge_qty: Decimal
    ratio: Decimal | None
    target_ratio: Decimal
    band: Decimal
    drift_qty: Decimal
    # When the pair was last decided: its latest cycle (``pair_cycles``), which may be
    # later than the stored decision (a hold that changes nothing is stored only as a
    # heartbeat); the stored decision's time on a database from before revision 0008.
    decided_at: datetime

    def figures(self) -> dict[str, Any]:
        """These fields by name (to build another view of the same pair)."""
        return {f.name: getattr(self, f.name) for f in fields(PairFigures)}


@dataclass(frozen=True, slots=True)
class PairStatusRecord(PairFigures):
    """A pair's latest decision with its observation, and what happened since."""

    action: str  # the decision's action: order, hold, denied, waiting, liquidity_wait…
    verdict: str | None  # the risk gate's reason, when it said no
    last_order: StoredOrder | None
    foreign_open_orders: int  # open orders on the perp that hedgebot did not place
    held_by: str | None  # the daemon (host:pid:suffix) that made the decision
    strategy: Mapping[str, Any]  # the decision's strategy inputs ({"name": "fixed"…})
    steps: Mapping[str, Any]  # the price tick and quantity step figures are shown at
    pending_target: PairTarget | None  # set with set-target after the decision
    pause: PairControl | None  # the pause that holds the pair now
    failure: AuditEvent | None  # the latest observe failure or pair error since
    filled_since: FilledSince  # what the pair's orders filled after the observation
    daemon: DaemonFacts  # who runs the pair now


class ReadModels(StoreBase):
    """The status of every pair and the PnL report."""

    async def pair_status(self, pairs: Sequence[str] | None = None) -> list[PairStatusRecord]:
        """Per pair: the latest decision with its observation, and the latest order."""
        async with self._read() as session:
            latest = (
                select(DecisionRow.pair, func.max(DecisionRow.id).label("id"))
                .group_by(DecisionRow.pair)
                .subquery()
            )
            rows = (
                await session.execute(
                    select(DecisionRow, ObservationRow)
                    .join(latest, DecisionRow.id == latest.c.id)
                    .join(ObservationRow, ObservationRow.id == DecisionRow.observation_id)
                    .order_by(DecisionRow.pair)
                )
            ).all()
            controls = await load_controls(session)
            now = await self._db_now(session)
            return [
                await _status_record(session, decision, observation, controls, now)
                for decision, observation in rows
                if pairs is None or decision.pair in pairs
            ]

    async def report(
        self, pair: str | None = None, since: datetime | None = None
    ) -> list[PairReport]:
        """Per pair (or one), PnL, costs and hedge effectiveness from the stored series
        since ``since`` (everything when None) up to now (bot/store/report_series.py)."""
        until = self._clock.now()
        async with self._read() as session:
            series = await load_report_series(session, pair, since, until)
        reports = series.reports(since, until)
        await self._store_days(series.days)
        return reports

    async def _store_days(self, plan: DayPlan | None) -> None:
        """Store the days the report computed (bot/store/report_days.py); a cache: a
        failure (a read-only or locked file, an outage) stores nothing and is not the
        report's."""
        if plan is None or not (plan.fresh or plan.stale):
            return
        try:
            async with self._write() as session:
                await store_days(session, plan)
        except Exception:  # the report stands without its cache
            return


async def _status_record(
    session: AsyncSession,
    decision: DecisionRow,
    observation: ObservationRow,
    controls: Mapping[str, PairControl],
    now: datetime,
) -> PairStatusRecord:
    last_order = (
        await session.execute(
            select(OrderRow)
            .where(OrderRow.pair == decision.pair)
            .order_by(OrderRow.id.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    override = await session.get(PairTargetRow, decision.pair)
    pending = None
    if override is not None and override.set_at > decision.created_at:
        pending = PairTarget(override.pair, override.ratio, override.outlook, override.set_at)
    inputs = decision.inputs or {}
    since = await filled_since(session, observation)
    cycle = await session.get(PairCycleRow, decision.pair)
    decided_at = decision.created_at
    if cycle is not None and cycle.at > decided_at:
        decided_at = cycle.at
    spot, perp = observation.spot_qty + since.spot, observation.perp_qty + since.perp
    return PairStatusRecord(
        pair=decision.pair,
        mode=decision.mode,
        price=observation.price,
        spot_qty=spot,
        hedge_qty=-perp,
        ratio=hedge_ratio(spot, perp) if since else decision.ratio,
        target_ratio=decision.target_ratio,
        band=decision.band,
        drift_qty=drift(spot, perp, decision.target_ratio) if since else decision.drift_qty,
        decided_at=decided_at,
        action=decision.action,
        verdict=decision.verdict,
        last_order=None if last_order is None else order_from_row(last_order),
        foreign_open_orders=int(inputs.get("foreign_open_orders", 0)),
        held_by=(inputs.get("lease") or {}).get("holder"),
        strategy=inputs.get("strategy") or {},
        steps=inputs.get("steps") or {},
        pending_target=pending,
        pause=active_pause(controls, decision.pair),
        failure=await _last_failure(session, decision),
        filled_since=since,
        daemon=await daemon_facts(session, decision.pair, now, HEARTBEAT_WITHIN_S),
    )


async def _last_failure(session: AsyncSession, decision: DecisionRow) -> AuditEvent | None:
    """The latest observe failure or error of the pair (or of every pair) since its decision.

    The ids are read and their max taken here: with ``max(id)`` or ``ORDER BY id LIMIT``
    SQLite walks the whole log newest first looking for a failure; this way it reads
    the events since the decision (the time index), few since a failed cycle is
    followed by a stored decision."""
    ids = (
        await session.execute(
            select(AuditEventRow.id).where(
                AuditEventRow.kind.in_(FAILURE_KINDS),
                func.coalesce(AuditEventRow.pair, "").in_([decision.pair, ""]),
                AuditEventRow.ts >= decision.created_at,
            )
        )
    ).scalars()
    latest = max(ids, default=None)
    row = None if latest is None else await session.get(AuditEventRow, latest)
    return None if row is None else event_from_row(row)
