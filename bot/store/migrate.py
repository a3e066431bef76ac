"""Applying the Alembic migrations and telling whether a database is up to date.

Alembic (about 0.1 s to import, and as much again to load the migration scripts) is
imported by the functions that apply migrations or explain an unusual schema. The common
check, a database at the newest revision, reads the ``alembic_version`` table and the
revision ids of the migration files directly, so read commands (``status``, ``audit``,
``report``) never load Alembic.
"""

from __future__ import annotations

import os
import re
import sysconfig
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

if TYPE_CHECKING:
    from alembic.config import Config


class SchemaState(StrEnum):
    MISSING = "missing"  # no hedgebot tables yet
    CURRENT = "current"
    OUTDATED = "outdated"  # migrations exist that the database has not applied
    UNKNOWN = "unknown"  # the database carries a revision this code does not know


VERSION_TABLE = "alembic_version"  # Alembic's default; migrations/env.py keeps it
# `revision = "0007"` / `down_revision: str | None = "0005"` in a migration script.
_REVISION_LINE = re.compile(
    r"^(down_revision|revision)\s*(?::[^=\n]*)?=\s*(?:[\"']([^\"']+)[\"']|None)\s*$", re.MULTILINE
)


def installed_migrations_dir() -> Path:
    """Where a (non-editable) install puts the migrations: ``<prefix>/share/hedgebot/migrations``
    (pyproject.toml's data-files)."""
    return Path(sysconfig.get_path("data")) / "share" / "hedgebot" / "migrations"


def migrations_dir() -> Path:
    """Where the migrations live: $HEDGEBOT_MIGRATIONS_DIR, else the source tree's (a
    checkout or an editable install), else the installed copy."""
    override = os.environ.get("HEDGEBOT_MIGRATIONS_DIR")
    if override:
        candidates = [Path(override)]
    else:
        source_tree = Path(__file__).resolve().parents[2] / "migrations"
        candidates = [source_tree, installed_migrations_dir()]
    for candidate in candidates:
        if (candidate / "env.py").is_file():
            return candidate
    raise FileNotFoundError(
        f"migrations not found at {' or '.join(map(str, candidates))}; set "
        "HEDGEBOT_MIGRATIONS_DIR to the project's migrations/ folder"
    )


def script_head() -> str | None:
    """The newest revision, read from the migration scripts without Alembic; None when
    they do not form one simple chain (a merge, a branch), which Alembic then sorts out."""
    revisions: dict[str, str | None] = {}
    for path in sorted((migrations_dir() / "versions").glob("*.py")):
        found = {m[1]: m[2] for m in _REVISION_LINE.finditer(path.read_text(encoding="utf-8"))}
        revision = found.get("revision")
        if revision is None or "down_revision" not in found:
            return None
        revisions[revision] = found.get("down_revision")
    heads = set(revisions) - {down for down in revisions.values() if down is not None}
    return heads.pop() if len(heads) == 1 else None


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
    head = script_head()
    if head is not None:
        return head
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def _current_revision(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def _stored_revisions(connection: Connection) -> list[str] | None:
    """The rows of the version table; None when there is no version table."""
    if not inspect(connection).has_table(VERSION_TABLE):
        return None
    rows = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))  # noqa: S608
    return [str(row[0]) for row in rows]


async def schema_state(engine: AsyncEngine) -> SchemaState:
    """Compare the database's revision with the newest migration. A database at the
    newest revision, or with none (a new one), is told without Alembic; anything else
    asks Alembic."""
    async with engine.connect() as connection:
        stored = await connection.run_sync(_stored_revisions)
        if stored is not None and len(stored) == 1 and stored[0] == script_head():
            return SchemaState.CURRENT
        if not stored:  # no version table, or an empty one: nothing applied yet
            return SchemaState.MISSING
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
    """Apply every pending migration on the engine's database. An empty database (no
    table at all) gets the newest schema in one step instead (:func:`_create_schema`)."""
    head = script_head()

    def _run(connection: Connection) -> None:
        if head is not None and not inspect(connection).get_table_names():
            _create_schema(connection, head)
            return
        from alembic import command

        config = alembic_config(database_url)
        config.attributes["connection"] = connection
        command.upgrade(config, "head")

    async with engine.begin() as connection:
        await connection.run_sync(_run)


def _create_schema(connection: Connection, head: str) -> None:
    """The schema of revision ``head`` on an empty database, built from the tables'
    metadata and stamped as Alembic stamps it (its version table, one row), without
    loading Alembic or running the migrations one by one (0.1-0.3 s of a fresh start).
    The schema is the migrations' own: tests/integration/test_schema_create.py compares
    every table, column, type, default, index and constraint on SQLite and Postgres."""
    from sqlalchemy import Column, MetaData, PrimaryKeyConstraint, String, Table

    from bot.store.tables import Base

    Base.metadata.create_all(connection)
    version = Table(
        VERSION_TABLE,
        MetaData(),
        Column("version_num", String(32), nullable=False),
        PrimaryKeyConstraint("version_num", name=f"{VERSION_TABLE}_pkc"),
    )
    version.create(connection)
    connection.execute(version.insert().values(version_num=head))
