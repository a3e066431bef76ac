"""Decisions and the observations they were made on (one of each per stored decision),
and each pair's latest cycle (``pair_cycles``: every cycle, stored or not)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, insert, select

from bot.domain.models import Decision, Observation
from bot.store.database import StoreBase, jsonable
from bot.store.tables import AuditEventRow, DecisionRow, ObservationRow, PairCycleRow


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """One decision as it is stored: what was seen, decided, checked and said."""

    decision_id: str
    observation: Observation
    cycle: int
    mode: str
    decision: Decision
    action: str
    verdict: str | None
    inputs: Mapping[str, Any]
    summary: str
    contract_size: Decimal = Decimal(1)  # of the perp: its orders' contracts x this = coins
    # A hold stored because record_every_s passed, not because anything changed: audited
    # as a short ``decision.heartbeat``; ``unstored`` holds were not stored before it.
    heartbeat: bool = False
    unstored: int = 0


@dataclass(frozen=True, slots=True)
class PairCycle:
    """A pair's cycle: when it ran, what it decided, whether the decision was stored."""

    pair: str
    cycle: int
    at: datetime
    action: str
    recorded: bool


def _observation_values(record: DecisionRecord) -> dict[str, Any]:
    observation = record.observation
    position = observation.position
    return {
        "id": record.decision_id,
        "pair": observation.pair,
        "cycle": record.cycle,
        "observed_at": observation.observed_at,
        "spot_symbol": observation.spot_symbol,
        "perp_symbol": observation.perp_symbol,
        "spot_qty": observation.spot_qty,
        "perp_qty": observation.perp_qty,
        "unreflected_qty": observation.unreflected_qty,
        "price": observation.price,
        "bid": observation.bid,
        "ask": observation.ask,
        "funding_rate": observation.funding_rate,
        "entry_price": position.entry_price if position else None,
        "liquidation_price": position.liquidation_price if position else None,
        "unrealized_pnl": position.unrealized_pnl if position else None,
        "leverage": position.leverage if position else None,
        "spot_price": observation.spot_price,
        "contract_size": record.contract_size,
    }


def _decision_values(record: DecisionRecord, now: datetime) -> dict[str, Any]:
    d = record.decision
    return {
        "id": record.decision_id,
        "pair": d.pair,
        "cycle": record.cycle,
        "mode": record.mode,
        "created_at": now,
        "observation_id": record.decision_id,
        "target_ratio": d.target_ratio,
        "ratio": d.ratio,
        "drift_qty": d.drift_qty,
        "band": d.band,
        "action": record.action,
        "reason": d.reason,
        "verdict": record.verdict,
        "inputs": jsonable(_stored_inputs(record)),
    }


def _stored_inputs(record: DecisionRecord) -> dict[str, Any]:
    """A heartbeat's inputs leave the observation out: it is the observation row stored
    beside it (same id), and a heartbeat is most of what a holding pair stores."""
    inputs = dict(record.inputs)
    if record.heartbeat:
        inputs.pop("observation", None)
    return inputs


def _cycle_values(seen: PairCycle) -> dict[str, Any]:
    return {
        "pair": seen.pair,
        "cycle": seen.cycle,
        "at": seen.at,
        "action": seen.action,
        "recorded": seen.recorded,
    }


class Decisions(StoreBase):
    """Writes and reads of the decisions and their observations."""

    async def last_cycle(self) -> int:
        """The highest cycle number recorded so far (0 for a new database)."""
        async with self._read() as session:
            value = (await session.execute(select(func.max(ObservationRow.cycle)))).scalar()
            return int(value or 0)

    async def record_decision(self, record: DecisionRecord) -> None:
        """Store one observation, its decision (with the verdict) and the audit event."""
        await self.record_decisions([record])

    async def record_decisions(self, records: Sequence[DecisionRecord]) -> None:
        """Store many decisions in one transaction: a cycle's holds cost one commit."""
        await self.record_cycle(records, ())

    async def record_cycle(
        self, records: Sequence[DecisionRecord], cycles: Sequence[PairCycle]
    ) -> None:
        """Store ``records`` (observation, decision, audit event each) and the pairs'
        latest cycles in one transaction."""
        if not records and not cycles:
            return
        if not records:  # a steady cycle's: no audit row to chain, no ORM session
            async with self._write_core() as connection:
                await connection.execute(self._upsert_cycles(), [_cycle_values(c) for c in cycles])
            return
        now = self._clock.now()
        async with self._write() as session:
            if cycles:  # before the audit rows, which are chained at the commit
                await session.execute(self._upsert_cycles(), [_cycle_values(c) for c in cycles])
            if records:
                observations = [_observation_values(r) for r in records]
                decisions = [_decision_values(r, now) for r in records]
                await session.execute(insert(ObservationRow), observations)
                await session.execute(insert(DecisionRow), decisions)
                session.add_all([self._decision_audit(r, now) for r in records])

    def _upsert_cycles(self) -> Any:
        """One upsert of the pairs' cycle rows, executed with every pair's values at once
        (built once per repository: building it costs more than running it)."""
        if self._cycles_upsert is None:
            statement = self._dialect().insert(PairCycleRow)
            names = ("cycle", "at", "action", "recorded")
            changed = {name: statement.excluded[name] for name in names}
            self._cycles_upsert = statement.on_conflict_do_update(
                index_elements=[PairCycleRow.pair], set_=changed
            )
        return self._cycles_upsert

    async def pair_cycles(self) -> dict[str, PairCycle]:
        """Each pair's latest cycle (pairs that ran since revision 0008)."""
        async with self._read() as session:
            rows = (await session.execute(select(PairCycleRow))).scalars()
            return {r.pair: PairCycle(r.pair, r.cycle, r.at, r.action, r.recorded) for r in rows}

    def _decision_audit(self, record: DecisionRecord, now: datetime) -> AuditEventRow:
        d = record.decision
        if record.heartbeat:
            return self._heartbeat_audit(record, now)
        return self._audit_row(
            "risk.denied" if record.action == "denied" else "decision",
            record.summary,
            {
                "action": record.action,
                "reason": d.reason,
                "verdict": record.verdict,
                "target_ratio": d.target_ratio,
                "ratio": d.ratio,
                "drift_qty": d.drift_qty,
                "band": d.band,
                "inputs": record.inputs,
            },
            pair=d.pair,
            decision_id=record.decision_id,
            ts=now,
        )

    def _heartbeat_audit(self, record: DecisionRecord, now: datetime) -> AuditEventRow:
        """A short event: the decision row beside it has the inputs."""
        d, observation = record.decision, record.observation
        return self._audit_row(
            "decision.heartbeat",
            f"{record.summary} (unchanged; {record.unstored} holds since the last stored)",
            {
                "action": record.action,
                "ratio": d.ratio,
                "target_ratio": d.target_ratio,
                "price": observation.price,
                "spot_qty": observation.spot_qty,
                "perp_qty": observation.perp_qty,
                "unstored": record.unstored,
            },
            pair=d.pair,
            decision_id=record.decision_id,
            ts=now,
        )

    async def last_strategy_inputs(self) -> dict[str, dict[str, Any]]:
        """Each pair's latest decision's ``inputs["strategy"]`` (a restart resumes regimes)."""
        async with self._read() as session:
            latest = (
                select(DecisionRow.pair, func.max(DecisionRow.id).label("id"))
                .group_by(DecisionRow.pair)
                .subquery()
            )
            rows = await session.execute(
                select(DecisionRow.pair, DecisionRow.inputs).join(
                    latest, DecisionRow.id == latest.c.id
                )
            )
            result: dict[str, dict[str, Any]] = {}
            for pair, inputs in rows:
                strategy = (inputs or {}).get("strategy")
                if isinstance(strategy, dict):
                    result[pair] = strategy
            return result

    async def decision_targets(self) -> list[tuple[str, datetime, Decimal]]:
        """Every decision's pair, time and target ratio, oldest first (a backtest's targets)."""
        query = select(DecisionRow.pair, DecisionRow.created_at, DecisionRow.target_ratio)
        query = query.order_by(DecisionRow.created_at, DecisionRow.cycle)
        async with self._read() as session:
            return [(p, at, target) for p, at, target in (await session.execute(query)).all()]

    async def last_seen(self) -> dict[str, tuple[Decimal, Decimal]]:
        """Per pair, the latest (reported perp qty, spot qty) the daemon observed."""
        latest = (
            select(ObservationRow.pair, func.max(ObservationRow.id).label("id"))
            .group_by(ObservationRow.pair)
            .subquery()
        )
        query = select(
            ObservationRow.pair,
            ObservationRow.perp_qty,
            ObservationRow.unreflected_qty,
            ObservationRow.spot_qty,
        ).join(latest, ObservationRow.id == latest.c.id)
        async with self._read() as session:
            return {
                pair: (perp - unreflected, spot)
                for pair, perp, unreflected, spot in (await session.execute(query)).all()
            }
