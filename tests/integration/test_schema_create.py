"""An empty database gets the newest schema in one step (the tables' metadata, stamped at
the newest revision as Alembic stamps it): the very schema the migrations build one by
one, on SQLite and on Postgres. Compared: every table, its columns in order (type,
nullability, default, autoincrement/identity), primary key, foreign keys, indexes, unique
and check constraints, and Alembic's version table with its row."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.store.migrate import schema_state, script_head, upgrade
from bot.store.repository import create_engine
from tests.conftest import Backend, _create_on_postgres, _postgres
from tests.support.migrations import migrate_one_by_one


@pytest.fixture
def other_backend(backend: Backend, tmp_path: Path) -> Iterator[Backend]:
    """A second empty database on the same backend (a schema of its own on Postgres)."""
    if backend.schema is None:
        yield Backend("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'other.db'}")
        return
    schema = f"t_{uuid.uuid4().hex[:16]}"
    _create_on_postgres(f'CREATE SCHEMA "{schema}"')
    try:
        yield Backend("postgres", backend.url, schema)
    finally:
        asyncio.run(_postgres(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest_asyncio.fixture
async def other(other_backend: Backend) -> AsyncIterator[tuple[AsyncEngine, str]]:
    engine = create_engine(other_backend.url, schema=other_backend.schema)
    yield engine, other_backend.url
    await engine.dispose()


@pytest_asyncio.fixture
async def empty(backend: Backend) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(backend.url, schema=backend.schema)
    yield engine
    await engine.dispose()


def _describe(connection: Connection) -> dict[str, Any]:
    found = inspect(connection)
    schema: dict[str, Any] = {}
    for table in sorted(found.get_table_names()):
        schema[table] = {
            "columns": [
                sorted((k, repr(v)) for k, v in c.items()) for c in found.get_columns(table)
            ],
            "primary key": found.get_pk_constraint(table),
            "foreign keys": sorted(map(repr, found.get_foreign_keys(table))),
            "indexes": sorted(map(repr, found.get_indexes(table))),
            "uniques": sorted(map(repr, found.get_unique_constraints(table))),
            "checks": sorted(map(repr, found.get_check_constraints(table))),
        }
    schema["version rows"] = [
        str(row[0]) for row in connection.execute(text("SELECT version_num FROM alembic_version"))
    ]
    return schema


async def described(engine: AsyncEngine) -> dict[str, Any]:
    async with engine.connect() as connection:
        return await connection.run_sync(_describe)


async def test_an_empty_database_gets_the_migrations_schema_in_one_step(
    backend: Backend, empty: AsyncEngine, other: tuple[AsyncEngine, str]
) -> None:
    await upgrade(empty, backend.url)  # the one step
    migrated, url = other
    await migrate_one_by_one(migrated, url)

    one_step = await described(empty)
    assert len(one_step) > 10  # every table of the store, not an empty comparison
    assert one_step["version rows"] == [script_head()]
    assert one_step == await described(migrated)
    assert (await schema_state(empty)).value == "current"


async def test_a_database_with_tables_is_migrated_one_by_one_to_the_same_schema(
    backend: Backend, empty: AsyncEngine, other: tuple[AsyncEngine, str]
) -> None:
    await migrate_one_by_one(empty, backend.url, "0009")
    await upgrade(empty, backend.url)  # 0010 only, through Alembic
    one_step, url = other
    await upgrade(one_step, url)

    assert await described(empty) == await described(one_step)
