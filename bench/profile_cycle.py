"""Where a steady 2-pair cycle's CPU goes, per venue: the daemon of ``bench_venues.py``
(its set-up: the venue's emulator in a child process with a real-sized market list, the
real ccxt client) runs a few steady cycles, then ``--cycles`` more under cProfile, and
this prints the CPU per cycle (median, p99; measured without the profiler) and the
profile's top functions by their own time and by cumulative time.

Run: ``.venv/bin/python bench/profile_cycle.py --venue bybit [--cycles 200]
[--postgres postgresql+asyncpg://postgres@127.0.0.1:5432/test] [--top 40]``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import logging
import pstats
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_venues import (  # noqa: E402
    REAL_SIZE,
    VENUES,
    Samples,
    daemon_on,
    made_up_coins,
    running,
    timing,
)
from machine import machine_line  # noqa: E402

from bot.logging import configure_logging  # noqa: E402

WARM_UP = 3  # steady cycles before the measured ones


async def profile(
    venue: str, cycles: int, postgres: str | None, top: int, markets: int = REAL_SIZE
) -> Samples:
    """Prints the CPU figures and (``top`` above 0) the profile; returns the samples.
    ``top`` 0: the figures only (to run under ``py-spy record``, say)."""
    async with running(venue, markets) as emulator:
        coins = made_up_coins(venue, markets)[:2]
        await emulator.fund(coins)
        async with daemon_on(emulator, coins, postgres) as built:
            run = built.daemon.run_cycle
            for cycle in range(1, 3 + WARM_UP):
                await run(cycle)
            samples = Samples()
            base = 3 + WARM_UP
            for cycle in range(base, base + cycles):
                with timing(samples):
                    report = await run(cycle)
                if report.errors:
                    raise RuntimeError(f"cycle errors: {report.errors}")
            database = "Postgres" if postgres else "SQLite"
            print(f"{venue} ({database}) 2-pair steady cycle: {samples.line()}")
            if top == 0:
                return samples
            profiler = cProfile.Profile(time.process_time)  # CPU, not the waits
            base += cycles
            profiler.enable()
            for cycle in range(base, base + cycles):
                await run(cycle)
            profiler.disable()
    stats = pstats.Stats(profiler, stream=sys.stdout)
    stats.strip_dirs().sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--venue", choices=VENUES, default="bybit")
    parser.add_argument("--cycles", type=int, default=100)
    parser.add_argument("--postgres", metavar="URL", help="a fresh schema on this server")
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    configure_logging("json", level=logging.ERROR)
    print(machine_line())
    asyncio.run(profile(args.venue, args.cycles, args.postgres, args.top))


if __name__ == "__main__":
    main()
