"""A paper dated future settles at its expiry time even when that is not a funding time:
the position is closed at the spot price at expiry as soon as the clock reaches it, and
the venue's settle horizon (which the backtest steps by) names the expiry, not the next
funding time after it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from bot.clock import FakeClock
from bot.config import PaperConfig
from bot.domain.models import OrderRequest, Side
from bot.domain.paper_account import InMemoryPaperAccountStore
from bot.exchange.feeds import ManualFeed
from bot.exchange.paper import PaperVenue

D = Decimal
T0 = datetime(2026, 1, 1, tzinfo=UTC)  # funding at 00:00, 08:00 and 16:00 UTC
EXPIRY = T0 + timedelta(days=73, hours=3)  # 03:00 UTC: between two funding times
FUTURE = "BTC/USDT:USDT-260315"


async def short_one(clock: FakeClock, feed: ManualFeed) -> PaperVenue:
    config = PaperConfig.model_validate(
        {
            "balances": {"USDT": "100000"},
            "spread_bps": "0",
            "taker_fee_rate": "0",
            "markets": {FUTURE: {"expiry": EXPIRY, "basis_apr": "0"}},
        }
    )
    venue = await PaperVenue.open(config, feed, clock, InMemoryPaperAccountStore())
    await venue.create_order(OrderRequest(FUTURE, Side.SELL, D(1), "open"))
    return venue


async def test_a_position_is_settled_at_an_expiry_between_funding_times() -> None:
    feed, clock = ManualFeed({"BTC": D(60000)}), FakeClock(T0)
    venue = await short_one(clock, feed)
    clock.advance((EXPIRY - T0).total_seconds() - 1)
    assert (await venue.fetch_positions([FUTURE]))[FUTURE].qty == D(-1)

    feed.set_price("BTC", D(50000))
    clock.advance(1)  # 03:00:00, five hours before the next funding time

    assert await venue.fetch_positions([FUTURE]) == {}
    assert venue.state.realized_pnl == D(10000)  # short 1 at 60,000, settled at 50,000
    [settled] = [o for o in venue.state.orders.values() if o.client_order_id != "open"]
    assert settled.average_price == D(50000)


async def test_the_settle_horizon_is_the_expiry_when_it_comes_first() -> None:
    feed, clock = ManualFeed({"BTC": D(60000)}), FakeClock(T0)
    venue = await short_one(clock, feed)
    clock.advance((EXPIRY - T0).total_seconds() - 3600)  # 02:00
    await venue.fetch_positions([FUTURE])  # settled up to now: funding last at 00:00

    at, _ = venue.settle_horizon()

    assert at == EXPIRY
    clock.advance(3600)
    assert venue.settle_due()  # a backtest stepping to the horizon settles it there
    assert FUTURE not in venue.state.positions
