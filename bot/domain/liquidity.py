"""How much an order would move the price, from the order book (pure, Decimal only).

Slippage is the average fill price of walking the book for the order's size, measured
from the touch (best ask for a buy, best bid for a sell), in basis points.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from bot.domain.models import ZERO, BookLevel, OrderBook, Side
from bot.domain.quantize import round_down

BPS = Decimal(10_000)


@dataclass(frozen=True, slots=True)
class SlippageEstimate:
    """The average price of ``amount`` against the book and its distance from the touch;
    ``available`` is the book's whole depth on that side (all of it when ``complete`` is
    False: the order is larger than the book shows)."""

    amount: Decimal
    average_price: Decimal
    touch: Decimal
    slippage_bps: Decimal
    available: Decimal
    complete: bool


def _side(book: OrderBook, side: Side) -> Sequence[BookLevel]:
    # A buy takes the asks, a sell the bids; both are best first.
    return book.asks if side is Side.BUY else book.bids


def estimate_slippage(book: OrderBook, side: Side, amount: Decimal) -> SlippageEstimate | None:
    """Walk the book for ``amount`` (contracts); None when that side of the book is empty."""
    levels = _side(book, side)
    if not levels or amount <= ZERO:
        return None
    touch = levels[0].price
    left = amount
    cost = ZERO
    for level in levels:
        take = min(left, level.amount)
        cost += take * level.price
        left -= take
        if left <= ZERO:
            break
    filled = amount - left
    average = cost / filled if filled > ZERO else touch
    return SlippageEstimate(
        amount=amount,
        average_price=average,
        touch=touch,
        slippage_bps=abs(average - touch) / touch * BPS,
        available=sum((level.amount for level in levels), ZERO),
        complete=left <= ZERO,
    )


def largest_amount_within(
    book: OrderBook, side: Side, max_bps: Decimal, amount_step: Decimal
) -> Decimal:
    """The largest amount (on the step) whose average fill stays within ``max_bps`` of the
    touch; zero for an empty book."""
    levels = _side(book, side)
    if not levels:
        return ZERO
    touch = levels[0].price
    sign = 1 if side is Side.BUY else -1
    # The average price may reach this, and no further.
    limit = touch * (1 + sign * max_bps / BPS)
    qty = ZERO
    cost = ZERO
    for level in levels:
        beyond = (level.price - limit) * sign > ZERO
        if not beyond:
            qty += level.amount
            cost += level.amount * level.price
            continue
        # Beyond the limit, the average may still allow some of it: solve
        # (cost + p x) / (qty + x) = limit for x.
        part = max((limit * qty - cost) / (level.price - limit), ZERO)
        if part < level.amount:
            qty += part
            break
        qty += level.amount
        cost += level.amount * level.price
    return round_down(qty, amount_step)


def quote_problem(
    symbol: str,
    bid: Decimal,
    ask: Decimal,
    reference: Decimal | None,
    max_deviation: Decimal,
    source: str = "mark",
) -> str | None:
    """Why ``bid``/``ask`` of ``symbol`` cannot price an order, or None when they can: a
    bid or ask that is not a positive price, a crossed book (bid above ask), or a touch
    further than ``max_deviation`` (a fraction) from ``reference`` (the mark, or the last
    trade when the venue shows no mark; no reference: not checked)."""
    if bid <= ZERO or ask <= ZERO:
        return f"no usable bid/ask for {symbol} (bid {bid}, ask {ask}): not traded this cycle"
    if bid > ask:
        return f"crossed book: bid {bid} > ask {ask} on {symbol}: not traded this cycle"
    if reference is None or reference <= ZERO:
        return None
    for name, price in (("bid", bid), ("ask", ask)):
        deviation = abs(price - reference) / reference
        if deviation > max_deviation:
            return (
                f"{name} {price} of {symbol} is {deviation * 100:.1f}% from the reference "
                f"price {reference} ({source}) > max_price_deviation {max_deviation}: "
                "not traded this cycle"
            )
    return None
