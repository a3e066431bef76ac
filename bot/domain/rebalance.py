"""The hedge policy: from one observation to at most one perp order (pure, Decimal only).

hedge = -perp_qty (a short is a positive hedge), ratio = hedge / spot,
drift = target * spot - hedge in base coin: positive sells perp, negative buys it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from bot.domain.margin_cap import MarginBudget, margin_capped, margin_denial
from bot.domain.models import ZERO, Decision, HedgeParams, Market, Observation, OrderIntent, Side
from bot.domain.quantize import amount_problem, base_to_contracts, contracts_to_base, round_down


def hedge_ratio(spot_qty: Decimal, perp_qty: Decimal) -> Decimal | None:
    """Short perp per unit of spot (``-perp_qty / spot_qty``); None when there is no spot."""
    if spot_qty <= ZERO:
        return None
    return -perp_qty / spot_qty


def drift(spot_qty: Decimal, perp_qty: Decimal, target_ratio: Decimal) -> Decimal:
    """Base quantity to sell (positive) or buy (negative) on the perp to reach the target."""
    return target_ratio * spot_qty + perp_qty


def reference_price(observation: Observation, side: Side) -> Decimal:
    """The price an order on ``side`` is expected to fill at: bid for sells, ask for buys."""
    quote = observation.bid if side is Side.SELL else observation.ask
    return quote if quote > ZERO else observation.price


def _num(value: Decimal, places: int = 8) -> str:
    # Fixed-point, no exponent, no trailing zeros: "0.0123", never "1.23E-2".
    text = f"{value.quantize(Decimal(1).scaleb(-places)):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def decide(
    observation: Observation,
    params: HedgeParams,
    market: Market,
    margin: MarginBudget | None = None,
) -> Decision:
    """The order (if any) that brings the pair's hedge ratio back inside its band; one that
    grows the position capped by what ``margin`` pays (see ``_sized``)."""
    if observation.spot_qty < ZERO:
        raise ValueError(f"spot_qty must not be negative, got {observation.spot_qty}")
    if market.symbol != observation.perp_symbol:
        raise ValueError(f"market {market.symbol} is not the perp {observation.perp_symbol}")

    spot, perp = observation.spot_qty, observation.perp_qty
    target, band = params.target_ratio, params.band
    ratio = hedge_ratio(spot, perp)
    drift_qty = drift(spot, perp, target)

    def decision(reason: str, intent: OrderIntent | None = None, action: str = "") -> Decision:
        action = action or ("none" if intent is None else "order")
        return Decision(observation.pair, target, ratio, drift_qty, band, action, reason, intent)

    if ratio is None:
        if perp == ZERO:
            return decision("no spot and no position: no order")
        where = f"no spot, position {_num(perp)}"
    else:
        # |ratio - target| <= band, multiplied through by spot so no division rounds.
        if abs(drift_qty) <= band * spot:
            return decision(
                f"ratio {ratio:.4f} within target {target:.4f} +/- band {band:.4f}: "
                f"no order (drift {_num(drift_qty)})"
            )
        sign = "<" if drift_qty > ZERO else ">"
        op = "-" if drift_qty > ZERO else "+"
        where = f"ratio {ratio:.4f} {sign} target {target:.4f} {op} band {band:.4f}"

    side = Side.SELL if drift_qty > ZERO else Side.BUY
    reduce_only = (side is Side.SELL and perp > ZERO) or (side is Side.BUY and perp < ZERO)
    price = reference_price(observation, side)
    if price <= ZERO:
        return decision(f"{where}: no order, no usable price (price {observation.price})")
    amount, caps = _capped(
        base_to_contracts(abs(drift_qty), market), perp, price, reduce_only, params, market
    )
    wanted = OrderIntent(market.symbol, side, amount, reduce_only, price)
    problem, intent, action = _sized(wanted, perp, params, market, margin, caps)
    detail = f"drift {_num(drift_qty)}"
    if caps:
        detail += "; " + ", ".join(caps)
    what = f"{side.value} {amount if intent is None else intent.amount:f} {market.symbol}"
    if action == "denied":
        return decision(f"{where}: no order, {what}: {problem}", action="denied")
    if intent is None:
        return decision(f"{where}: no order, {what}: {problem} ({detail})")
    if caps:
        detail += "; rest next cycle"
    return decision(f"{where}: {what} ({detail})", intent)


def _sized(
    wanted: OrderIntent,
    perp: Decimal,
    params: HedgeParams,
    market: Market,
    margin: MarginBudget | None,
    caps: list[str],
) -> tuple[str, OrderIntent | None, str]:
    """The order after the free-margin cap (``margin``; never a reduce-only one), which
    is added to ``caps``, and the market's minimums: (the problem in words, the order or
    None, the action: "denied" when the margin cannot pay the smallest order the market
    takes)."""
    amount, price = wanted.amount, wanted.reference_price
    if margin is not None and not wanted.reduce_only:
        amount = margin_capped(amount, wanted.side, perp, price, market, margin)
    closes = wanted.reduce_only and contracts_to_base(amount, market) == abs(perp)
    problem = amount_problem(amount, price, market, params.min_notional, closes_position=closes)
    capped = amount < wanted.amount
    if problem is None:
        if margin is not None and capped:
            caps.append(f"capped by free margin {margin.free_text()} at {margin.leverage_text()}")
        return "", replace(wanted, amount=amount), "order"
    if margin is not None and capped:  # the wanted order's own problem, if any, else the margin
        problem = amount_problem(wanted.amount, price, market, params.min_notional)
        if problem is None:
            return (
                margin_denial(price, wanted.side, market, margin, params.min_notional),
                None,
                "denied",
            )
    return problem, None, "none"


def _capped(
    amount: Decimal,
    perp: Decimal,
    price: Decimal,
    reduce_only: bool,
    params: HedgeParams,
    market: Market,
) -> tuple[Decimal, list[str]]:
    """The order's amount in contracts after its caps, and which caps applied."""
    caps: list[str] = []
    # Never cross zero in one order: the closing leg stays reduce-only (safe to repeat after
    # a lost answer) and the other side is opened next cycle from a fresh observation.
    if reduce_only and contracts_to_base(amount, market) > abs(perp):
        amount = base_to_contracts(abs(perp), market)
        caps.append(f"capped at position {_num(abs(perp))} to avoid flipping")
    unit_notional = price * market.contract_size
    by_notional = round_down(params.max_order_notional / unit_notional, market.amount_step)
    if by_notional * unit_notional > params.max_order_notional:  # division rounded up
        by_notional -= market.amount_step
    if amount > by_notional:
        amount = by_notional
        caps.append(f"capped by max_order_notional {_num(params.max_order_notional)}")
    if market.max_amount is not None and amount > market.max_amount:
        amount = round_down(market.max_amount, market.amount_step)
        caps.append(f"capped by max amount {_num(market.max_amount)}")
    return amount, caps


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def interval_slot(now: datetime, interval_s: int) -> int:
    """Index of the rebalance interval holding ``now``; intervals are UTC-aligned from 1970."""
    return (now - _EPOCH) // timedelta(seconds=interval_s)


def interval_start(slot: int, interval_s: int) -> datetime:
    """When rebalance interval ``slot`` begins."""
    return _EPOCH + timedelta(seconds=slot * interval_s)


def wait_for_interval(observation: Observation, params: HedgeParams, next_at: datetime) -> Decision:
    """The hold of interval rebalancing between two rebalance times (no order, whatever the
    drift): the ratio and drift are still reported."""
    return held(observation, params, f"interval rebalancing, no order until {next_at.isoformat()}")


def held(observation: Observation, params: HedgeParams, why: str) -> Decision:
    """No order, whatever the drift, because of ``why``; the ratio and drift are still
    reported."""
    ratio = hedge_ratio(observation.spot_qty, observation.perp_qty)
    drift_qty = drift(observation.spot_qty, observation.perp_qty, params.target_ratio)
    shown = "none" if ratio is None else f"{ratio:.4f}"
    return Decision(
        pair=observation.pair,
        target_ratio=params.target_ratio,
        ratio=ratio,
        drift_qty=drift_qty,
        band=params.band,
        action="none",
        reason=(
            f"ratio {shown}, target {params.target_ratio:.4f}: {why} (drift {_num(drift_qty)})"
        ),
    )


def holds_while_unchanged(decision: Decision, spot_qty: Decimal) -> bool:
    """Whether ``decision`` is a hold that depends on the quantities and params alone, not
    on prices: inside the band, or nothing to hedge. Another observation with the same
    spot, position, target and band gives the same decision."""
    if decision.intent is not None:
        return False
    if decision.ratio is None:
        return decision.drift_qty == ZERO
    return abs(decision.drift_qty) <= decision.band * spot_qty
