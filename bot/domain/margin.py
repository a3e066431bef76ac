"""Isolated-margin arithmetic for a perp position (pure, Decimal only)."""

from __future__ import annotations

from decimal import Decimal

from bot.domain.models import ONE, ZERO


def initial_margin(qty: Decimal, price: Decimal, leverage: Decimal) -> Decimal:
    """Margin locked by a position of ``qty`` base (either sign) at ``price`` and ``leverage``."""
    if leverage <= ZERO:
        raise ValueError(f"leverage must be positive, got {leverage}")
    return abs(qty) * price / leverage


def isolated_liquidation_price(
    qty: Decimal, entry_price: Decimal, leverage: Decimal, maintenance_margin_rate: Decimal
) -> Decimal | None:
    """Price at which an isolated position (signed ``qty``, negative = short) is liquidated.

    None for a flat position. A long at 1x leverage can come out at or below zero: it is
    floored at zero, since such a position cannot be liquidated by price.
    """
    if leverage <= ZERO:
        raise ValueError(f"leverage must be positive, got {leverage}")
    if qty == ZERO:
        return None
    if qty < ZERO:
        return entry_price * (ONE + ONE / leverage - maintenance_margin_rate)
    return max(ZERO, entry_price * (ONE - ONE / leverage + maintenance_margin_rate))


def isolated_liquidation_price_with_margin(
    qty: Decimal, entry_price: Decimal, margin: Decimal, maintenance_margin_rate: Decimal
) -> Decimal | None:
    """Liquidation price of an isolated position holding ``margin`` (quote), which may be
    more than its initial margin after margin was added.

    With ``margin = |qty| x entry / leverage`` this equals ``isolated_liquidation_price``;
    each extra unit of margin moves the price ``1 / |qty|`` away from the mark.
    """
    if qty == ZERO:
        return None
    per_unit = margin / abs(qty)
    if qty < ZERO:
        return entry_price * (ONE - maintenance_margin_rate) + per_unit
    return max(ZERO, entry_price * (ONE + maintenance_margin_rate) - per_unit)


def lowest_leverage(notional: Decimal, margin_available: Decimal, cap: Decimal) -> Decimal:
    """The smallest whole leverage (at least 1) whose initial margin on ``notional`` fits in
    ``margin_available``; ``cap`` (the configured maximum) when even that does not fit."""
    if cap < ONE:
        raise ValueError(f"cap must be at least 1, got {cap}")
    if notional <= ZERO:
        return ONE
    if margin_available <= ZERO:
        return cap
    needed = (notional / margin_available).to_integral_value(rounding="ROUND_CEILING")
    return min(max(needed, ONE), cap)
