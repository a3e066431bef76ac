"""What every strategy is: the ``Strategy`` base class, its inputs and its answer (pure).

A strategy object is built from a pair's configuration (and any run-time ``set-target``)
by ``strategy_for``. It says what market data it needs (candles, the spot ticker, dated
contracts), the highest ratio it can ask for, whether its holds repeat while quantities
are unchanged, and, given that data, the pair's ``Target``. Nothing here reads a clock or
keeps state: the caller passes ``now`` and the prior regime in ``TargetInputs``.

The pair's configuration is seen through the small read-only protocols below, so the
domain does not depend on the config module (``bot.config.PairConfig`` fits them).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from typing import Any, ClassVar, Protocol, Self

from bot.domain.models import ZERO, Candle, Observation


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
    # True when a basis roll did not enter the next contract (its net basis was too low).
    roll_declined: bool = False


class SetTarget(StrEnum):
    """What ``hedgebot set-target`` accepts for a strategy's pairs."""

    RATIO = "ratio"
    OUTLOOK = "outlook"


@dataclass(frozen=True, slots=True)
class CandleSpec:
    """The candles a strategy reads: the perp's ``timeframe`` bars, ``count`` closed ones."""

    timeframe: str  # a ccxt timeframe, "4h"
    seconds: int  # its length
    count: int  # closed candles of history wanted


@dataclass(frozen=True, slots=True)
class TargetInputs:
    """What the shell hands a strategy for one decision.

    ``candles`` are as fetched (the forming bar may be among them; strategies keep the
    closed ones). ``sell_down_reference`` and ``sold`` carry a spot sell-down across
    cycles; ``next_contract`` is the contract a basis roll moves to, ``prior_contract`` the
    one the prior regime was on, ``taker_fee`` the traded contract's (a fraction).
    """

    observation: Observation
    now: datetime
    prior: Regime | None = None
    candles: Sequence[Candle] = ()
    sell_down_reference: Decimal | None = None
    sold: Decimal = ZERO
    next_contract: str | None = None
    prior_contract: str | None = None
    taker_fee: Decimal | None = None


# -- the pair's configuration, as strategies read it -----------------------------------------


class OutlookParams(Protocol):
    @property
    def view(self) -> str: ...


class TrendParams(Protocol):
    @property
    def timeframe(self) -> str: ...
    @property
    def timeframe_s(self) -> int: ...
    @property
    def fast(self) -> int: ...
    @property
    def slow(self) -> int: ...
    @property
    def ma(self) -> str: ...
    @property
    def bull_ratio(self) -> Decimal: ...
    @property
    def bear_ratio(self) -> Decimal: ...


class FundingCarryParams(Protocol):
    @property
    def entry_apr(self) -> Decimal: ...
    @property
    def exit_apr(self) -> Decimal: ...
    @property
    def funding_interval_hours(self) -> Decimal | None: ...


class BasisParams(Protocol):
    @property
    def entry_apr(self) -> Decimal: ...
    @property
    def at_expiry(self) -> str: ...
    @property
    def close_before_s(self) -> int: ...


class PairSpec(Protocol):
    """The parts of a pair's configuration the strategies read."""

    @property
    def strategy(self) -> str: ...
    @property
    def target_ratio(self) -> Decimal: ...
    @property
    def allow_spot_trades(self) -> bool: ...
    @property
    def spot_base(self) -> str: ...
    @property
    def perp_symbol(self) -> str: ...
    @property
    def outlook_params(self) -> OutlookParams: ...
    @property
    def trend_params(self) -> TrendParams: ...
    @property
    def funding_carry_params(self) -> FundingCarryParams: ...
    @property
    def basis_params(self) -> BasisParams: ...


class TargetOverride(Protocol):
    """A run-time target set with ``hedgebot set-target``: a ratio or an outlook."""

    @property
    def ratio(self) -> Decimal | None: ...
    @property
    def outlook(self) -> str | None: ...


# -- the base class --------------------------------------------------------------------------


class Strategy(ABC):
    """One strategy kind, configured for one pair. Subclasses are frozen dataclasses."""

    # The config's name for the kind (``strategy = "trend"``); also ``Target.strategy``.
    name: ClassVar[str]
    # True when the target depends on quantities and parameters alone, not market data:
    # a hold repeats while the quantities are unchanged (and a backtest may skip it).
    static_target: ClassVar[bool] = False
    # True when the spot leg is priced from the spot account's ticker (basis).
    needs_spot_price: ClassVar[bool] = False
    # True when the pair trades dated futures (``perp_symbol`` then any roll contracts).
    trades_dated_contracts: ClassVar[bool] = False
    # What ``hedgebot set-target`` accepts for the pair; None: nothing.
    set_target: ClassVar[SetTarget | None] = None

    @classmethod
    @abstractmethod
    def from_pair(cls, pair: PairSpec, override: TargetOverride | None = None) -> Self:
        """The strategy as ``pair`` configures it, with a run-time ``override`` applied."""

    @abstractmethod
    def highest_ratio(self) -> Decimal:
        """The largest hedge ratio the strategy can ask for (leverage is sized on it)."""

    def lowest_ratio(self) -> Decimal:
        """The smallest hedge ratio the strategy can ask for; below 0 it can ask for a net
        long (a long perp), which an account in hedge mode cannot give (hedgebot trades
        only its short side there)."""
        return ZERO

    @abstractmethod
    def target(self, inputs: TargetInputs) -> Target:
        """The target ratio for these inputs (pure)."""

    @property
    def holds_repeat(self) -> bool:
        """Another name for ``static_target``: holds repeat while quantities are unchanged."""
        return self.static_target

    @property
    def candles(self) -> CandleSpec | None:
        """The candles the strategy reads; None when it reads none."""
        return None

    @property
    def needs_candles(self) -> bool:
        return self.candles is not None

    @property
    def sells_spot(self) -> bool:
        """True when the strategy may sell spot down (its reference survives a restart)."""
        return False

    @property
    def selling_down(self) -> bool:
        """True when this target sells spot down now (our spot sells since count)."""
        return False

    def uses_override(self, override: TargetOverride | None) -> bool:
        """True when ``override`` sets this strategy's target (set-target applies)."""
        return False

    def recorded_params(self) -> dict[str, Any]:
        """Parameters recorded with each decision beside the target's own inputs."""
        return {}


# -- reason formatting, shared by the kinds ---------------------------------------------------


def fixed_places(value: Decimal, places: int = 2) -> str:
    # Explicit rounding: a reason must not depend on the caller's decimal context.
    return f"{value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN):f}"


def qty_text(value: Decimal) -> str:
    # Trailing zeros dropped, never an exponent: "0.5", not "0.50" or "5E-1".
    return f"{value.normalize():f}"


def pct(value: Decimal) -> str:
    return f"{fixed_places(value * 100)}%"
