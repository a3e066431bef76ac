"""The pre-trade risk gate: approve or deny one order intent, with the reason (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from bot.domain.keeper import KeeperAction, KeeperPlan, next_moves
from bot.domain.margin import (
    MaintenanceTiers,
    isolated_liquidation_price_with_margin,
    margin_at_liquidation_price,
    margin_to_move_liquidation,
    position_after_fill,
)
from bot.domain.margin_transfers import MoveKind
from bot.domain.models import ONE, ZERO, Market, Observation, OrderIntent, Side
from bot.domain.quantize import base_to_contracts


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """Limits one pair's orders are checked against; equity None skips the exposure check."""

    max_data_age_s: Decimal
    max_leverage: Decimal
    pair_leverage: Decimal
    kill_switch: bool
    max_order_notional: Decimal
    account_equity: Decimal | None = None
    # Why the pair is paused (`hedgebot pause`, or after repeated failures); None: trading.
    paused: str | None = None
    max_position_notional: Decimal | None = None
    max_daily_notional: Decimal | None = None
    daily_traded_notional: Decimal = ZERO  # this UTC day's fills of the pair, in quote
    # Orders that add to a position are denied while the mark is closer than this
    # fraction to the liquidation price, or would be after the order.
    min_liquidation_distance: Decimal | None = None
    # The venue's maintenance margin tiers for the contract: with them the liquidation
    # price after an order is estimated (None: not estimated, as for cross margin).
    maintenance: MaintenanceTiers | None = None
    # The leverage the venue locks new margin at (None: pair_leverage).
    venue_leverage: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """The gate's answer; a denied intent is never sent."""

    approved: bool
    reason: str


def _seconds(delta: timedelta) -> Decimal:
    # From the integer parts, so the age is exact rather than a float.
    return Decimal(delta.days * 86400 + delta.seconds) + Decimal(delta.microseconds).scaleb(-6)


def check(
    intent: OrderIntent,
    observation: Observation,
    limits: RiskLimits,
    now: datetime,
    contract_size: Decimal = ONE,
) -> Verdict:
    """Approve ``intent`` or deny it, naming the value and the limit it broke.

    Reduce-only orders skip the leverage and notional checks (they only cut risk) but
    not the kill switch or the stale-data check.
    """
    halted = _halted(observation, limits, now)
    if halted is not None:
        return halted
    if intent.reduce_only:
        return Verdict(True, "reduce-only order: only cuts risk")
    if limits.pair_leverage > limits.max_leverage:
        return Verdict(
            False, f"pair leverage {limits.pair_leverage} > max_leverage {limits.max_leverage}"
        )
    base_qty = intent.amount * contract_size
    notional = base_qty * intent.reference_price
    denied = _notional_caps(notional, limits)
    if denied is not None:
        return denied
    signed = -base_qty if intent.side is Side.SELL else base_qty
    exposure = abs(observation.perp_qty + signed) * observation.price
    if limits.max_position_notional is not None and exposure > limits.max_position_notional:
        return Verdict(
            False,
            f"position notional after the order {exposure:.2f} > max_position_notional "
            f"{limits.max_position_notional}",
        )
    denied = _liquidation_denial(signed, intent.reference_price, observation, limits)
    if denied is not None:
        return denied
    if limits.account_equity is not None:
        cap = limits.account_equity * limits.max_leverage
        if exposure > cap:
            return Verdict(
                False,
                f"position notional after the order {exposure:.2f} > equity "
                f"{limits.account_equity:.2f} x max_leverage {limits.max_leverage} = {cap:.2f}",
            )
    return Verdict(True, f"order notional {notional:.2f} within limits")


def check_spot_sell(
    intent: OrderIntent, observation: Observation, limits: RiskLimits, now: datetime
) -> Verdict:
    """Approve or deny a spot sell (the bearish sell-down): kill switch, pause, stale data,
    the order and daily notional caps. A spot sell does not change the perp position, so
    the leverage, position and liquidation checks of ``check`` do not apply."""
    if intent.side is not Side.SELL:
        return Verdict(False, f"spot orders may only sell, not {intent.side.value}")
    halted = _halted(observation, limits, now)
    if halted is not None:
        return halted
    if intent.amount > observation.spot_qty:
        return Verdict(
            False, f"spot sell {intent.amount} > spot held {observation.spot_qty}: not sent"
        )
    notional = intent.notional
    denied = _notional_caps(notional, limits)
    if denied is not None:
        return denied
    return Verdict(True, f"spot sell notional {notional:.2f} within limits")


def _liquidation_denial(
    signed: Decimal, price: Decimal, observation: Observation, limits: RiskLimits
) -> Verdict | None:
    """The denial of an order of signed base ``signed`` filling at ``price`` when the
    position is, or after the order would be, closer to liquidation than the guard allows:
    the guard would close it at once, and the rebalance reopen it (pure)."""
    minimum = limits.min_liquidation_distance
    if minimum is None:
        return None
    distance = liquidation_distance(observation)
    if distance is not None and distance < minimum:
        return Verdict(
            False,
            f"mark is {distance:.4f} from the liquidation price < min_liquidation_distance "
            f"{minimum}: nothing may add to the position",
        )
    estimate = liquidation_after(signed, price, observation, limits)
    if estimate is None or observation.price <= ZERO:
        return None
    qty, liquidation = estimate
    gap = liquidation - observation.price
    after = (gap if qty < ZERO else -gap) / observation.price
    if after >= minimum:
        return None
    return Verdict(
        False,
        f"estimated liquidation price {liquidation:.2f} after the order is {after:.4f} "
        f"from the mark {observation.price} < min_liquidation_distance {minimum}: the "
        "guard would close the position at once; lower the leverage or the distance",
    )


def liquidation_after(
    signed: Decimal, price: Decimal, observation: Observation, limits: RiskLimits
) -> tuple[Decimal, Decimal] | None:
    """The position (signed base) and its liquidation price after an order of signed base
    ``signed`` fills at ``price``, by the venue's formula with ``limits.maintenance`` (pure).

    The position's margin now is the one its reported liquidation price implies, and new
    margin is locked at its leverage (without a position: ``venue_leverage``, else
    ``pair_leverage``); fills the venue does not show yet count as filled at ``price``
    too. None when it cannot be told (no tiers, a position without a liquidation price)
    or the position comes out flat.
    """
    tiers = limits.maintenance
    position = observation.position
    if tiers is None:
        return None
    qty = entry = margin = ZERO
    leverage = limits.venue_leverage or limits.pair_leverage
    if position is not None and position.qty != ZERO:
        if position.liquidation_price is None:
            return None
        qty, entry = position.qty, position.entry_price
        margin = margin_at_liquidation_price(qty, entry, position.liquidation_price, tiers)
        if position.leverage > ZERO:
            leverage = position.leverage  # the venue's, for what it adds to this position
    fill = signed + observation.unreflected_qty
    qty, entry, margin = position_after_fill(qty, entry, margin, fill, price, leverage)
    liquidation = isolated_liquidation_price_with_margin(qty, entry, margin, tiers)
    return None if liquidation is None else (qty, liquidation)


def liquidation_distance(observation: Observation) -> Decimal | None:
    """How far the mark may move against the position before it is liquidated, as a
    fraction of the mark (``(liq - mark) / mark`` for a short); None without a position
    or liquidation price."""
    position = observation.position
    if position is None or position.liquidation_price is None or observation.price <= ZERO:
        return None
    if observation.perp_qty == ZERO or position.qty == ZERO:
        return None
    gap = position.liquidation_price - observation.price
    return (gap if position.qty < ZERO else -gap) / observation.price


@dataclass(frozen=True, slots=True)
class GuardAction:
    """What the liquidation guard does before anything else: a reduce-only order that
    closes the position, or margin moved into it (quote), with the reason in words."""

    reason: str
    intent: OrderIntent | None = None
    add_margin: Decimal | None = None
    # The collateral keeper's transfers this cycle (what, how much; each after the one
    # before is done), and its spot sale beside the cut of the short (``intent``): the
    # cut, the sale, then the transfers.
    moves: tuple[tuple[MoveKind, Decimal], ...] = ()
    sale: OrderIntent | None = None


RESTORE_FACTOR = Decimal("1.5")  # add_margin restores the distance to 1.5 x the minimum


def liquidation_guard(
    observation: Observation,
    min_distance: Decimal,
    mode: str,
    market: Market,
    free_margin: Decimal | None,
    tiers: MaintenanceTiers,
) -> GuardAction | None:
    """The guard's action when the mark is closer than ``min_distance`` to liquidation.

    ``reduce``: isolated margin is released pro rata when a position shrinks, so a partial
    reduction leaves the liquidation price where it is; the guard closes the position
    (reduce-only) and the hedge is reopened at the current price with fresh margin.
    ``add_margin``: the margin that moves the liquidation price to ``1.5 x min_distance``
    from the mark by the venue's formula with the maintenance ``tiers`` (rounded up to a
    cent, so a little further); when ``free_margin`` cannot pay it, the guard reduces.
    """
    distance = liquidation_distance(observation)
    position = observation.position
    if distance is None or position is None or position.liquidation_price is None:
        return None
    if distance >= min_distance:
        return None
    mark = observation.price
    where = (
        f"mark {mark} is {distance:.4f} from the liquidation price "
        f"{position.liquidation_price} < min_liquidation_distance {min_distance}"
    )
    if mode == "add_margin":
        short = position.qty < ZERO
        target = mark * (ONE + RESTORE_FACTOR * min_distance * (ONE if short else -ONE))
        needed = margin_to_move_liquidation(position.qty, position.liquidation_price, target, tiers)
        needed = needed.quantize(Decimal("0.01"), rounding="ROUND_CEILING")
        if free_margin is not None and needed <= free_margin:
            return GuardAction(
                f"{where}: add {needed} margin to move it to {target:.2f}", add_margin=needed
            )
        where += f"; adding {needed} margin is not possible ({free_margin} free)"
    return _close(
        where, position.qty, observation, market, "the hedge reopens at the current price"
    )


def _close(
    where: str, qty: Decimal, observation: Observation, market: Market, then: str
) -> GuardAction:
    """The reduce-only order that closes a position of signed ``qty``."""
    intent = _reduce(qty, observation, market)
    if intent is None:
        return GuardAction(f"{where}: position below one amount step, nothing to reduce")
    return GuardAction(
        f"{where}: {intent.side.value} {intent.amount:f} {market.symbol} reduce-only to close "
        f"it ({then})",
        intent=intent,
    )


def _reduce(qty: Decimal, observation: Observation, market: Market) -> OrderIntent | None:
    """A reduce-only order taking signed base ``qty`` off the position; None below a step."""
    side = Side.BUY if qty < ZERO else Side.SELL
    amount = base_to_contracts(abs(qty), market)
    if amount <= ZERO:
        return None
    price = observation.ask if side is Side.BUY else observation.bid
    return OrderIntent(
        symbol=market.symbol,
        side=side,
        amount=amount,
        reduce_only=True,
        reference_price=price if price > ZERO else observation.price,
    )


def keeper_guard(
    plan: KeeperPlan, observation: Observation, market: Market, spot_symbol: str, bid: Decimal
) -> GuardAction | None:
    """The collateral keeper's plan as the guard's action: this cycle's transfers
    (``next_moves``), the spot sale of ``plan.sell`` at ``bid`` beside the reduce-only cut
    of the short, or the close as the last resort; None when it moves nothing."""
    reason = f"collateral keeper: {plan.reason}"
    position = observation.position
    moves = next_moves(plan)
    if plan.action is KeeperAction.CLOSE and position is not None:
        return _close(reason, position.qty, observation, market, "nothing else keeps it")
    if plan.action is KeeperAction.SELL_AND_CUT:
        cut = _reduce(-plan.cut, observation, market)
        sale = OrderIntent(spot_symbol, Side.SELL, plan.sell, False, bid)
        return None if cut is None else GuardAction(reason, intent=cut, sale=sale, moves=moves)
    return GuardAction(reason, moves=moves) if moves else None


def check_margin_transfer(observation: Observation, limits: RiskLimits, now: datetime) -> Verdict:
    """The gate for the guard's margin transfer: kill switch, pause and stale data apply."""
    halted = _halted(observation, limits, now)
    if halted is not None:
        return halted
    return Verdict(True, "margin transfer only cuts risk")


def _halted(observation: Observation, limits: RiskLimits, now: datetime) -> Verdict | None:
    """The denial every order and transfer meets first: the kill switch, the pair's pause,
    data older than ``max_data_age_s``; None when none holds it back."""
    if limits.kill_switch:
        return Verdict(False, "kill switch is on")
    if limits.paused is not None:
        return Verdict(False, f"pair is paused: {limits.paused}")
    age = _seconds(now - observation.observed_at)
    if age > limits.max_data_age_s:
        return Verdict(
            False, f"observation is {age:.1f}s old > max_data_age_s {limits.max_data_age_s}"
        )
    return None


def _notional_caps(notional: Decimal, limits: RiskLimits) -> Verdict | None:
    """The denial when an order of ``notional`` breaks the order or daily cap. Pure."""
    if notional > limits.max_order_notional:
        return Verdict(
            False,
            f"order notional {notional:.2f} > max_order_notional {limits.max_order_notional}",
        )
    if (
        limits.max_daily_notional is not None
        and limits.daily_traded_notional + notional > limits.max_daily_notional
    ):
        return Verdict(
            False,
            f"traded today {limits.daily_traded_notional:.2f} + order {notional:.2f} > "
            f"max_daily_notional {limits.max_daily_notional}",
        )
    return None
