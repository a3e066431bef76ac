"""Each pair's target ratio for this cycle: its strategy, fed from the shell.

The pair's strategy object (``bot.domain.strategies.strategy_for``) says what it needs and
gets that here, nothing more: the closed candles of the perp (fetched only when a new
candle can have closed), the observation (funding rate and interval, spot and contract
prices), the prior regime (kept in memory and, after a restart, read back from the pair's
last decision), a spot sell-down's reference, and the run-time target set with
``hedgebot set-target`` (one query per cycle for every pair).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from bot.config import PairConfig, Settings
from bot.domain.models import Candle, Observation
from bot.domain.strategies import (
    CandleSpec,
    FixedStrategy,
    Outlook,
    OutlookStrategy,
    Regime,
    SetTarget,
    Strategy,
    Target,
    TargetInputs,
    strategy_for,
    strategy_kind,
)
from bot.exchange.candles import bar_start
from bot.exchange.gateway import ExchangeGateway
from bot.store.repository import PairTarget, Repository

MAX_FETCH = 1000
# Our spot sells from this long before a bearish turn count as part of its sell-down
# (clock skew with the venue's fill times; counting more only ever sells less).
SOLD_COUNT_SLACK = timedelta(minutes=5)
# `hedgebot set-target PAIR config` drops the run-time target.
CONFIG_TARGET = "config"


@dataclass(slots=True)
class _CandleCache:
    candles: list[Candle]
    fetched_in_bar: datetime  # the opening time of the bar that was forming when fetched


class TargetSource:
    """Computes each pair's Target; keeps the candles and regimes between cycles."""

    def __init__(self, settings: Settings, repository: Repository) -> None:
        self._settings = settings
        self._repo = repository
        self._overrides: Mapping[str, PairTarget] = {}
        self._regimes: dict[str, Regime] = {}
        # The contract each regime was decided on: a basis carry moving to another is a roll.
        self._contracts: dict[str, str] = {}
        self._candles: dict[str, _CandleCache] = {}
        self._announced_skip: set[str] = set()
        # The spot held when each pair's outlook turned bearish (its sell-down keeps half),
        # and when: our spot sells since then count toward the sale.
        self._sell_down_references: dict[str, tuple[Decimal, datetime]] = {}

    def strategy(self, pair: PairConfig) -> Strategy:
        """The pair's strategy now: as configured, with any run-time set-target applied."""
        return strategy_for(pair, self._overrides.get(pair.name))

    async def restore(self, pairs: Sequence[PairConfig]) -> None:
        """Resume each pair's regime from its last decision, if it ran the same strategy."""
        last = await self._repo.last_strategy_inputs()
        for pair in pairs:
            strategy = strategy_for(pair)
            inputs = last.get(pair.name, {})
            regime = inputs.get("regime")
            if inputs.get("name") == strategy.name and regime in {r.value for r in Regime}:
                self._regimes[pair.name] = Regime(str(regime))
                if inputs.get("future_symbol") is not None:
                    self._contracts[pair.name] = str(inputs["future_symbol"])
            reference = inputs.get("sell_down_reference")
            since = inputs.get("sell_down_since")
            if strategy.sells_spot and reference is not None and since is not None:
                # A restart mid sell-down resumes from the same reference: no second sale.
                self._sell_down_references[pair.name] = (
                    Decimal(str(reference)),
                    datetime.fromisoformat(str(since)),
                )

    async def load_overrides(self) -> None:
        """Read the targets set with ``hedgebot set-target`` (each cycle, one query)."""
        self.use_overrides(await self._repo.pair_targets())

    def use_overrides(self, overrides: Mapping[str, PairTarget]) -> None:
        """The targets set with ``hedgebot set-target``, as read this cycle."""
        self._overrides = overrides

    def overridden(self, pair: PairConfig) -> bool:
        """True when the pair's target now comes from ``hedgebot set-target``."""
        override = self._overrides.get(pair.name)
        return strategy_for(pair).uses_override(override)

    async def target_for(
        self,
        pair: PairConfig,
        observation: Observation,
        gateway: ExchangeGateway,
        now: datetime,
        *,
        next_contract: str | None = None,
        taker_fee: Decimal | None = None,
    ) -> Target:
        """The pair's target now; records the new regime (and its contract) for the next call.

        For a basis pair, ``observation`` is on the contract it trades now, ``next_contract``
        is the one a roll moves to and ``taker_fee`` the traded contract's.
        """
        strategy = self.strategy(pair)
        spec = strategy.candles
        candles = await self._fetch_candles(pair, spec, gateway, now) if spec else []
        inputs = TargetInputs(
            observation,
            now,
            prior=self._regimes.get(pair.name),
            candles=candles,
            next_contract=next_contract,
            prior_contract=self._contracts.get(pair.name),
            taker_fee=taker_fee,
        )
        target = await self._sell_down(pair, strategy, inputs)
        if target.regime is not None:
            self._regimes[pair.name] = target.regime
            self._contracts[pair.name] = observation.perp_symbol
        return target

    async def _sell_down(
        self, pair: PairConfig, strategy: Strategy, inputs: TargetInputs
    ) -> Target:
        """The target, fed the spot sell-down in progress: a bearish view with spot trades
        keeps its sell-down reference (and what was sold since) until the view leaves
        bearish."""
        held = self._sell_down_references.get(pair.name)
        sold = Decimal(0)
        if held is not None and strategy.selling_down:
            sold = await self._repo.sold_since(pair.name, pair.spot_symbol, held[1])
        reference = held[0] if held is not None else None
        target = strategy.target(replace(inputs, sell_down_reference=reference, sold=sold))
        if target.sell_down_reference is None:
            # Leaving bearish drops the reference: the next bearish view starts afresh.
            self._sell_down_references.pop(pair.name, None)
            return target
        if held is None:
            # Venue fill times may run a little behind this clock: start counting early.
            held = (target.sell_down_reference, inputs.now - SOLD_COUNT_SLACK)
            self._sell_down_references[pair.name] = held
        return replace(target, inputs={**target.inputs, "sell_down_since": held[1]})

    def highest_ratio(self, pair: PairConfig) -> Decimal:
        """The largest hedge ratio the pair's strategy can ask for (leverage is sized on it)."""
        return self.strategy(pair).highest_ratio()

    def needs_skip_audit(self, pair: str, target: Target) -> bool:
        """True once per stretch of skipped sell-downs: the first cycle it is skipped."""
        if not target.sell_down_skipped:
            self._announced_skip.discard(pair)
            return False
        if pair in self._announced_skip:
            return False
        self._announced_skip.add(pair)
        return True

    async def _fetch_candles(
        self, pair: PairConfig, spec: CandleSpec, gateway: ExchangeGateway, now: datetime
    ) -> list[Candle]:
        """The perp's candles, fetched again only when a new bar has begun."""
        frame = timedelta(seconds=spec.seconds)
        forming = bar_start(now, frame)
        cache = self._candles.get(pair.name)
        # A new candle can only have closed since the last fetch if a new bar has begun.
        if cache is None or cache.fetched_in_bar < forming:
            limit = min(spec.count, MAX_FETCH) + 1  # +1: the forming candle comes too
            since = forming - (limit - 1) * frame
            candles = await gateway.fetch_ohlcv(pair.perp_symbol, spec.timeframe, since, limit)
            cache = _CandleCache(candles, forming)
            self._candles[pair.name] = cache
        return cache.candles


def target_inputs(pair: PairConfig, target: Target, overridden: bool) -> dict[str, Any]:
    """The strategy part of a decision's recorded inputs."""
    return {
        "name": target.strategy,
        "ratio": target.ratio,
        "regime": target.regime.value if target.regime else None,
        "set_target": overridden,
        "sell_down_skipped": target.sell_down_skipped,
        **strategy_for(pair).recorded_params(),
        **target.inputs,
    }


def parse_target_value(pair: PairConfig, value: str) -> tuple[Decimal | None, str | None]:
    """What ``hedgebot set-target PAIR VALUE`` means for this pair: (ratio, outlook).

    ``config`` gives (None, None): forget the run-time target, use the config's again.
    Raises ValueError with a one-line message when the value does not fit the pair.
    """
    text = value.strip()
    if text == CONFIG_TARGET:
        return None, None
    try:
        ratio: Decimal | None = Decimal(text)
    except ArithmeticError:
        ratio = None
    takes = strategy_kind(pair.strategy).set_target
    if ratio is not None:
        if not ratio.is_finite() or not Decimal(0) <= ratio <= 2:
            raise ValueError(f"ratio {text} is outside 0..2; give a hedge ratio from 0 to 2")
        if takes is not SetTarget.RATIO:
            raise ValueError(
                f"pair {pair.name} uses strategy {pair.strategy!r}, not "
                f"{FixedStrategy.name!r}: a ratio does not apply"
                + ("; give an outlook instead" if takes is SetTarget.OUTLOOK else "")
            )
        return ratio, None
    outlooks = [o.value for o in Outlook]
    if text not in outlooks:
        raise ValueError(
            f"{text!r} is neither a ratio (0..2), an outlook ({', '.join(outlooks)}) "
            f"nor {CONFIG_TARGET!r} (back to the config's target)"
        )
    if takes is not SetTarget.OUTLOOK:
        raise ValueError(
            f"pair {pair.name} uses strategy {pair.strategy!r}, not "
            f"{OutlookStrategy.name!r}: an outlook does not apply"
            + ("; give a ratio from 0 to 2 instead" if takes is SetTarget.RATIO else "")
        )
    return None, text
