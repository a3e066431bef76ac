"""The free-margin cap: an order grows a position only as far as the perp wallet's free
margin pays its initial margin and taker fee (pure, Decimal only).

A venue locks initial margin for the part of an order that grows the position: its
notional over the leverage new margin is locked at, with the taker fee beside it, and
refuses the order when its free margin cannot pay both (Bybit 110007, Binance -2019).
Sending it anyway is refused the same way every cycle; the hedge instead goes as far as
the margin allows. The part that reduces the position locks nothing and is never cut.

Linear contracts pay in the quote (settle) asset: ``contracts x contract size x price x
(1 / leverage + fee)``. Inverse contracts pay in the coin: the coins of the face value
at the fill price, ``face / price x (1 / leverage + fee)``; the market the policy sees is
the linear one the contract is at the price it was sized at (``bot.domain.inverse.in_coins``),
so its face value is ``contract size x that price``.

A venue checks a limit order's margin at its limit price (Bybit), which for an IOC order
is up to ``max_slippage_bps`` beyond the touch: an inverse sell's coins per USD contract
grow as the price falls, a linear buy's quote as it rises. The cap prices each contract
at the one of the touch and that limit that costs more (:func:`margin_price`).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from bot.domain.models import ONE, ZERO, Market, Side
from bot.domain.quantize import amount_problem, ioc_limit_price, round_down


@dataclass(frozen=True, slots=True)
class MarginBudget:
    """What pays a new order's initial margin: the perp wallet's free margin (in
    ``asset``), the leverage the venue locks new margin at and the taker fee rate."""

    free: Decimal
    asset: str  # USDT for a linear contract, the coin for an inverse one
    leverage: Decimal
    fee_rate: Decimal = ZERO
    # An inverse contract: the price its market was sized in coins at (None: linear).
    inverse_at: Decimal | None = None
    # How far beyond the touch an order's IOC limit lets it fill (the pair's
    # max_slippage_bps): the venue may check its margin there.
    slippage_bps: Decimal = ZERO

    def __post_init__(self) -> None:
        if self.leverage <= ZERO:
            raise ValueError(f"leverage must be positive, got {self.leverage}")

    def free_text(self) -> str:
        """The free margin as the reasons show it: a quote asset to the cent, a coin to
        eight places."""
        if self.inverse_at is None:
            return f"{self.free:.2f} {self.asset}"
        return f"{_plain(self.free)} {self.asset}"

    def leverage_text(self) -> str:
        return f"{_plain(self.leverage)}x"


def _plain(value: Decimal) -> str:
    text = f"{value.quantize(Decimal('1e-8')):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def cost_per_contract(price: Decimal, market: Market, budget: MarginBudget) -> Decimal:
    """Initial margin plus taker fee, in ``budget.asset``, of one contract that grows the
    position filled at ``price``."""
    rate = ONE / budget.leverage + budget.fee_rate
    if budget.inverse_at is None:
        return market.contract_size * price * rate
    face = market.contract_size * budget.inverse_at
    return face / price * rate


def margin_price(price: Decimal, side: Side, market: Market, budget: MarginBudget) -> Decimal:
    """The price an order's margin is paid at: of the touch ``price`` and its IOC limit
    (``budget.slippage_bps`` beyond it, on the price grid), the one where a contract costs
    more: the limit for an inverse sell or a linear buy, else the touch."""
    costlier_beyond = (budget.inverse_at is not None) == (side is Side.SELL)
    if budget.slippage_bps <= ZERO or not costlier_beyond:
        return price
    limit = ioc_limit_price(side, price, budget.slippage_bps, market.price_step)
    return limit if limit > ZERO else price


def growing_part(amount: Decimal, side: Side, perp_qty: Decimal, market: Market) -> Decimal:
    """The contracts of an order of ``amount`` on ``side`` that grow the position of
    signed base ``perp_qty`` (the rest reduces it)."""
    reduces = (side is Side.SELL and perp_qty > ZERO) or (side is Side.BUY and perp_qty < ZERO)
    if not reduces:
        return amount
    held = abs(perp_qty) / market.contract_size
    return max(amount - held, ZERO)


def margin_capped(
    amount: Decimal,
    side: Side,
    perp_qty: Decimal,
    price: Decimal,
    market: Market,
    budget: MarginBudget,
) -> Decimal:
    """The order of ``amount`` contracts on ``side`` cut to what ``budget`` pays, filled at
    ``price`` against a position of signed base ``perp_qty``: its part that reduces the
    position whole, its part that grows it as many amount steps as the free margin pays
    with the fee. Unchanged when the margin pays it all."""
    growing = growing_part(amount, side, perp_qty, market)
    unit = cost_per_contract(margin_price(price, side, market, budget), market, budget)
    if growing <= ZERO or growing * unit <= budget.free:
        return amount
    reducing = amount - growing
    most = round_down(reducing + max(budget.free, ZERO) / unit, market.amount_step)
    while most > reducing and (most - reducing) * unit > budget.free:  # rounded up
        most -= market.amount_step
    return max(most, round_down(reducing, market.amount_step))


def smallest_order(price: Decimal, market: Market, min_notional: Decimal = ZERO) -> Decimal:
    """The fewest contracts ``market`` takes at ``price``: one amount step, at least its min
    amount, and a notional at least the stricter of its and the pair's ``min_notional``."""
    step = market.amount_step
    least = max(step, -(-market.min_amount // step) * step)
    floor = max(market.min_notional, min_notional)
    if floor > ZERO and price > ZERO:
        least = max(least, -(-floor / (market.contract_size * price) // step) * step)
    while amount_problem(least, price, market, min_notional) is not None:
        if market.max_amount is not None and least >= market.max_amount:
            break
        least += step  # a division that rounded down
    return least


def margin_denial(
    price: Decimal, side: Side, market: Market, budget: MarginBudget, min_notional: Decimal
) -> str:
    """Why not even the smallest order on ``side`` that grows the position can be sent:
    what it needs, what is free, what to do (one line)."""
    smallest = smallest_order(price, market, min_notional)
    needed = smallest * cost_per_contract(margin_price(price, side, market, budget), market, budget)
    shown = f"{needed:.2f}" if budget.inverse_at is None else _plain(needed)
    return (
        f"free margin {budget.free_text()} cannot pay the smallest order's initial margin "
        f"and fee ({_plain(smallest * market.contract_size)} {market.base} at "
        f"{budget.leverage_text()}: {shown} "
        f"{budget.asset}): add {budget.asset} or other collateral to the perp wallet, or "
        "raise the leverage"
    )
