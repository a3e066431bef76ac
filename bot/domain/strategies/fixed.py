"""The fixed strategy: the configured (or set-target) ratio, unchanged (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar, Self

from bot.domain.models import ZERO
from bot.domain.strategies.base import (
    PairSpec,
    SetTarget,
    Strategy,
    Target,
    TargetInputs,
    TargetOverride,
)


def fixed(ratio: Decimal) -> Target:
    """The configured (or set-target) ratio, unchanged."""
    if not ZERO <= ratio <= 2:
        raise ValueError(f"fixed ratio must be within 0..2, got {ratio}")
    return Target("fixed", ratio, f"fixed target {ratio}", inputs={"ratio": ratio})


@dataclass(frozen=True, slots=True)
class FixedStrategy(Strategy):
    """``strategy = "fixed"``: ``target_ratio``, or the ratio given with set-target."""

    name: ClassVar[str] = "fixed"
    static_target: ClassVar[bool] = True
    set_target: ClassVar[SetTarget | None] = SetTarget.RATIO

    ratio: Decimal

    @classmethod
    def from_pair(cls, pair: PairSpec, override: TargetOverride | None = None) -> Self:
        if override is not None and override.ratio is not None:
            return cls(override.ratio)
        return cls(pair.target_ratio)

    def highest_ratio(self) -> Decimal:
        return self.ratio

    def target(self, inputs: TargetInputs) -> Target:
        return fixed(self.ratio)

    def uses_override(self, override: TargetOverride | None) -> bool:
        return override is not None and override.ratio is not None
