"""Orders and their fills: the intent stored before sending, the venue's answer after."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.models import OrderRequest, OrderResult, OrderStatus
from bot.store.controls import load_controls
from bot.store.database import StoreBase
from bot.store.leases import Lease, check_lease
from bot.store.tables import AuditEventRow, DecisionRow, FillRow, ObservationRow, OrderRow

UNRESOLVED = (
    OrderStatus.PENDING.value,
    OrderStatus.ACCEPTED.value,
    OrderStatus.PARTIALLY_FILLED.value,
    OrderStatus.UNKNOWN.value,
)


@dataclass(frozen=True, slots=True)
class StoredOrder:
    client_order_id: str
    decision_id: str
    pair: str
    venue: str
    symbol: str
    side: str
    amount: Decimal
    reduce_only: bool
    status: str
    filled: Decimal
    average_price: Decimal | None
    fee: Decimal
    reason: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class StoredFill:
    pair: str
    side: str
    amount: Decimal  # contracts
    filled_at: datetime
    position_before: Decimal  # reported base position when the order was decided
    symbol: str = ""  # the order's symbol: a pair's perp, or its spot (a sell-down)


def order_from_row(row: OrderRow) -> StoredOrder:
    return StoredOrder(
        client_order_id=row.client_order_id,
        decision_id=row.decision_id,
        pair=row.pair,
        venue=row.venue,
        symbol=row.symbol,
        side=row.side,
        amount=row.amount,
        reduce_only=row.reduce_only,
        status=row.status,
        filled=row.filled,
        average_price=row.average_price,
        fee=row.fee,
        reason=row.reason,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _intent_row(
    decision_id: str, pair: str, venue: str, request: OrderRequest, now: datetime
) -> OrderRow:
    return OrderRow(
        client_order_id=request.client_order_id,
        decision_id=decision_id,
        pair=pair,
        venue=venue,
        symbol=request.symbol,
        side=request.side.value,
        order_type=request.order_type,
        amount=request.amount,
        reduce_only=request.reduce_only,
        status=OrderStatus.PENDING.value,
        filled=Decimal(0),
        average_price=None,
        fee=Decimal(0),
        fee_asset=None,
        reason=None,
        created_at=now,
        updated_at=now,
    )


def _apply_result(row: OrderRow, result: OrderResult, now: datetime) -> None:
    row.status = result.status.value
    row.exchange_order_id = result.exchange_order_id
    row.filled = result.filled
    row.average_price = result.average_price
    row.fee = result.fee
    row.fee_asset = result.fee_asset
    row.reason = result.reason
    row.updated_at = now


async def _add_new_fills(session: AsyncSession, row: OrderRow, result: OrderResult) -> None:
    """Add the result's fills not stored yet (by trade id)."""
    known = set(
        (
            await session.execute(select(FillRow.trade_id).where(FillRow.order_id == row.id))
        ).scalars()
    )
    for fill in result.fills:
        if fill.trade_id in known:
            continue
        session.add(
            FillRow(
                order_id=row.id,
                trade_id=fill.trade_id,
                symbol=fill.symbol,
                side=fill.side.value,
                amount=fill.amount,
                price=fill.price,
                fee=fill.fee,
                fee_asset=fill.fee_asset,
                filled_at=fill.timestamp,
            )
        )


def _result_summary(result: OrderResult) -> str:
    summary = f"order {result.client_order_id} {result.status.value}"
    if result.filled:
        summary += (
            f": {result.side.value} {result.filled} {result.symbol} "
            f"@ {result.average_price}, fee {result.fee} {result.fee_asset or ''}".rstrip()
        )
    if result.reason:
        summary += f": {result.reason}"
    return summary


# The daemon's read of the fills in the settle window (each cycle in it), built once.
_RECENT_FILLS = (
    select(
        OrderRow.pair,
        FillRow.side,
        FillRow.amount,
        FillRow.filled_at,
        ObservationRow.perp_qty,
        ObservationRow.unreflected_qty,
        OrderRow.symbol,
    )
    .join(OrderRow, OrderRow.id == FillRow.order_id)
    .join(DecisionRow, DecisionRow.id == OrderRow.decision_id)
    .join(ObservationRow, ObservationRow.id == DecisionRow.observation_id)
    .where(FillRow.filled_at >= bindparam("since"))
    .order_by(FillRow.filled_at)
)


class Orders(StoreBase):
    """Order intents, the venues' answers and fills, and the reads over them."""

    async def insert_order_intent(
        self,
        decision_id: str,
        pair: str,
        venue: str,
        request: OrderRequest,
        lease: Lease | None = None,
        lease_margin: timedelta = timedelta(0),
    ) -> None:
        """Store an order before it is sent; raises IntegrityError if the id exists.

        With ``lease``, raises LeaseLostError (and stores nothing) unless this daemon
        still holds the pair's lease for at least ``lease_margin``.
        """
        now = self._clock.now()
        async with self._write() as session:
            if lease is not None:
                await check_lease(session, lease, lease_margin, lambda: self._db_now(session))
            session.add(_intent_row(decision_id, pair, venue, request, now))
            await session.flush()
            session.add(self._intent_audit(decision_id, pair, venue, request, now))

    def _intent_audit(
        self, decision_id: str, pair: str, venue: str, request: OrderRequest, now: datetime
    ) -> AuditEventRow:
        return self._audit_row(
            "order.intent",
            f"intent {request.side.value} {request.amount} {request.symbol}"
            f"{' reduce-only' if request.reduce_only else ''} "
            f"as {request.client_order_id}",
            {
                "client_order_id": request.client_order_id,
                "symbol": request.symbol,
                "side": request.side.value,
                "amount": request.amount,
                "reduce_only": request.reduce_only,
                "order_type": request.order_type,
                "venue": venue,
            },
            pair=pair,
            decision_id=decision_id,
            ts=now,
        )

    async def record_order_result(self, pair: str, decision_id: str, result: OrderResult) -> None:
        """Store the venue's answer and its fills (idempotent per trade id)."""
        now = self._clock.now()
        async with self._write() as session:
            row = (
                await session.execute(
                    select(OrderRow).where(OrderRow.client_order_id == result.client_order_id)
                )
            ).scalar_one()
            _apply_result(row, result, now)
            await _add_new_fills(session, row, result)
            session.add(self._result_audit(pair, decision_id, result, now))

    def _result_audit(
        self, pair: str, decision_id: str, result: OrderResult, now: datetime
    ) -> AuditEventRow:
        return self._audit_row(
            f"order.{result.status.value}",
            _result_summary(result),
            {
                "client_order_id": result.client_order_id,
                "exchange_order_id": result.exchange_order_id,
                "status": result.status.value,
                "filled": result.filled,
                "average_price": result.average_price,
                "fee": result.fee,
                "fee_asset": result.fee_asset,
                "fills": [
                    {"trade_id": f.trade_id, "amount": f.amount, "price": f.price}
                    for f in result.fills
                ],
                "reason": result.reason,
            },
            pair=pair,
            decision_id=decision_id,
            ts=now,
        )

    async def mark_order(
        self, client_order_id: str, status: OrderStatus, reason: str, pair: str, decision_id: str
    ) -> None:
        """Set an order's status without a venue answer (rejected before sending, unknown)."""
        now = self._clock.now()
        async with self._write() as session:
            await session.execute(
                update(OrderRow)
                .where(OrderRow.client_order_id == client_order_id)
                .values(status=status.value, reason=reason, updated_at=now)
            )
            session.add(
                self._audit_row(
                    f"order.{status.value}",
                    f"order {client_order_id} {status.value}: {reason}",
                    {"client_order_id": client_order_id, "status": status.value, "reason": reason},
                    pair=pair,
                    decision_id=decision_id,
                    ts=now,
                )
            )

    async def unresolved_orders(self, pair: str | None = None) -> list[StoredOrder]:
        """Orders whose final outcome is not known yet, oldest first."""
        query = select(OrderRow).where(OrderRow.status.in_(UNRESOLVED)).order_by(OrderRow.id)
        if pair is not None:
            query = query.where(OrderRow.pair == pair)
        async with self._read() as session:
            return [order_from_row(r) for r in (await session.execute(query)).scalars()]

    async def known_client_order_ids(self, ids: Sequence[str]) -> set[str]:
        """Which of these client order ids the store has an order for."""
        if not ids:
            return set()
        query = select(OrderRow.client_order_id).where(OrderRow.client_order_id.in_(ids))
        async with self._read() as session:
            return set((await session.execute(query)).scalars())

    async def orders(self, pair: str | None = None) -> list[StoredOrder]:
        """Every stored order, oldest first."""
        query = select(OrderRow).order_by(OrderRow.id)
        if pair is not None:
            query = query.where(OrderRow.pair == pair)
        async with self._read() as session:
            return [order_from_row(r) for r in (await session.execute(query)).scalars()]

    async def recent_fills(self, pair: str | None, since: datetime) -> list[StoredFill]:
        """Fills since ``since`` (of one pair, or all), with the position reported when
        each order was decided."""
        query = _RECENT_FILLS
        if pair is not None:
            query = query.where(OrderRow.pair == pair)
        async with self._read_one() as connection:
            return [
                StoredFill(
                    pair=fill_pair,
                    side=side,
                    amount=amount,
                    filled_at=filled_at,
                    position_before=perp_qty - unreflected,
                    symbol=symbol,
                )
                for fill_pair, side, amount, filled_at, perp_qty, unreflected, symbol in (
                    await connection.execute(query, {"since": since})
                ).all()
            ]

    async def sold_since(self, pair: str, symbol: str, since: datetime) -> Decimal:
        """The quantity our sell orders of ``pair`` on ``symbol`` filled since ``since``
        (the bearish sell-down counts its spot sales with it)."""
        # Summed here, not in SQL: SQLite keeps exact decimals as text.
        query = (
            select(FillRow.amount)
            .join(OrderRow, OrderRow.id == FillRow.order_id)
            .where(
                OrderRow.pair == pair,
                OrderRow.symbol == symbol,
                FillRow.side == "sell",
                FillRow.filled_at >= since,
            )
        )
        async with self._read() as session:
            return sum((await session.execute(query)).scalars(), Decimal(0))

    async def traded_notional_since(self, since: datetime) -> dict[str, Decimal]:
        """Per pair, the quote value of its fills since ``since`` (amount x price)."""
        query = (
            select(OrderRow.pair, FillRow.amount, FillRow.price)
            .join(OrderRow, OrderRow.id == FillRow.order_id)
            .where(FillRow.filled_at >= since)
        )
        totals: dict[str, Decimal] = {}
        async with self._read() as session:
            for pair, amount, price in (await session.execute(query)).all():
                totals[pair] = totals.get(pair, Decimal(0)) + amount * price
        return totals

    async def trailing_rejections(
        self, limit: int, skip_symbols: Sequence[str] = ()
    ) -> dict[str, int]:
        """Per pair, how many of its latest orders (up to ``limit``) were rejected in a row,
        counting only orders after the pair's last pause or resume; orders on
        ``skip_symbols`` (the sell-down's spot sells) neither count nor break the run."""
        counts: dict[str, int] = {}
        async with self._read() as session:
            controls = await load_controls(session)
            pairs = (await session.execute(select(OrderRow.pair).distinct())).scalars().all()
            for pair in pairs:
                query = (
                    select(OrderRow.status, OrderRow.created_at)
                    .where(OrderRow.pair == pair, OrderRow.symbol.not_in(skip_symbols))
                    .order_by(OrderRow.id.desc())
                    .limit(limit)
                )
                control = controls.get(pair)
                count = 0
                for status, created_at in (await session.execute(query)).all():
                    if status != OrderStatus.REJECTED.value:
                        break
                    if control is not None and created_at <= control.updated_at:
                        break
                    count += 1
                if count:
                    counts[pair] = count
        return counts
