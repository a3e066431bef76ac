"""The collateral keeper: one plan that keeps a short's liquidation distance (pure).

On an account with separate wallets (classic spot + USDT-margined futures) the short's
collateral sits apart from the coins it hedges. When a rally brings the mark within
``threshold`` of the liquidation price, the keeper restores the distance to ``target``:

1. **top up**: quote moves spot -> futures (``transfer_in``) and, for an isolated
   position, into the position (``add_margin``; the futures wallet's own free quote is
   used first);
2. **sell and cut**: when the quote cannot pay it, the short is cut (in the perp's
   amount steps) and the same share of the coins sold on spot (``sale = cut x coins /
   short`` rounded down: the hedge ratio is unchanged within one amount step; for a full
   hedge the sale equals the cut); the cut
   releases the position's margin pro rata and the sale's proceeds are moved in once they
   are in the spot wallet;
3. **close** (the last resort): nothing above restores the threshold; the reason says why.

When the price falls and the distance is above ``release``, the margin beyond what
``target`` needs goes back futures -> spot (``return``); for isolated margin, the futures
wallet's idle quote above ``reserve`` goes back too while the distance is above
``threshold``. ``next_moves`` gives the transfers a cycle sends.

Collateral: for isolated margin the position's own margin; for cross margin the futures
wallet's balance (one position per wallet, as Binance's single-position cross formula).
Every amount leaving a wallet is rounded *down* to its step and never exceeds what the
wallet holds free; the margin a top-up needs is rounded *up* to the quote step.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from bot.domain.margin import (
    MaintenanceTiers,
    isolated_liquidation_price_with_margin,
    margin_at_liquidation_price,
)
from bot.domain.margin_transfers import MoveKind
from bot.domain.models import ONE, ZERO

RELEASE_FACTOR = Decimal(3)  # excess goes back above 3 x the threshold, down to the target


class KeeperAction(enum.StrEnum):
    NONE = "none"
    TOP_UP = "top_up"
    RETURN = "return"
    SELL_AND_CUT = "sell_and_cut"
    CLOSE = "close"


@dataclass(frozen=True, slots=True)
class KeeperInputs:
    """What the keeper decides on; every figure in base or quote, positive."""

    short: Decimal  # the short's size in base (absolute)
    entry: Decimal
    mark: Decimal
    collateral: Decimal  # isolated: the position's margin; cross: the futures wallet balance
    tiers: MaintenanceTiers
    futures_free: Decimal  # futures wallet quote not locked in positions
    spot_quote_free: Decimal
    spot_coins_free: Decimal
    spot_coins: Decimal  # the coins hedged (the ratio's denominator), free or not
    threshold: Decimal  # risk.min_liquidation_distance
    target: Decimal  # the distance a top-up restores (e.g. 1.5 x threshold)
    release: Decimal  # above this distance the excess goes back to spot
    isolated: bool = True
    sale_price: Decimal = ZERO  # the spot price the coins sell at, at worst (0: no sale)
    cut_price: Decimal = ZERO  # the price the short is cut at, at worst (0: the mark)
    fee_rate: Decimal = ZERO  # taker fee on the sale and the cut
    quote_step: Decimal = Decimal("0.01")
    sale_step: Decimal = Decimal("0.00001")  # the spot market's amount step (base)
    cut_step: Decimal = Decimal("0.001")  # the perp's amount step (base)
    can_sell: bool = True  # the pair may trade spot (allow_spot_trades)
    # Isolated: the futures wallet's free quote kept for the rebalance's orders; above it,
    # idle quote goes back to spot while the distance is fine.
    reserve: Decimal = ZERO
    # Isolated: margin the position keeps whatever the distance (its initial margin at the
    # pair's leverage: a venue refuses to take more, and the leverage would rise past it).
    min_collateral: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class KeeperPlan:
    """One plan; ``reason`` says why in words, with the figures."""

    action: KeeperAction
    reason: str
    distance: Decimal | None  # now
    distance_after: Decimal | None  # projected after the plan (None: nothing to project)
    transfer_in: Decimal = ZERO  # quote spot -> futures
    add_margin: Decimal = ZERO  # quote futures wallet -> isolated position (< 0: taken out)
    transfer_out: Decimal = ZERO  # quote futures -> spot
    sell: Decimal = ZERO  # coins sold on spot (base)
    cut: Decimal = ZERO  # the short reduced by (base)


def floor_to(value: Decimal, step: Decimal) -> Decimal:
    """``value`` rounded down to a multiple of ``step`` (never below 0)."""
    if value <= ZERO:
        return ZERO
    return (value / step).to_integral_value(rounding=ROUND_FLOOR) * step


def ceil_to(value: Decimal, step: Decimal) -> Decimal:
    """``value`` rounded up to a multiple of ``step`` (never below 0)."""
    if value <= ZERO:
        return ZERO
    return (value / step).to_integral_value(rounding=ROUND_CEILING) * step


def distance_of(
    short: Decimal, entry: Decimal, mark: Decimal, collateral: Decimal, tiers: MaintenanceTiers
) -> Decimal | None:
    """``(liquidation - mark) / mark`` of a short of ``short`` base holding ``collateral``;
    None for no short or no mark."""
    if short <= ZERO or mark <= ZERO:
        return None
    liquidation = isolated_liquidation_price_with_margin(-short, entry, collateral, tiers)
    if liquidation is None:  # never for a short; for the type checker
        return None
    return (liquidation - mark) / mark


def collateral_for(
    short: Decimal, entry: Decimal, mark: Decimal, distance: Decimal, tiers: MaintenanceTiers
) -> Decimal:
    """The collateral that puts a short's liquidation price ``distance`` above ``mark``."""
    return margin_at_liquidation_price(-short, entry, mark * (ONE + distance), tiers)


def keep(inputs: KeeperInputs) -> KeeperPlan:
    """The keeper's one plan for ``inputs`` (see the module's docstring)."""
    i = inputs
    distance = distance_of(i.short, i.entry, i.mark, i.collateral, i.tiers)
    if distance is None:
        return KeeperPlan(KeeperAction.NONE, "no short to keep", None, None)
    now = f"distance {_pct(distance)}"
    if distance > i.release:
        return _give_back(i, distance, now)
    if distance >= i.threshold:
        idle = _idle(i, distance, now)
        if idle is not None:
            return idle
        return KeeperPlan(
            KeeperAction.NONE,
            f"{now} within [{_pct(i.threshold)}, {_pct(i.release)}]: nothing to move",
            distance,
            distance,
        )
    now = f"{now} < {_pct(i.threshold)}"
    top_up = _top_up(i, distance, now)
    if top_up is not None:
        return top_up
    sale = _sell_and_cut(i, distance, now)
    if sale is not None:
        return sale
    return _close(i, distance, now)


def _top_up(i: KeeperInputs, distance: Decimal, now: str) -> KeeperPlan | None:
    """Quote alone restores the target: the futures wallet's free quote first (isolated),
    then the spot wallet's; None when they cannot pay it."""
    needed = ceil_to(
        collateral_for(i.short, i.entry, i.mark, i.target, i.tiers) - i.collateral, i.quote_step
    )
    idle = floor_to(i.futures_free, i.quote_step) if i.isolated else ZERO
    from_futures = min(idle, needed)
    transfer = needed - from_futures
    if transfer > floor_to(i.spot_quote_free, i.quote_step):
        return None
    after = distance_of(i.short, i.entry, i.mark, i.collateral + needed, i.tiers)
    moves = []
    if transfer > ZERO:
        moves.append(f"move {transfer:.2f} quote spot->futures")
    if i.isolated:
        moves.append(f"add {needed:.2f} margin to the position")
    return KeeperPlan(
        KeeperAction.TOP_UP,
        f"{now}: {' and '.join(moves)}, distance after {_pct(after)}",
        distance,
        after,
        transfer_in=transfer,
        add_margin=needed if i.isolated else ZERO,
    )


def _idle(i: KeeperInputs, distance: Decimal, now: str) -> KeeperPlan | None:
    """Isolated margin: the futures wallet's free quote above ``reserve`` (what a top-up
    moved in, margin taken out of the position) goes back to spot; None when none."""
    idle = floor_to(i.futures_free - i.reserve, i.quote_step) if i.isolated else ZERO
    if idle <= ZERO:
        return None
    return KeeperPlan(
        KeeperAction.RETURN,
        f"{now} >= {_pct(i.threshold)}: move {idle:.2f} idle quote futures->spot (keeping "
        f"{i.reserve:.2f} for the rebalance)",
        distance,
        distance,
        transfer_out=idle,
    )


def _give_back(i: KeeperInputs, distance: Decimal, now: str) -> KeeperPlan:
    """The collateral beyond what ``target`` needs goes back to spot: for isolated margin
    taken out of the position, for cross at most what the futures wallet holds free."""
    needed = collateral_for(i.short, i.entry, i.mark, i.target, i.tiers)
    excess = floor_to(i.collateral - needed, i.quote_step)
    # Never below the position's initial margin (isolated) or more than the futures wallet
    # has free (cross).
    most = i.collateral - i.min_collateral if i.isolated else i.futures_free
    excess = min(excess, floor_to(most, i.quote_step))
    if excess <= ZERO:
        return KeeperPlan(
            KeeperAction.NONE, f"{now} > {_pct(i.release)}: no excess to return", distance, distance
        )
    after = distance_of(i.short, i.entry, i.mark, i.collateral - excess, i.tiers)
    taken = f"take {excess:.2f} margin out of the position and " if i.isolated else ""
    return KeeperPlan(
        KeeperAction.RETURN,
        f"{now} > {_pct(i.release)}: {taken}move {excess:.2f} quote futures->spot, "
        f"distance after {_pct(after)}",
        distance,
        after,
        add_margin=-excess if i.isolated else ZERO,
        transfer_out=excess,
    )


@dataclass(frozen=True, slots=True)
class _AfterSale:
    short: Decimal
    collateral: Decimal
    cut: Decimal
    sale: Decimal
    idle: Decimal  # quote in the futures wallet that can go in, rounded down
    addable: Decimal  # quote that can go into the collateral (idle + spot), rounded down
    needed: Decimal  # quote the target needs then, rounded up


def _after_sale(i: KeeperInputs, cut: Decimal) -> _AfterSale:
    """The short, its collateral and the quote at hand after cutting the short by ``cut``
    and selling the same share of the coins (rounded down to the spot step)."""
    sale = floor_to(cut * i.spot_coins / i.short, i.sale_step)
    short = i.short - cut
    price = i.cut_price if i.cut_price > ZERO else i.mark
    loss = cut * (price - i.entry) + cut * price * i.fee_rate  # realized on the cut
    proceeds = sale * i.sale_price * (ONE - i.fee_rate)
    if i.isolated:
        released = i.collateral * cut / i.short  # pro rata: the liquidation price stays
        collateral = i.collateral - released
        idle = i.futures_free + released - loss
    else:
        collateral = i.collateral - loss
        idle = ZERO
    idle = floor_to(idle, i.quote_step)
    addable = idle + floor_to(i.spot_quote_free + proceeds, i.quote_step)
    needed = (
        ceil_to(
            collateral_for(short, i.entry, i.mark, i.target, i.tiers) - collateral, i.quote_step
        )
        if short > ZERO
        else ZERO
    )
    return _AfterSale(short, collateral, cut, sale, idle, addable, needed)


def _sell_and_cut(i: KeeperInputs, distance: Decimal, now: str) -> KeeperPlan | None:
    """The smallest sale (in ``sale_step``s) whose proceeds, with the quote at hand and the
    margin the cut releases, restore the target; None when even all the free coins (up to
    the short's share) cannot, or the pair may not sell."""
    if not i.can_sell or i.sale_price <= ZERO or i.spot_coins <= ZERO:
        return None
    # Cut in the perp's steps, the sale its share of the coins: the ratio holds. A cut of
    # the whole short is the last resort's call, not a keep.
    most = floor_to(
        min(i.short - i.cut_step, i.spot_coins_free * i.short / i.spot_coins), i.cut_step
    )
    if most <= ZERO or not _enough(_after_sale(i, most)):
        return None
    low, high = 0, int(most / i.cut_step)  # steps: low not enough (0: the top-up failed)
    while high - low > 1:
        middle = (low + high) // 2
        if _enough(_after_sale(i, middle * i.cut_step)):
            high = middle
        else:
            low = middle
    sold = _after_sale(i, high * i.cut_step)
    move = min(sold.needed, sold.addable)
    transfer = move - min(sold.idle, move)
    after = (
        distance_of(sold.short, i.entry, i.mark, sold.collateral + move, i.tiers)
        if sold.short > ZERO
        else None
    )
    return KeeperPlan(
        KeeperAction.SELL_AND_CUT,
        f"{now} and {i.spot_quote_free:.2f} quote free on spot cannot restore "
        f"{_pct(i.target)}: sell {sold.sale:f} coins on spot and cut the short by "
        f"{sold.cut:f} (the ratio holds), then move {transfer:.2f} quote spot->futures and "
        f"{move:.2f} into its margin, distance after {_pct(after)}",
        distance,
        after,
        transfer_in=transfer,
        add_margin=move if i.isolated else ZERO,
        sell=sold.sale,
        cut=sold.cut,
    )


def _enough(sold: _AfterSale) -> bool:
    # A sale that leaves no short is a close, not a keep: the last resort decides it.
    return ZERO < sold.short and sold.sale > ZERO and sold.needed <= sold.addable


def _close(i: KeeperInputs, distance: Decimal, now: str) -> KeeperPlan:
    """The last resort: nothing else restores the threshold."""
    why = []
    if not i.can_sell:
        why.append("spot trades are not allowed on the pair")
    elif i.sale_price <= ZERO:
        why.append("no spot price to sell at")
    else:
        why.append(f"selling all {i.spot_coins_free:f} free coins would not restore it")
    return KeeperPlan(
        KeeperAction.CLOSE,
        f"{now}; {i.spot_quote_free:.2f} quote free on spot is not enough and "
        f"{'; '.join(why)}: close the short (last resort)",
        distance,
        None,
        cut=i.short,
    )


def project(inputs: KeeperInputs, plan: KeeperPlan) -> Decimal | None:
    """The distance after ``plan`` (its cut pro rata for isolated margin, its quote moved
    into the collateral), by the same formula the venue liquidates with; None when the
    plan leaves no short."""
    i = inputs
    short = i.short - plan.cut
    if short <= ZERO:
        return None
    if plan.action is KeeperAction.SELL_AND_CUT:
        sold = _after_sale(i, plan.cut)
        moved = plan.add_margin if i.isolated else plan.transfer_in
        return distance_of(short, i.entry, i.mark, sold.collateral + moved, i.tiers)
    moved = plan.add_margin if i.isolated else plan.transfer_in - plan.transfer_out
    return distance_of(short, i.entry, i.mark, i.collateral + moved, i.tiers)


def next_moves(plan: KeeperPlan) -> tuple[tuple[MoveKind, Decimal], ...]:
    """The plan's transfers, in order, each its own decision and each sent only after the
    one before is done: spot -> futures, then into the position; out of the position, then
    futures -> spot; after a sale and cut (its orders first), the proceeds spot -> futures
    and into the position. Empty for a plan that moves no quote (nothing, the close)."""
    if plan.action in (KeeperAction.TOP_UP, KeeperAction.SELL_AND_CUT):
        moves = []
        if plan.transfer_in > ZERO:
            moves.append((MoveKind.TO_FUTURES, plan.transfer_in))
        if plan.add_margin > ZERO:
            moves.append((MoveKind.ADD_MARGIN, plan.add_margin))
        return tuple(moves)
    if plan.action is KeeperAction.RETURN:
        if plan.add_margin < ZERO:
            return (MoveKind.REMOVE_MARGIN, -plan.add_margin), (MoveKind.TO_SPOT, plan.transfer_out)
        return ((MoveKind.TO_SPOT, plan.transfer_out),)
    return ()


def _pct(value: Decimal | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"
