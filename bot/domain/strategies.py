"""Target strategies: from market inputs to the pair's target hedge ratio (pure, Decimal only).

The ratio is short perp per unit of spot, as in ``rebalance.decide``: 1 is a full hedge,
0 no hedge, above 1 a net short (the "collateralized short"), below 0 a small net long
through a long perp. Every function returns a ``Target`` that carries its inputs and a
sentence saying why, so the decision that uses it can record both. Nothing here reads a
clock or keeps state: the caller passes ``now`` and the prior regime.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from typing import Any

from bot.domain.models import ONE, ZERO, Candle

HALF = Decimal("0.5")
DAYS_PER_YEAR = Decimal(365)
HOURS_PER_YEAR = DAYS_PER_YEAR * 24
SECONDS_PER_YEAR = HOURS_PER_YEAR * 3600


class Outlook(StrEnum):
    """The allocation matrix's market outlooks."""

    EXTREMELY_BULLISH = "extremely_bullish"
    CAUTIOUSLY_BULLISH = "cautiously_bullish"
    NEUTRAL = "neutral"
    BEARISH = "bearish"


# Share of the spot notional hedged with a short perp, per outlook (the playbook's matrix).
OUTLOOK_RATIOS: dict[Outlook, Decimal] = {
    Outlook.EXTREMELY_BULLISH: ZERO,
    Outlook.CAUTIOUSLY_BULLISH: Decimal("0.3"),
    Outlook.NEUTRAL: Decimal("0.7"),
    Outlook.BEARISH: ONE,
}
# Bearish also sells the spot down to this share of the holding (when spot trades are allowed).
BEARISH_SPOT_KEEP = HALF


class Regime(StrEnum):
    """A stateful strategy's current state; the next decision gets it back as input."""

    BULL = "bull"  # trend: fast MA above slow MA
    BEAR = "bear"  # trend: fast MA below slow MA
    CARRY = "carry"  # funding carry / basis: the carry hedge is on
    FLAT = "flat"  # funding carry / basis: the carry hedge is off
    EXPIRED = "expired"  # basis: the dated future expired; roll or close


@dataclass(frozen=True, slots=True)
class Target:
    """A strategy's answer: the target ratio, the regime it is in, why, and on what inputs."""

    strategy: str
    ratio: Decimal
    reason: str
    regime: Regime | None = None
    inputs: dict[str, Any] = field(default_factory=dict)
    # Base quantity of spot to sell now (bearish outlook with spot trades allowed).
    spot_sell_qty: Decimal = ZERO
    # The spot held when the view turned bearish: the sell-down keeps half of it, once.
    sell_down_reference: Decimal | None = None
    # True when the strategy wanted a spot sell-down that the pair does not allow.
    sell_down_skipped: bool = False


def _fixed(value: Decimal, places: int = 2) -> str:
    # Explicit rounding: a reason must not depend on the caller's decimal context.
    return f"{value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN):f}"


def _qty(value: Decimal) -> str:
    # Trailing zeros dropped, never an exponent: "0.5", not "0.50" or "5E-1".
    return f"{value.normalize():f}"


def _pct(value: Decimal) -> str:
    return f"{_fixed(value * 100)}%"


def fixed(ratio: Decimal) -> Target:
    """The configured (or set-target) ratio, unchanged."""
    if not ZERO <= ratio <= 2:
        raise ValueError(f"fixed ratio must be within 0..2, got {ratio}")
    return Target("fixed", ratio, f"fixed target {ratio}", inputs={"ratio": ratio})


def outlook(
    view: Outlook,
    spot_trades_allowed: bool,
    spot_qty: Decimal = ZERO,
    reference: Decimal | None = None,
    sold: Decimal = ZERO,
    coin: str = "",
) -> Target:
    """The allocation matrix: hedge 0, 30 % or 70 %; bearish sells spot to 50 %, hedges the rest.

    The bearish sell-down keeps half of ``reference``, the spot held when the view turned
    bearish (``spot_qty`` when no reference is passed): it sells down to that level once
    rather than halving an ever smaller balance each cycle. ``sold`` is what our spot sells
    have filled since the reference was taken: the sale never exceeds the reference's other
    half in total, even when a balance read lags a fill. The returned target carries the
    reference for the next call; ``coin`` names the spot coin in the reason. Without spot
    trades the bearish outlook hedges 100 % of the spot held and says that the sell-down
    was skipped.
    """
    ratio = OUTLOOK_RATIOS[view]
    inputs: dict[str, Any] = {"outlook": view.value, "spot_trades_allowed": spot_trades_allowed}
    if view is not Outlook.BEARISH:
        return Target("outlook", ratio, f"outlook {view.value}: hedge {_pct(ratio)}", inputs=inputs)
    if spot_trades_allowed:
        held_at_turn = spot_qty if reference is None else reference
        keep = held_at_turn * BEARISH_SPOT_KEEP
        sell = max(min(spot_qty - keep, held_at_turn - keep - sold), ZERO)
        inputs.update(
            sell_down_reference=held_at_turn, spot_keep_qty=keep, spot_sold=sold, spot_sell_qty=sell
        )
        unit = f" {coin}" if coin else ""
        if sell > ZERO:
            why = (
                f"outlook bearish: sell {_qty(sell)}{unit} spot down to {_pct(BEARISH_SPOT_KEEP)} "
                f"of {_qty(held_at_turn)}{unit} (reference), then hedge 100% of the rest"
            )
        else:
            why = (
                f"outlook bearish: spot {_qty(spot_qty)}{unit} is at or under "
                f"{_pct(BEARISH_SPOT_KEEP)} of {_qty(held_at_turn)}{unit} (reference); hedge 100%"
            )
        return Target(
            "outlook",
            ratio,
            why,
            inputs=inputs,
            spot_sell_qty=sell,
            sell_down_reference=held_at_turn,
        )
    return Target(
        "outlook",
        ratio,
        "outlook bearish: hedge 100% of the spot held; spot sell-down skipped "
        "(the pair does not allow spot trades)",
        inputs=inputs,
        sell_down_skipped=True,
    )


# -- trend ---------------------------------------------------------------------------------


def closed_candles(candles: Sequence[Candle], timeframe: timedelta, now: datetime) -> list[Candle]:
    """The candles that had closed at ``now`` (``opened_at + timeframe <= now``), oldest first."""
    return sorted((c for c in candles if c.opened_at + timeframe <= now), key=lambda c: c.opened_at)


def sma(values: Sequence[Decimal], period: int) -> Decimal:
    """Simple moving average of the last ``period`` values."""
    if period < 1 or len(values) < period:
        raise ValueError(f"sma needs {period} values, got {len(values)}")
    return sum(values[-period:], ZERO) / period


def ema(values: Sequence[Decimal], period: int) -> Decimal:
    """Exponential moving average (alpha = 2 / (period + 1)), seeded with the first SMA."""
    if period < 1 or len(values) < period:
        raise ValueError(f"ema needs {period} values, got {len(values)}")
    alpha = Decimal(2) / (period + 1)
    average = sum(values[:period], ZERO) / period
    for value in values[period:]:
        average += alpha * (value - average)
    return average


def trend(
    closed: Sequence[Candle],
    *,
    fast: int,
    slow: int,
    kind: str,
    bull_ratio: Decimal,
    bear_ratio: Decimal,
    prior: Regime | None,
) -> Target:
    """MA crossover on closed candles: fast above slow is bull (bull ratio), below is bear.

    Equal averages, or too few candles, keep the prior regime; with no prior the pair stays
    hedged at the bear ratio until the averages say otherwise.
    """
    if not 1 <= fast < slow:
        raise ValueError(f"trend needs 1 <= fast < slow, got fast {fast}, slow {slow}")
    average = sma if kind == "sma" else ema
    closes = [c.close for c in closed]
    inputs: dict[str, Any] = {
        "ma": kind,
        "fast": fast,
        "slow": slow,
        "candles": len(closes),
        "last_closed_open_time": closed[-1].opened_at if closed else None,
        "prior_regime": prior.value if prior else None,
    }
    if len(closes) < slow:
        regime = prior or Regime.BEAR
        why = f"{len(closes)} closed candles, need {slow}: keep {regime.value}"
    else:
        fast_ma, slow_ma = average(closes, fast), average(closes, slow)
        inputs.update(fast_ma=fast_ma, slow_ma=slow_ma)
        if fast_ma > slow_ma:
            regime = Regime.BULL
        elif fast_ma < slow_ma:
            regime = Regime.BEAR
        else:
            regime = prior or Regime.BEAR
        relation = ">" if fast_ma > slow_ma else "<" if fast_ma < slow_ma else "="
        crossed = " (cross)" if prior is not None and regime is not prior else ""
        why = (
            f"{kind} {fast} {_fixed(fast_ma)} {relation} {kind} {slow} {_fixed(slow_ma)}: "
            f"{regime.value}{crossed}"
        )
    ratio = bull_ratio if regime is Regime.BULL else bear_ratio
    inputs["regime"] = regime.value
    return Target("trend", ratio, f"trend {why}, target {ratio}", regime, inputs)


# -- funding carry ---------------------------------------------------------------------------


def annualized_funding(rate: Decimal, interval_hours: Decimal) -> Decimal:
    """A per-interval funding rate as a yearly rate (simple, no compounding)."""
    if interval_hours <= ZERO:
        raise ValueError(f"funding interval must be positive, got {interval_hours}")
    return rate * HOURS_PER_YEAR / interval_hours


def funding_carry(
    rate: Decimal,
    *,
    interval_hours: Decimal,
    entry_apr: Decimal,
    exit_apr: Decimal,
    carry_ratio: Decimal,
    flat_ratio: Decimal,
    prior: Regime | None,
) -> Target:
    """Hedge fully while annualized funding >= entry; drop the hedge below exit (hysteresis).

    Between the two thresholds the prior regime holds, so a rate wandering around one
    threshold does not flap the hedge. With no prior the carry starts off.
    """
    if exit_apr > entry_apr:
        raise ValueError(f"exit_apr {exit_apr} must not exceed entry_apr {entry_apr}")
    apr = annualized_funding(rate, interval_hours)
    was = prior if prior in (Regime.CARRY, Regime.FLAT) else Regime.FLAT
    if apr >= entry_apr:
        regime, why = Regime.CARRY, f">= entry {_pct(entry_apr)}: carry"
    elif apr < exit_apr:
        regime, why = Regime.FLAT, f"< exit {_pct(exit_apr)}: flat"
    else:
        regime = was
        why = f"between exit {_pct(exit_apr)} and entry {_pct(entry_apr)}: keep {was.value}"
    ratio = carry_ratio if regime is Regime.CARRY else flat_ratio
    inputs: dict[str, Any] = {
        "funding_rate": rate,
        "interval_hours": interval_hours,
        "annualized_funding": apr,
        "entry_apr": entry_apr,
        "exit_apr": exit_apr,
        "prior_regime": prior.value if prior else None,
        "regime": regime.value,
    }
    return Target(
        "funding_carry",
        ratio,
        f"funding carry: annualized funding {_pct(apr)} {why}, target {ratio}",
        regime,
        inputs,
    )


# -- basis (dated futures) -------------------------------------------------------------------


def annualized_basis(
    spot_price: Decimal, future_price: Decimal, expiry: datetime, now: datetime
) -> Decimal:
    """(future / spot - 1) scaled to a year by the time left to expiry."""
    if spot_price <= ZERO:
        raise ValueError(f"spot price must be positive, got {spot_price}")
    left = expiry - now
    seconds = Decimal(left.days * 86400 + left.seconds)
    if seconds <= ZERO:
        raise ValueError(f"expiry {expiry.isoformat()} is not after {now.isoformat()}")
    return (future_price / spot_price - ONE) * SECONDS_PER_YEAR / seconds


def basis(
    spot_price: Decimal,
    future_price: Decimal,
    *,
    expiry: datetime,
    now: datetime,
    entry_apr: Decimal,
    at_expiry: str,
    prior: Regime | None,
    close_before: timedelta = timedelta(0),
    next_contract: str | None = None,
) -> Target:
    """Cash-and-carry on a dated future: enter at or above ``entry_apr``, hold to expiry.

    Once entered the position is held whatever the basis does (it converges at expiry).
    From ``close_before`` ahead of expiry the target is 0 (the contract is closed): with
    ``at_expiry`` "roll" and a ``next_contract`` the carry regime is kept, so the caller opens
    the next contract once this one is flat; otherwise the regime becomes expired.
    """
    left = expiry - now
    inputs: dict[str, Any] = {
        "spot_price": spot_price,
        "future_price": future_price,
        "expiry": expiry,
        "days_to_expiry": Decimal(left.days * 86400 + left.seconds) / 86400,
        "entry_apr": entry_apr,
        "at_expiry": at_expiry,
        "close_before_s": int(close_before.total_seconds()),
        "next_contract": next_contract,
        "prior_regime": prior.value if prior else None,
    }
    apr = (
        annualized_basis(spot_price, future_price, expiry, now)
        if left.total_seconds() > 0
        else None
    )
    inputs["annualized_basis"] = apr
    if left <= close_before:
        rolling = at_expiry == "roll" and next_contract is not None
        regime: Regime
        if rolling and prior in (Regime.CARRY, Regime.FLAT):
            regime = prior
            why = f"close before expiry, then roll to {next_contract}"
        else:
            regime, why = Regime.EXPIRED, "close at expiry"
        inputs["regime"] = regime.value
        when = "expired" if left <= timedelta(0) else f"expires at {expiry.isoformat()}"
        return Target("basis", ZERO, f"basis: future {when}: {why}, target 0", regime, inputs)
    if apr is None:  # unreachable: left > close_before >= 0; keeps the type narrow
        raise ValueError(f"close_before {close_before} must not be negative")
    if prior is Regime.CARRY:
        held, why = Regime.CARRY, "held to expiry"
    elif apr >= entry_apr:
        held, why = Regime.CARRY, f">= entry {_pct(entry_apr)}: enter"
    else:
        held, why = Regime.FLAT, f"< entry {_pct(entry_apr)}: stay out"
    ratio = ONE if held is Regime.CARRY else ZERO
    inputs["regime"] = held.value
    return Target(
        "basis",
        ratio,
        f"basis: annualized {_pct(apr)} {why}, target {ratio}",
        held,
        inputs,
    )


def basis_contract(
    contracts: Sequence[tuple[str, datetime]],
    positions: Mapping[str, Decimal],
    *,
    now: datetime,
    close_before: timedelta,
    at_expiry: str,
) -> tuple[str, str | None]:
    """Which of a basis pair's contracts to trade now, and the one after it (for a roll).

    ``contracts`` is the configured order (perp_symbol, then roll_to). A contract within
    ``close_before`` of its expiry that still holds a position is traded first (to close
    it); otherwise "roll" trades the first contract not yet that close to expiry (the last
    one when all are), and "close" always trades the first.
    """
    if not contracts:
        raise ValueError("basis_contract needs at least one contract")
    rolling = at_expiry == "roll"

    def following(index: int) -> str | None:
        return contracts[index + 1][0] if rolling and index + 1 < len(contracts) else None

    for index, (symbol, expiry) in enumerate(contracts):
        if expiry - now <= close_before and positions.get(symbol, ZERO) != ZERO:
            return symbol, following(index)
    if rolling:
        for index, (symbol, expiry) in enumerate(contracts):
            if expiry - now > close_before:
                return symbol, following(index)
        return contracts[-1][0], None
    return contracts[0][0], None
