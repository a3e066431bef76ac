"""Record: which of a cycle's decisions are stored, and storing them in one commit.

A hold whose inputs have not materially changed since the pair's last stored decision is
not stored each cycle (issue 16): it is stored when something changes — its action or
verdict (its numbers aside), the target, the strategy's regime, the quantities, the
foreign orders, the lease, the price or the ratio past their steps (``[storage]``), a
cycle the pair missed — and otherwise as a heartbeat at most every ``record_every_s``.
A decision that sends (an order, a margin transfer) is always stored, by the send stage.
Every cycle still updates the pair's ``pair_cycles`` row, so ``status`` knows when it
last ran.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import structlog

from bot.config import StorageConfig
from bot.store.repository import DecisionRecord, PairCycle, Repository

# The strategy inputs whose change is a change of regime (numbers that move every cycle,
# such as the funding rate a regime is computed from, are not).
REGIME_KEYS = ("name", "regime", "outlook", "set_target", "future_symbol")
# A verdict's numbers (an age, the notional an order would reach at this cycle's price)
# move every cycle: the same denial with other numbers is no change (the heartbeat and
# the price and ratio steps still store it).
NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
DAY = timedelta(days=1)

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class _Stored:
    """What the pair's last stored decision said, to compare the next ones with."""

    cycle: int  # the last cycle the pair was decided in (stored or not)
    at: datetime  # when the last stored one was made
    key: tuple[Any, ...]  # what must stay the same
    price: Decimal
    ratio: Decimal | None
    unstored: int = 0  # holds not stored since


def _key(record: DecisionRecord) -> tuple[Any, ...]:
    observation, decision = record.observation, record.decision
    inputs = record.inputs
    strategy = inputs.get("strategy") or {}
    lease = inputs.get("lease") or {}
    return (
        record.action,
        None if record.verdict is None else NUMBER.sub("#", record.verdict),
        decision.target_ratio,
        decision.band,
        observation.spot_qty,
        observation.perp_qty,
        observation.unreflected_qty,
        tuple(str(strategy.get(k)) for k in REGIME_KEYS),
        inputs.get("foreign_open_orders"),
        lease.get("holder") if isinstance(lease, Mapping) else None,
        lease.get("token") if isinstance(lease, Mapping) else None,
    )


def _moved(new: Decimal | None, old: Decimal | None, step: Decimal, relative: bool) -> bool:
    if new is None or old is None:
        return new is not old
    if relative:
        return old == 0 or abs(new - old) >= abs(old) * step
    return abs(new - old) >= step


class RecordStage:
    """Chooses the decisions worth storing and stores them with the pairs' cycle rows."""

    def __init__(self, settings: StorageConfig, repository: Repository) -> None:
        self._settings = settings
        self._repo = repository
        self._every = timedelta(seconds=settings.record_every_s)
        self._last: dict[str, _Stored] = {}
        self._pruned_at: datetime | None = None  # retention_days: the daemon's last prune

    async def record(
        self,
        cycle: int,
        now: datetime,
        holds: Sequence[DecisionRecord],
        sent: Sequence[DecisionRecord] = (),
    ) -> list[DecisionRecord]:
        """Store the holds worth storing and every pair's cycle row in one commit; returns
        the holds stored. The decisions in ``sent`` are stored by the send stage."""
        chosen = [r for r in (self._choose(cycle, now, r) for r in holds) if r is not None]
        for record in sent:
            self._remember(cycle, now, record)
        stored = {r.decision_id for r in chosen} | {r.decision_id for r in sent}
        seen = [
            PairCycle(r.decision.pair, cycle, now, r.action, r.decision_id in stored)
            for r in (*holds, *sent)
        ]
        try:
            await self._repo.record_cycle(chosen, seen)
        except Exception:
            self.forget()
            raise
        await self._retain(now)
        return chosen

    async def _retain(self, now: datetime) -> None:
        """``retention_days``: prune once a day, as ``db prune`` does, in short batches and
        without VACUUM (the freed pages are reused by later writes)."""
        days = self._settings.retention_days
        if days is None or (self._pruned_at is not None and now - self._pruned_at < DAY):
            return
        self._pruned_at = now
        try:
            await self._repo.prune(now - timedelta(days=days), vacuum=False)
        except Exception as exc:  # the cycle's decisions are stored; the prune waits a day
            log.warning("retention.prune_failed", error=str(exc))

    def forget(self) -> None:
        """What was stored is not known (a failed write): store the next decisions."""
        self._last.clear()

    def _choose(self, cycle: int, now: datetime, record: DecisionRecord) -> DecisionRecord | None:
        pair = record.decision.pair
        last = self._last.get(pair)
        if last is None or self._settings.record_every_s == 0 or self._changed(record, last, cycle):
            self._remember(cycle, now, record)
            return record
        if now - last.at >= self._every:
            self._remember(cycle, now, record)
            return replace(record, heartbeat=True, unstored=last.unstored)
        self._last[pair] = replace(last, cycle=cycle, unstored=last.unstored + 1)
        return None

    def _changed(self, record: DecisionRecord, last: _Stored, cycle: int) -> bool:
        settings = self._settings
        return (
            cycle != last.cycle + 1
            or _key(record) != last.key
            or _moved(record.observation.price, last.price, settings.record_price_step, True)
            or _moved(record.decision.ratio, last.ratio, settings.record_ratio_step, False)
        )

    def _remember(self, cycle: int, now: datetime, record: DecisionRecord) -> None:
        self._last[record.decision.pair] = _Stored(
            cycle, now, _key(record), record.observation.price, record.decision.ratio
        )
