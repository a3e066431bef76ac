"""Margin transfers: the intent stored before the transfer is sent, its outcome after.

Each write changes one transfer's state only from the states it expects (a compare and
set), with its audit event in the same transaction: a transfer resolved as never sent
cannot then be marked sent by a daemon that stalled, and the other way round.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.margin_transfers import UNRESOLVED_STATES, MoveKind, TransferState
from bot.store.database import StoreBase
from bot.store.leases import Lease, check_lease
from bot.store.tables import MarginTransferRow


@dataclass(frozen=True, slots=True)
class MarginTransferIntent:
    """A margin transfer about to be stored: what moves where, for which decision."""

    client_id: str
    decision_id: str
    pair: str
    venue: str
    symbol: str  # a wallet transfer: its route ("spot->futures"), the history's key
    amount: Decimal
    asset: str
    kind: str  # MoveKind

    def describe(self) -> str:
        """What the transfer moves, in words."""
        return describe_move(MoveKind(self.kind), self.amount, self.asset, self.symbol)


def describe_move(kind: MoveKind, amount: Decimal, asset: str, symbol: str) -> str:
    """``add 5 USDT margin to BTC/USDT:USDT``, ``move 5 USDT spot->futures``."""
    if kind is MoveKind.ADD_MARGIN:
        return f"add {amount} {asset} margin to {symbol}"
    if kind is MoveKind.REMOVE_MARGIN:
        return f"take {amount} {asset} margin out of {symbol}"
    return f"move {amount} {asset} {symbol}"


@dataclass(frozen=True, slots=True)
class StoredMarginTransfer(MarginTransferIntent):
    """A stored transfer: its intent, what became of it and when."""

    state: str
    reason: str | None
    venue_time: datetime | None
    created_at: datetime
    updated_at: datetime


def _stored(row: MarginTransferRow) -> StoredMarginTransfer:
    return StoredMarginTransfer(
        client_id=row.client_id,
        decision_id=row.decision_id,
        pair=row.pair,
        venue=row.venue,
        symbol=row.symbol,
        amount=row.amount,
        asset=row.asset,
        kind=row.kind,
        state=row.state,
        reason=row.reason,
        venue_time=row.venue_time,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class MarginTransfers(StoreBase):
    """The liquidation guard's margin transfers and their outcomes."""

    async def insert_margin_intent(
        self,
        intent: MarginTransferIntent,
        lease: Lease | None = None,
        lease_margin: timedelta = timedelta(0),
    ) -> StoredMarginTransfer:
        """Store a transfer before it is sent (state ``intent``); raises IntegrityError if
        the id exists, LeaseLostError (storing nothing) unless this daemon holds the pair's
        lease for at least ``lease_margin``."""
        now = self._clock.now()
        async with self._write() as session:
            if lease is not None:
                await check_lease(session, lease, lease_margin, lambda: self._db_now(session))
            row = MarginTransferRow(
                client_id=intent.client_id,
                decision_id=intent.decision_id,
                pair=intent.pair,
                venue=intent.venue,
                symbol=intent.symbol,
                amount=intent.amount,
                asset=intent.asset,
                kind=intent.kind,
                state=TransferState.INTENT.value,
                reason=None,
                venue_time=None,
                created_at=now,
                updated_at=now,
            )
            session.add(row)
            await session.flush()
            session.add(
                self._audit_row(
                    "margin.intent",
                    f"intent {intent.describe()} as {intent.client_id}",
                    {
                        "client_id": intent.client_id,
                        "symbol": intent.symbol,
                        "amount": intent.amount,
                        "asset": intent.asset,
                        "venue": intent.venue,
                        "kind": intent.kind,
                    },
                    pair=intent.pair,
                    decision_id=intent.decision_id,
                    ts=now,
                )
            )
            return _stored(row)

    async def mark_margin_sent(
        self,
        transfer: StoredMarginTransfer,
        lease: Lease | None = None,
        lease_margin: timedelta = timedelta(0),
    ) -> bool:
        """Move a stored intent to ``sent`` just before it is sent; False (and nothing
        may be sent) when it is no longer an intent (resolved as never sent meanwhile).
        LeaseLostError when this daemon no longer holds the pair."""
        async with self._write() as session:
            if lease is not None:
                await check_lease(session, lease, lease_margin, lambda: self._db_now(session))
            return await self._move(
                session,
                transfer,
                TransferState.SENT,
                (TransferState.INTENT,),
                f"sending: {transfer.describe()}",
            )

    async def resolve_margin_transfer(
        self,
        transfer: StoredMarginTransfer,
        state: TransferState,
        reason: str,
        venue_time: datetime | None = None,
    ) -> bool:
        """Record a transfer's outcome (``done``, ``failed`` or ``unknown``) with its reason,
        if it is still unresolved; False when another writer resolved it first."""
        async with self._write() as session:
            return await self._move(session, transfer, state, UNRESOLVED_STATES, reason, venue_time)

    async def _move(
        self,
        session: AsyncSession,
        transfer: StoredMarginTransfer,
        state: TransferState,
        expected: Collection[TransferState],
        reason: str,
        venue_time: datetime | None = None,
    ) -> bool:
        now = self._clock.now()
        values: dict[str, object] = {"state": state.value, "reason": reason, "updated_at": now}
        if venue_time is not None:
            values["venue_time"] = venue_time
        moved = await session.execute(
            update(MarginTransferRow)
            .where(
                MarginTransferRow.client_id == transfer.client_id,
                MarginTransferRow.state.in_([s.value for s in expected]),
            )
            .values(**values)
        )
        if getattr(moved, "rowcount", 0) != 1:
            return False
        session.add(
            self._audit_row(
                f"margin.{state.value}",
                f"margin transfer {transfer.client_id} {state.value}: {reason}",
                {
                    "client_id": transfer.client_id,
                    "symbol": transfer.symbol,
                    "amount": transfer.amount,
                    "asset": transfer.asset,
                    "state": state.value,
                    "reason": reason,
                    "venue_time": venue_time,
                    "kind": transfer.kind,
                },
                pair=transfer.pair,
                decision_id=transfer.decision_id,
                ts=now,
            )
        )
        return True

    async def margin_transfers(self, pair: str | None = None) -> list[StoredMarginTransfer]:
        """Every stored margin transfer, oldest first."""
        return await self._transfers(pair, unresolved=False)

    async def unresolved_margin_transfers(
        self, pair: str | None = None
    ) -> list[StoredMarginTransfer]:
        """Transfers whose outcome is not known yet (intent, sent, unknown), oldest first."""
        return await self._transfers(pair, unresolved=True)

    async def _transfers(self, pair: str | None, unresolved: bool) -> list[StoredMarginTransfer]:
        query = select(MarginTransferRow).order_by(MarginTransferRow.id)
        if unresolved:
            query = query.where(MarginTransferRow.state.in_([s.value for s in UNRESOLVED_STATES]))
        if pair is not None:
            query = query.where(MarginTransferRow.pair == pair)
        async with self._read() as session:
            return [_stored(r) for r in (await session.execute(query)).scalars()]

    async def claimed_margin_changes(
        self, venue: str, symbol: str, kind: str = MoveKind.ADD_MARGIN.value
    ) -> set[datetime]:
        """The venue times of the history entries already matched to our transfers of
        ``kind`` on ``symbol`` (a wallet transfer's: its route)."""
        query = select(MarginTransferRow.venue_time).where(
            MarginTransferRow.venue == venue,
            MarginTransferRow.symbol == symbol,
            MarginTransferRow.kind == kind,
            MarginTransferRow.venue_time.is_not(None),
        )
        async with self._read() as session:
            return {t for t in (await session.execute(query)).scalars() if t is not None}
