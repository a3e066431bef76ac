"""A basis roll enters the next contract only if its basis, net of fees, meets entry_apr
(issue 12, item 3).

The paper daemon with a fake clock: 2 BTC carried on the February future at a 10 %
annualized basis, rolled to the March one an hour before February's expiry. The paper
venue charges a 0.05 % taker fee; entry_apr is 5 %.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from bot.clock import FakeClock
from bot.domain.strategies import (
    SECONDS_PER_YEAR,
    Regime,
    annualized_basis,
    basis,
    net_annualized_basis,
)
from bot.exchange.feeds import ManualFeed
from bot.store.repository import Repository
from bot.store.tables import AuditEventRow
from tests.integration.test_daemon_basis import (
    DEC,
    DEC_EXPIRY,
    LEAD_S,
    MAR,
    MAR_EXPIRY,
    T0,
    BasisVenue,
    cycle,
    last_strategy,
    open_daemon,
    orders,
    settings,
    short,
)

D = Decimal
ROLL = {"at_expiry": "roll", "roll_to": [MAR]}


async def roll_at(
    basis_apr: Decimal, repository: Repository, clock: FakeClock
) -> tuple[BasisVenue, list[tuple[str, str]]]:
    """Carry on February, then roll with March at ``basis_apr``; the audit events after."""
    daemon, venue = await open_daemon(
        settings(ROLL), repository, clock, ManualFeed({"BTC": D(60000)})
    )
    await cycle(daemon, 1)
    assert (await short(venue, DEC), await short(venue, MAR)) == (2, 0)
    venue.basis_apr = basis_apr
    clock.advance((DEC_EXPIRY - T0).total_seconds() - LEAD_S / 2)
    await cycle(daemon, 2)  # February bought back
    assert (await short(venue, DEC), await short(venue, MAR)) == (0, 0)
    for number in range(3, 7):  # the roll's cycle, then more: still out
        clock.advance(10)
        await cycle(daemon, number)
    async with repository.engine.connect() as conn:
        rows = await conn.execute(
            select(AuditEventRow.kind, AuditEventRow.summary)
            .where(AuditEventRow.kind.like("strategy.%"))
            .order_by(AuditEventRow.id)
        )
        events = [(r[0], r[1]) for r in rows]
    return venue, events


async def test_a_roll_into_a_backwardated_contract_closes_and_stays_out(
    repository: Repository, clock: FakeClock
) -> None:
    venue, events = await roll_at(D("-0.02"), repository, clock)
    # Before: the roll shorted 2 BTC of March at a discount to spot, a loss locked in.
    assert await short(venue, MAR) == 0
    assert (await orders(repository))[-1] == (DEC, "buy", True)  # the close, nothing after
    [(kind, summary)] = events  # said once
    assert kind == "strategy.roll_declined"
    assert f"roll from {DEC} to {MAR} declined" in summary
    assert "net of fees -2.91% (2 x taker 0.05%) < entry_apr 5.00%" in summary
    strategy = await last_strategy(repository)
    assert (strategy["future_symbol"], strategy["regime"]) == (MAR, "flat")


async def test_a_roll_whose_basis_meets_entry_apr_only_before_fees_stays_out(
    repository: Repository, clock: FakeClock
) -> None:
    # 5.5 % gross over the 40 days March has left; the two taker fees (open now, buy back
    # before expiry: 0.1 % of the notional) cost 0.92 % a year of it: 4.58 % net < 5 %.
    venue, events = await roll_at(D("0.055"), repository, clock)
    assert await short(venue, MAR) == 0
    [(kind, summary)] = events
    assert kind == "strategy.roll_declined"
    assert "net of fees 4.58% (2 x taker 0.05%) < entry_apr 5.00%" in summary


async def test_a_roll_whose_net_basis_meets_entry_apr_shorts_the_next_contract(
    repository: Repository, clock: FakeClock
) -> None:
    venue, events = await roll_at(D("0.10"), repository, clock)
    assert await short(venue, MAR) == 2
    assert events == []
    strategy = await last_strategy(repository)
    assert strategy["future_symbol"] == MAR
    assert strategy["regime"] == "carry"
    assert MAR_EXPIRY - timedelta(days=41) < T0 + timedelta(days=45) < MAR_EXPIRY


async def test_a_restart_between_the_close_and_the_roll_still_checks_the_net_basis(
    repository: Repository, clock: FakeClock
) -> None:
    feed = ManualFeed({"BTC": D(60000)})
    daemon, venue = await open_daemon(settings(ROLL), repository, clock, feed)
    await cycle(daemon, 1)
    clock.advance((DEC_EXPIRY - T0).total_seconds() - LEAD_S / 2)
    await cycle(daemon, 2)
    assert (await short(venue, DEC), await short(venue, MAR)) == (0, 0)
    # The restarted daemon knows the carry was on February (from the last decision), so
    # March is a roll, checked against entry_apr, not a carry simply held on.
    restarted, venue = await open_daemon(settings(ROLL), repository, clock, feed)
    venue.basis_apr = D("-0.02")
    clock.advance(10)
    await cycle(restarted, 3)
    assert await short(venue, MAR) == 0
    assert "declined" in (await last_strategy(repository))["reason"]


# -- the rule, pure ---------------------------------------------------------------------------

NOW = datetime(2026, 2, 14, 23, tzinfo=UTC)
prices = st.decimals(min_value=D(50000), max_value=D(70000), places=2)
seconds_left = st.integers(min_value=3601, max_value=200 * 86400)
fees = st.decimals(min_value=D(0), max_value=D("0.001"), places=5)
aprs = st.decimals(min_value=D("-0.1"), max_value=D("0.3"), places=3)


@given(prices, prices, seconds_left, fees)
def test_the_net_basis_is_the_gross_less_two_taker_fees_annualized(
    spot: Decimal, future: Decimal, left_s: int, fee: Decimal
) -> None:
    expiry = NOW + timedelta(seconds=left_s)
    gross = annualized_basis(spot, future, expiry, NOW)
    net = net_annualized_basis(spot, future, expiry, NOW, fee)
    assert net == gross - 2 * fee * future / spot * SECONDS_PER_YEAR / left_s
    assert (net < gross) is (fee > 0)


@given(prices, prices, seconds_left, fees, aprs)
def test_a_roll_enters_exactly_when_its_net_basis_meets_entry_apr(
    spot: Decimal, future: Decimal, left_s: int, fee: Decimal, entry_apr: Decimal
) -> None:
    expiry = NOW + timedelta(seconds=left_s)
    target = basis(
        spot,
        future,
        expiry=expiry,
        now=NOW,
        entry_apr=entry_apr,
        at_expiry="roll",
        prior=Regime.CARRY,
        close_before=timedelta(hours=1),
        taker_fee=fee,
        rolled_from=DEC,
        future_symbol=MAR,
    )
    net = net_annualized_basis(spot, future, expiry, NOW, fee)
    entered = net >= entry_apr
    assert (target.regime, target.ratio) == (
        (Regime.CARRY, D(1)) if entered else (Regime.FLAT, D(0))
    )
    assert target.roll_declined is not entered
    assert target.inputs["net_annualized_basis"] == net
    if future < spot and entry_apr >= 0:  # backwardation: never rolled into
        assert not entered


@given(prices, prices, seconds_left, fees)
def test_a_carry_on_its_own_contract_is_held_whatever_its_basis(
    spot: Decimal, future: Decimal, left_s: int, fee: Decimal
) -> None:
    target = basis(
        spot,
        future,
        expiry=NOW + timedelta(seconds=left_s),
        now=NOW,
        entry_apr=D("0.05"),
        at_expiry="roll",
        prior=Regime.CARRY,
        close_before=timedelta(hours=1),
        taker_fee=fee,
    )
    assert (target.regime, target.ratio, target.roll_declined) == (Regime.CARRY, D(1), False)
