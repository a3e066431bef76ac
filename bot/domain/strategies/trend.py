"""The trend strategy: a moving-average crossover on the perp's closed candles (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar, Self

from bot.domain.models import ZERO, Candle
from bot.domain.strategies.base import (
    CandleSpec,
    PairSpec,
    Regime,
    Strategy,
    Target,
    TargetInputs,
    TargetOverride,
)
from bot.domain.strategies.base import (
    fixed_places as _fixed,
)

# An EMA is seeded from an SMA; this many periods of history make the seed's weight negligible.
EMA_HISTORY_FACTOR = 3


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


@dataclass(frozen=True, slots=True)
class TrendStrategy(Strategy):
    """``strategy = "trend"``: bull ratio while the fast MA is above the slow, else bear."""

    name: ClassVar[str] = "trend"

    timeframe: str
    timeframe_s: int
    fast: int
    slow: int
    ma: str
    bull_ratio: Decimal
    bear_ratio: Decimal

    @classmethod
    def from_pair(cls, pair: PairSpec, override: TargetOverride | None = None) -> Self:
        p = pair.trend_params
        return cls(p.timeframe, p.timeframe_s, p.fast, p.slow, p.ma, p.bull_ratio, p.bear_ratio)

    def highest_ratio(self) -> Decimal:
        return max(self.bear_ratio, abs(self.bull_ratio))

    def lowest_ratio(self) -> Decimal:
        return min(self.bear_ratio, self.bull_ratio)

    @property
    def candles(self) -> CandleSpec:
        history = EMA_HISTORY_FACTOR if self.ma == "ema" else 1
        return CandleSpec(self.timeframe, self.timeframe_s, self.slow * history)

    def target(self, inputs: TargetInputs) -> Target:
        frame = timedelta(seconds=self.timeframe_s)
        return trend(
            closed_candles(inputs.candles, frame, inputs.now),
            fast=self.fast,
            slow=self.slow,
            kind=self.ma,
            bull_ratio=self.bull_ratio,
            bear_ratio=self.bear_ratio,
            prior=inputs.prior,
        )

    def recorded_params(self) -> dict[str, Any]:
        return {"timeframe": self.timeframe}
