"""Coin-margined (inverse) contracts, such as ``BTC/USD:BTC`` (pure, Decimal only).

An inverse contract has a fixed face value in the quote currency (Binance COIN-M BTCUSD:
100 USD a contract, ETHUSD: 10; Bybit inverse and OKX coin-margined swaps: from the
market's ``contractSize``). Its margin, PnL and funding are in the base coin, so a short
of the coins' USD value at 1x leverage keeps that USD value whatever the price does:
the coins lose in USD what the short gains in coins, and the short's coins are worth its
face value at any price.

Quantities: a contract position is ``face``, the signed quote value of its contracts
(``contracts x contract size``, negative = short); its coin quantity at a price is
``face / price``. This module is the one place the daemon tells inverse from linear:
``in_coins`` turns an inverse market into the linear market it is at one price (contract
size ``face value / price`` coins) and ``position_in_coins`` its position, so the hedge
policy, the caps and the checks, all written in coins, serve both kinds unchanged.

The hedge ratio of an inverse pair is the short's face value over the USD value of the
coins held (spot wallet, coin-margin wallet, its locked margin and the short's unrealized
PnL): ``face / (coins x price)``. It drifts with the price (the short's PnL in coins
moves the coins held), so band rebalancing has work to do; at a target of 1 the drift
is second order and the hedge stays whole.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import ROUND_DOWN, Decimal, localcontext

from bot.domain.margin import MaintenanceTier, MaintenanceTiers
from bot.domain.models import ONE, ZERO, Balance, Market, Position
from bot.domain.quantize import round_down
from bot.domain.symbols import Symbol


def face_value(contracts: Decimal, market: Market) -> Decimal:
    """The quote value (USD) of ``contracts`` of an inverse ``market`` (sign kept)."""
    return contracts * market.contract_size


def coins_of(face: Decimal, price: Decimal) -> Decimal:
    """The coins a face value of ``face`` (signed, USD) stands for at ``price``."""
    if price <= ZERO:
        raise ValueError(f"price must be positive, got {price}")
    return face / price


def contracts_for(coins: Decimal, price: Decimal, market: Market) -> Decimal:
    """Contracts worth ``coins`` at ``price``, rounded toward zero to the amount step:
    never more face than the coins are worth."""
    contracts = round_down(coins * price / market.contract_size, market.amount_step)
    while abs(face_value(contracts, market)) > abs(coins * price):  # a division rounded up
        contracts -= market.amount_step if contracts > ZERO else -market.amount_step
    return contracts


def coin_pnl(face: Decimal, entry: Decimal, mark: Decimal) -> Decimal:
    """Unrealized PnL in the coin of a position of signed ``face`` (USD, negative = short)
    entered at ``entry``, marked at ``mark``: ``face x (1/entry - 1/mark)``."""
    if entry <= ZERO or mark <= ZERO:
        raise ValueError(f"entry and mark must be positive, got {entry} and {mark}")
    return face * (mark - entry) / (entry * mark)  # one division: exact where it can be


def coin_funding(face: Decimal, mark: Decimal, rate: Decimal) -> Decimal:
    """Funding in the coin for one interval: ``-face / mark x rate`` (a short receives
    when the rate is positive, as on a linear contract)."""
    return -coins_of(face, mark) * rate


def coins_held(spot: Decimal, margin_wallet: Decimal, unrealized: Decimal) -> Decimal:
    """The coins an inverse pair hedges: the spot wallet's, the coin-margin wallet's
    balance (locked margin included) and the unrealized PnL of its positions, in coin."""
    return spot + margin_wallet + unrealized


def usd_value(coins: Decimal, price: Decimal) -> Decimal:
    """What ``coins`` are worth in the quote currency at ``price``."""
    return coins * price


def hedge_ratio(short_face: Decimal, coins: Decimal, price: Decimal) -> Decimal | None:
    """Short face value (USD, positive for a short) over the USD value of the coins held;
    None when no coins are held."""
    if coins <= ZERO:
        return None
    return short_face / usd_value(coins, price)


def drift_contracts(
    short_face: Decimal, coins: Decimal, price: Decimal, target: Decimal, market: Market
) -> tuple[Decimal, bool]:
    """Contracts to sell (positive) or buy (negative) to bring the ratio to ``target``,
    rounded toward zero to the amount step, and whether the order only shrinks the short
    (reduce-only). Buying back never crosses zero: a short of ``short_face`` is at most
    closed."""
    wanted = target * usd_value(coins, price) - short_face  # USD face to add to the short
    contracts = round_down(wanted / market.contract_size, market.amount_step)
    if contracts >= ZERO:
        return contracts, False
    held = round_down(short_face / market.contract_size, market.amount_step)
    return -min(-contracts, max(held, ZERO)), True


def average_entry(face: Decimal, entry: Decimal, added: Decimal, price: Decimal) -> Decimal:
    """Entry price of an inverse position of ``face`` at ``entry`` after ``added`` face
    (same side) at ``price``: the face-weighted harmonic mean, so the coin PnL of the sum
    is the sum of the PnLs."""
    total = abs(face) + abs(added)
    return total / (abs(face) / entry + abs(added) / price)


def initial_margin(face: Decimal, price: Decimal, leverage: Decimal) -> Decimal:
    """Coins locked by a position of ``face`` (either sign) opened at ``price``."""
    if leverage <= ZERO:
        raise ValueError(f"leverage must be positive, got {leverage}")
    return coins_of(abs(face), price) / leverage


def _price_with(
    face: Decimal, entry: Decimal, margin: Decimal, tier: MaintenanceTier
) -> Decimal | None:
    side = ONE if face > ZERO else -ONE
    size = abs(face)
    denominator = margin + tier.amount + side * size / entry
    if denominator == ZERO:
        return None
    price = (size * tier.rate + side * size) / denominator
    # Not positive: the margin balance never falls to the maintenance margin (a short
    # holding at least its face value in coins).
    return price if price > ZERO else None


def liquidation_price(
    face: Decimal, entry: Decimal, margin: Decimal, tiers: MaintenanceTiers
) -> Decimal | None:
    """Liquidation price of an isolated inverse position (one-way mode) of signed ``face``
    (USD) entered at ``entry`` holding ``margin`` coins; None when no price liquidates it.

    Binance's published formula for COIN-M futures ("Liquidation Price Calculation for
    COIN-M Futures"), for one isolated position::

        LP = (Size x MMR + Side x Size) / (WB + cum + Side x Size / EP)

    with Size the face value (contracts x contract multiplier), Side 1 for a long and -1
    for a short, WB the isolated wallet balance (``margin``), MMR and cum the maintenance
    margin rate and amount of the bracket (in coin notional ``Size / LP``), EP the entry
    price. It is where the margin balance ``WB + Side x Size x (1/EP - 1/P)`` meets the
    maintenance margin ``Size / P x MMR - cum``. A short at 1x holds ``Size / EP`` coins:
    the denominator is ``cum`` (0 in the first bracket) and no price liquidates it.
    """
    if face == ZERO:
        return None
    for tier in tiers.tiers:
        price = _price_with(face, entry, margin, tier)
        if price is None:
            if tier.cap is None or face < ZERO:
                return None
            continue
        notional = abs(face) / price
        if tier.cap is None or notional <= tier.cap:
            return price
    return None


def in_coins(market: Market, price: Decimal) -> Market:
    """The market as the linear market it is at ``price``: an inverse contract's size in
    coins (``face value / price``); a linear market unchanged."""
    if not market.inverse:
        return market
    if price <= ZERO:
        raise ValueError(f"price must be positive, got {price}")
    with localcontext() as context:
        # Rounded down in its last digit, so that the coins a whole number of contracts
        # is worth divide back into that whole number (600 contracts, not 599.99...).
        context.rounding = ROUND_DOWN
        size = market.contract_size / price
    return replace(market, contract_size=size, inverse=False)


def position_in_coins(position: Position, market: Market) -> Position:
    """An inverse position (``qty`` its signed face value) as coins at its mark; a linear
    position unchanged. PnL and margin are in the coin already."""
    if not market.inverse or position.mark_price <= ZERO:
        return position
    return replace(position, qty=coins_of(position.qty, position.mark_price))


def hedged_coins(
    market: Market | None,
    spot: Decimal,
    margin_wallet: Balance | None,
    one_wallet: bool = False,
) -> Decimal:
    """The coins a pair hedges: the spot wallet's ``spot`` for a linear contract; for an
    inverse one, with the coin-margin wallet's balance and its positions' unrealized PnL
    (``margin_wallet``, the perp wallet's entry for the coin): coins moved between the
    wallets, or locked as the short's margin, stay hedged. ``one_wallet``: the margin
    wallet IS the spot wallet (a unified account), so its balance is ``spot`` already
    and only the unrealized PnL is added: the coins are counted once."""
    if market is None or not market.inverse or margin_wallet is None:
        return spot
    equity = margin_wallet.total if margin_wallet.equity is None else margin_wallet.equity
    apart = ZERO if one_wallet else margin_wallet.total
    return coins_held(spot, apart, equity - margin_wallet.total)


def in_quote(market: Market, amount: Decimal | None, price: Decimal) -> Decimal | None:
    """A margin wallet figure (free margin, equity) in the quote currency the checks use:
    an inverse contract's, in coins, at ``price``; a linear one's unchanged."""
    if amount is None or not market.inverse:
        return amount
    return usd_value(amount, price)


def moves_with_price(perp_symbol: str) -> bool:
    """Whether a pair hedged with ``perp_symbol`` sees its quantities in coins move with
    the price alone (an inverse contract: its coins and its short's coins do), so a hold
    inside the band does not repeat while the venue's books stay the same."""
    return Symbol.parse(perp_symbol).inverse
