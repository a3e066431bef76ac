"""The daemon through the real ccxt client against the Bybit and OKX emulators on 127.0.0.1,
in testnet mode, with the scenarios Binance runs in ``test_daemon_emulator.py``: hedging an
unhedged account, de-hedging with reduce-only orders, following the user's spot and hedge,
every fault class, a lagging position view, and a restart with an order of unknown outcome.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.clock import SystemClock
from bot.config import AccountConfig, Settings
from bot.exchange.ccxt_gateway import CcxtGateway
from bot.exchange.gateway import FatalError
from bot.store.repository import Repository
from tests.support.daemon_stack import DaemonStack, daemon_stacks
from tests.support.venue_harness import Harness, fault_names, open_harness

D = Decimal
PERP = "BTC/USDT:USDT"
VENUES = ["bybit", "okx"]


@pytest_asyncio.fixture(params=VENUES)
async def venue(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    """A funded venue emulator: 1 BTC of spot, 100,000 USDT of margin."""
    harness = await open_harness(request.param)
    harness.fund()
    try:
        yield harness
    finally:
        await harness.close()


def pair(name: str = "BTC", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "spot_symbol": f"{name}/USDT",
        "perp_symbol": f"{name}/USDT:USDT",
        "target_ratio": "1",
        "band": "0.02",
        "max_order_notional": "200000",
        "leverage": "2",
        **extra,
    }


def make_settings(venue: Harness, pairs: list[dict[str, Any]], **risk: Any) -> Settings:
    return Settings(
        mode="testnet",
        poll_interval_s=1,
        pairs=pairs,
        accounts={"main": venue.account()},
        # The emulator answers or drops at once: an unknown order is lost after 1 s.
        risk={"max_data_age_s": "30", "order_settle_s": "1", **risk},
    )


@pytest_asyncio.fixture
async def open_stack(venue: Harness, engine: AsyncEngine) -> AsyncIterator[Any]:
    async with daemon_stacks(Repository(engine, SystemClock())) as start:

        async def build(pairs: list[dict[str, Any]] | None = None, **risk: Any) -> DaemonStack:
            return await start(make_settings(venue, pairs or [pair()], **risk))

        yield build


def assert_no_duplicate_orders(venue: Harness) -> None:
    ids = Counter(a.client_order_id for a in venue.accepted())
    assert all(count == 1 for count in ids.values()), ids


async def assert_every_exchange_order_is_stored(stack: DaemonStack, venue: Harness) -> None:
    stored = {o.client_order_id for o in await stack.repository.orders()}
    assert {a.client_order_id for a in venue.accepted()} <= stored


# ---------------------------------------------------------------- the first cycles


async def test_unhedged_account_is_hedged_within_the_band(open_stack: Any, venue: Harness) -> None:
    stack = await open_stack()
    assert await stack.cycles(3) == [{}, {}, {}]
    assert venue.position() == D(-1)
    [entry] = venue.accepted()
    assert entry.order_type == "limit"  # limit IOC bounded by max_slippage_bps
    [order] = await stack.repository.orders()
    assert order.status == "filled"  # the outcome is learned, not waited for
    assert not await stack.repository.unresolved_orders()
    await assert_every_exchange_order_is_stored(stack, venue)


async def test_two_pairs_on_one_account_start_and_are_both_hedged(
    open_stack: Any, venue: Harness
) -> None:
    venue.emulator.set_balance("ETH", D(10))
    stack = await open_stack([pair(), pair("ETH")])
    assert await stack.cycles(2) == [{}, {}]
    assert venue.position() == D(-1)
    assert len(venue.accepted()) == 2


async def test_a_restart_with_the_leverage_already_set_starts(
    open_stack: Any, venue: Harness
) -> None:
    await (await open_stack()).cycles(1)
    again = await open_stack()  # sets the same leverage and margin mode again
    assert await again.cycles(1) == [{}]
    assert len(venue.accepted()) == 1


async def test_target_change_dehedges_with_reduce_only_orders(
    open_stack: Any, venue: Harness
) -> None:
    await (await open_stack()).cycles(2)
    stack = await open_stack([pair(target_ratio="0.5")])
    await stack.cycles(2)
    assert venue.position() == D("-0.5")
    last = venue.accepted()[-1]
    assert last.side == "buy"
    assert last.reduce_only is True


async def test_user_selling_half_the_spot_shrinks_the_hedge(
    open_stack: Any, venue: Harness
) -> None:
    stack = await open_stack()
    await stack.cycles(2)
    venue.set_spot(D("0.5"))
    await stack.cycles(2)
    assert venue.position() == D("-0.5")
    assert venue.accepted()[-1].reduce_only is True


async def test_user_closing_part_of_the_hedge_is_corrected_next_cycle(
    open_stack: Any, venue: Harness
) -> None:
    stack = await open_stack()
    await stack.cycles(2)
    await venue.user_buy_back(D("0.4"))
    assert venue.position() == D("-0.6")
    await stack.cycles(1)
    assert venue.position() == D(-1)
    events = await stack.repository.audit_events(kind="decision")
    assert "ratio 0.6000 < target 1.0000" in events[-1].summary


# ---------------------------------------------------------------- faults


@pytest.mark.parametrize(
    ("venue", "fault"),
    [pytest.param(v, f, id=f"{v}-{f}") for v in VENUES for f in fault_names(v)],
    indirect=["venue"],
)
async def test_each_fault_leaves_no_crash_no_duplicate_and_an_audit_trail(
    open_stack: Any, venue: Harness, fault: str
) -> None:
    [case] = [c for c in venue.faults() if c.name == fault]
    stack = await open_stack()
    case.inject()
    for _ in range(12):
        await stack.cycles(1, pause_s=0.25)
        if venue.position() == D(-1) and not await stack.repository.unresolved_orders():
            break
    assert venue.position() == D(-1)
    assert_no_duplicate_orders(venue)
    await assert_every_exchange_order_is_stored(stack, venue)
    kinds = [e.kind for e in await stack.repository.audit_events()]
    assert "order.filled" in kinds or "order.canceled" in kinds
    if case.refuses_order:
        assert "order.rejected" in kinds
    if case.accepts_order:
        assert len(venue.accepted()) == 1  # found by its client id, never sent again
    if fault == "partial-fill":
        assert len(venue.accepted()) == 2  # the IOC remainder expired; the rest followed


async def test_a_lagging_position_view_never_leads_to_over_hedging(
    open_stack: Any, venue: Harness
) -> None:
    # Orders of at most about 0.3 BTC; the position view shows each fill 1.5 s late
    # while cycles run every 0.25 s.
    stack = await open_stack([pair(max_order_notional="20000")])
    venue.lag_s = 1.5
    worst = D(0)
    for _ in range(16):
        await stack.cycles(1, pause_s=0.25)
        worst = min(worst, venue.position())
    assert -worst - D(1) <= D("0.01")
    assert abs(venue.position() + 1) <= D("0.02")


async def test_a_restart_finds_an_order_of_unknown_outcome_by_client_id_and_never_resends(
    open_stack: Any, venue: Harness
) -> None:
    venue.set_spot(D(0))
    stack = await open_stack()
    assert await stack.cycles(1) == [{}]  # nothing to hedge; open orders listed
    venue.set_spot(D(1))
    venue.lose_next_order_and_its_lookups()
    await stack.cycles(1)
    [order] = await stack.repository.orders()
    assert order.status == "unknown"
    assert venue.position() == D(-1)  # the venue executed it
    venue.clear_faults()
    restarted = await open_stack()
    assert await restarted.cycles(2) == [{}, {}]  # the first looks it up
    [order] = await restarted.repository.orders()
    assert order.status == "filled"
    assert len(venue.accepted()) == 1
    assert venue.position() == D(-1)


# ---------------------------------------------------------------- account set-ups


async def test_hedge_mode_account_is_hedged_on_its_short_side(
    open_stack: Any, venue: Harness
) -> None:
    await venue.enable_hedge_mode()
    stack = await open_stack()
    gateway = stack.built.gateways["main"]
    assert getattr(gateway, "hedge_mode", False)
    await stack.cycles(2)
    assert venue.position() == D(-1)
    dehedge = await open_stack([pair(target_ratio="0.5")])
    await dehedge.cycles(2)
    assert venue.position() == D("-0.5")
    assert [a.side for a in venue.accepted()] == ["sell", "buy"]


async def test_funding_payments_are_recorded_once_each(open_stack: Any, venue: Harness) -> None:
    stack = await open_stack()
    gateway = stack.built.gateways["main"]
    gateway.funding_poll = timedelta(0)
    await stack.cycles(2)
    venue.settle_funding(D("0.0001"))
    await stack.cycles(2)
    [event] = await stack.repository.audit_events(kind="funding")
    assert event.summary.startswith("funding received")
    assert await stack.repository.funding_total("BTC") > 0


@pytest.mark.parametrize("venue", ["bybit"], indirect=True)
async def test_bybit_pairs_of_one_account_must_agree_on_the_account_wide_margin_mode(
    venue: Harness,
) -> None:
    account = AccountConfig(**venue.account())
    gateway = CcxtGateway.from_config("main", account, "testnet", SystemClock())
    try:
        await gateway.load_markets([PERP, "ETH/USDT:USDT"])
        await gateway.set_margin_mode(PERP, "isolated")
        with pytest.raises(FatalError, match="whole unified account") as refused:
            await gateway.set_margin_mode("ETH/USDT:USDT", "cross")
    finally:
        await gateway.close()
    assert "\n" not in str(refused.value)
    assert venue.emulator.margin_mode == "ISOLATED_MARGIN"  # the other pair's stands
