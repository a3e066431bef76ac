"""Backtest throughput: one pair over one year of 1-minute bars (525,600 steps).

Run: `make bench-backtest` (or `.venv/bin/python bench/bench_backtest.py [--mode band]`).
Generates the path with scripts/make_sample_path.py (seeded) into a temporary folder, then
times each phase of `hedgebot backtest` in this process: reading the CSVs, the replay
through the daemon's cycle, the summary figures and the chart.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import machine_line

from bot.backtest.engine import coins_of, run_backtest
from bot.backtest.metrics import series, summarize
from bot.backtest.path import load_path
from bot.backtest.report import write_report
from bot.config import Settings
from bot.logging import configure_logging

ROOT = Path(__file__).resolve().parents[1]


def settings_for(rebalance: str, interval_s: int) -> Settings:
    return Settings(
        pairs=[
            {
                "name": "BTC",
                "spot_symbol": "BTC/USDT",
                "perp_symbol": "BTC/USDT:USDT",
                "target_ratio": "1",
                "band": "0.05",
                "max_order_notional": "200000",
                # Leverage 1: the year's path doubles at most, short of the liquidation price.
                "leverage": "1",
                "rebalance": rebalance,
                "rebalance_interval_s": interval_s,
            }
        ],
        paper={"balances": {"BTC": "1", "USDT": "150000"}},
        risk={"max_data_age_s": "120"},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bars", type=int, default=525_600)
    parser.add_argument("--mode", choices=["band", "interval"], default="band")
    parser.add_argument("--interval-s", type=int, default=86_400)
    args = parser.parse_args()
    configure_logging("json", level=logging.WARNING)
    print(machine_line())
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        subprocess.run(
            [
                sys.executable,
                str(ROOT / "scripts" / "make_sample_path.py"),
                "--bars",
                str(args.bars),
                "--step-seconds",
                "60",
                "--out",
                str(folder),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        settings = settings_for(args.mode, args.interval_s)
        started = time.perf_counter()
        path = load_path({"*": folder / "prices.csv"}, coins_of(settings), folder / "funding.csv")
        loaded = time.perf_counter()
        run = asyncio.run(run_backtest(settings, path))
        replayed = time.perf_counter()
        values = series(run)
        summary = summarize(run, values)
        summed = time.perf_counter()
        write_report(values, run.settings, folder / "report.png")
        drawn = time.perf_counter()
    total = drawn - started
    print(
        f"backtest, 1 pair, {len(path.steps)} steps of 60 s, rebalance {args.mode}"
        + (f" every {args.interval_s} s" if args.mode == "interval" else "")
        + f": {summary['cycles']} daemon cycles, {summary['quiet_steps']} quiet steps, "
        f"{summary['orders']} orders, {summary['liquidations']} liquidations"
    )
    print(
        f"  read CSVs {loaded - started:.2f} s, replay {replayed - loaded:.2f} s, "
        f"summary {summed - replayed:.2f} s, chart {drawn - summed:.2f} s: "
        f"total {total:.2f} s ({len(path.steps) / total:,.0f} steps/s)"
    )


if __name__ == "__main__":
    main()
