"""Isolated-margin arithmetic for a perp position (pure, Decimal only).

Liquidation follows Binance USDⓈ-M's published formula for one isolated position in
one-way mode: the position is liquidated at the mark where its margin balance (isolated
wallet + unrealized PnL) falls to its maintenance margin, ``notional x rate - amount`` of
the tier its notional is in. For a short of ``qty`` (absolute) at ``entry`` holding
``margin``: ``(margin + amount + qty x entry) / (qty x (1 + rate))``; for a long:
``(qty x entry - margin - amount) / (qty x (1 - rate))``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from bot.domain.models import ONE, ZERO


@dataclass(frozen=True, slots=True)
class MaintenanceTier:
    """One bracket of a venue's maintenance margin table: positions of a notional above
    ``floor`` and up to ``cap`` (None: no cap) keep ``notional x rate - amount``."""

    floor: Decimal
    cap: Decimal | None
    rate: Decimal
    amount: Decimal  # Binance's "maintenance amount" (``cum``)

    def margin(self, notional: Decimal) -> Decimal:
        return notional * self.rate - self.amount


@dataclass(frozen=True, slots=True)
class MaintenanceTiers:
    """A venue's maintenance margin table for one contract, lowest notional first.

    The tiers are contiguous from 0 and the amounts make the maintenance margin continuous
    across them (each amount is the one before plus ``floor x`` the rate's rise), as the
    venues publish them; anything else is a ValueError naming the tier.
    """

    tiers: tuple[MaintenanceTier, ...]

    def __post_init__(self) -> None:
        if not self.tiers:
            raise ValueError("a maintenance margin table needs at least one tier")
        previous: MaintenanceTier | None = None
        for number, tier in enumerate(self.tiers, start=1):
            problem = _tier_problem(tier, previous, last=number == len(self.tiers))
            if problem is not None:
                raise ValueError(f"maintenance tier {number}: {problem}")
            previous = tier

    @classmethod
    def flat(cls, rate: Decimal) -> MaintenanceTiers:
        """One rate for every notional, with no maintenance amount."""
        return cls((MaintenanceTier(ZERO, None, rate, ZERO),))

    def tier(self, notional: Decimal) -> MaintenanceTier:
        """The tier a position of ``notional`` (absolute, in quote) is in."""
        for tier in self.tiers:
            if tier.cap is None or notional <= tier.cap:
                return tier
        return self.tiers[-1]

    def margin(self, notional: Decimal) -> Decimal:
        """The maintenance margin of a position of ``notional``."""
        return self.tier(abs(notional)).margin(abs(notional))


def _tier_problem(
    tier: MaintenanceTier, previous: MaintenanceTier | None, *, last: bool
) -> str | None:
    if not ZERO <= tier.rate < ONE:
        return f"rate {tier.rate} must be at least 0 and below 1"
    if tier.cap is None and not last:
        return "only the last tier may have no cap"
    if tier.cap is not None and tier.cap <= tier.floor:
        return f"cap {tier.cap} must be above its floor {tier.floor}"
    if previous is None:
        if tier.floor != ZERO or tier.amount != ZERO:
            return (
                f"the first tier starts at floor 0 with amount 0, not {tier.floor}, {tier.amount}"
            )
        return None
    if tier.floor != previous.cap:
        return f"floor {tier.floor} must be the cap {previous.cap} of the tier before"
    continuous = previous.amount + tier.floor * (tier.rate - previous.rate)
    if tier.amount != continuous:
        return (
            f"amount {tier.amount} must be {continuous} (the margin is continuous at {tier.floor})"
        )
    return None


def initial_margin(qty: Decimal, price: Decimal, leverage: Decimal) -> Decimal:
    """Margin locked by a position of ``qty`` base (either sign) at ``price`` and ``leverage``."""
    if leverage <= ZERO:
        raise ValueError(f"leverage must be positive, got {leverage}")
    return abs(qty) * price / leverage


def _balance_over_maintenance(
    qty: Decimal, entry: Decimal, margin: Decimal, notional: Decimal, tier: MaintenanceTier
) -> Decimal:
    """Margin balance less maintenance margin of signed ``qty`` when its notional is
    ``notional`` (the mark at ``notional / |qty|``); liquidated where this reaches 0."""
    side = ONE if qty > ZERO else -ONE
    return margin + side * (notional - abs(qty) * entry) - tier.margin(notional)


def isolated_liquidation_price_with_margin(
    qty: Decimal, entry_price: Decimal, margin: Decimal, tiers: MaintenanceTiers
) -> Decimal | None:
    """Liquidation price of an isolated position (signed ``qty``, negative = short) holding
    ``margin`` (quote), which may be more than its initial margin after margin was added.

    The tier is the one of the position's notional at the liquidation price (the mark
    then): the first whose cap the mark cannot reach without liquidating the position. None
    for a flat position; a long that cannot be liquidated by price comes out at 0.
    """
    if qty == ZERO:
        return None
    size = abs(qty)
    side = ONE if qty > ZERO else -ONE
    chosen = tiers.tiers[-1]
    for tier in tiers.tiers:
        # At the cap's notional the position is already liquidated: the price is below it.
        if (
            tier.cap is not None
            and side * _balance_over_maintenance(qty, entry_price, margin, tier.cap, tier) >= ZERO
        ):
            chosen = tier
            break
    price = (margin + chosen.amount - side * size * entry_price) / (size * (chosen.rate - side))
    return max(ZERO, price)


def isolated_liquidation_price(
    qty: Decimal, entry_price: Decimal, leverage: Decimal, tiers: MaintenanceTiers
) -> Decimal | None:
    """Liquidation price of a fresh isolated position at ``leverage`` (its initial margin)."""
    margin = initial_margin(qty, entry_price, leverage)
    return isolated_liquidation_price_with_margin(qty, entry_price, margin, tiers)


def margin_at_liquidation_price(
    qty: Decimal, entry_price: Decimal, liquidation_price: Decimal, tiers: MaintenanceTiers
) -> Decimal:
    """The isolated margin that puts the liquidation price of signed ``qty`` at
    ``liquidation_price``: the inverse of ``isolated_liquidation_price_with_margin``, exact
    (products and sums only)."""
    notional = abs(qty) * liquidation_price
    side = ONE if qty > ZERO else -ONE
    return tiers.margin(notional) - side * (notional - abs(qty) * entry_price)


def margin_to_move_liquidation(
    qty: Decimal, liquidation_price: Decimal, target: Decimal, tiers: MaintenanceTiers
) -> Decimal:
    """Margin to add (negative: to take) so that the liquidation price of signed ``qty``
    moves from ``liquidation_price`` to ``target``; the entry price cancels out."""
    return margin_at_liquidation_price(qty, ZERO, target, tiers) - margin_at_liquidation_price(
        qty, ZERO, liquidation_price, tiers
    )


def position_after_fill(
    qty: Decimal,
    entry_price: Decimal,
    margin: Decimal,
    fill: Decimal,
    price: Decimal,
    leverage: Decimal,
) -> tuple[Decimal, Decimal, Decimal]:
    """(qty, entry price, margin) of an isolated position of signed ``qty`` after a fill of
    signed ``fill`` at ``price``: the part that opens or increases it averages the entry and
    locks ``notional / leverage``; the part that closes it releases margin pro rata."""
    new_qty = qty + fill
    if new_qty == ZERO:
        return ZERO, ZERO, ZERO
    if qty == ZERO or qty * new_qty < ZERO:  # opened, or flipped: the rest opens at price
        return new_qty, price, initial_margin(new_qty, price, leverage)
    if abs(new_qty) < abs(qty):  # reduced
        return new_qty, entry_price, margin * abs(new_qty) / abs(qty)
    entry = (abs(qty) * entry_price + abs(fill) * price) / abs(new_qty)
    return new_qty, entry, margin + initial_margin(fill, price, leverage)


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
