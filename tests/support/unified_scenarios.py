"""Spot as collateral through the daemon (issue 15 items 2 and 4), shared by the venues
whose emulators model a unified or multi-currency margin account (Bybit's cross UTA,
OKX's account level 3): 1 BTC and little USDT, ``BTC/USDT:USDT`` shorted cross at
target 1, the coins backing their own short at the venue's haircut.

``rides_through_the_moves`` takes the hedge through +50 % and +100 % within a day, back,
and -50 % from the start, a cycle per step and a funding settlement after each: no
liquidation, the ratio back in the band after every cycle, the short never cut, and the
report's spot + perp + funding - fees equal to the account's change in value.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from bot.config import Settings
from bot.store.repository import Repository
from tests.support.daemon_stack import DaemonStack, daemon_stacks

D = Decimal
PERP = "BTC/USDT:USDT"
BAND = D("0.02")
START = D(60000)
# +50 % and +100 % within a day (a cycle per step), back, then -50 % from the start.
PATH = [D(p) for p in (75000, 90000, 105000, 120000, 90000, 60000, 45000, 30000)]


@dataclass(frozen=True)
class UnifiedAccount:
    """What a scenario steers and reads on one venue's emulator."""

    set_price: Callable[[Decimal], None]
    settle_funding: Callable[[], None]
    short: Callable[[], Decimal]  # the short in BTC, positive
    coins: Callable[[], Decimal]  # the BTC held
    value: Callable[[], Decimal]  # every coin at its full USD value, PnL included
    liquidations: Callable[[], list[Any]]

    def ratio(self) -> Decimal:
        """The hedge ratio: the short over the coins."""
        return self.short() / self.coins()


def settings(account: dict[str, Any], leverage: str) -> Settings:
    """One BTC pair at target 1, cross margin, ``leverage``, on ``account``."""
    return Settings.model_validate(
        {
            "mode": "testnet",
            "poll_interval_s": 1,
            "pairs": [
                {
                    "name": "BTC",
                    "spot_symbol": "BTC/USDT",
                    "perp_symbol": PERP,
                    "target_ratio": "1",
                    "band": str(BAND),
                    "min_notional": "0",
                    "max_order_notional": "200000",
                    "leverage": leverage,
                    "margin_mode": "cross",
                }
            ],
            "accounts": {"main": account},
            "risk": {
                "max_data_age_s": "30",
                "order_settle_s": "1",
                "max_leverage": "5",
                "min_liquidation_distance": "0.2",
            },
        }
    )


@asynccontextmanager
async def stack_builder(
    repository: Repository, account: dict[str, Any]
) -> AsyncIterator[Callable[[str], Awaitable[DaemonStack]]]:
    """``build(leverage)`` starts a daemon on ``account`` that reads funding each cycle."""
    async with daemon_stacks(repository) as start:

        async def build(leverage: str) -> DaemonStack:
            stack = await start(settings(account, leverage))
            stack.gateway.funding_poll = timedelta(0)
            return stack

        yield build


async def guard_decisions(stack: DaemonStack) -> list[Any]:
    """The liquidation guard's decisions so far."""
    decisions = await stack.repository.audit_events(kind="decision")
    return [e for e in decisions if e.summary.startswith("liquidation guard")]


async def rides_through_the_moves(stack: DaemonStack, venue: UnifiedAccount) -> list[Decimal]:
    """The scenario of the module docstring; each step's liquidation distance."""
    start_value = venue.value()
    assert await stack.cycles(2) == [{}, {}]
    assert abs(venue.ratio() - 1) <= BAND
    short = venue.short()
    distances = []
    for price in PATH:
        venue.set_price(price)
        assert await stack.cycles(1) == [{}]
        assert abs(venue.ratio() - 1) <= BAND, (price, venue.ratio())
        position = (await stack.gateway.fetch_positions([PERP]))[PERP]
        assert position.liquidation_price is not None
        distances.append((position.liquidation_price - price) / price)
        venue.settle_funding()  # the short receives the positive rate, in USDT
    assert await stack.cycles(1) == [{}]  # the last funding recorded
    assert venue.liquidations() == []
    assert venue.short() == short  # one opening order: never cut
    assert await guard_decisions(stack) == []
    [report] = await stack.repository.report("BTC")
    change = venue.value() - start_value
    assert report.funding > 0
    assert abs(report.net - change) < D("0.01"), (report, change)
    return distances
