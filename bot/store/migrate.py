"""Applying the Alembic migrations and telling whether a database is up to date.

Alembic (about 0.2 s to import) is imported by the functions that use it, so commands
that never look at the schema (``hedgebot --help``, ``check-config``) do not load it.
"""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

if TYPE_CHECKING:
    from alembic.config import Config


class SchemaState(StrEnum):
    MISSING = "missing"  # no hedgebot tables yet
    CURRENT = "current"
    OUTDATED = "outdated"  # migrations exist that the database has not applied
    UNKNOWN = "unknown"  # the database carries a revision this code does not know


def migrations_dir() -> Path:
    """Where the migrations live: $HEDGEBOT_MIGRATIONS_DIR, else the source tree's."""
    override = os.environ.get("HEDGEBOT_MIGRATIONS_DIR")
    candidate = Path(override) if override else Path(__file__).resolve().parents[2] / "migrations"
    if not (candidate / "env.py").is_file():
        raise FileNotFoundError(
            f"migrations not found at {candidate}; set HEDGEBOT_MIGRATIONS_DIR to the "
            "project's migrations/ folder"
        )
    return candidate


def alembic_config(database_url: str) -> Config:
    """An Alembic config that needs no alembic.ini."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    # configparser treats % as interpolation; a password may contain one.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def head_revision() -> str | None:
    """The newest migration this code ships."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def _current_revision(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


async def schema_state(engine: AsyncEngine) -> SchemaState:
    """Compare the database's revision with the newest migration."""
    async with engine.connect() as connection:
        current = await connection.run_sync(_current_revision)
    if current is None:
        return SchemaState.MISSING
    head = head_revision()
    if current == head:
        return SchemaState.CURRENT
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    known = {rev.revision for rev in script.walk_revisions()}
    return SchemaState.OUTDATED if current in known else SchemaState.UNKNOWN


async def upgrade(engine: AsyncEngine, database_url: str) -> None:
    """Apply every pending migration on the engine's database."""
    from alembic import command

    config = alembic_config(database_url)

    def _run(connection: Connection) -> None:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")

    async with engine.begin() as connection:
        await connection.run_sync(_run)
