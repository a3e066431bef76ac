"""The strategy registry: the config's ``strategy = "..."`` name to its class (pure).

The one place a strategy's name is looked up; everything else asks the object:

    strategy = strategy_for(pair)          # or strategy_for(pair, set_target_row)
    strategy.static_target                 # holds repeat while quantities are unchanged
    strategy.needs_spot_price              # price the spot leg from the spot ticker
    strategy.trades_dated_contracts        # perp_symbol (+ roll_to) are dated futures
"""

from __future__ import annotations

from bot.domain.strategies.base import PairSpec, Strategy, TargetOverride
from bot.domain.strategies.basis import BasisStrategy
from bot.domain.strategies.fixed import FixedStrategy
from bot.domain.strategies.funding_carry import FundingCarryStrategy
from bot.domain.strategies.outlook import OutlookStrategy
from bot.domain.strategies.trend import TrendStrategy

STRATEGIES: dict[str, type[Strategy]] = {
    kind.name: kind
    for kind in (
        FixedStrategy,
        OutlookStrategy,
        TrendStrategy,
        FundingCarryStrategy,
        BasisStrategy,
    )
}


def strategy_kind(name: str) -> type[Strategy]:
    """The class of the strategy the config calls ``name``; ValueError for an unknown one."""
    kind = STRATEGIES.get(name)
    if kind is None:
        raise ValueError(f"unknown strategy {name!r}; known: {', '.join(STRATEGIES)}")
    return kind


def strategy_for(pair: PairSpec, override: TargetOverride | None = None) -> Strategy:
    """The pair's strategy as configured, with a ``hedgebot set-target`` override applied."""
    return strategy_kind(pair.strategy).from_pair(pair, override)
