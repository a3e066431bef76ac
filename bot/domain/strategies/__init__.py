"""Target strategies: from market inputs to the pair's target hedge ratio (pure, Decimal only).

The ratio is short perp per unit of spot, as in ``rebalance.decide``: 1 is a full hedge,
0 no hedge, above 1 a net short (the "collateralized short"), below 0 a small net long
through a long perp. Each kind is a class in its own module (fixed, outlook, trend,
funding_carry, basis) owning its target function; ``STRATEGIES`` maps the config's name to
the class and ``strategy_for(pair)`` builds a pair's strategy. Every target function
returns a ``Target`` that carries its inputs and a sentence saying why, so the decision
that uses it can record both. Nothing here reads a clock or keeps state.
"""

from bot.domain.strategies.base import (
    CandleSpec,
    PairSpec,
    Regime,
    SetTarget,
    Strategy,
    Target,
    TargetInputs,
    TargetOverride,
)
from bot.domain.strategies.basis import (
    SECONDS_PER_YEAR,
    BasisStrategy,
    annualized_basis,
    basis,
    basis_contract,
    net_annualized_basis,
)
from bot.domain.strategies.fixed import FixedStrategy, fixed
from bot.domain.strategies.funding_carry import (
    DAYS_PER_YEAR,
    DEFAULT_FUNDING_INTERVAL_HOURS,
    HOURS_PER_YEAR,
    FundingCarryStrategy,
    annualized_funding,
    funding_carry,
)
from bot.domain.strategies.outlook import (
    BEARISH_SPOT_KEEP,
    HALF,
    OUTLOOK_RATIOS,
    Outlook,
    OutlookStrategy,
    outlook,
)
from bot.domain.strategies.registry import STRATEGIES, strategy_for, strategy_kind
from bot.domain.strategies.trend import (
    EMA_HISTORY_FACTOR,
    TrendStrategy,
    closed_candles,
    ema,
    sma,
    trend,
)

__all__ = [
    "BEARISH_SPOT_KEEP",
    "DAYS_PER_YEAR",
    "DEFAULT_FUNDING_INTERVAL_HOURS",
    "EMA_HISTORY_FACTOR",
    "HALF",
    "HOURS_PER_YEAR",
    "OUTLOOK_RATIOS",
    "SECONDS_PER_YEAR",
    "STRATEGIES",
    "BasisStrategy",
    "CandleSpec",
    "FixedStrategy",
    "FundingCarryStrategy",
    "Outlook",
    "OutlookStrategy",
    "PairSpec",
    "Regime",
    "SetTarget",
    "Strategy",
    "Target",
    "TargetInputs",
    "TargetOverride",
    "TrendStrategy",
    "annualized_basis",
    "annualized_funding",
    "basis",
    "basis_contract",
    "closed_candles",
    "ema",
    "fixed",
    "funding_carry",
    "net_annualized_basis",
    "outlook",
    "sma",
    "strategy_for",
    "strategy_kind",
    "trend",
]
