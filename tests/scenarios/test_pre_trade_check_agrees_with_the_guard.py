"""The pre-trade check and the liquidation guard agree: an order the guard would undo at
once is not sent.

A 5x short on a market 10 bp wide, with risk.min_liquidation_distance 0.1948: the config
check (a short opened at the mark, in the first maintenance tier) passes, but the
rebalance sells at the bid, 5 bp under the mark, and the short's size puts it in the
second tier: it opens about 0.194 from its liquidation price, inside the guard's
distance. Before the pre-trade estimate, on 20 cycles at a steady price the guard closed
the short 9 times and the rebalance reopened it 9 times (18 orders); fees and the spread
took 1080 of the 13000 USDT until the equity cap denied the next short (cycles 19 and 20),
and the coin was unhedged every other cycle.
"""

from __future__ import annotations

import re
from decimal import Decimal

from bot.clock import FakeClock
from bot.exchange.feeds import ManualFeed
from bot.store.repository import Repository
from tests.support import builders
from tests.support.builders import open_daemon

D = Decimal
CYCLES = 20


async def test_an_opening_short_inside_the_guard_distance_is_denied_and_never_churned(
    repository: Repository, clock: FakeClock
) -> None:
    config = builders.settings(
        [builders.pair(leverage="5")],
        {"min_liquidation_distance": "0.1948"},
        # 13000 USDT for a 60000 hedge: the lowest leverage that covers it is the pair's 5x.
        balances={"BTC": "1", "USDT": "13000"},
        spread_bps="10",
    )
    daemon, venue = await open_daemon(config, repository, clock, ManualFeed({"BTC": D(60000)}))
    for cycle in range(1, CYCLES + 1):
        report = await daemon.run_cycle(cycle)
        assert not report.errors, report.errors
        assert report.actions["BTC"] == "denied"  # denied every cycle
        clock.advance(10)

    decisions = await repository.audit_events(kind="decision")
    guard_actions = [e for e in decisions if e.summary.startswith("liquidation guard")]
    orders = await repository.orders()
    # Before the fix: 20 orders (10 opening shorts, 10 guard closes) and 10 guard actions.
    assert len(guard_actions) <= 1
    assert orders == []
    assert venue.liquidations() == []

    # The same veto on unchanged inputs is stored once, then as heartbeats (issue 16).
    denied = await repository.audit_events(kind="risk.denied")
    assert len(denied) == 1
    # The short would open at the bid 59970 with 59970 / 5 of margin. Its notional at the
    # liquidation price is above 50000, BTCUSDT's second tier (rate 0.5 %, amount 50):
    # Binance's formula puts the liquidation at (11994 + 50 + 59970) / 1.005 = 71655.72.
    expected = (D(59970) * D("1.2") + 50) / D("1.005")
    summary = denied[0].summary
    match = re.search(r"estimated liquidation price ([0-9.]+) after the order", summary)
    assert match is not None, summary
    assert abs(D(match.group(1)) - expected) < D("0.01")
    distance = (expected - D(60000)) / D(60000)
    assert f"{distance:.4f} from the mark 60000" in summary
    assert "< min_liquidation_distance 0.1948" in summary
