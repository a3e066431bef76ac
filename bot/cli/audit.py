"""The audit log: ``audit`` (list or follow), ``audit verify`` and ``audit export``."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
import signal
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, TextIO

import typer

from bot.cli import render
from bot.cli.common import (
    ConfigOption,
    DatabaseOption,
    PairOption,
    SinceOption,
    fail,
    on_repository,
    parse_since,
    require_known_pair,
    resolve_url,
    run_async,
    with_repository,
)
from bot.cli.render import AuditFormat
from bot.domain.words import plural
from bot.store.audit import ChainReport, verify_chain
from bot.store.repository import AuditEvent, Repository

audit_app = typer.Typer(
    help="The audit log, oldest first (with no subcommand); verify, export.",
    invoke_without_command=True,
    rich_markup_mode=None,
)

KindOption = Annotated[
    str | None,
    typer.Option("--kind", "-k", help="Kind or kind prefix, e.g. order.", metavar="KIND"),
]
AUDIT_PAGE = 500  # events read per query when streaming (follow, export, verify)


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Which events a listing, a follow or an export reads."""

    pair: str | None
    kind: str | None
    since: datetime | None

    async def page(self, repository: Repository, after: int) -> list[AuditEvent]:
        """The next page of matching events after id ``after``, oldest first."""
        return await repository.audit_page(after, AUDIT_PAGE, self.pair, self.kind, self.since)

    async def newest(self, repository: Repository, limit: int | None) -> list[AuditEvent]:
        """The matching events (the newest ``limit`` of them), oldest first."""
        return await repository.audit_events(self.pair, self.kind, self.since, limit)


@audit_app.callback()
def audit(
    ctx: typer.Context,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    pair: PairOption = None,
    kind: KindOption = None,
    since: SinceOption = None,
    limit: Annotated[int | None, typer.Option("--limit", "-n", min=1, help="Newest N.")] = None,
    output: Annotated[AuditFormat, typer.Option("--format", "-f")] = AuditFormat.TABLE,
    follow: Annotated[
        bool, typer.Option("--follow", help="Keep printing new events until Ctrl-C/SIGTERM.")
    ] = False,
    interval: Annotated[
        float, typer.Option("--interval", min=0.05, help="Seconds between polls (--follow).")
    ] = 1.0,
) -> None:
    """The audit log, oldest first; `verify` checks its hash chain, `export` writes it."""
    if ctx.invoked_subcommand is not None:
        return
    url = resolve_url(config, database_url)
    where = EventFilter(pair, kind, parse_since(since))
    require_known_pair(config, url, pair)
    if follow:
        run_async(lambda: _follow(url, where, limit, output, interval))
        return
    events = on_repository(url, lambda repository: where.newest(repository, limit))
    if output is AuditFormat.CSV:
        render.csv_header()
    render.print_events(events, output, follow=False)


async def _follow(
    url: str, where: EventFilter, limit: int | None, output: AuditFormat, interval: float
) -> None:
    """Print the matching events, then poll for newer ones (by id) until a signal."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    async def tail(repository: Repository) -> None:
        if output is AuditFormat.CSV:
            render.csv_header()
        last_id = 0
        if limit is not None:
            newest = await where.newest(repository, limit)
            render.print_events(newest, output, follow=True)
            # Appends are serialized and committed in id order, so polling by id
            # never skips an event.
            last_id = newest[-1].id if newest else 0
        while not stop.is_set():
            page = await where.page(repository, last_id)
            if page:
                render.print_events(page, output, follow=True)
                last_id = page[-1].id
                if len(page) == AUDIT_PAGE:
                    continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)

    await with_repository(url, tail)


def _parse_anchor(value: str | None) -> tuple[int, str] | None:
    if value is None:
        return None
    event_id, _, digest = value.partition(":")
    if not event_id.isdigit() or len(digest) != 64:
        raise fail(
            f"--anchor {value!r} is not ID:HASH; pass the `head` that verify printed, "
            "e.g. 1234:3f2a… (64 hex digits)"
        )
    return int(event_id), digest.lower()


@audit_app.command("verify")
def audit_verify(
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    anchor: Annotated[
        str | None,
        typer.Option(
            "--anchor",
            help="ID:HASH of a head recorded earlier; fails if it was rewritten.",
            metavar="ID:HASH",
        ),
    ] = None,
) -> None:
    """Walk the audit hash chain: exit 0 if every event matches, 1 at the first that does not."""
    url = resolve_url(config, database_url)
    anchored = _parse_anchor(anchor)
    report: ChainReport = on_repository(url, lambda repository: verify_chain(repository, anchored))
    if report.broken is not None:
        before = plural(report.intact, "event")
        verb = "is" if report.intact == 1 else "are"
        raise fail(f"{report.broken.describe()}; {before} before it {verb} intact", 1)
    if report.anchor_problem is not None:
        raise fail(report.anchor_problem, 1)
    if report.head_id is None:
        typer.echo("audit chain intact: 0 events")
        return
    events = plural(report.intact, "event")
    typer.echo(f"audit chain intact: {events} (#{report.first_id} to #{report.head_id})")
    if report.resumed:
        # db prune removed holds' events; the walk went on from the recorded checkpoints.
        typer.echo(f"verified across {plural(report.resumed, 'checkpoint')} of pruned events")
    # Kept elsewhere (a note, a ticket, another machine), the head makes a rewrite of
    # the chain detectable: `verify --anchor ID:HASH`.
    typer.echo(f"head {report.head_id}:{report.head_hash}")
    if anchored is not None:
        typer.echo(f"anchor #{anchored[0]} matches")


class ExportFormat(StrEnum):
    JSONL = "jsonl"
    CSV = "csv"


@audit_app.command("export")
def audit_export(
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write.", metavar="FILE")],
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    file_format: Annotated[ExportFormat, typer.Option("--format", "-f")] = ExportFormat.JSONL,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    pair: PairOption = None,
    kind: KindOption = None,
    since: SinceOption = None,
) -> None:
    """Write the audit events (with their hashes) to a JSON-lines or CSV file."""
    url = resolve_url(config, database_url)
    where = EventFilter(pair, kind, parse_since(since))
    require_known_pair(config, url, pair)
    if output.exists() and not force:
        raise fail(f"{output} already exists; pass --force to overwrite it")
    if not output.parent.is_dir():
        raise fail(f"directory {output.parent} does not exist; create it first")
    partial = output.with_name(f".{output.name}.partial")
    with partial.open("w", encoding="utf-8", newline="") as handle:
        try:
            count = on_repository(
                url, lambda repository: _export(repository, handle, file_format, where)
            )
        except BaseException:
            handle.close()
            partial.unlink(missing_ok=True)
            raise
    partial.replace(output)
    typer.echo(f"exported {count} audit events to {output}", err=True)


async def _export(
    repository: Repository, handle: TextIO, file_format: ExportFormat, where: EventFilter
) -> int:
    """Stream the matching events to ``handle``, a page at a time; returns how many."""
    writer = csv.writer(handle, lineterminator="\n")
    if file_format is ExportFormat.CSV:
        writer.writerow([*render.CSV_HEADER, "prev_hash", "hash"])
    count, after = 0, 0
    while page := await where.page(repository, after):
        for event in page:
            if file_format is ExportFormat.CSV:
                writer.writerow([*render.csv_row(event), event.prev_hash, event.hash])
            else:
                row = {**render.event_json(event), "prev_hash": event.prev_hash, "hash": event.hash}
                handle.write(json.dumps(row, sort_keys=True) + "\n")
        count += len(page)
        after = page[-1].id
    return count
