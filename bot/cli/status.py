"""Reading where the pairs stand: ``status`` and ``report``."""

from __future__ import annotations

from typing import Annotated

import typer

from bot.cli import render
from bot.cli.common import (
    ConfigOption,
    DatabaseOption,
    PairOption,
    SinceOption,
    TableFormat,
    on_repository,
    parse_since,
    require_known_pair,
    resolve_url,
)
from bot.service.describe import pair_statuses


def status(
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    output: Annotated[TableFormat, typer.Option("--format", "-f")] = TableFormat.TABLE,
) -> None:
    """Per pair: spot, hedge, ratio against target, drift, last action."""
    url = resolve_url(config, database_url)
    rows = on_repository(url, pair_statuses)
    if output is TableFormat.JSON:
        render.print_json([render.status_json(r) for r in rows])
        return
    if not rows:
        typer.echo("no decisions recorded yet; is the daemon running?")
        return
    render.print_table(render.status_table(rows))


def report(
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    pair: PairOption = None,
    since: SinceOption = None,
    output: Annotated[TableFormat, typer.Option("--format", "-f")] = TableFormat.TABLE,
) -> None:
    """Per pair over the period: spot and perp PnL, funding, fees, net, hedge effectiveness."""
    url = resolve_url(config, database_url)
    since_at = parse_since(since)
    require_known_pair(config, url, pair)
    reports = on_repository(url, lambda repository: repository.report(pair, since_at))
    rows = [render.report_json(r) for r in reports]
    if output is TableFormat.JSON:
        render.print_json(rows)
        return
    if not rows:
        typer.echo("nothing recorded for that pair and period")
        return
    start = since_at.isoformat() if since_at else "the start"
    render.print_table(render.report_table(start, rows))
    for note in render.report_notes(rows):
        typer.echo(note)
