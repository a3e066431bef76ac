"""How the paper venue fills an order, and what the fill does to the account.

* **Fills**: market orders, and limit orders as immediate-or-cancel, filled at once and
  completely at the ask (buy) or bid (sell); a limit beyond the touch expires unfilled.
  Taker fee = ``taker_fee_rate`` * notional, in the quote (settle) asset.
* **Spot** orders move the base and quote balances.
* **Perps** are isolated-margin positions: opening or increasing averages the entry price
  and locks ``notional / leverage`` of the settle asset; reducing realizes PnL into the
  balance and releases margin pro rata. A reduce-only order that would increase or flip
  the position is *rejected*, not trimmed: the caller asked for something the venue will
  not do, and trimming silently would hide a bug in the caller.

Every check runs before anything changes: a rejected order leaves the account as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from bot.config import PaperConfig
from bot.domain.margin import initial_margin
from bot.domain.models import (
    ONE,
    ZERO,
    Fill,
    Market,
    OrderRequest,
    OrderResult,
    OrderStatus,
    Side,
)
from bot.domain.paper_account import PaperPosition
from bot.exchange.gateway import DuplicateOrderError, OrderRejectedError
from bot.exchange.paper import wallets
from bot.exchange.paper.forced import filled_order
from bot.exchange.paper.ledger import PaperLedger, QuoteFn
from bot.exchange.paper.quotes import PaperQuotes
from bot.exchange.paper.rules import settle_asset


@dataclass(frozen=True, slots=True)
class PerpTrade:
    """A perp order against the current position: the part that closes it, the part that
    opens (or increases) it, and what each moves. Pure data: nothing is applied yet."""

    qty: Decimal  # the position before, signed
    new_qty: Decimal  # after
    closing: Decimal
    opening: Decimal
    realized: Decimal  # PnL of the closing part
    released: Decimal  # margin the closing part frees
    added: Decimal  # margin the opening part locks
    leverage: Decimal


def perp_trade(
    position: PaperPosition | None, signed: Decimal, price: Decimal, leverage: Decimal
) -> PerpTrade:
    """Split an order of signed base ``signed`` at ``price`` against ``position`` (pure)."""
    qty = position.qty if position else ZERO
    amount = abs(signed)
    closing = min(amount, abs(qty)) if qty * signed < ZERO else ZERO
    opening = amount - closing
    realized = ZERO
    released = ZERO
    if position is not None and closing > ZERO:
        direction = ONE if qty > ZERO else -ONE
        realized = closing * (price - position.entry_price) * direction
        released = position.margin if closing == abs(qty) else position.margin * closing / abs(qty)
    added = initial_margin(opening, price, leverage) if opening > ZERO else ZERO
    return PerpTrade(qty, qty + signed, closing, opening, realized, released, added, leverage)


class PaperMatcher:
    """Fills orders against a ``PaperLedger`` at the venue's touch."""

    def __init__(
        self,
        ledger: PaperLedger,
        config: PaperConfig,
        quotes: PaperQuotes,
        *,
        quote: QuoteFn,
        market: Callable[[str], Market],
    ) -> None:
        """``quote`` and ``market`` are the venue's (a venue pricing differently fills at
        its own prices); ``quotes`` puts bid and ask around the price."""
        self._ledger = ledger
        self._config = config
        self._quotes = quotes
        self._quote = quote
        self._market = market

    def fill(self, request: OrderRequest, now: datetime) -> OrderResult:
        """Validate and fill ``request`` against the ledger; raise before changing anything."""
        self._check_request(request)
        market = self._market(request.symbol)
        _check_amount(request, market, now)
        bid, ask = self._quotes.bid_ask(self._quote(request.symbol, now).price, market)
        price = ask if request.side is Side.BUY else bid
        if not _reaches(request, price):
            return self._expire(request, price)
        if market.inverse:
            fee, fee_asset = self._fill_inverse(request, market, price)
        else:
            fee, fee_asset = self._fill_linear(request, market, price)
        seq = self._ledger.next_seq()
        trade = Fill(
            str(seq), request.symbol, request.side, request.amount, price, fee, fee_asset, now
        )
        result = filled_order(request.client_order_id, f"paper-{seq}", trade)
        self._ledger.remember(result)
        return result

    def _fill_linear(
        self, request: OrderRequest, market: Market, price: Decimal
    ) -> tuple[Decimal, str]:
        """Fill a spot or linear perp order; its fee (in the quote) and fee asset."""
        notional = request.amount * price
        exempt = request.reduce_only and market.reduce_only_below_min_notional
        if notional < market.min_notional and not exempt:
            raise OrderRejectedError(
                f"notional {notional:f} below the min notional {market.min_notional:f} of "
                f"{request.symbol}"
            )
        fee = notional * self._config.taker_fee_rate
        if market.is_perp:
            fee_asset = self._fill_perp(request, price, fee)
        else:
            fee_asset = self._fill_spot(request, market, price, fee)
        self._ledger.state.fees_paid += fee
        return fee, fee_asset

    def _fill_inverse(
        self, request: OrderRequest, market: Market, price: Decimal
    ) -> tuple[Decimal, str]:
        """Fill a coin-margined contract order in the coin-margin wallet; its fee in the
        coin (not added to ``fees_paid``, which is in the quote)."""
        books = self._ledger.inverse
        position = books.state.inverse_positions.get(request.symbol)
        if request.reduce_only:
            face = position.qty if position else ZERO
            _check_reduce_only(request, face / market.contract_size)
        trade = books.trade(request, market, price)
        books.apply(request.symbol, trade, price)
        return trade.fee, settle_asset(request.symbol)

    def _check_request(self, request: OrderRequest) -> None:
        orders = self._ledger.state.orders
        if request.client_order_id in orders:
            raise DuplicateOrderError(
                f"duplicate client order id {request.client_order_id!r}: already used for "
                f"an order on {orders[request.client_order_id].symbol}"
            )
        if request.order_type not in ("market", "limit"):
            raise OrderRejectedError(
                f"order type {request.order_type!r} not supported: the paper venue fills "
                "market and limit IOC orders"
            )
        if request.order_type == "limit" and (request.price is None or request.price <= ZERO):
            raise OrderRejectedError("a limit order needs a positive price")

    def _expire(self, request: OrderRequest, touch: Decimal) -> OrderResult:
        """Immediate-or-cancel: the touch is beyond the limit, nothing fills."""
        expired = OrderResult(
            client_order_id=request.client_order_id,
            exchange_order_id=f"paper-{self._ledger.next_seq()}",
            symbol=request.symbol,
            side=request.side,
            status=OrderStatus.CANCELED,
            amount=request.amount,
            filled=ZERO,
            average_price=None,
            fee=ZERO,
            fee_asset=None,
            reason=f"IOC limit {request.price:f} not reached (touch {touch:f})",
        )
        self._ledger.remember(expired)
        return expired

    def _fill_spot(
        self, request: OrderRequest, market: Market, price: Decimal, fee: Decimal
    ) -> str:
        if request.reduce_only:
            raise OrderRejectedError(
                f"reduce_only applies to perp orders only; {request.symbol} is spot"
            )
        ledger = self._ledger
        notional = request.amount * price
        if request.side is Side.BUY:
            cost = notional + fee
            free = ledger.spot_free(market.quote)
            if cost > free:
                raise OrderRejectedError(
                    f"insufficient {market.quote}: buying {request.amount:f} {market.base} "
                    f"costs {cost:f} with fee, {free:f} free"
                )
            ledger.spot_credit(market.quote, -cost)
            ledger.spot_credit(market.base, request.amount)
        else:
            held = wallets.spot_wallet(ledger.state).get(market.base, ZERO)
            if request.amount > held:
                raise OrderRejectedError(
                    f"insufficient {market.base}: selling {request.amount:f}, {held:f} held"
                )
            ledger.spot_credit(market.base, -request.amount)
            ledger.spot_credit(market.quote, notional - fee)
        return market.quote

    def _fill_perp(self, request: OrderRequest, price: Decimal, fee: Decimal) -> str:
        symbol = request.symbol
        asset = settle_asset(symbol)
        position = self._ledger.state.positions.get(symbol)
        if request.reduce_only:
            _check_reduce_only(request, position.qty if position else ZERO)
        signed = request.amount if request.side is Side.BUY else -request.amount
        trade = perp_trade(position, signed, price, self._ledger.leverage(symbol))
        if trade.opening > ZERO:
            # Only an order that adds exposure can be refused for funds; a reduction
            # always goes through, as on a real venue.
            free = self._ledger.free(asset)
            if free + trade.released + trade.realized - fee - trade.added < ZERO:
                raise OrderRejectedError(
                    f"insufficient {asset}: {symbol} {request.side.value} {request.amount:f} "
                    f"needs fee {fee:f} + margin {trade.added:f}, {free:f} free"
                )
        self._ledger.credit(asset, trade.realized - fee)
        self._ledger.state.realized_pnl += trade.realized
        self._apply(symbol, position, trade, price)
        return asset

    def _apply(
        self, symbol: str, position: PaperPosition | None, trade: PerpTrade, price: Decimal
    ) -> None:
        """Move the position of ``symbol`` by ``trade`` filled at ``price``."""
        positions = self._ledger.state.positions
        if trade.new_qty == ZERO:
            positions.pop(symbol, None)
        elif position is None or trade.qty * trade.new_qty < ZERO:
            # New position, or flipped: the remainder opens at the fill price.
            positions[symbol] = PaperPosition(
                symbol=symbol,
                qty=trade.new_qty,
                entry_price=price,
                leverage=trade.leverage,
                margin=trade.added,
            )
        elif trade.opening > ZERO:
            # Increased: the entry is the size-weighted average of old and new.
            position.entry_price = (
                abs(trade.qty) * position.entry_price + trade.opening * price
            ) / abs(trade.new_qty)
            position.qty = trade.new_qty
            position.margin += trade.added
        else:
            position.qty = trade.new_qty
            position.margin -= trade.released


def _check_amount(request: OrderRequest, market: Market, now: datetime) -> None:
    """The market still trades, and the amount is positive, on the step and large enough."""
    symbol = request.symbol
    if market.expiry is not None and market.expiry <= now:
        raise OrderRejectedError(
            f"{symbol} expired at {market.expiry.isoformat()}: it no longer trades"
        )
    amount = request.amount
    if amount <= ZERO:
        raise OrderRejectedError(f"amount {amount:f} must be positive")
    if amount % market.amount_step != ZERO:
        raise OrderRejectedError(
            f"amount {amount:f} is not a multiple of the amount step "
            f"{market.amount_step:f} of {symbol}"
        )
    if amount < market.min_amount:
        raise OrderRejectedError(
            f"amount {amount:f} below the min amount {market.min_amount:f} of {symbol}"
        )


def _reaches(request: OrderRequest, touch: Decimal) -> bool:
    """Whether a limit order's price reaches the touch (a market order always does)."""
    if request.price is None or request.order_type != "limit":
        return True
    return touch <= request.price if request.side is Side.BUY else touch >= request.price


def _check_reduce_only(request: OrderRequest, qty: Decimal) -> None:
    side = request.side.value
    if qty == ZERO:
        raise OrderRejectedError(
            f"reduce-only {side} {request.amount:f} {request.symbol}: no open position to reduce"
        )
    if (qty > ZERO) == (request.side is Side.BUY):
        raise OrderRejectedError(
            f"reduce-only {side} {request.amount:f} {request.symbol} would increase the "
            f"position {qty:f}"
        )
    if request.amount > abs(qty):
        raise OrderRejectedError(
            f"reduce-only {side} {request.amount:f} {request.symbol} would flip the position "
            f"{qty:f}; at most {abs(qty):f} can be reduced"
        )
