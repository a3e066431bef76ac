"""Funding payments, each stored once (venue, symbol and time are unique)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bot.domain.models import FundingPayment
from bot.store.database import StoreBase
from bot.store.tables import AuditEventRow, FundingPaymentRow


def _funding_row(pair: str, venue: str, payment: FundingPayment) -> FundingPaymentRow:
    return FundingPaymentRow(
        pair=pair,
        venue=venue,
        symbol=payment.symbol,
        amount=payment.amount,
        asset=payment.asset,
        rate=payment.rate,
        position_qty=payment.position_qty,
        mark_price=payment.mark_price,
        paid_at=payment.timestamp,
    )


class Funding(StoreBase):
    """Writes and sums of the funding payments, each audited (``funding``)."""

    async def record_funding(self, pair: str, venue: str, payment: FundingPayment) -> bool:
        """Store a funding payment once; False when it was already stored."""
        try:
            async with self._write() as session:
                session.add(_funding_row(pair, venue, payment))
                await session.flush()
                session.add(self._funding_audit(pair, payment))
        except IntegrityError:
            return False
        return True

    async def record_fundings(
        self, venue: str, payments: Sequence[tuple[str, FundingPayment]]
    ) -> list[tuple[str, FundingPayment]]:
        """Store many (pair, payment) of one venue in one transaction, each once (those
        already stored are skipped); returns the new ones."""
        if len(payments) <= 1:
            return [(pair, p) for pair, p in payments if await self.record_funding(pair, venue, p)]
        symbols = sorted({p.symbol for _, p in payments})
        times = [p.timestamp for _, p in payments]
        query = select(FundingPaymentRow.symbol, FundingPaymentRow.paid_at).where(
            FundingPaymentRow.venue == venue,
            FundingPaymentRow.symbol.in_(symbols),
            FundingPaymentRow.paid_at >= min(times),
            FundingPaymentRow.paid_at <= max(times),
        )
        async with self._write() as session:
            known = {(symbol, at) for symbol, at in (await session.execute(query)).all()}
            new = []
            for pair, payment in payments:
                key = (payment.symbol, payment.timestamp)
                if key not in known:
                    known.add(key)
                    new.append((pair, payment))
            session.add_all([_funding_row(pair, venue, p) for pair, p in new])
            session.add_all([self._funding_audit(pair, p) for pair, p in new])
        return new

    def _funding_audit(self, pair: str, payment: FundingPayment) -> AuditEventRow:
        verb = "received" if payment.amount >= 0 else "paid"
        return self._audit_row(
            "funding",
            f"funding {verb} {abs(payment.amount)} {payment.asset} on "
            f"{payment.symbol}"
            + (
                f" ({payment.position_qty} at rate {payment.rate})"
                if payment.rate is not None
                else ""
            ),
            {
                "symbol": payment.symbol,
                "amount": payment.amount,
                "asset": payment.asset,
                "rate": payment.rate,
                "position_qty": payment.position_qty,
                "mark_price": payment.mark_price,
                "paid_at": payment.timestamp,
            },
            pair=pair,
        )

    async def funding_total(self, pair: str) -> Decimal:
        """Sum of the pair's funding payments (positive = received)."""
        async with self._read() as session:
            rows = (
                await session.execute(
                    select(FundingPaymentRow.amount).where(FundingPaymentRow.pair == pair)
                )
            ).scalars()
            return sum(rows, Decimal(0))

    async def coin_funding_value(self, quote: str) -> Decimal:
        """The payments made in an asset other than ``quote`` (an inverse contract's coin),
        valued in ``quote`` at the mark price each was paid at; ValueError without one."""
        query = select(
            FundingPaymentRow.amount, FundingPaymentRow.asset, FundingPaymentRow.mark_price
        ).where(FundingPaymentRow.asset != quote)
        async with self._read() as session:
            total = Decimal(0)
            for amount, asset, mark in await session.execute(query):
                if mark is None:
                    raise ValueError(
                        f"a funding payment of {amount} {asset} has no mark price to value it "
                        f"in {quote}; the venue must report the mark with each payment"
                    )
                total += amount * mark
            return total
