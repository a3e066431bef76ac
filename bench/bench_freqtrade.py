"""freqtrade beside hedgebot on the same Bybit emulator (issue 14, item 6's comparison).

freqtrade runs in a virtualenv of its own (``bench/.venvs/freqtrade``, made and filled
from the package index on first use) in dry-run futures mode on Bybit with 2 pairs and a
strategy that never trades, its ccxt clients pointed at the Bybit emulator (a child
process listing about 600 spot and 600 linear markets) through ``exchange.ccxt_config``
and ``ccxt_async_config``. Prints:

- wall time from freqtrade's launch to its first completed loop (the first "Throttling
  with '_process_running()'" line its debug log writes at the end of each loop);
- its CPU per loop: the process's user+system time (``/proc/PID/stat``) over N loops / N,
  counted from the second loop;
- the requests it sent by endpoint, and those the emulator has no route for.

With ``--hedgebot``, each freqtrade start is followed by two of hedgebot's on the same
emulator (``bench_venues.start_up``: ``hedgebot run`` from its launch to its first
completed cycle, 2 pairs with the coins not held): on a fresh account (leverage and
margin mode to set, a new database) and a restart; so both are measured under the same
load, and the ratios are printed.

Run: ``.venv/bin/python bench/bench_freqtrade.py [--loops 20] [--runs 3] [--hedgebot]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from bench_venues import (  # noqa: E402
    MARGIN,
    REAL_SIZE,
    StartUp,
    VenueEmulator,
    cpu_seconds,
    endpoints,
    made_up_coins,
    running,
    start_up,
)
from machine import machine_line  # noqa: E402

FREQTRADE = "freqtrade==2026.9"
VENV = ROOT / "bench" / ".venvs" / "freqtrade"
PAIRS = ["BTC/USDT:USDT", "ETH/USDT:USDT"]
LOOP_END = "Throttling with '_process_running()'"
THROTTLE_S = 1  # freqtrade's process_throttle_secs: one loop a second

STRATEGY = '''
from pandas import DataFrame
from freqtrade.strategy import IStrategy


class BenchStrategy(IStrategy):
    """Never enters: the loop's cost without trades, as a hedged daemon mostly holds."""

    INTERFACE_VERSION = 3
    timeframe = "5m"
    can_short = True
    minimal_roi = {"0": 10}
    stoploss = -0.99
    startup_candle_count = 0

    def populate_indicators(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        return dataframe

    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["enter_long"] = 0
        dataframe["enter_short"] = 0
        return dataframe

    def populate_exit_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["exit_long"] = 0
        dataframe["exit_short"] = 0
        return dataframe
'''


def freqtrade_bin() -> Path:
    """freqtrade in its own virtualenv, installed from the package index on first use."""
    binary = VENV / "bin" / "freqtrade"
    if not binary.exists():
        import subprocess
        import venv

        print(f"installing {FREQTRADE} into {VENV} (first use)", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
        pip = [str(VENV / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, FREQTRADE], check=True)
    return binary


def config(ccxt_config: dict[str, Any], userdir: Path) -> dict[str, Any]:
    return {
        "trading_mode": "futures",
        "margin_mode": "isolated",
        "dry_run": True,
        "dry_run_wallet": 100000,
        "stake_currency": "USDT",
        "stake_amount": 1000,
        "max_open_trades": 2,
        "timeframe": "5m",
        "db_url": f"sqlite:///{userdir / 'trades.sqlite'}",
        "user_data_dir": str(userdir),
        "strategy": "BenchStrategy",
        "exchange": {
            "name": "bybit",
            "key": "",
            "secret": "",
            "enable_ws": False,
            "ccxt_config": ccxt_config,
            "ccxt_async_config": ccxt_config,
            "pair_whitelist": PAIRS,
            "pair_blacklist": [],
        },
        "pairlists": [{"method": "StaticPairList"}],
        "entry_pricing": {"price_side": "same", "use_order_book": False, "price_last_balance": 0},
        "exit_pricing": {"price_side": "same", "use_order_book": False},
        "internals": {"process_throttle_secs": THROTTLE_S, "heartbeat_interval": 0},
        "telegram": {"enabled": False, "token": "", "chat_id": ""},
        "bot_name": "bench",
        "initial_state": "running",
    }


@dataclass
class Run:
    first_loop_s: float
    cpu_per_loop_ms: float
    loops: int
    requests: Counter[str]
    unknown: Counter[str]


async def run_once(emulator: VenueEmulator, loops: int) -> Run:
    ccxt = await emulator.control("ccxt_config")
    await emulator.requests()
    with tempfile.TemporaryDirectory() as tmp:
        userdir = Path(tmp)
        (userdir / "strategies").mkdir()
        (userdir / "strategies" / "bench_strategy.py").write_text(STRATEGY)
        path = userdir / "config.json"
        path.write_text(json.dumps(config(ccxt, userdir)))
        started = time.perf_counter()
        process = await asyncio.create_subprocess_exec(
            str(freqtrade_bin()),
            *("trade", "-v", "--config", str(path), "--userdir", str(userdir)),
            cwd=userdir,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            first, cpu = await watch_loops(process, loops, started)
        finally:
            if process.returncode is None:
                process.terminate()
                await process.wait()
    requests = await emulator.requests()
    unknown = Counter(await emulator.control("unknown_requests"))
    return Run(first, cpu / loops * 1000, loops, requests, unknown)


async def watch_loops(
    process: asyncio.subprocess.Process, loops: int, started: float
) -> tuple[float, float]:
    """Seconds to the first loop's end; CPU seconds of ``loops`` loops after the first."""
    assert process.stderr is not None
    ends: list[float] = []
    cpu_marks: list[float] = []
    tail: list[str] = []
    while len(ends) < loops + 2:
        line = (await process.stderr.readline()).decode(errors="replace")
        if not line:
            raise RuntimeError("freqtrade stopped before its loops:\n" + "".join(tail[-30:]))
        tail.append(line)
        if LOOP_END in line:
            ends.append(time.perf_counter() - started)
            cpu_marks.append(cpu_seconds(process.pid))
    return ends[0], cpu_marks[-1] - cpu_marks[1]


async def hedgebot_starts(emulator: VenueEmulator, run: int, tmp: Path) -> tuple[StartUp, StartUp]:
    """hedgebot's 2-pair start on a fresh account (coins no run has touched, a new
    database), then its restart: wall and CPU seconds from launch to the first completed
    cycle."""
    coins = made_up_coins("bybit", REAL_SIZE)[2 * run : 2 * run + 2]
    database = tmp / f"hedgebot{run}.db"
    fresh = await start_up(emulator, coins, database, restart=False)
    again = await start_up(emulator, coins, database, restart=True)
    return fresh, again


async def main(loops: int, runs: int, hedgebot: bool) -> None:
    print(machine_line())
    freqtrade_bin()
    results: list[Run] = []
    ours: list[tuple[StartUp, StartUp]] = []
    async with running("bybit", REAL_SIZE) as emulator:
        await emulator.set_coin("USDT", MARGIN)
        with tempfile.TemporaryDirectory() as tmp:
            for run in range(runs):
                results.append(await run_once(emulator, loops))
                if hedgebot:
                    ours.append(await hedgebot_starts(emulator, run, Path(tmp)))
    for i, run in enumerate(results, 1):
        print(
            f"freqtrade run {i}: first loop {run.first_loop_s:.2f} s after launch; "
            f"CPU per loop {run.cpu_per_loop_ms:.1f} ms ({run.loops} loops)"
        )
    first = statistics.median(r.first_loop_s for r in results)
    cpu = statistics.median(r.cpu_per_loop_ms for r in results)
    print(
        f"freqtrade {FREQTRADE.split('==')[1]}, bybit futures dry-run, {len(PAIRS)} pairs, "
        f"{REAL_SIZE}+{REAL_SIZE} markets: launch to first loop median {first:.2f} s; "
        f"CPU per loop median {cpu:.1f} ms ({runs} runs)"
    )
    if ours:
        for i, (f, a) in enumerate(ours, 1):
            print(
                f"hedgebot run {i}: fresh account {f.wall_s:.2f} s (CPU {f.cpu_s:.2f} s), "
                f"restart {a.wall_s:.2f} s (CPU {a.cpu_s:.2f} s)"
            )
        fresh = statistics.median(f.wall_s for f, _ in ours)
        again = statistics.median(a.wall_s for _, a in ours)
        fresh_cpu = statistics.median(f.cpu_s for f, _ in ours)
        again_cpu = statistics.median(a.cpu_s for _, a in ours)
        print(
            f"hedgebot 2 pairs, launch to first completed cycle, median: fresh account "
            f"{fresh:.2f} s ({fresh / first:.2f} x freqtrade's, CPU {fresh_cpu:.2f} s), "
            f"restart {again:.2f} s ({again / first:.2f} x, CPU {again_cpu:.2f} s)"
        )
    last = results[-1]
    print(f"freqtrade requests (last run): {endpoints(last.requests)}")
    print(f"requests the emulator does not know: {endpoints(last.unknown) or 'none'}")
    print(machine_line().split("; ")[-1] + " at the end")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loops", type=int, default=20, help="loops to measure CPU over")
    parser.add_argument("--runs", type=int, default=3, help="freqtrade starts")
    parser.add_argument(
        "--hedgebot", action="store_true", help="hedgebot's 2-pair starts after each"
    )
    args = parser.parse_args()
    asyncio.run(main(args.loops, args.runs, args.hedgebot))
