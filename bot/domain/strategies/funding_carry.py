"""The funding carry strategy: hedge while funding pays, with hysteresis (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar, Self

from bot.domain.models import ONE, ZERO, Observation
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

DAYS_PER_YEAR = Decimal(365)
HOURS_PER_YEAR = DAYS_PER_YEAR * 24
# When neither the config nor the venue says how often funding is paid.
DEFAULT_FUNDING_INTERVAL_HOURS = Decimal(8)


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


@dataclass(frozen=True, slots=True)
class FundingCarryStrategy(Strategy):
    """``strategy = "funding_carry"``: full hedge at or above entry_apr, none below exit_apr."""

    name: ClassVar[str] = "funding_carry"

    entry_apr: Decimal
    exit_apr: Decimal
    # Hours between funding payments; None: the venue's, else 8.
    interval_hours: Decimal | None = None

    @classmethod
    def from_pair(cls, pair: PairSpec, override: TargetOverride | None = None) -> Self:
        p = pair.funding_carry_params
        return cls(p.entry_apr, p.exit_apr, p.funding_interval_hours)

    def highest_ratio(self) -> Decimal:
        return ONE

    def funding_interval(self, observation: Observation) -> Decimal:
        """The configured interval, else the venue's, else 8 hours."""
        if self.interval_hours is not None:
            return self.interval_hours
        if observation.funding_interval_hours is not None:
            return observation.funding_interval_hours
        return DEFAULT_FUNDING_INTERVAL_HOURS

    def target(self, inputs: TargetInputs) -> Target:
        observation = inputs.observation
        return funding_carry(
            observation.funding_rate,
            interval_hours=self.funding_interval(observation),
            entry_apr=self.entry_apr,
            exit_apr=self.exit_apr,
            carry_ratio=ONE,
            flat_ratio=ZERO,
            prior=inputs.prior,
        )
