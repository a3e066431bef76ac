"""The database: ``db upgrade`` (the schema) and ``db prune`` (retention)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from bot.cli.common import (
    ConfigOption,
    DatabaseOption,
    fail,
    on_repository,
    resolve_url,
    run_async,
)
from bot.service.database import prepare_database
from bot.store.migrate import SchemaState, head_revision, schema_state
from bot.store.retention import PruneReport

db_app = typer.Typer(
    help="Database schema and retention commands.", no_args_is_help=True, rich_markup_mode=None
)


@db_app.command("upgrade")
def db_upgrade(config: ConfigOption = None, database_url: DatabaseOption = None) -> None:
    """Apply every pending migration."""
    url = resolve_url(config, database_url)

    async def _upgrade() -> SchemaState:
        engine = await prepare_database(url, migrate=True)
        try:
            return await schema_state(engine)
        finally:
            await engine.dispose()

    state = run_async(_upgrade)
    typer.echo(f"database schema {state.value} at revision {head_revision()}")


DURATION_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(value: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``2w``: a positive duration."""
    number, unit = value[:-1], value[-1:].lower()
    try:
        amount = float(number)
    except ValueError:
        amount = -1.0
    if unit not in DURATION_UNITS or not amount > 0:
        raise fail(f"--older-than {value!r} is not a duration; write e.g. 30d, 12h, 90m or 2w")
    return timedelta(seconds=amount * DURATION_UNITS[unit])


@db_app.command("prune")
def db_prune(
    older_than: Annotated[
        str,
        typer.Option(
            "--older-than",
            help="Remove history older than this (30d, 12h, 90m, 2w).",
            metavar="DURATION",
        ),
    ],
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    no_vacuum: Annotated[
        bool, typer.Option("--no-vacuum", help="Do not VACUUM SQLite after (space kept).")
    ] = False,
) -> None:
    """Remove old observations, decisions and holds' audit events; keep orders, fills,
    funding, transfers and the rest of the audit log (safe while the daemon runs)."""
    url = resolve_url(config, database_url)
    age = parse_duration(older_than)
    cutoff = datetime.now(UTC) - age
    report: PruneReport = on_repository(url, lambda repo: repo.prune(cutoff, vacuum=not no_vacuum))
    space = "; space given back (VACUUM)" if report.vacuumed else ""
    typer.echo(
        f"pruned before {cutoff:%Y-%m-%d %H:%M:%S} UTC: {report.decisions} decisions and "
        f"observations, {report.audit_events} audit events ({report.checkpoints} "
        f"checkpoints){space}"
    )
