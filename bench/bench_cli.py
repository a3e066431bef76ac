"""Start-up and wall time of the commands a user types: ``status``, ``audit -n 50``,
``report``, ``plan`` and ``--help``.

Run: `make bench` (or `.venv/bin/python bench/bench_cli.py [--cycles 300] [--runs 9]`).
Makes a database with a paper daemon run of ``--cycles`` cycles (two pairs, simulated
prices) in a temporary folder, then runs each command ``--runs`` times as a fresh
``python -m bot`` process and prints the median and the fastest wall time, with the
number of modules the command imported and which of the heavy ones (ccxt, matplotlib,
alembic, the exchange code, the daemon's wiring) were among them.

``--compare DIR`` also times the ``bot`` package of another checkout (e.g. `git archive`
of an older commit unpacked in DIR) with this interpreter, its runs interleaved with this
checkout's so both see the same load on a shared machine. The CPU time (user + system)
of each process is printed too: it moves less than the wall time with the load.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import machine_line

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = [["status"], ["audit", "-n", "50"], ["report"], ["plan"], ["--help"]]
HEAVY = ("ccxt", "matplotlib", "alembic", "bot.exchange.ccxt_gateway", "bot.service.wiring")


def environment(source: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEDGEBOT_")}
    env["HEDGEBOT_HTTP__ENABLED"] = "false"  # a daemon elsewhere may hold the port
    if source is not None:
        env["PYTHONPATH"] = str(source)
    return env


def hedgebot(args: list[str], cwd: Path, env: dict[str, str], *, importtime: bool = False) -> str:
    """Run ``python -m bot ARGS``; its stderr (the import log with ``importtime``)."""
    flags = ["-X", "importtime"] if importtime else []
    result = subprocess.run(
        [sys.executable, *flags, "-m", "bot", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"hedgebot {' '.join(args)} failed:\n{result.stderr[-2000:]}")
    return result.stderr


def make_database(folder: Path, cycles: int, env: dict[str, str]) -> Path:
    """A paper run of ``cycles`` cycles into ``folder/bench.db``; the config it used."""
    text = (ROOT / "examples" / "paper.toml").read_text(encoding="utf-8")
    text = re.sub(r"(?m)^poll_interval_s = .*$", "poll_interval_s = 0.02", text)
    text = re.sub(
        r"(?m)^database_url = .*$", f'database_url = "sqlite+aiosqlite:///{folder}/bench.db"', text
    )
    config = folder / "hedgebot.toml"
    config.write_text(text, encoding="utf-8")
    started = time.perf_counter()
    hedgebot(["run", "-c", str(config), "--max-cycles", str(cycles), "--migrate"], folder, env)
    print(f"database: {cycles} paper cycles of 2 pairs in {time.perf_counter() - started:.1f} s")
    return config


def loaded_modules(log: str) -> list[str]:
    """The module names of a ``-X importtime`` log."""
    lines = [line for line in log.splitlines() if line.startswith("import time:")]
    return [line.rsplit("|", 1)[1].strip() for line in lines[1:]]


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(args: list[str], folder: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of one ``hedgebot ARGS`` process."""
    cpu, started = children_cpu(), time.perf_counter()
    hedgebot(args, folder, env)
    return time.perf_counter() - started, children_cpu() - cpu


def time_command(
    args: list[str], folder: Path, envs: dict[str, dict[str, str]], runs: int
) -> list[str]:
    """One line per package: median and fastest wall time, median CPU time, imports."""
    samples: dict[str, list[tuple[float, float]]] = {label: [] for label in envs}
    for _ in range(runs):
        for label, env in envs.items():  # interleaved: both under the same load
            samples[label].append(timed(args, folder, env))
    lines = []
    for label, env in envs.items():
        walls = [wall for wall, _ in samples[label]]
        cpus = [cpu for _, cpu in samples[label]]
        modules = loaded_modules(hedgebot(args, folder, env, importtime=True))
        heavy = [name for name in HEAVY if name in modules] or ["none"]
        command = "hedgebot " + " ".join(args)
        lines.append(
            f"{label:7} {command:21} wall median {statistics.median(walls):.3f} s "
            f"(fastest {min(walls):.3f} s), CPU median {statistics.median(cpus):.3f} s; "
            f"{len(modules)} modules imported, heavy: {', '.join(heavy)}"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=300)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--compare", type=Path, help="a checkout whose bot package to time too")
    args = parser.parse_args()
    print(machine_line())
    envs = {"this": environment(None)}
    print(f"this: {ROOT}; each command a fresh `python -m bot` process, {args.runs} runs")
    if args.compare:
        envs["compare"] = environment(args.compare.resolve())
        print(f"compare: {args.compare.resolve()}")
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        folder = Path(tmp)
        # The database comes from this checkout's daemon (the schema both versions read).
        config = make_database(folder, args.cycles, environment(None))
        for env in envs.values():
            env["HEDGEBOT_CONFIG"] = str(config)
        for command in COMMANDS:
            print("\n".join(time_command(command, folder, envs, args.runs)))
    print(f"machine after: {machine_line().removeprefix('machine: ')}")


if __name__ == "__main__":
    main()
