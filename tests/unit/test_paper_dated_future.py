"""The paper venue's dated futures: priced with a basis that converges, no funding, settled
at expiry at the spot price."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from bot.clock import FakeClock
from bot.config import PaperConfig
from bot.domain.models import OrderRequest, Side
from bot.domain.paper_account import InMemoryPaperAccountStore
from bot.exchange.feeds import ManualFeed
from bot.exchange.gateway import FatalError, OrderRejectedError
from bot.exchange.paper import PaperVenue

D = Decimal
T0 = datetime(2026, 1, 1, tzinfo=UTC)
EXPIRY = T0 + timedelta(days=73)  # a fifth of a year
FUTURE = "BTC/USDT:USDT-260315"
SPOT = "BTC/USDT"


async def venue(
    feed: ManualFeed, clock: FakeClock, *, expiry: datetime | None = EXPIRY
) -> PaperVenue:
    market: dict[str, object] = {"basis_apr": "0.1"}
    if expiry is not None:
        market["expiry"] = expiry
    config = PaperConfig.model_validate(
        {
            "balances": {"USDT": "100000"},
            "spread_bps": "0",
            "taker_fee_rate": "0",
            "markets": {FUTURE: market},
        }
    )
    return await PaperVenue.open(config, feed, clock, InMemoryPaperAccountStore())


def sell(amount: str, cid: str) -> OrderRequest:
    return OrderRequest(symbol=FUTURE, side=Side.SELL, amount=D(amount), client_order_id=cid)


@pytest.mark.asyncio
async def test_a_dated_future_is_priced_at_spot_plus_a_basis_that_converges_to_0() -> None:
    feed, clock = ManualFeed({"BTC": D(60000)}), FakeClock(T0)
    paper = await venue(feed, clock)
    market = (await paper.load_markets([FUTURE]))[FUTURE]
    assert (market.expiry, market.is_perp) == (EXPIRY, True)
    assert (await paper.fetch_tickers([FUTURE]))[FUTURE].last == D(61200)  # 60000 x 1.02
    clock.advance(73 * 86400 / 2)
    assert (await paper.fetch_tickers([FUTURE]))[FUTURE].last == D(60600)
    clock.advance(73 * 86400 / 2)
    assert (await paper.fetch_tickers([FUTURE]))[FUTURE].last == D(60000)


@pytest.mark.asyncio
async def test_without_a_configured_expiry_it_is_the_symbols_date_at_0800_utc() -> None:
    paper = await venue(ManualFeed({"BTC": D(60000)}), FakeClock(T0), expiry=None)
    market = (await paper.load_markets([FUTURE]))[FUTURE]
    assert market.expiry == datetime(2026, 3, 15, 8, tzinfo=UTC)
    with pytest.raises(FatalError, match="YYMMDD"):
        await paper.load_markets(["BTC/USDT:USDT-2603"])


@pytest.mark.asyncio
async def test_a_dated_future_pays_no_funding_and_reports_no_funding_rate() -> None:
    feed, clock = ManualFeed({"BTC": D(60000)}, {"BTC": D("0.001")}), FakeClock(T0)
    paper = await venue(feed, clock)
    await paper.create_order(sell("1", "open"))
    clock.advance(3 * 86400)
    assert await paper.fetch_funding_payments([FUTURE]) == []
    assert await paper.fetch_funding_rates([FUTURE]) == {}


@pytest.mark.asyncio
async def test_a_position_is_settled_at_expiry_at_the_spot_price_with_its_pnl_in_the_wallet() -> (
    None
):
    feed, clock = ManualFeed({"BTC": D(60000)}), FakeClock(T0)
    paper = await venue(feed, clock)
    opened = await paper.create_order(sell("1", "open"))
    assert opened.average_price == D(61200)
    feed.set_price("BTC", D(50000))
    clock.advance(73 * 86400)
    assert await paper.fetch_positions([FUTURE]) == {}
    # short 1 at 61200, settled at the spot 50000: +11200, the margin back
    balance = (await paper.fetch_margin_balances())["USDT"]
    assert (balance.total, balance.free) == (D(111200), D(111200))
    assert paper.state.realized_pnl == D(11200)
    with pytest.raises(OrderRejectedError, match="expired"):
        await paper.create_order(sell("1", "late"))
