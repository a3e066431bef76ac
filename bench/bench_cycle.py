"""Measure the pure decision time per pair and a whole paper cycle for 2, 20 and 200 pairs.

Run: `make bench` (or `.venv/bin/python bench/bench_cycle.py`). Prints what it measured.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from machine import machine_line

from bot.clock import FakeClock
from bot.config import Settings
from bot.domain.models import HedgeParams, Market, Observation
from bot.domain.rebalance import decide
from bot.exchange.feeds import SimFeed
from bot.exchange.paper import PaperVenue
from bot.logging import configure_logging
from bot.service.daemon import HedgeDaemon
from bot.store.migrate import upgrade
from bot.store.repository import Repository, create_engine


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def bench_decide(iterations: int = 20000) -> tuple[float, float]:
    market = Market(
        "BTC/USDT:USDT",
        "BTC",
        "USDT",
        Decimal("0.001"),
        Decimal("0.1"),
        Decimal("0.001"),
        None,
        Decimal(5),
        Decimal(1),
        True,
    )
    params = HedgeParams(Decimal("1"), Decimal("0.05"), Decimal(10), Decimal(20000))
    samples: list[float] = []
    for i in range(iterations):
        observation = Observation(
            pair="BTC",
            spot_symbol="BTC/USDT",
            perp_symbol="BTC/USDT:USDT",
            spot_qty=Decimal("1.2345"),
            perp_qty=Decimal(-(i % 1000)) / 1000,
            price=Decimal("60000.5"),
            bid=Decimal("60000.4"),
            ask=Decimal("60000.6"),
            funding_rate=Decimal("0.0001"),
            observed_at=FakeClock().now(),
        )
        start = time.perf_counter_ns()
        decide(observation, params, market)
        samples.append((time.perf_counter_ns() - start) / 1000)
    return statistics.median(samples), percentile(samples, 0.99)


def settings_for(pairs: int, database_url: str, target: str) -> Settings:
    coins = [f"C{i:03d}" for i in range(pairs)]
    return Settings(
        database_url=database_url,
        pairs=[
            {
                "name": c,
                "spot_symbol": f"{c}/USDT",
                "perp_symbol": f"{c}/USDT:USDT",
                "target_ratio": target,
                "band": "0.02",
                "max_order_notional": "100",
                "leverage": "2",
            }
            for c in coins
        ],
        paper={"balances": {**{c: "10" for c in coins}, "USDT": str(1000 * pairs)}},
    )


async def bench_cycles(pairs: int, cycles: int, target: str) -> tuple[float, float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        config = settings_for(pairs, url, target)
        engine = create_engine(url)
        await upgrade(engine, url)
        clock = FakeClock()
        repository = Repository(engine, clock)
        venue = await PaperVenue.open(
            config.paper,
            SimFeed(config.paper.sim, 1),
            clock,
            repository,
            leverage={p.perp_symbol: p.leverage for p in config.pairs},
        )
        daemon = HedgeDaemon(config, repository, venue, clock)
        await daemon.start()
        samples: list[float] = []
        for cycle in range(1, cycles + 1):
            start = time.perf_counter()
            await daemon.run_cycle(cycle)
            samples.append((time.perf_counter() - start) * 1000)
            clock.advance(10)
        orders = len(await repository.orders())
        await engine.dispose()
    return statistics.median(samples), percentile(samples, 0.99), orders / cycles


def main() -> None:
    configure_logging("json", level=logging.WARNING)
    print(machine_line())
    median_us, p99_us = bench_decide()
    print(f"pure decision per pair: median {median_us:.1f} us, p99 {p99_us:.1f} us (20000 runs)")
    # "hold": target 0, every pair decides and records, no order (the steady state);
    # "rebalance": each pair sends and records an order every cycle (the worst case).
    for scenario, target in (("hold", "0"), ("rebalance", "1")):
        for pairs, cycles in ((2, 30), (20, 15), (200, 6)):
            median_ms, p99_ms, orders = asyncio.run(bench_cycles(pairs, cycles, target))
            print(
                f"paper cycle, {scenario:<9} {pairs:>3} pairs ({orders:.0f} orders/cycle): "
                f"median {median_ms:7.1f} ms, p99 {p99_ms:7.1f} ms, "
                f"per pair median {median_ms / pairs:.2f} ms, p99 {p99_ms / pairs:.2f} ms "
                f"({cycles} cycles, SQLite)"
            )


if __name__ == "__main__":
    main()
