"""What the paper venue closes by itself: liquidations and dated futures at expiry.

* **Liquidation, isolated account**: when the mark reaches a position's isolated
  liquidation price, the position is closed at that price and its whole margin is lost
  (what the margin still held after the trading loss is the venue's liquidation fee).
* **Liquidation, cross or unified account**: when the account's margin balance falls to its
  maintenance margin, every position is closed at its mark and the maintenance margin is
  charged as the liquidation fee.
* **Settlement**: a dated future still open at its expiry is closed at the feed's spot
  price (its basis 0 by then), the PnL realized.

Each close is remembered as a filled, fee-less order (``liquidation-<n>``,
``settlement-<n>``), so look-ups and fills show it like any other.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from bot.domain.models import ZERO, Fill, Market, OrderResult, OrderStatus, Side
from bot.domain.paper_account import PaperAccountState, PaperPosition
from bot.exchange.feeds import FeedQuote
from bot.exchange.paper.inverse import InverseBooks
from bot.exchange.paper.rules import settle_asset
from bot.exchange.paper.unified import UnifiedBooks

LIQUIDATION_PREFIX = "liquidation-"
SETTLEMENT_PREFIX = "settlement-"

QuoteFn = Callable[[str, datetime], FeedQuote]


def filled_order(
    client_order_id: str, exchange_order_id: str, fill: Fill, reason: str | None = None
) -> OrderResult:
    """An order filled completely by the one trade ``fill``."""
    return OrderResult(
        client_order_id=client_order_id,
        exchange_order_id=exchange_order_id,
        symbol=fill.symbol,
        side=fill.side,
        status=OrderStatus.FILLED,
        amount=fill.amount,
        filled=fill.amount,
        average_price=fill.price,
        fee=fill.fee,
        fee_asset=fill.fee_asset,
        fills=(fill,),
        reason=reason,
    )


def crossed(qty: Decimal, mark: Decimal, liquidation: Decimal) -> bool:
    """Whether ``mark`` has reached the liquidation price of a position of signed ``qty``."""
    return mark >= liquidation if qty < ZERO else mark <= liquidation


class Books(Protocol):
    """The part of the ledger a forced close changes."""

    state: PaperAccountState

    def credit(self, asset: str, amount: Decimal) -> None: ...

    def next_seq(self) -> int: ...

    def remember(self, order: OrderResult) -> None: ...

    def liquidation_price(
        self, position: PaperPosition, now: datetime | None = None
    ) -> Decimal | None: ...


class ForcedCloses:
    """Finds and applies the closes the venue makes without a request."""

    def __init__(
        self,
        books: Books,
        *,
        quote: QuoteFn,
        spot: QuoteFn,
        market: Callable[[str], Market],
        quote_asset: str,
        unified: UnifiedBooks | None,
        inverse: InverseBooks,
    ) -> None:
        self._books = books
        self._quote = quote
        self._spot = spot
        self._market = market
        self._quote_asset = quote_asset
        self._unified = unified
        self._inverse = inverse

    def liquidate_crossed(self, at: datetime) -> bool:
        """Liquidate what the prices at ``at`` liquidate; True when anything was."""
        liquidated = False
        # Coin-margined positions are isolated in their own wallet (paper/inverse.py).
        for position, price, reason in self._inverse.liquidate_crossed(at):
            self._record(position, LIQUIDATION_PREFIX, price, at, reason)
            liquidated = True
        if self._unified is not None:
            return self._liquidate_account(self._unified, at) or liquidated
        for position in list(self._books.state.positions.values()):
            liquidation = self._books.liquidation_price(position)
            if liquidation is None:
                continue
            mark = self._quote(position.symbol, at).price
            if crossed(position.qty, mark, liquidation):
                self._liquidate(position, liquidation, mark, at)
                liquidated = True
        return liquidated

    def _liquidate(
        self, position: PaperPosition, price: Decimal, mark: Decimal, at: datetime
    ) -> None:
        asset = settle_asset(position.symbol)
        self._close(
            position,
            LIQUIDATION_PREFIX,
            price,
            at,
            -position.margin,
            f"liquidated: mark {mark:f} crossed liquidation price {price:f} of "
            f"{position.qty:f} at entry {position.entry_price:f} and leverage "
            f"{position.leverage:f}; margin {position.margin:f} {asset} lost",
        )

    def _liquidate_account(self, books: UnifiedBooks, at: datetime) -> bool:
        liquidated, balance, maintenance = books.liquidated(at)
        if not liquidated:
            return False
        for position in list(self._books.state.positions.values()):
            mark = self._quote(position.symbol, at).price
            self._close(
                position,
                LIQUIDATION_PREFIX,
                mark,
                at,
                position.qty * (mark - position.entry_price),
                f"liquidated: the account's margin balance {balance:f} reached its "
                f"maintenance margin {maintenance:f}; {position.qty:f} closed at the mark "
                f"{mark:f} (entry {position.entry_price:f})",
            )
        self._books.credit(self._quote_asset, -maintenance)
        self._books.state.realized_pnl -= maintenance
        return True

    def settle_expired(self, now: datetime) -> bool:
        """Settle every dated position whose expiry has passed at the feed's spot price (the
        future's price at expiry, its basis 0): realized PnL to the wallet, margin released."""
        settled = False
        for position in list(self._books.state.positions.values()):
            expiry = self._market(position.symbol).expiry
            if expiry is None or expiry > now:
                continue
            price = self._spot(position.symbol, expiry).price
            realized = position.qty * (price - position.entry_price)
            self._close(
                position,
                SETTLEMENT_PREFIX,
                price,
                expiry,
                realized,
                f"settled at expiry {expiry.isoformat()}: {position.qty:f} at "
                f"{price:f}, entry {position.entry_price:f}, PnL {realized:f} "
                f"{settle_asset(position.symbol)}",
            )
            settled = True
        return settled

    def _close(
        self,
        position: PaperPosition,
        prefix: str,
        price: Decimal,
        at: datetime,
        realized: Decimal,
        reason: str,
    ) -> None:
        """Close ``position`` at ``price``, ``realized`` to its settle asset, and remember
        the close as a filled, fee-less order."""
        books = self._books
        books.credit(settle_asset(position.symbol), realized)
        books.state.realized_pnl += realized
        del books.state.positions[position.symbol]
        self._record(position, prefix, price, at, reason)

    def _record(
        self, position: PaperPosition, prefix: str, price: Decimal, at: datetime, reason: str
    ) -> None:
        """Remember a close the venue made itself as a filled, fee-less order."""
        seq = self._books.next_seq()
        side = Side.BUY if position.qty < ZERO else Side.SELL
        asset = settle_asset(position.symbol)
        fill = Fill(str(seq), position.symbol, side, abs(position.qty), price, ZERO, asset, at)
        client_order_id = f"{prefix}{seq}"
        self._books.remember(filled_order(client_order_id, client_order_id, fill, reason))
