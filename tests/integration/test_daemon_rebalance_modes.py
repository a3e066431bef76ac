"""Band and interval rebalancing in the daemon, and its promise that a hold will repeat."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from bot.clock import FakeClock
from bot.config import Settings
from bot.exchange.feeds import ManualFeed
from bot.exchange.paper import PaperVenue
from bot.service.daemon import FOREVER, HedgeDaemon
from bot.store.repository import Repository
from tests.support.builders import open_daemon

D = Decimal
START = datetime(2026, 1, 1, tzinfo=UTC)  # the FakeClock fixture starts here


def config(**pair: Any) -> Settings:
    return Settings(
        pairs=[
            {
                "name": "BTC",
                "spot_symbol": "BTC/USDT",
                "perp_symbol": "BTC/USDT:USDT",
                "target_ratio": "1",
                "band": "0.05",
                "max_order_notional": "1000000",
                "leverage": "2",
                **pair,
            }
        ],
        paper={"balances": {"BTC": "1", "USDT": "100000"}, "spread_bps": "0"},
    )


async def start(
    settings: Settings, repository: Repository, clock: FakeClock
) -> tuple[HedgeDaemon, PaperVenue]:
    assert clock.now() == START
    return await open_daemon(settings, repository, clock, ManualFeed({"BTC": D(50000)}))


def position(venue: PaperVenue) -> Decimal:
    held = venue.state.positions.get("BTC/USDT:USDT")
    return held.qty if held else D(0)


async def cycle_at(
    daemon: HedgeDaemon, clock: FakeClock, at: datetime, cycle: int
) -> dict[str, str]:
    clock.advance((at - clock.now()).total_seconds())
    report = await daemon.run_cycle(cycle)
    assert not report.errors, report.errors
    return report.actions


async def test_interval_rebalancing_waits_for_the_next_hour_where_band_trades_at_once(
    repository: Repository, clock: FakeClock
) -> None:
    daemon, venue = await start(config(rebalance="interval"), repository, clock)
    assert await cycle_at(daemon, clock, START, 1) == {"BTC": "order filled"}
    # At the target: this hour's rebalance is done.
    assert await cycle_at(daemon, clock, START + timedelta(seconds=10), 2) == {"BTC": "none"}
    assert position(venue) == D(-1)

    venue.state.balances["BTC"] += D("0.5")  # a deposit: ratio 0.67, far outside the band
    actions = await cycle_at(daemon, clock, START + timedelta(minutes=30), 3)
    assert actions == {"BTC": "none"}
    assert position(venue) == D(-1)

    actions = await cycle_at(daemon, clock, START + timedelta(hours=1), 4)
    assert actions == {"BTC": "order filled"}
    assert position(venue) == D("-1.5")


async def test_band_rebalancing_trades_the_deposit_at_the_next_cycle(
    repository: Repository, clock: FakeClock
) -> None:
    daemon, venue = await start(config(rebalance="band"), repository, clock)
    await cycle_at(daemon, clock, START, 1)
    venue.state.balances["BTC"] += D("0.5")

    actions = await cycle_at(daemon, clock, START + timedelta(minutes=30), 2)

    assert actions == {"BTC": "order filled"}
    assert position(venue) == D("-1.5")


async def test_a_hold_inside_the_band_is_promised_until_quantities_change(
    repository: Repository, clock: FakeClock
) -> None:
    daemon, _ = await start(config(rebalance="band"), repository, clock)
    await cycle_at(daemon, clock, START, 1)
    assert daemon.quiet_until() is None  # an order was sent: no promise

    await cycle_at(daemon, clock, START + timedelta(seconds=10), 2)
    assert daemon.quiet_until() == FOREVER


async def test_an_interval_hold_is_promised_until_the_next_interval(
    repository: Repository, clock: FakeClock
) -> None:
    daemon, _ = await start(
        config(rebalance="interval", rebalance_interval_s=3600), repository, clock
    )
    await cycle_at(daemon, clock, START, 1)
    await cycle_at(daemon, clock, START + timedelta(seconds=10), 2)

    assert daemon.quiet_until() == datetime(2026, 1, 1, 1, 0, tzinfo=UTC)
