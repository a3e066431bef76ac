"""The paper venue's saved accounts: the store's side of ``PaperAccountStore``
(bot/domain/paper_account.py), one row per account and one per filled order."""

from __future__ import annotations

from collections.abc import Sequence

from bot.domain.models import OrderResult
from bot.domain.paper_account import (
    PaperAccountState,
    order_from_json,
    order_to_json,
    state_from_json,
    state_to_json,
)
from bot.store.database import StoreBase
from bot.store.tables import PaperAccountRow, PaperOrderRow


class PaperAccounts(StoreBase):
    """Implements the paper venue's ``PaperAccountStore`` port."""

    async def load_paper_account(self, name: str) -> PaperAccountState | None:
        """The paper venue's saved account, or None for a new one."""
        async with self._read() as session:
            row = await session.get(PaperAccountRow, name)
            return None if row is None else state_from_json(row.state)

    async def load_paper_order(self, name: str, client_order_id: str) -> OrderResult | None:
        """An order the paper account filled, by client order id."""
        async with self._read() as session:
            row = await session.get(PaperOrderRow, (name, client_order_id))
            return None if row is None else order_from_json(row.order)

    async def save_paper_account(
        self, name: str, state: PaperAccountState, new_orders: Sequence[OrderResult] = ()
    ) -> None:
        """Replace the paper venue's saved account and add its new orders, atomically."""
        async with self._write() as session:
            for order in new_orders:
                session.add(
                    PaperOrderRow(
                        account=name,
                        client_order_id=order.client_order_id,
                        symbol=order.symbol,
                        order=order_to_json(order),
                        created_at=self._clock.now(),
                    )
                )
            row = await session.get(PaperAccountRow, name)
            payload = state_to_json(state)
            if row is None:
                session.add(PaperAccountRow(name=name, state=payload, updated_at=self._clock.now()))
            else:
                row.state = payload
                row.updated_at = self._clock.now()
