"""Strategy objects: the registry, what each kind needs, its highest ratio and its targets."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot import config
from bot.config import PairConfig
from bot.domain.models import Candle, Observation
from bot.domain.strategies import (
    STRATEGIES,
    BasisStrategy,
    FixedStrategy,
    FundingCarryStrategy,
    Outlook,
    OutlookStrategy,
    Regime,
    SetTarget,
    TargetInputs,
    TrendStrategy,
    basis,
    fixed,
    funding_carry,
    outlook,
    strategy_for,
    strategy_kind,
)
from tests.unit.test_rebalance import decimals

D = Decimal
T0 = datetime(2026, 1, 1, tzinfo=UTC)
DATED = "BTC/USDT:USDT-261225"


@dataclass(frozen=True)
class Override:
    ratio: Decimal | None = None
    outlook: str | None = None


def pair(**extra: Any) -> PairConfig:
    fields: dict[str, Any] = {
        "name": "BTC",
        "spot_symbol": "BTC/USDT",
        "perp_symbol": DATED if extra.get("strategy") == "basis" else "BTC/USDT:USDT",
    }
    return PairConfig(**(fields | extra))


def observation(**extra: Any) -> Observation:
    fields: dict[str, Any] = {
        "pair": "BTC",
        "spot_symbol": "BTC/USDT",
        "perp_symbol": "BTC/USDT:USDT",
        "spot_qty": D(2),
        "perp_qty": D(-1),
        "price": D(60000),
        "bid": D(59990),
        "ask": D(60010),
        "funding_rate": D("0.0001"),
        "observed_at": T0,
    }
    return Observation(**(fields | extra))


def test_the_registry_holds_every_kind_the_config_accepts() -> None:
    assert tuple(STRATEGIES) == get_args(config.Strategy)
    assert all(kind.name == name for name, kind in STRATEGIES.items())
    assert [strategy_kind(n) for n in ("fixed", "basis")] == [FixedStrategy, BasisStrategy]
    with pytest.raises(ValueError, match="unknown strategy 'momentum'; known: fixed, outlook"):
        strategy_kind("momentum")


@pytest.mark.parametrize(
    ("name", "facts"),
    [
        ("fixed", (FixedStrategy, True, False, False, False, SetTarget.RATIO)),
        ("outlook", (OutlookStrategy, True, False, False, False, SetTarget.OUTLOOK)),
        ("trend", (TrendStrategy, False, True, False, False, None)),
        ("funding_carry", (FundingCarryStrategy, False, False, False, False, None)),
        ("basis", (BasisStrategy, False, False, True, True, None)),
    ],
)
def test_what_each_kind_needs(name: str, facts: tuple[Any, ...]) -> None:
    strategy = strategy_for(pair(strategy=name))
    assert (
        type(strategy),
        strategy.static_target,
        strategy.needs_candles,
        strategy.needs_spot_price,
        strategy.trades_dated_contracts,
        strategy.set_target,
    ) == facts
    assert strategy.holds_repeat is strategy.static_target
    assert type(strategy).static_target is strategy.static_target  # known from the class


def test_set_target_applies_to_fixed_and_outlook_only() -> None:
    ratio, view = Override(ratio=D("0.4")), Override(outlook="bearish")
    fixed_pair, outlook_pair = pair(target_ratio=D("1.5")), pair(strategy="outlook")
    assert strategy_for(fixed_pair) == FixedStrategy(D("1.5"))
    assert strategy_for(fixed_pair, ratio) == FixedStrategy(D("0.4"))
    assert strategy_for(fixed_pair, view) == FixedStrategy(D("1.5"))
    assert strategy_for(outlook_pair, view) == OutlookStrategy(Outlook.BEARISH, False, "BTC")
    assert strategy_for(outlook_pair, ratio).view is Outlook.NEUTRAL
    assert [strategy_for(fixed_pair).uses_override(o) for o in (ratio, view, None)] == [
        True,
        False,
        False,
    ]
    assert [strategy_for(outlook_pair).uses_override(o) for o in (ratio, view, None)] == [
        False,
        True,
        False,
    ]
    trend_pair = pair(strategy="trend")
    assert not strategy_for(trend_pair).uses_override(Override(D(1), "bearish"))
    assert strategy_for(trend_pair, Override(D(1), "bearish")) == strategy_for(trend_pair)


def test_highest_ratios() -> None:
    assert strategy_for(pair(target_ratio=D("1.7"))).highest_ratio() == D("1.7")
    assert strategy_for(pair(), Override(ratio=D("0.2"))).highest_ratio() == D("0.2")
    for name in ("outlook", "funding_carry", "basis"):
        assert strategy_for(pair(strategy=name)).highest_ratio() == 1
    trend = pair(
        strategy="trend", trend={"bull_ratio": "-0.8", "bear_ratio": "0.5", "max_net_long": "1"}
    )
    assert strategy_for(trend).highest_ratio() == D("0.8")


def test_trend_reads_candles_of_its_timeframe_with_ema_history() -> None:
    sma = strategy_for(pair(strategy="trend", trend={"timeframe": "1h", "slow": 20}))
    ema = strategy_for(pair(strategy="trend", trend={"ma": "ema", "slow": 20}))
    assert sma.candles is not None
    assert ema.candles is not None
    assert (sma.candles.timeframe, sma.candles.seconds, sma.candles.count) == ("1h", 3600, 20)
    assert (ema.candles.timeframe, ema.candles.count) == ("4h", 60)
    assert sma.recorded_params() == {"timeframe": "1h"}
    assert strategy_for(pair()).candles is None
    assert strategy_for(pair()).recorded_params() == {}


def test_outlook_sells_spot_down_only_bearish_with_spot_trades() -> None:
    allowed = pair(strategy="outlook", allow_spot_trades=True)
    assert strategy_for(allowed).sells_spot
    assert not strategy_for(allowed).selling_down
    assert strategy_for(allowed, Override(outlook="bearish")).selling_down
    assert not strategy_for(pair(strategy="outlook", outlook={"view": "bearish"})).sells_spot
    assert not any(strategy_for(pair(strategy=n)).sells_spot for n in ("fixed", "trend"))


def test_targets_are_the_pure_functions() -> None:
    obs = observation(spot_qty=D(3))
    inputs = TargetInputs(obs, T0, prior=Regime.CARRY, sell_down_reference=D(4), sold=D(1))
    assert strategy_for(pair()).target(inputs) == fixed(D(1))
    bearish = strategy_for(
        pair(strategy="outlook", allow_spot_trades=True), Override(None, "bearish")
    )
    assert bearish.target(inputs) == outlook(Outlook.BEARISH, True, D(3), D(4), D(1), "BTC")
    carry = strategy_for(pair(strategy="funding_carry", funding_carry={"entry_apr": "0.2"}))
    assert carry.target(inputs) == funding_carry(
        D("0.0001"),
        interval_hours=D(8),
        entry_apr=D("0.2"),
        exit_apr=D(0),
        carry_ratio=D(1),
        flat_ratio=D(0),
        prior=Regime.CARRY,
    )


def test_funding_interval_is_the_configs_then_the_venues_then_eight_hours() -> None:
    configured = FundingCarryStrategy(D("0.1"), D(0), D(4))
    venue = FundingCarryStrategy(D("0.1"), D(0))
    assert configured.funding_interval(observation(funding_interval_hours=D(1))) == 4
    assert venue.funding_interval(observation(funding_interval_hours=D(1))) == 1
    assert venue.funding_interval(observation()) == 8


def test_basis_prices_a_dated_future_against_the_spot() -> None:
    strategy = strategy_for(pair(strategy="basis", basis={"entry_apr": "0.05"}))
    expiry = T0 + timedelta(days=90)
    obs = observation(perp_symbol=DATED, price=D(61000), spot_price=D(60000), expiry=expiry)
    target = strategy.target(TargetInputs(obs, T0, next_contract="X"))
    expected = basis(
        D(60000),
        D(61000),
        expiry=expiry,
        now=T0,
        entry_apr=D("0.05"),
        at_expiry="close",
        prior=None,
        close_before=timedelta(hours=1),
        next_contract="X",
    )
    assert replace(target, inputs={}) == replace(expected, inputs={})
    assert target.inputs == {**expected.inputs, "future_symbol": DATED}
    with pytest.raises(ValueError, match=r"^pair BTC: BTC/USDT:USDT has no expiry or BTC/USDT"):
        strategy.target(TargetInputs(observation(), T0))


def candle_series(closes: list[Decimal]) -> list[Candle]:
    h4 = timedelta(hours=4)
    return [Candle(T0 + i * h4, c, c, c, c) for i, c in enumerate(closes)]


prices = decimals(1, 10**6, 2)
priors = st.none() | st.sampled_from(Regime)


@st.composite
def strategy_pairs(draw: st.DrawFn) -> PairConfig:
    name = draw(st.sampled_from(list(STRATEGIES)))
    extra: dict[str, Any] = {"strategy": name, "target_ratio": draw(decimals(0, 200, 2))}
    if name == "outlook":
        extra["outlook"] = {"view": draw(st.sampled_from([o.value for o in Outlook]))}
        extra["allow_spot_trades"] = draw(st.booleans())
    if name == "trend":
        bull = draw(decimals(-100, 200, 2))
        extra["trend"] = {
            "fast": 2,
            "slow": 5,
            "bull_ratio": str(bull),
            "bear_ratio": str(draw(decimals(0, 200, 2))),
            "max_net_long": "1",
        }
    return pair(**extra)


@given(
    strategy_pairs(),
    prices,
    prices,
    decimals(-100, 100, 5),
    priors,
    st.lists(prices, max_size=12),
    st.integers(-30, 400),
)
def test_no_target_is_above_the_highest_ratio(
    config_pair: PairConfig,
    price: Decimal,
    spot_price: Decimal,
    rate: Decimal,
    prior: Regime | None,
    closes: list[Decimal],
    days_left: int,
) -> None:
    strategy = strategy_for(config_pair)
    now = T0 + timedelta(days=3)
    obs = observation(
        price=price,
        spot_price=spot_price,
        funding_rate=rate,
        expiry=now + timedelta(days=days_left, minutes=1),
    )
    target = strategy.target(TargetInputs(obs, now, prior, candle_series(closes)))
    assert target.strategy == strategy.name
    assert abs(target.ratio) <= strategy.highest_ratio()
