"""The collateral keeper's plan (bot/domain/keeper.py): worked examples and properties."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from bot.domain.keeper import (
    KeeperAction,
    KeeperInputs,
    KeeperPlan,
    collateral_for,
    distance_of,
    floor_to,
    keep,
    next_moves,
    project,
)
from bot.domain.margin import (
    MaintenanceTier,
    MaintenanceTiers,
    isolated_liquidation_price_with_margin,
)
from bot.domain.margin_transfers import MoveKind

D = Decimal
FLAT = MaintenanceTiers.flat(D("0.004"))
# Binance-like: 0.4 % up to 50,000 notional, 0.5 % above (amount continuous: 50).
TWO_TIERS = MaintenanceTiers(
    (
        MaintenanceTier(D(0), D(50_000), D("0.004"), D(0)),
        MaintenanceTier(D(50_000), None, D("0.005"), D(50)),
    )
)


def inputs(**changes: object) -> KeeperInputs:
    """A 3x isolated short of 1 BTC opened at 60,000 (20,000 margin), now at 79,000: its
    liquidation price is 80,000 / 1.004 = 79,681.27, 0.9 % above the mark."""
    base: dict[str, object] = {
        "short": D(1),
        "entry": D(60_000),
        "mark": D(79_000),
        "collateral": D(20_000),
        "tiers": FLAT,
        "futures_free": D(0),
        "spot_quote_free": D(50_000),
        "spot_coins_free": D(1),
        "spot_coins": D(1),
        "threshold": D("0.1"),
        "target": D("0.15"),
        "release": D("0.3"),
        "sale_price": D(79_000),
        "fee_rate": D("0.001"),
        "reserve": D(0),
        "min_collateral": D(0),
    }
    base.update(changes)
    return KeeperInputs(**base)  # type: ignore[arg-type]


def test_a_rally_moves_quote_from_spot_into_the_isolated_position() -> None:
    plan = keep(inputs())
    # The target's liquidation price is 79,000 x 1.15 = 90,850, where the margin balance
    # (collateral - (90,850 - 60,000)) meets the maintenance 0.004 x 90,850 = 363.40: the
    # collateral is 31,213.40; the position holds 20,000: 11,213.40 more.
    assert plan.action is KeeperAction.TOP_UP
    assert plan.transfer_in == D("11213.40")
    assert plan.add_margin == D("11213.40")
    assert plan.reason == (
        "distance 0.9% < 10.0%: move 11213.40 quote spot->futures and add 11213.40 margin "
        "to the position, distance after 15.0%"
    )


def test_the_futures_wallets_free_quote_is_used_before_the_spot_wallets() -> None:
    plan = keep(inputs(futures_free=D("10000.005")))
    assert plan.transfer_in == D("1213.40")
    assert plan.add_margin == D("11213.40")


def test_cross_margin_moves_quote_into_the_wallet_only() -> None:
    plan = keep(inputs(isolated=False))
    assert (plan.action, plan.transfer_in, plan.add_margin) == (
        KeeperAction.TOP_UP,
        D("11213.40"),
        D(0),
    )


def test_without_spot_quote_a_slice_of_coins_is_sold_and_the_short_cut_alike() -> None:
    plan = keep(inputs(spot_quote_free=D(0)))
    assert plan.action is KeeperAction.SELL_AND_CUT
    assert plan.cut == plan.sell  # a full hedge: the same base amount
    assert D(0) < plan.sell < D(1)
    assert plan.distance_after is not None
    assert plan.distance_after >= D("0.15")
    assert "sell" in plan.reason
    assert "the ratio holds" in plan.reason


def test_the_last_resort_closes_the_short_and_says_why() -> None:
    plan = keep(inputs(spot_quote_free=D(0), can_sell=False))
    assert plan.action is KeeperAction.CLOSE
    assert plan.cut == D(1)
    assert plan.reason.endswith(
        "spot trades are not allowed on the pair: close the short (last resort)"
    )


def test_a_fall_returns_the_excess_down_to_the_target() -> None:
    plan = keep(inputs(mark=D(55_000)))
    assert plan.action is KeeperAction.RETURN
    assert plan.add_margin == -plan.transfer_out
    assert plan.distance_after is not None
    assert D("0.15") <= plan.distance_after < D("0.1501")
    # Taken out: 20,000 less the 3,503 a liquidation price of 63,250 needs.
    assert plan.transfer_out == D("16497.00")


def test_a_return_never_takes_more_than_the_position_holds() -> None:
    plan = keep(inputs(mark=D(40_000)))  # 20,000 of profit: the target needs no margin
    assert plan.transfer_out == D(20_000)


def test_inside_the_band_nothing_moves() -> None:
    plan = keep(inputs(mark=D(60_000)))  # 3x at entry: distance ~33 %, above 30 %? no:
    assert plan.action in (KeeperAction.NONE, KeeperAction.RETURN)
    calm = keep(inputs(mark=D(60_000), release=D(1)))
    assert calm.action is KeeperAction.NONE
    assert calm.reason.startswith("distance 32.8% within [10.0%, 100.0%]")


# -- properties ----------------------------------------------------------------------------

MONEY = st.decimals(D(0), D(200_000), places=2)


@st.composite
def keeper_inputs(draw: st.DrawFn) -> KeeperInputs:
    short = draw(st.decimals(D("0.001"), D(20), places=3))
    entry = draw(st.decimals(D(1_000), D(100_000), places=2))
    mark = (entry * draw(st.decimals(D("0.3"), D(3), places=3))).quantize(D("0.01"))
    tiers = draw(st.sampled_from([FLAT, TWO_TIERS]))
    now = draw(st.decimals(D("0.001"), D(2), places=3))  # the distance now (not liquidated)
    collateral = collateral_for(short, entry, mark, now, tiers).quantize(D("0.01"))
    assume(collateral > 0)  # a venue's isolated margin is never below 0
    threshold = draw(st.decimals(D("0.02"), D("0.5"), places=3))
    coins = draw(st.decimals(D("0.001"), D(40), places=5))
    return KeeperInputs(
        short=short,
        entry=entry,
        mark=mark,
        collateral=collateral,
        tiers=tiers,
        futures_free=draw(MONEY),
        spot_quote_free=draw(MONEY),
        spot_coins_free=min(coins, draw(st.decimals(D(0), D(40), places=5))),
        spot_coins=coins,
        threshold=threshold,
        target=threshold * D("1.5"),
        release=threshold * D(3),
        isolated=draw(st.booleans()),
        sale_price=(mark * draw(st.decimals(D("0.98"), D(1), places=3))).quantize(D("0.01")),
        fee_rate=draw(st.sampled_from([D(0), D("0.001")])),
        can_sell=draw(st.booleans()),
        reserve=draw(MONEY),
        min_collateral=collateral * draw(st.sampled_from([D(0), D("0.5")])),
    )


def _on_step(amount: Decimal, step: Decimal) -> bool:
    return amount % step == 0


@settings(max_examples=300, deadline=None)
@given(keeper_inputs())
def test_after_the_plan_the_distance_is_at_least_the_threshold_or_it_is_the_last_resort(
    i: KeeperInputs,
) -> None:
    plan = keep(i)
    if plan.action is KeeperAction.CLOSE:
        assert plan.cut == i.short
        assert "last resort" in plan.reason
        return
    after = project(i, plan)
    assert after is not None
    assert after >= i.threshold
    assert plan.distance_after == after


@settings(max_examples=300, deadline=None)
@given(keeper_inputs())
def test_no_transfer_exceeds_what_its_source_holds_free(i: KeeperInputs) -> None:
    plan = keep(i)
    proceeds = plan.sell * i.sale_price * (1 - i.fee_rate)
    assert D(0) <= plan.transfer_in <= i.spot_quote_free + proceeds
    if plan.action is KeeperAction.TOP_UP:
        assert plan.transfer_in <= i.spot_quote_free
        if i.isolated:  # what goes into the position: the futures wallet's free + what came
            assert plan.add_margin <= i.futures_free + plan.transfer_in
    if plan.action is KeeperAction.RETURN:
        assert D(0) < plan.transfer_out
        if plan.add_margin != 0:  # taken out of an isolated position first
            assert i.isolated
            assert plan.transfer_out <= i.collateral - i.min_collateral
            assert plan.add_margin == -plan.transfer_out
        else:  # the futures wallet's own free quote (isolated: above the reserve)
            assert plan.transfer_out <= i.futures_free - (i.reserve if i.isolated else 0)
    for amount in (plan.transfer_in, plan.transfer_out, abs(plan.add_margin)):
        assert _on_step(amount, i.quote_step)


@settings(max_examples=300, deadline=None)
@given(keeper_inputs())
def test_a_sale_never_exceeds_the_free_coins_and_the_cut_keeps_the_ratio(i: KeeperInputs) -> None:
    plan = keep(i)
    if plan.action is not KeeperAction.SELL_AND_CUT:
        assert plan.sell == 0
        return
    assert i.can_sell
    assert D(0) < plan.sell <= i.spot_coins_free
    assert _on_step(plan.sell, i.sale_step)
    assert _on_step(plan.cut, i.cut_step)
    assert D(0) < plan.cut < i.short
    # The sale is the cut's share of the coins, rounded down to the spot step: the ratio
    # after differs from the ratio before by less than one spot step's worth.
    assert plan.sell == floor_to(plan.cut * i.spot_coins / i.short, i.sale_step)
    ratio = i.short / i.spot_coins
    assert abs((i.short - plan.cut) - ratio * (i.spot_coins - plan.sell)) <= ratio * i.sale_step


@settings(max_examples=200, deadline=None)
@given(keeper_inputs())
def test_a_top_up_puts_the_venues_liquidation_price_at_least_target_above_the_mark(
    i: KeeperInputs,
) -> None:
    """Checked against margin.py's liquidation price directly, not the keeper's helpers."""
    plan = keep(i)
    if plan.action is not KeeperAction.TOP_UP:
        return
    collateral = i.collateral + (plan.add_margin if i.isolated else plan.transfer_in)
    liquidation = isolated_liquidation_price_with_margin(-i.short, i.entry, collateral, i.tiers)
    assert liquidation is not None
    assert liquidation >= i.mark * (1 + i.target)


@settings(max_examples=100, deadline=None)
@given(keeper_inputs())
def test_the_plan_is_nothing_exactly_when_the_distance_is_inside_the_band(
    i: KeeperInputs,
) -> None:
    plan: KeeperPlan = keep(i)
    distance = distance_of(i.short, i.entry, i.mark, i.collateral, i.tiers)
    assert distance is not None
    if i.threshold <= distance <= i.release:
        idle = i.isolated and floor_to(i.futures_free - i.reserve, i.quote_step) > 0
        assert plan.action is (KeeperAction.RETURN if idle else KeeperAction.NONE)
    elif distance < i.threshold:
        assert plan.action in (KeeperAction.TOP_UP, KeeperAction.SELL_AND_CUT, KeeperAction.CLOSE)


def test_idle_futures_quote_above_the_reserve_goes_back_while_the_distance_is_fine() -> None:
    plan = keep(inputs(mark=D(60_000), release=D(1), futures_free=D(3000), reserve=D(1000)))
    assert (plan.action, plan.transfer_out, plan.add_margin) == (
        KeeperAction.RETURN,
        D(2000),
        D(0),
    )
    assert next_moves(plan) == ((MoveKind.TO_SPOT, D(2000)),)


def test_the_moves_of_a_cycle_in_order() -> None:
    top_up = keep(inputs())
    assert next_moves(top_up) == (
        (MoveKind.TO_FUTURES, D("11213.40")),
        (MoveKind.ADD_MARGIN, D("11213.40")),
    )
    at_hand = keep(inputs(futures_free=D("11213.40"), spot_quote_free=D(0)))
    assert next_moves(at_hand) == ((MoveKind.ADD_MARGIN, D("11213.40")),)
    assert next_moves(keep(inputs(mark=D(55_000)))) == (
        (MoveKind.REMOVE_MARGIN, D("16497.00")),
        (MoveKind.TO_SPOT, D("16497.00")),
    )
    # A sale and cut: after its orders, the proceeds over and into the position.
    sale = keep(inputs(spot_quote_free=D(0)))
    assert next_moves(sale) == (
        (MoveKind.TO_FUTURES, sale.transfer_in),
        (MoveKind.ADD_MARGIN, sale.add_margin),
    )
    assert next_moves(keep(inputs(spot_quote_free=D(0), can_sell=False))) == ()  # the close


def test_a_return_keeps_the_positions_initial_margin() -> None:
    plan = keep(inputs(mark=D(40_000), min_collateral=D(15_000)))
    assert plan.transfer_out == D(5000)
