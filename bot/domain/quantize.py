"""Amount and price steps, contract conversion and order minimums (pure, Decimal only)."""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal

from bot.domain.models import ZERO, Market, Side


def _to_step(value: Decimal, step: Decimal, rounding: str) -> Decimal:
    if step <= ZERO:
        raise ValueError(f"step must be positive, got {step}")
    return (value / step).to_integral_value(rounding=rounding) * step


def round_down(value: Decimal, step: Decimal) -> Decimal:
    """``value`` rounded toward zero to a multiple of ``step`` (0.0129, 0.001 -> 0.012)."""
    if step <= ZERO:
        raise ValueError(f"step must be positive, got {step}")
    # Decimal's remainder is exact and keeps the sign of value, so this truncates toward
    # zero even for steps like 0.3 where value / step would round in the last digit.
    return (value - value % step).quantize(step)


def round_price(price: Decimal, step: Decimal, side: Side | None = None) -> Decimal:
    """``price`` on the ``step`` grid: a buy limit rounds down, a sell limit up, else nearest.

    Rounding that way never makes a limit price worse for us than the one asked for.
    """
    if side is Side.BUY:
        return _to_step(price, step, ROUND_FLOOR)
    if side is Side.SELL:
        return _to_step(price, step, ROUND_CEILING)
    return _to_step(price, step, ROUND_HALF_EVEN)


def base_to_contracts(base_qty: Decimal, market: Market) -> Decimal:
    """Contracts for ``base_qty`` of the base coin, rounded toward zero to the amount step."""
    contracts = round_down(base_qty / market.contract_size, market.amount_step)
    # An odd contract size can make the division round up in its last digit; the contracts
    # must never stand for more base than asked.
    if abs(contracts_to_base(contracts, market)) > abs(base_qty):
        contracts -= market.amount_step if contracts > ZERO else -market.amount_step
    return contracts


def contracts_to_base(contracts: Decimal, market: Market) -> Decimal:
    """Base-coin quantity of ``contracts``."""
    return contracts * market.contract_size


def amount_problem(
    contracts: Decimal,
    price: Decimal,
    market: Market,
    min_notional: Decimal = ZERO,
    *,
    closes_position: bool = False,
) -> str | None:
    """Why ``contracts`` at ``price`` cannot be ordered on ``market``, or None when it can.

    ``min_notional`` is the pair's own floor; the stricter of it and the market's applies.
    A reduce-only order that closes the whole position (``closes_position``) is not held
    to the pair's floor, nor to the market's where the venue takes such orders under it
    (``Market.reduce_only_below_min_notional``): no residual position is left behind.
    """
    if contracts < market.amount_step:
        return f"amount {contracts:f} below one amount step {market.amount_step:f}"
    if round_down(contracts, market.amount_step) != contracts:
        return f"amount {contracts:f} is not a multiple of the amount step {market.amount_step:f}"
    if contracts < market.min_amount:
        return f"amount {contracts:f} below min amount {market.min_amount:f}"
    if market.max_amount is not None and contracts > market.max_amount:
        return f"amount {contracts:f} above max amount {market.max_amount:f}"
    notional = contracts_to_base(contracts, market) * price
    floor = max(market.min_notional, min_notional)
    if closes_position:
        floor = ZERO if market.reduce_only_below_min_notional else market.min_notional
    if notional < floor:
        return f"notional {notional:.2f} below min notional {floor:f}"
    return None


def ioc_limit_price(
    side: Side, touch: Decimal, max_slippage_bps: Decimal, step: Decimal
) -> Decimal:
    """The limit of an immediate-or-cancel order that may fill at most ``max_slippage_bps``
    beyond the touch (ask for a buy, bid for a sell), on the price grid, never looser."""
    bound = max_slippage_bps / Decimal(10000)
    if side is Side.BUY:
        return round_price(touch * (1 + bound), step, Side.BUY)
    return round_price(touch * (1 - bound), step, Side.SELL)
