"""Run-time targets (``hedgebot set-target``) and pauses (``hedgebot pause`` / ``resume``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    CompoundSelect,
    String,
    literal_column,
    null,
    select,
    type_coerce,
    union,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.controls import ALL_PAIRS, PairControl
from bot.store.database import StoreBase
from bot.store.tables import DecisionRow, Money, PairControlRow, PairLeaseRow, PairTargetRow


@dataclass(frozen=True, slots=True)
class PairTarget:
    """A target set with ``hedgebot set-target``: a ratio (fixed) or an outlook."""

    pair: str
    ratio: Decimal | None
    outlook: str | None
    set_at: datetime


# The daemon's per-cycle read of the run-time targets and the pauses: one statement, built
# once (its compiled form is cached). The result takes the first SELECT's column types.
_RUN_TIME_CONTROLS: CompoundSelect[Any] = union_all(
    select(
        literal_column("'target'", String).label("kind"),
        PairTargetRow.pair,
        PairTargetRow.ratio,
        PairTargetRow.outlook.label("text"),
        type_coerce(null(), String).label("source"),
        type_coerce(null(), Boolean).label("paused"),
        PairTargetRow.set_at.label("at"),
    ),
    select(
        literal_column("'control'", String),
        PairControlRow.pair,
        type_coerce(null(), Money),
        PairControlRow.reason,
        PairControlRow.source,
        PairControlRow.paused,
        PairControlRow.updated_at,
    ),
)


async def load_controls(session: AsyncSession) -> dict[str, PairControl]:
    """Every stored pause or resume, by pair name ("*": every pair)."""
    return {
        row.pair: PairControl(row.pair, row.paused, row.reason, row.source, row.updated_at)
        for row in (await session.execute(select(PairControlRow))).scalars()
    }


def _rows_to_change(
    session: AsyncSession, rows: dict[str, PairControlRow], pair: str, paused: bool
) -> list[PairControlRow]:
    """The control rows a pause or resume of ``pair`` changes (none: nothing to do)."""
    if not paused:
        return [r for key, r in rows.items() if r.paused and (pair == ALL_PAIRS or key == pair)]
    row = rows.get(pair)
    if row is not None and row.paused:
        return []
    if row is None:
        row = PairControlRow(pair=pair)
        session.add(row)
    return [row]


class Controls(StoreBase):
    """The pairs' run-time targets and pauses, each change audited in its transaction."""

    async def set_pair_target(
        self, pair: str, ratio: Decimal | None, outlook: str | None, summary: str
    ) -> None:
        """Store the pair's run-time target and audit it (``pair.target_set``), in one commit.

        Both None drops it: the pair goes back to its configured target.
        """
        async with self._write() as session:
            row = await session.get(PairTargetRow, pair)
            now = self._clock.now()
            if ratio is None and outlook is None:
                if row is not None:
                    await session.delete(row)
            elif row is None:
                session.add(PairTargetRow(pair=pair, ratio=ratio, outlook=outlook, set_at=now))
            else:
                row.ratio, row.outlook, row.set_at = ratio, outlook, now
            session.add(
                self._audit_row(
                    "pair.target_set", summary, {"ratio": ratio, "outlook": outlook}, pair
                )
            )

    async def pair_targets(self) -> dict[str, PairTarget]:
        """Every run-time target, by pair (one query: the daemon reads it each cycle)."""
        async with self._read() as session:
            rows = (await session.execute(select(PairTargetRow))).scalars()
            return {r.pair: PairTarget(r.pair, r.ratio, r.outlook, r.set_at) for r in rows}

    async def run_time_controls(self) -> tuple[dict[str, PairTarget], dict[str, PairControl]]:
        """The run-time targets and the pauses, in one statement (the daemon's, each cycle):
        built once, no mapped objects."""
        targets: dict[str, PairTarget] = {}
        controls: dict[str, PairControl] = {}
        async with self._read_one() as connection:
            rows = (await connection.execute(_RUN_TIME_CONTROLS)).all()
        for kind, pair, ratio, text, source, paused, at in rows:
            if kind == "target":
                targets[pair] = PairTarget(pair, ratio, text, at)
            else:
                controls[pair] = PairControl(pair, paused, text, source, at)
        return targets, controls

    async def pair_controls(self) -> dict[str, PairControl]:
        """Every stored pause or resume, by pair name ("*": every pair); one small query."""
        async with self._read() as session:
            return await load_controls(session)

    async def set_pair_paused(
        self, pair: str, paused: bool, reason: str, source: str = "user"
    ) -> bool:
        """Pause or resume ``pair`` ("*": every pair) and audit it (``pair.paused`` /
        ``pair.resumed``); resuming "*" resumes every pair. False when nothing changed."""
        now = self._clock.now()
        async with self._write() as session:
            rows = {
                row.pair: row for row in (await session.execute(select(PairControlRow))).scalars()
            }
            targets = _rows_to_change(session, rows, pair, paused)
            if not targets:
                return False
            for row in targets:
                row.paused = paused
                row.reason = reason
                row.source = source
                row.updated_at = now
            who = pair if pair != ALL_PAIRS else "every pair"
            kind = "pair.paused" if paused else "pair.resumed"
            verb = "paused" if paused else "resumed"
            session.add(
                self._audit_row(
                    kind,
                    f"{who} {verb} ({source}): {reason}",
                    {
                        "pair": pair,
                        "source": source,
                        "reason": reason,
                        "pairs": sorted(r.pair for r in targets),
                    },
                    pair=None if pair == ALL_PAIRS else pair,
                    ts=now,
                )
            )
            return True

    async def pair_names(self) -> list[str]:
        """Every pair the database knows: decided on, leased, targeted or paused by name."""
        query = union(
            select(DecisionRow.pair).distinct(),
            select(PairLeaseRow.pair),
            select(PairTargetRow.pair),
            select(PairControlRow.pair).where(PairControlRow.pair != ALL_PAIRS),
        )
        async with self._read() as session:
            return sorted(str(name) for name in (await session.execute(query)).scalars())
