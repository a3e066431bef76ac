"""``bench/bench_venues.py``'s measuring functions, once each with tiny sizes on every venue,
so the benchmark cannot rot: what they return and the request counts that must hold (a
steady cycle's requests do not grow with pairs); never times."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import POSTGRES_URL

ROOT = Path(__file__).resolve().parents[2]
VENUES = ["binance", "bybit", "okx"]
TINY = 8  # markets of each kind: BTC, ETH and a few made-up coins


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    return importlib.import_module("bench_venues")


@pytest.mark.parametrize("venue", VENUES)
async def test_a_steady_cycle_sends_the_same_requests_for_one_pair_and_two(
    bench: ModuleType, venue: str
) -> None:
    async with bench.running(venue, TINY) as emulator:
        coins = bench.made_up_coins(venue, TINY)
        await emulator.fund(coins[:2])
        one = await bench.requests_per_cycle(emulator, coins[:1])
        two = await bench.requests_per_cycle(emulator, coins[:2])
        cpu = await bench.cycle_cpu(emulator, coins[:2], 1)
    assert one.total > 0
    assert one.by_endpoint == two.by_endpoint
    assert (one.pairs, two.pairs) == (1, 2)
    assert len(cpu.wall_ms) == len(cpu.cpu_ms) == 1


@pytest.mark.parametrize("venue", VENUES)
async def test_ccxt_costs_time_the_calls_the_gateway_makes(bench: ModuleType, venue: str) -> None:
    async with bench.running(venue, TINY) as emulator:
        calls = await bench.ccxt_costs(emulator, 1)
    assert {"fetch_balance", "fetch_positions", "create_order"} <= set(calls)
    # One round: one order, one balance; the tickers come in one call or more.
    assert len(calls["create_order"].cpu_ms) == 1
    assert len(calls["fetch_balance"].wall_ms) == 1
    # ccxt's unified call, or the endpoint's own method whose rows a venue module parses.
    assert any("icker" in name or name == "fetch_bids_asks" for name in calls), list(calls)


@pytest.mark.slow
@pytest.mark.parametrize("venue", VENUES)
async def test_start_up_runs_hedgebot_to_its_first_cycle_and_counts_its_requests(
    bench: ModuleType, venue: str
) -> None:
    async with bench.running(venue, TINY) as emulator:
        fresh, restart = await bench.start_ups(emulator, (1,))
    assert (fresh.returncode, restart.returncode) == (0, 0)
    assert (fresh.restart, restart.restart) == (False, True)
    assert sum(fresh.by_endpoint.values()) > 0
    assert sum(restart.by_endpoint.values()) > 0


async def test_the_cycle_cpu_on_postgres_and_the_profile_run_once(
    bench: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    profiler = importlib.import_module("profile_cycle")
    async with bench.running("bybit", TINY) as emulator:
        coins = bench.made_up_coins("bybit", TINY)
        await emulator.fund(coins[:2])
        cpu = await bench.cycle_cpu(emulator, coins[:2], 1, POSTGRES_URL)
    assert len(cpu.cpu_ms) == 1
    samples = await profiler.profile("bybit", 2, None, 5, markets=TINY)
    assert len(samples.cpu_ms) == 2
    printed = capsys.readouterr().out
    assert "bybit (SQLite) 2-pair steady cycle" in printed
    assert "Ordered by: internal time" in printed
