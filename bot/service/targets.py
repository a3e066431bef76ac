"""Each pair's target ratio for this cycle: its strategy, fed from the shell.

The pure strategies (``bot.domain.strategies``) get here what they need and nothing more:
the closed candles of the perp (fetched only when a new candle can have closed), the
funding rate annualized with the venue's interval, the prior regime (kept in memory and,
after a restart, read back from the pair's last decision), and the run-time target set
with ``hedgebot set-target`` (one query per cycle for every pair).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from bot.config import PairConfig, Settings
from bot.domain import strategies
from bot.domain.models import Candle, Observation
from bot.domain.strategies import Outlook, Regime, Target
from bot.exchange.candles import bar_start
from bot.exchange.gateway import ExchangeGateway
from bot.store.repository import PairTarget, Repository

DEFAULT_FUNDING_INTERVAL_HOURS = Decimal(8)
# An EMA is seeded from an SMA; this many periods of history make the seed's weight negligible.
EMA_HISTORY_FACTOR = 3
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
        self._candles: dict[str, _CandleCache] = {}
        self._announced_skip: set[str] = set()
        # The spot held when each pair's outlook turned bearish (its sell-down keeps half),
        # and when: our spot sells since then count toward the sale.
        self._sell_down_references: dict[str, tuple[Decimal, datetime]] = {}

    async def restore(self, pairs: Sequence[PairConfig]) -> None:
        """Resume each pair's regime from its last decision, if it ran the same strategy."""
        last = await self._repo.last_strategy_inputs()
        for pair in pairs:
            inputs = last.get(pair.name, {})
            regime = inputs.get("regime")
            if inputs.get("name") == pair.strategy and regime in {r.value for r in Regime}:
                self._regimes[pair.name] = Regime(str(regime))
            reference = inputs.get("sell_down_reference")
            since = inputs.get("sell_down_since")
            if (
                pair.strategy == "outlook"
                and pair.allow_spot_trades
                and reference is not None
                and since is not None
            ):
                # A restart mid sell-down resumes from the same reference: no second sale.
                self._sell_down_references[pair.name] = (
                    Decimal(str(reference)),
                    datetime.fromisoformat(str(since)),
                )

    async def load_overrides(self) -> None:
        """Read the targets set with ``hedgebot set-target`` (each cycle, one query)."""
        self._overrides = await self._repo.pair_targets()

    def overridden(self, pair: PairConfig) -> bool:
        """True when the pair's target now comes from ``hedgebot set-target``."""
        override = self._overrides.get(pair.name)
        if override is None:
            return False
        if pair.strategy == "fixed":
            return override.ratio is not None
        return pair.strategy == "outlook" and override.outlook is not None

    async def target_for(
        self,
        pair: PairConfig,
        observation: Observation,
        gateway: ExchangeGateway,
        now: datetime,
        *,
        next_contract: str | None = None,
    ) -> Target:
        """The pair's target now; records the new regime for the next call.

        For a basis pair, ``observation`` is on the contract it trades now and
        ``next_contract`` is the one a roll moves to.
        """
        override = self._overrides.get(pair.name)
        if pair.strategy == "outlook":
            view: str = pair.outlook_params.view
            if override is not None and override.outlook is not None:
                view = override.outlook
            target = await self._outlook(pair, Outlook(view), observation, now)
        elif pair.strategy == "trend":
            target = await self._trend(pair, gateway, now)
        elif pair.strategy == "funding_carry":
            params = pair.funding_carry_params
            target = strategies.funding_carry(
                observation.funding_rate,
                interval_hours=self._funding_interval(pair, observation),
                entry_apr=params.entry_apr,
                exit_apr=params.exit_apr,
                carry_ratio=Decimal(1),
                flat_ratio=Decimal(0),
                prior=self._regimes.get(pair.name),
            )
        elif pair.strategy == "basis":
            target = self._basis(pair, observation, now, next_contract)
        else:
            ratio = pair.target_ratio
            if override is not None and override.ratio is not None:
                ratio = override.ratio
            target = strategies.fixed(ratio)
        if target.regime is not None:
            self._regimes[pair.name] = target.regime
        return target

    async def _outlook(
        self, pair: PairConfig, view: Outlook, observation: Observation, now: datetime
    ) -> Target:
        """The outlook target; a bearish view with spot trades keeps its sell-down reference
        (and what was sold since) until the view leaves bearish."""
        held = self._sell_down_references.get(pair.name)
        sold = Decimal(0)
        if held is not None and view is Outlook.BEARISH and pair.allow_spot_trades:
            sold = await self._repo.sold_since(pair.name, pair.spot_symbol, held[1])
        target = strategies.outlook(
            view,
            pair.allow_spot_trades,
            observation.spot_qty,
            held[0] if held is not None else None,
            sold,
            pair.spot_base,
        )
        if target.sell_down_reference is None:
            # Leaving bearish drops the reference: the next bearish view starts afresh.
            self._sell_down_references.pop(pair.name, None)
            return target
        if held is None:
            # Venue fill times may run a little behind this clock: start counting early.
            held = (target.sell_down_reference, now - SOLD_COUNT_SLACK)
            self._sell_down_references[pair.name] = held
        return replace(target, inputs={**target.inputs, "sell_down_since": held[1]})

    def highest_ratio(self, pair: PairConfig) -> Decimal:
        """The largest hedge ratio the pair's strategy can ask for (leverage is sized on it)."""
        if pair.strategy in ("outlook", "funding_carry", "basis"):
            return Decimal(1)
        if pair.strategy == "trend":
            params = pair.trend_params
            return max(params.bear_ratio, abs(params.bull_ratio))
        override = self._overrides.get(pair.name)
        if override is not None and override.ratio is not None:
            return override.ratio
        return pair.target_ratio

    def needs_skip_audit(self, pair: str, target: Target) -> bool:
        """True once per stretch of skipped sell-downs: the first cycle it is skipped."""
        if not target.sell_down_skipped:
            self._announced_skip.discard(pair)
            return False
        if pair in self._announced_skip:
            return False
        self._announced_skip.add(pair)
        return True

    def _funding_interval(self, pair: PairConfig, observation: Observation) -> Decimal:
        """The configured interval, else the venue's, else 8 hours."""
        configured = pair.funding_carry_params.funding_interval_hours
        if configured is not None:
            return configured
        if observation.funding_interval_hours is not None:
            return observation.funding_interval_hours
        return DEFAULT_FUNDING_INTERVAL_HOURS

    def _basis(
        self,
        pair: PairConfig,
        observation: Observation,
        now: datetime,
        next_contract: str | None,
    ) -> Target:
        if observation.expiry is None or observation.spot_price is None:
            raise ValueError(
                f"pair {pair.name}: {pair.perp_symbol} has no expiry or {pair.spot_symbol} no "
                "spot price from the venue; basis needs a dated future and the spot ticker"
            )
        params = pair.basis_params
        target = strategies.basis(
            observation.spot_price,
            observation.price,
            expiry=observation.expiry,
            now=now,
            entry_apr=params.entry_apr,
            at_expiry=params.at_expiry,
            prior=self._regimes.get(pair.name),
            close_before=timedelta(seconds=params.close_before_s),
            next_contract=next_contract,
        )
        target.inputs["future_symbol"] = pair.perp_symbol
        return target

    async def _trend(self, pair: PairConfig, gateway: ExchangeGateway, now: datetime) -> Target:
        params = pair.trend_params
        frame = timedelta(seconds=params.timeframe_s)
        forming = bar_start(now, frame)
        cache = self._candles.get(pair.name)
        # A new candle can only have closed since the last fetch if a new bar has begun.
        if cache is None or cache.fetched_in_bar < forming:
            wanted = params.slow * (EMA_HISTORY_FACTOR if params.ma == "ema" else 1)
            limit = min(wanted, MAX_FETCH) + 1  # +1: the forming candle comes too
            since = forming - (limit - 1) * frame
            candles = await gateway.fetch_ohlcv(pair.perp_symbol, params.timeframe, since, limit)
            cache = _CandleCache(candles, forming)
            self._candles[pair.name] = cache
        closed = strategies.closed_candles(cache.candles, frame, now)
        return strategies.trend(
            closed,
            fast=params.fast,
            slow=params.slow,
            kind=params.ma,
            bull_ratio=params.bull_ratio,
            bear_ratio=params.bear_ratio,
            prior=self._regimes.get(pair.name),
        )


def target_inputs(pair: PairConfig, target: Target, overridden: bool) -> dict[str, Any]:
    """The strategy part of a decision's recorded inputs."""
    return {
        "name": target.strategy,
        "ratio": target.ratio,
        "regime": target.regime.value if target.regime else None,
        "set_target": overridden,
        "sell_down_skipped": target.sell_down_skipped,
        **({"timeframe": pair.trend_params.timeframe} if pair.strategy == "trend" else {}),
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
    if ratio is not None:
        if not ratio.is_finite() or not Decimal(0) <= ratio <= 2:
            raise ValueError(f"ratio {text} is outside 0..2; give a hedge ratio from 0 to 2")
        if pair.strategy != "fixed":
            raise ValueError(
                f"pair {pair.name} uses strategy {pair.strategy!r}, not 'fixed': a ratio "
                "does not apply"
                + ("; give an outlook instead" if pair.strategy == "outlook" else "")
            )
        return ratio, None
    outlooks = [o.value for o in Outlook]
    if text not in outlooks:
        raise ValueError(
            f"{text!r} is neither a ratio (0..2), an outlook ({', '.join(outlooks)}) "
            f"nor {CONFIG_TARGET!r} (back to the config's target)"
        )
    if pair.strategy != "outlook":
        raise ValueError(
            f"pair {pair.name} uses strategy {pair.strategy!r}, not 'outlook': an outlook "
            "does not apply"
            + ("; give a ratio from 0 to 2 instead" if pair.strategy == "fixed" else "")
        )
    return None, text
