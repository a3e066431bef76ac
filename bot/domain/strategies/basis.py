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
        return _closing(expiry, now, at_expiry, prior, next_contract, inputs)
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
        why = f"close before expiry, then roll to {next_contract}"
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
        target = basis(
            observation.spot_price,
            observation.price,
            expiry=observation.expiry,
            now=inputs.now,
            entry_apr=self.entry_apr,
            at_expiry=self.at_expiry,
            prior=inputs.prior,
            close_before=self.close_before,
            next_contract=inputs.next_contract,
        )
        target.inputs["future_symbol"] = self.future_symbol
        return target
