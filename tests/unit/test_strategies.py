"""The pure target strategies: the playbook's numbers and properties over any input."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.models import Candle, HedgeParams, Market, Observation
from bot.domain.rebalance import decide
from bot.domain.strategies import (
    Outlook,
    Regime,
    annualized_basis,
    annualized_funding,
    basis,
    basis_contract,
    closed_candles,
    ema,
    fixed,
    funding_carry,
    outlook,
    sma,
    trend,
)
from tests.unit.test_rebalance import decimals, filled, markets, observations

D = Decimal
H4 = timedelta(hours=4)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def candles(closes: list[Decimal | int | str], start: datetime = T0) -> list[Candle]:
    return [
        Candle(opened_at=start + i * H4, open=D(c), high=D(c), low=D(c), close=D(c))
        for i, c in enumerate(closes)
    ]


def trend_of(closes: list[int], prior: Regime | None = None, kind: str = "sma") -> Regime | None:
    return trend(
        candles(closes),  # type: ignore[arg-type]
        fast=10,
        slow=30,
        kind=kind,
        bull_ratio=D(0),
        bear_ratio=D(1),
        prior=prior,
    ).regime


# -- fixed and outlook ------------------------------------------------------------------------


def test_fixed_returns_the_configured_ratio_and_says_so() -> None:
    target = fixed(D("0.5"))
    assert target.ratio == D("0.5")
    assert "fixed target 0.5" in target.reason
    assert target.inputs == {"ratio": D("0.5")}


def test_fixed_rejects_a_ratio_outside_0_to_2() -> None:
    with pytest.raises(ValueError, match=r"within 0\.\.2"):
        fixed(D("2.1"))


@pytest.mark.parametrize(
    ("view", "ratio"),
    [
        (Outlook.EXTREMELY_BULLISH, D(0)),
        (Outlook.CAUTIOUSLY_BULLISH, D("0.3")),
        (Outlook.NEUTRAL, D("0.7")),
        (Outlook.BEARISH, D(1)),
    ],
)
def test_outlook_follows_the_allocation_matrix(view: Outlook, ratio: Decimal) -> None:
    target = outlook(view, spot_trades_allowed=False)
    assert target.ratio == ratio
    assert target.inputs["outlook"] == view.value


def test_bearish_without_spot_trades_hedges_all_the_spot_and_says_the_sell_down_was_skipped() -> (
    None
):
    target = outlook(Outlook.BEARISH, spot_trades_allowed=False)
    assert target.ratio == D(1)
    assert target.sell_down_skipped
    assert target.spot_sell_qty == 0
    assert "sell-down skipped" in target.reason


def test_bearish_with_spot_trades_sells_half_the_spot_and_hedges_the_rest() -> None:
    target = outlook(Outlook.BEARISH, spot_trades_allowed=True, spot_qty=D("1.0"), coin="BTC")
    assert (target.ratio, target.spot_sell_qty, target.sell_down_skipped) == (
        D(1),
        D("0.5"),
        False,
    )
    assert target.sell_down_reference == D("1.0")
    assert target.inputs["sell_down_reference"] == D("1.0")
    assert "sell 0.5 BTC spot down to 50.00% of 1 BTC (reference)" in target.reason


def test_bearish_sell_down_is_measured_from_the_reference_not_the_shrinking_balance() -> None:
    # Half already sold: nothing more to sell, whatever the balance now is.
    done = outlook(Outlook.BEARISH, True, spot_qty=D("0.5"), reference=D("1.0"))
    assert done.spot_sell_qty == 0
    assert done.sell_down_reference == D("1.0")
    # A partial sale: only the rest down to half the reference.
    partial = outlook(Outlook.BEARISH, True, spot_qty=D("0.8"), reference=D("1.0"))
    assert partial.spot_sell_qty == D("0.3")
    # Spot already under half the reference (the user sold some): no sell, no buy-back.
    under = outlook(Outlook.BEARISH, True, spot_qty=D("0.2"), reference=D("1.0"))
    assert under.spot_sell_qty == 0


def test_bearish_sell_down_counts_what_was_sold_when_the_balance_read_lags() -> None:
    # The balance still shows 1.0 but 0.5 has been sold: nothing more is sold.
    lagging = outlook(Outlook.BEARISH, True, spot_qty=D("1.0"), reference=D("1.0"), sold=D("0.5"))
    assert lagging.spot_sell_qty == 0
    assert lagging.inputs["spot_sold"] == D("0.5")


def test_non_bearish_views_carry_no_sell_down_reference() -> None:
    for view in (Outlook.NEUTRAL, Outlook.CAUTIOUSLY_BULLISH, Outlook.EXTREMELY_BULLISH):
        target = outlook(view, True, spot_qty=D(1), reference=D(2))
        assert (target.spot_sell_qty, target.sell_down_reference) == (0, None)


@given(
    held=st.decimals(min_value=0, max_value=1000, places=3),
    reference=st.decimals(min_value=0, max_value=1000, places=3),
    sold=st.decimals(min_value=0, max_value=1000, places=3),
)
def test_bearish_sell_down_never_sells_past_half_the_reference(
    held: Decimal, reference: Decimal, sold: Decimal
) -> None:
    target = outlook(Outlook.BEARISH, True, spot_qty=held, reference=reference, sold=sold)
    assert 0 <= target.spot_sell_qty <= held
    assert held - target.spot_sell_qty >= min(held, reference / 2)
    assert sold + target.spot_sell_qty <= max(sold, reference / 2)


# -- moving averages and closed candles -------------------------------------------------------


def test_sma_and_ema_of_known_series() -> None:
    values = [D(v) for v in (1, 2, 3, 4, 5)]
    assert sma(values, 3) == D(4)
    # seed sma(1,2,3) = 2, alpha 0.5: 2 + 0.5*(4-2) = 3, 3 + 0.5*(5-3) = 4
    assert ema(values, 3) == D(4)
    assert ema([D(10)] * 40, 30) == D(10)


def test_closed_candles_drop_the_forming_one() -> None:
    bars = candles([1, 2, 3])
    now = T0 + 2 * H4 + timedelta(minutes=1)  # the third bar opened a minute ago
    assert [c.close for c in closed_candles(bars, H4, now)] == [D(1), D(2)]
    assert len(closed_candles(bars, H4, T0 + 3 * H4)) == 3  # closed exactly at its end


def test_bearish_cross_sets_the_bear_ratio_and_bullish_cross_the_bull_ratio() -> None:
    rising = list(range(100, 130))
    assert trend_of(rising) is Regime.BULL
    falling = [*rising, *range(128, 100, -3)]
    target = trend(
        candles(falling),  # type: ignore[arg-type]
        fast=10,
        slow=30,
        kind="sma",
        bull_ratio=D("-0.1"),
        bear_ratio=D(1),
        prior=Regime.BULL,
    )
    assert target.regime is Regime.BEAR
    assert target.ratio == D(1)
    assert "(cross)" in target.reason
    assert target.inputs["fast_ma"] < target.inputs["slow_ma"]
    assert target.inputs["last_closed_open_time"] == T0 + (len(falling) - 1) * H4


def test_too_few_candles_keep_the_prior_regime_or_stay_hedged() -> None:
    assert trend_of(list(range(10))) is Regime.BEAR
    assert trend_of(list(range(10)), prior=Regime.BULL) is Regime.BULL


def test_ema_reacts_to_a_fall_before_the_sma_does() -> None:
    closes = [*([100] * 40), 97, 94]
    assert trend_of(closes, kind="ema") is Regime.BEAR
    assert trend_of(closes, prior=Regime.BULL, kind="sma") is Regime.BEAR


@settings(max_examples=100)
@given(
    st.lists(st.integers(1, 10_000), min_size=0, max_size=60),
    st.integers(1, 10_000),
    st.sampled_from(["sma", "ema"]),
    st.sampled_from([None, Regime.BULL, Regime.BEAR]),
)
def test_no_trend_decision_depends_on_the_forming_candle(
    closes: list[int], forming_price: int, kind: str, prior: Regime | None
) -> None:
    bars = candles(closes)  # type: ignore[arg-type]
    now = T0 + len(closes) * H4 + timedelta(hours=1)  # a bar is forming since an hour
    forming = Candle(T0 + len(closes) * H4, *(D(forming_price),) * 4)
    args = {"fast": 10, "slow": 30, "kind": kind, "bull_ratio": D(0), "bear_ratio": D(1)}
    with_forming = trend(closed_candles([*bars, forming], H4, now), prior=prior, **args)  # type: ignore[arg-type]
    without = trend(closed_candles(bars, H4, now), prior=prior, **args)  # type: ignore[arg-type]
    assert with_forming == without


@settings(max_examples=100)
@given(
    st.lists(st.integers(1, 10_000), min_size=0, max_size=60),
    decimals(-100, 0, 2),
    decimals(0, 200, 2),
    st.sampled_from(["sma", "ema"]),
    st.sampled_from([None, Regime.BULL, Regime.BEAR]),
)
def test_trend_ratio_is_always_the_configured_bull_or_bear_ratio(
    closes: list[int], bull: Decimal, bear: Decimal, kind: str, prior: Regime | None
) -> None:
    target = trend(
        candles(closes),  # type: ignore[arg-type]
        fast=10,
        slow=30,
        kind=kind,
        bull_ratio=bull,
        bear_ratio=bear,
        prior=prior,
    )
    assert target.ratio == (bull if target.regime is Regime.BULL else bear)
    assert min(bull, bear) <= target.ratio <= max(bull, bear)


# -- funding carry ----------------------------------------------------------------------------


def carry(rate: str, prior: Regime | None, entry: str = "0.10", exit_: str = "0") -> Regime:
    target = funding_carry(
        D(rate),
        interval_hours=D(8),
        entry_apr=D(entry),
        exit_apr=D(exit_),
        carry_ratio=D(1),
        flat_ratio=D(0),
        prior=prior,
    )
    assert target.ratio == (D(1) if target.regime is Regime.CARRY else D(0))
    assert target.regime is not None
    return target.regime


def test_annualized_funding_uses_the_venue_interval() -> None:
    # 0.01 % every 8 h is 3 x 365 payments: 10.95 % a year; every 4 h doubles it
    assert annualized_funding(D("0.0001"), D(8)) == D("0.1095")
    assert annualized_funding(D("0.0001"), D(4)) == D("0.219")


def test_carry_enters_at_the_entry_threshold_and_holds_between_thresholds() -> None:
    assert carry("0.0001", None) is Regime.CARRY  # 10.95 % >= 10 %
    assert carry("0.00005", Regime.CARRY) is Regime.CARRY  # 5.5 %: between, keep
    assert carry("0.00005", Regime.FLAT) is Regime.FLAT
    assert carry("0.00005", None) is Regime.FLAT


def test_funding_turning_negative_beyond_the_exit_threshold_drops_the_carry_hedge() -> None:
    assert carry("-0.00002", Regime.CARRY) is Regime.FLAT
    assert carry("-0.00002", Regime.CARRY, exit_="-0.05") is Regime.CARRY  # -2.19 %: not beyond
    assert carry("-0.00005", Regime.CARRY, exit_="-0.05") is Regime.FLAT  # -5.475 %


def test_carry_records_the_annualized_rate_in_its_inputs_and_reason() -> None:
    target = funding_carry(
        D("0.0001"),
        interval_hours=D(8),
        entry_apr=D("0.1"),
        exit_apr=D(0),
        carry_ratio=D(1),
        flat_ratio=D(0),
        prior=None,
    )
    assert target.inputs["annualized_funding"] == D("0.1095")
    assert "10.95%" in target.reason


@settings(max_examples=100)
@given(
    st.lists(decimals(-300, 300, 6), min_size=1, max_size=40),
    decimals(0, 50, 2),
    decimals(0, 50, 2),
)
def test_carry_changes_regime_only_across_a_threshold(
    rates: list[Decimal], gap: Decimal, exit_apr: Decimal
) -> None:
    entry_apr = exit_apr + gap
    regime: Regime | None = None
    for rate in rates:
        target = funding_carry(
            rate,
            interval_hours=D(8),
            entry_apr=entry_apr,
            exit_apr=exit_apr,
            carry_ratio=D(1),
            flat_ratio=D(0),
            prior=regime,
        )
        apr = target.inputs["annualized_funding"]
        if target.regime is Regime.CARRY and regime is not Regime.CARRY:
            assert apr >= entry_apr
        if target.regime is Regime.FLAT and regime is Regime.CARRY:
            assert apr < exit_apr
        assert target.ratio in (D(0), D(1))
        regime = target.regime


@given(st.lists(st.integers(0, 999), min_size=2, max_size=40), st.booleans())
def test_carry_does_not_flap_while_funding_wanders_between_the_thresholds(
    steps: list[int], start_on: bool
) -> None:
    # entry 10 %, exit 0 %: every rate here annualizes to [0 %, 10 %)
    regime = Regime.CARRY if start_on else Regime.FLAT
    for step in steps:
        rate = D(step) * D("0.0000000913")  # up to 9.99 % a year
        assert carry(str(rate), regime) is regime


# -- basis ------------------------------------------------------------------------------------


def test_annualized_basis_of_a_quarterly_future() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    expiry = now + timedelta(days=73)  # a fifth of a year
    assert annualized_basis(D(60000), D(61200), expiry, now) == D("0.1")


def test_basis_enters_above_threshold_holds_to_expiry_then_rolls_or_closes() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    expiry = now + timedelta(days=73)
    common = {"expiry": expiry, "entry_apr": D("0.05"), "at_expiry": "roll"}
    entered = basis(D(60000), D(61200), now=now, prior=None, **common)  # type: ignore[arg-type]
    assert (entered.regime, entered.ratio) == (Regime.CARRY, D(1))
    # the basis collapses: the position is still held to expiry
    held = basis(D(60000), D(60010), now=now, prior=Regime.CARRY, **common)  # type: ignore[arg-type]
    assert (held.regime, held.ratio) == (Regime.CARRY, D(1))
    low = basis(D(60000), D(60010), now=now, prior=None, **common)  # type: ignore[arg-type]
    assert (low.regime, low.ratio) == (Regime.FLAT, D(0))
    expired = basis(D(60000), D(60000), now=expiry, prior=Regime.CARRY, **common)  # type: ignore[arg-type]
    assert (expired.regime, expired.ratio) == (Regime.EXPIRED, D(0))
    assert "close at expiry" in expired.reason


BASIS_NOW = datetime(2026, 12, 1, tzinfo=UTC)
BASIS_EXPIRY = datetime(2026, 12, 25, 8, tzinfo=UTC)


def basis_at(
    future: str,
    *,
    now: datetime = BASIS_NOW,
    prior: Regime | None = None,
    at_expiry: str = "close",
    next_contract: str | None = None,
) -> tuple[Regime | None, Decimal]:
    target = basis(
        D(60000),
        D(future),
        expiry=BASIS_EXPIRY,
        now=now,
        entry_apr=D("0.05"),
        at_expiry=at_expiry,
        prior=prior,
        close_before=timedelta(hours=1),
        next_contract=next_contract,
    )
    return target.regime, target.ratio


def test_basis_enters_at_exactly_the_entry_threshold_and_not_below() -> None:
    now = BASIS_EXPIRY - timedelta(days=73)  # a fifth of a year: 5 % a year is 1 %
    assert basis_at("60600", now=now) == (Regime.CARRY, D(1))
    assert basis_at("60599.99", now=now) == (Regime.FLAT, D(0))


def test_basis_records_spot_future_days_to_expiry_annualized_basis_and_regime() -> None:
    target = basis(
        D(60000),
        D(61200),
        expiry=BASIS_NOW + timedelta(days=73),
        now=BASIS_NOW,
        entry_apr=D("0.05"),
        at_expiry="close",
        prior=None,
    )
    inputs = target.inputs
    assert (inputs["spot_price"], inputs["future_price"]) == (D(60000), D(61200))
    assert inputs["days_to_expiry"] == D(73)
    assert inputs["annualized_basis"] == D("0.1")
    assert inputs["regime"] == "carry"


@settings(max_examples=100)
@given(
    st.decimals(min_value=D(40000), max_value=D(80000), places=2),
    st.integers(min_value=3601, max_value=90 * 86400),
)
def test_a_held_carry_stays_at_hedge_1_whatever_the_basis_until_the_close_lead(
    future: Decimal, seconds_left: int
) -> None:
    now = BASIS_EXPIRY - timedelta(seconds=seconds_left)
    assert basis_at(str(future), now=now, prior=Regime.CARRY) == (Regime.CARRY, D(1))


def test_close_targets_0_from_close_before_ahead_of_expiry() -> None:
    just_outside = BASIS_EXPIRY - timedelta(hours=1, seconds=1)
    inside = BASIS_EXPIRY - timedelta(hours=1)
    assert basis_at("60001", now=just_outside, prior=Regime.CARRY) == (Regime.CARRY, D(1))
    assert basis_at("60001", now=inside, prior=Regime.CARRY) == (Regime.EXPIRED, D(0))


def test_roll_closes_ahead_of_expiry_keeping_the_carry_for_the_next_contract() -> None:
    inside = BASIS_EXPIRY - timedelta(minutes=30)
    rolled = basis_at("60001", now=inside, prior=Regime.CARRY, at_expiry="roll", next_contract="N")
    assert rolled == (Regime.CARRY, D(0))
    # without a next contract a roll can only close
    last = basis_at("60001", now=inside, prior=Regime.CARRY, at_expiry="roll")
    assert last == (Regime.EXPIRED, D(0))


C0, C1, C2 = "BTC/USDT:USDT-261225", "BTC/USDT:USDT-270326", "BTC/USDT:USDT-270625"
CONTRACTS = [
    (C0, BASIS_EXPIRY),
    (C1, datetime(2027, 3, 26, 8, tzinfo=UTC)),
    (C2, datetime(2027, 6, 25, 8, tzinfo=UTC)),
]
LEAD = timedelta(hours=1)


def test_roll_trades_the_expiring_contract_while_it_holds_a_position_then_the_next() -> None:
    inside = BASIS_EXPIRY - timedelta(minutes=30)
    common = {"now": inside, "close_before": LEAD, "at_expiry": "roll"}
    assert basis_contract(CONTRACTS, {C0: D(-1)}, **common) == (C0, C1)  # type: ignore[arg-type]
    assert basis_contract(CONTRACTS, {}, **common) == (C1, C2)  # type: ignore[arg-type]
    before = BASIS_EXPIRY - timedelta(hours=2)
    assert basis_contract(CONTRACTS, {}, now=before, close_before=LEAD, at_expiry="roll") == (
        C0,
        C1,
    )


def test_close_always_trades_the_configured_contract() -> None:
    inside = BASIS_EXPIRY - timedelta(minutes=30)
    for positions in ({C0: D(-1)}, {}):
        assert basis_contract(
            CONTRACTS[:1], positions, now=inside, close_before=LEAD, at_expiry="close"
        ) == (C0, None)


# -- net long through the perp: decide() with a negative target --------------------------------


@settings(max_examples=150)
@given(observations(), decimals(-100, 0, 2), decimals(1, 100, 2), markets())
def test_a_negative_target_reaches_a_net_long_within_band_without_flipping_in_one_order(
    obs: Observation, target: Decimal, band: Decimal, rules: Market
) -> None:
    policy = HedgeParams(target, band, D(0), D(10) ** 20)
    rules = replace(rules, min_amount=D(0), min_notional=D(0), max_amount=None)
    step_base = rules.amount_step * rules.contract_size
    # a venue's position is a whole number of amount steps
    obs = replace(obs, perp_qty=(obs.perp_qty / step_base).to_integral_value() * step_base)
    for _ in range(3):  # at most: close the short, open the long, nothing
        decision = decide(obs, policy, rules)
        after = filled(obs, decision, rules.contract_size)
        assert obs.perp_qty * after >= 0  # never crosses zero in one order
        if decision.intent is not None:
            assert decision.intent.reduce_only is (abs(after) < abs(obs.perp_qty))
        obs = replace(obs, perp_qty=after)
    residual = abs(target * obs.spot_qty + obs.perp_qty)
    assert residual <= band * obs.spot_qty + step_base


@settings(max_examples=200)
@given(
    st.integers(min_value=-2 * 86400, max_value=200 * 86400),
    st.lists(st.sampled_from([D(0), D(-1)]), min_size=3, max_size=3),
)
def test_roll_never_trades_a_flat_contract_inside_its_close_lead_while_a_later_one_is_open(
    offset_s: int, held: list[Decimal]
) -> None:
    now = BASIS_EXPIRY + timedelta(seconds=offset_s) - timedelta(days=30)
    positions = {symbol: qty for (symbol, _), qty in zip(CONTRACTS, held, strict=True)}
    symbol, following = basis_contract(
        CONTRACTS, positions, now=now, close_before=LEAD, at_expiry="roll"
    )
    index = [s for s, _ in CONTRACTS].index(symbol)
    expiring = CONTRACTS[index][1] - now <= LEAD
    assert not expiring or positions[symbol] != 0 or index == len(CONTRACTS) - 1
    # an expiring contract with a position always comes before anything else
    for earlier, expiry in CONTRACTS[:index]:
        assert expiry - now <= LEAD
        assert positions[earlier] == 0
    assert following == (CONTRACTS[index + 1][0] if index + 1 < len(CONTRACTS) else None)
