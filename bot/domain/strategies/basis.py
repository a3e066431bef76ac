"""The basis strategy: cash-and-carry on a dated future, held to expiry (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar, Self

from bot.domain.models import ONE, ZERO
from bot.domain.strategies.base import (
    PairSpec,
    Regime,
    Strategy,
    Target,
    TargetInputs,
    TargetOverride,
)
from bot.domain.strategies.base import (
    pct as _pct,
)
from bot.domain.strategies.funding_carry import HOURS_PER_YEAR

SECONDS_PER_YEAR = HOURS_PER_YEAR * 3600


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


# A carry's round trip on one contract pays the taker fee twice: to open the short, and to
# buy it back before expiry (``close_before_s``; a settlement at expiry is counted the same,
# since the market rules carry no delivery fee).
ROUND_TRIP_TAKER_FEES = 2


def net_annualized_basis(
    spot_price: Decimal,
    future_price: Decimal,
    expiry: datetime,
    now: datetime,
    taker_fee: Decimal,
) -> Decimal:
    """The annualized basis net of a round trip's taker fees on the future (pure).

    (future - spot - 2 x taker_fee x future) / spot, scaled to a year by the time left to
    expiry: the carry a new short on this contract earns after opening it now and buying
    it back before expiry.
    """
    fees = ROUND_TRIP_TAKER_FEES * taker_fee * future_price / spot_price
    gross = annualized_basis(spot_price, future_price, expiry, now)
    left = expiry - now
    return gross - fees * SECONDS_PER_YEAR / Decimal(left.days * 86400 + left.seconds)


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
    taker_fee: Decimal = ZERO,
    rolled_from: str | None = None,
    future_symbol: str | None = None,
) -> Target:
    """Cash-and-carry on a dated future: enter when the annualized basis net of a round
    trip's taker fees is at or above ``entry_apr``, then hold to expiry.

    Once entered the position is held whatever the basis does (it converges at expiry).
    From ``close_before`` ahead of expiry the target is 0 (the contract is closed): with
    ``at_expiry`` "roll" and a ``next_contract`` the carry regime is kept, so the caller opens
    the next contract once this one is flat; otherwise the regime becomes expired. A carry
    decided on another contract (``rolled_from``) is a roll: it enters this contract only
    as a flat pair would, its net basis meeting ``entry_apr``; otherwise it stays out
    (flat, ``roll_declined``) rather than lock in a basis below the hurdle.
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
        "future_symbol": future_symbol,
    }
    apr = (
        annualized_basis(spot_price, future_price, expiry, now)
        if left.total_seconds() > 0
        else None
    )
    inputs["annualized_basis"] = apr
    if left <= close_before:
        return _closing(expiry, now, at_expiry, prior, next_contract, inputs)
    if apr is None:  # unreachable: left > close_before >= 0; keeps the type narrow
        raise ValueError(f"close_before {close_before} must not be negative")
    if prior is Regime.CARRY and rolled_from is None:
        inputs["regime"] = Regime.CARRY.value
        why = f"basis: annualized {_pct(apr)} held to expiry, target 1"
        return Target("basis", ONE, why, Regime.CARRY, inputs)
    roll = f"roll from {rolled_from} to {future_symbol}" if prior is Regime.CARRY else None
    net = net_annualized_basis(spot_price, future_price, expiry, now, taker_fee)
    return _entry(apr, net, entry_apr, taker_fee, roll, {**inputs, "rolled_from": rolled_from})


def _entry(
    apr: Decimal,
    net: Decimal,
    entry_apr: Decimal,
    taker_fee: Decimal,
    roll: str | None,
    inputs: dict[str, Any],
) -> Target:
    """Enter when the basis net of fees meets ``entry_apr``, else stay out; a ``roll``
    (the carry's move to this contract, in words) that stays out is declined."""
    inputs.update(taker_fee=taker_fee, net_annualized_basis=net)
    figures = f"annualized {_pct(apr)}, net of fees {_pct(net)} (2 x taker {_pct(taker_fee)})"
    if net >= entry_apr:
        inputs["regime"] = Regime.CARRY.value
        why = f"{roll}: " if roll else ""
        reason = f"basis: {why}{figures} >= entry_apr {_pct(entry_apr)}: enter, target 1"
        return Target("basis", ONE, reason, Regime.CARRY, inputs)
    inputs["regime"] = Regime.FLAT.value
    why = f"{roll} declined: " if roll else ""
    reason = f"basis: {why}{figures} < entry_apr {_pct(entry_apr)}: stay out, target 0"
    return Target("basis", ZERO, reason, Regime.FLAT, inputs, roll_declined=roll is not None)


def _closing(
    expiry: datetime,
    now: datetime,
    at_expiry: str,
    prior: Regime | None,
    next_contract: str | None,
    inputs: dict[str, Any],
) -> Target:
    """The target 0 of a contract within ``close_before`` of its expiry (or past it)."""
    rolling = at_expiry == "roll" and next_contract is not None
    regime: Regime
    if rolling and prior in (Regime.CARRY, Regime.FLAT):
        regime = prior
        why = (
            f"close before expiry, then roll to {next_contract} if its basis net of fees "
            "meets entry_apr"
        )
    else:
        regime, why = Regime.EXPIRED, "close at expiry"
    inputs["regime"] = regime.value
    when = "expired" if expiry <= now else f"expires at {expiry.isoformat()}"
    return Target("basis", ZERO, f"basis: future {when}: {why}, target 0", regime, inputs)


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


@dataclass(frozen=True, slots=True)
class BasisStrategy(Strategy):
    """``strategy = "basis"``: enter at or above entry_apr on ``future_symbol``, hold to expiry.

    The spot leg is priced from the spot account's ticker; the pair trades ``perp_symbol``
    and then its ``roll_to`` contracts (``bot.service.basis`` picks one per cycle).
    """

    name: ClassVar[str] = "basis"
    needs_spot_price: ClassVar[bool] = True
    trades_dated_contracts: ClassVar[bool] = True

    future_symbol: str
    entry_apr: Decimal
    at_expiry: str
    close_before: timedelta

    @classmethod
    def from_pair(cls, pair: PairSpec, override: TargetOverride | None = None) -> Self:
        p = pair.basis_params
        return cls(pair.perp_symbol, p.entry_apr, p.at_expiry, timedelta(seconds=p.close_before_s))

    def highest_ratio(self) -> Decimal:
        return ONE

    def target(self, inputs: TargetInputs) -> Target:
        observation = inputs.observation
        if observation.expiry is None or observation.spot_price is None:
            raise ValueError(
                f"pair {observation.pair}: {observation.perp_symbol} has no expiry or "
                f"{observation.spot_symbol} no spot price from the venue; basis needs a dated "
                "future and the spot ticker"
            )
        moved = inputs.prior_contract not in (None, self.future_symbol)
        return basis(
            observation.spot_price,
            observation.price,
            expiry=observation.expiry,
            now=inputs.now,
            entry_apr=self.entry_apr,
            at_expiry=self.at_expiry,
            prior=inputs.prior,
            close_before=self.close_before,
            next_contract=inputs.next_contract,
            taker_fee=inputs.taker_fee or ZERO,
            rolled_from=inputs.prior_contract if moved else None,
            future_symbol=self.future_symbol,
        )
