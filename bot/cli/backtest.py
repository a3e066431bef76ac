"""``backtest``: a recorded price path through the daemon's own cycle on the paper venue."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console

from bot.cli import render
from bot.cli.common import ConfigOption, fail, load, parse_time
from bot.config import Settings
from bot.exchange.gateway import FatalError
from bot.logging import configure_logging

if TYPE_CHECKING:
    from bot.backtest.path import RecordedPath

T = TypeVar("T")
TIME_EXAMPLE = "2026-01-05T00:00:00Z"


def backtest(
    prices: Annotated[
        list[str],
        typer.Option(
            "--prices",
            help="Price CSV (timestamp,price[,funding_rate]); COIN=FILE per coin, repeatable.",
        ),
    ],
    config: ConfigOption = None,
    funding: Annotated[
        Path | None,
        typer.Option(
            "--funding",
            help="Funding CSV (timestamp,funding_rate) for every perp.",
            metavar="FILE",
        ),
    ] = None,
    start: Annotated[
        str | None,
        typer.Option(
            "--from", help="First time replayed (ISO 8601, UTC if naive).", metavar="TIME"
        ),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option("--to", help="Last time replayed (ISO 8601, UTC if naive).", metavar="TIME"),
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", help="Folder for summary.json and report.png.", metavar="DIR")
    ] = Path("backtest-out"),
    compare: Annotated[
        bool,
        typer.Option("--compare", help="Run band vs interval rebalancing (and every strategy)."),
    ] = False,
) -> None:
    """Replay a recorded price path through the daemon's own cycle on the paper venue."""
    settings = load(config)
    configure_logging("json", level=logging.WARNING)
    path = _load_path(settings, prices, funding, start, end)
    if compare:
        _compare(settings, path)
    else:
        _single(settings, path, out)


def _load_path(
    settings: Settings, prices: list[str], funding: Path | None, start: str | None, end: str | None
) -> RecordedPath:
    from bot.backtest.engine import coins_of
    from bot.backtest.path import load_path, parse_price_args
    from bot.exchange.feeds import FeedError

    try:
        return load_path(
            parse_price_args(prices),
            coins_of(settings),
            funding,
            parse_time("--from", start, TIME_EXAMPLE),
            parse_time("--to", end, TIME_EXAMPLE),
        )
    except FeedError as exc:
        raise fail(f"backtest: {exc}") from None


def _single(settings: Settings, path: RecordedPath, out: Path) -> None:
    from bot.backtest.command import REPORT_FILE, SUMMARY_FILE
    from bot.backtest.command import backtest as run_one

    steps = len(path.steps)
    with render.progress(Console(stderr=True)) as bar:
        task = bar.add_task("backtest", total=steps) if bar else None

        def advance(index: int) -> None:
            if bar is not None and task is not None:
                bar.update(task, completed=index)

        summary = _backtest_call(lambda: run_one(settings, path, out, advance))
    typer.echo(render.backtest_summary(steps, summary, out / SUMMARY_FILE, out / REPORT_FILE))


def _compare(settings: Settings, path: RecordedPath) -> None:
    from bot.backtest.command import COMPARE_COLUMNS, compare_row
    from bot.backtest.command import compare as run_all

    steps = len(path.steps)
    with render.progress(Console(stderr=True)) as bar:
        tasks: dict[str, Any] = {}

        def advance_named(name: str, index: int) -> None:
            if bar is None:
                return
            if name not in tasks:
                tasks[name] = bar.add_task(name, total=steps)
            bar.update(tasks[name], completed=index)

        results = _backtest_call(lambda: run_all(settings, path, advance_named))
    table = render.table(
        f"{steps} steps, {path.steps[0].isoformat()} to {path.steps[-1].isoformat()}",
        "configuration",
        *(name for name, _ in COMPARE_COLUMNS),
    )
    for name, result in results:
        table.add_row(name, *compare_row(result))
    render.print_table(table)


def _backtest_call(work: Callable[[], T]) -> T:
    try:
        return work()
    except FatalError as exc:  # the config asks for what the paper venue cannot do
        raise fail(f"backtest: {exc}") from None
