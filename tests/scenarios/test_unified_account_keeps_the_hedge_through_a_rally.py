"""Spot as collateral (issue 15 item 2): on a unified account the coins back their own
hedge, so a rally that costs the short money raises the collateral by nearly as much.

1 BTC and 1,000 USDT, hedged 1:1 with a 2x cross short, the price taken from 60,000 to
120,000 within a day (+100 %) and then to 30,000 (-50 % from the start). On a unified
paper account (BTC at a 0.95 collateral ratio) the daemon sends its opening short and
nothing else: no liquidation, no guard action, the ratio at 1 after every cycle, and the
account's liquidation price (the venue's account-level figure) never nearer than 700 %
above the mark (BTC's maintenance tiers at the notional of that price included). The
same holdings on an isolated account at the same leverage (margin isolated in USDT) meet
the guard on the way up: it closes the short, the coin is left unhedged, and the hedge
is reopened at a worse price.
"""

from __future__ import annotations

from decimal import Decimal

from bot.clock import FakeClock
from bot.domain.models import ZERO
from bot.exchange.feeds import ManualFeed
from bot.store.repository import Repository
from tests.support import builders
from tests.support.builders import open_daemon

D = Decimal
HOUR = 3600


def path() -> list[Decimal]:
    """Hourly prices: 60,000 to 120,000 in 24 hours, then down to 30,000 in 48."""
    up = [D(60000) + D(2500) * i for i in range(25)]
    down = [D(120000) - D(1875) * i for i in range(1, 49)]
    return up + down


async def run(repository: Repository, clock: FakeClock, **paper: object) -> dict[str, object]:
    margin_mode = "cross" if paper.get("account") == "unified" else "isolated"
    config = builders.settings(
        [builders.pair(leverage="2", margin_mode=margin_mode, band="0.05")],
        {"max_data_age_s": "7200"},
        spread_bps="0",
        **paper,
    )
    feed = ManualFeed({"BTC": D(60000)})
    daemon, venue = await open_daemon(config, repository, clock, feed)
    ratios: list[Decimal] = []
    distances: list[Decimal] = []
    unhedged_cycles = 0
    for cycle, price in enumerate(path(), start=1):
        feed.set_price("BTC", price)
        report = await daemon.run_cycle(cycle)
        assert not report.errors, report.errors
        position = (await venue.fetch_positions(["BTC/USDT:USDT"])).get("BTC/USDT:USDT")
        spot = (await venue.fetch_balances())["BTC"].total
        qty = position.qty if position else ZERO
        ratios.append(-qty / spot)
        unhedged_cycles += qty == ZERO
        if position is not None and position.liquidation_price is not None:
            distances.append(abs(position.liquidation_price - price) / price)
        clock.advance(HOUR)
    decisions = await repository.audit_events(kind="decision")
    return {
        "ratios": ratios,
        "distances": distances,
        "unhedged_cycles": unhedged_cycles,
        "orders": await repository.orders(),
        "guard": [e for e in decisions if e.summary.startswith("liquidation guard")],
        "liquidations": venue.liquidations(),
    }


async def test_a_unified_account_keeps_a_2x_hedge_through_plus_100_and_minus_50_percent(
    repository: Repository, clock: FakeClock
) -> None:
    seen = await run(repository, clock, account="unified", balances={"BTC": "1", "USDT": "1000"})

    assert seen["liquidations"] == []
    assert seen["guard"] == []
    assert len(seen["orders"]) == 1  # the opening short, nothing after  # type: ignore[arg-type]
    assert seen["unhedged_cycles"] == 0
    assert all(ratio == 1 for ratio in seen["ratios"])  # type: ignore[attr-defined]
    # Nearest at the top, 120,000: about (1000 + 60000) / (1 - 0.95 + rate) with the
    # rate of BTC's tier at a million of notional: 1,030,000, 7.6x the price away.
    assert min(seen["distances"]) > 7  # type: ignore[type-var]


async def test_an_isolated_account_at_the_same_leverage_unhedges_on_the_rally(
    repository: Repository, clock: FakeClock
) -> None:
    seen = await run(repository, clock, balances={"BTC": "1", "USDT": "40000"})

    assert seen["guard"] != []
    assert seen["unhedged_cycles"] > 0  # type: ignore[operator]
