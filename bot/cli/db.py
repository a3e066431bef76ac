"""The database schema: ``db upgrade``."""

from __future__ import annotations

import typer

from bot.cli.common import ConfigOption, DatabaseOption, resolve_url, run_async
from bot.service.database import prepare_database
from bot.store.migrate import SchemaState, head_revision, schema_state

db_app = typer.Typer(help="Database schema commands.", no_args_is_help=True, rich_markup_mode=None)


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
