"""Opening hedgebot's database for a command: as it is, prepared for the daemon, or a
scratch copy. A problem the user fixes is a one-line :class:`ServiceSetupError`."""

from __future__ import annotations

from pathlib import Path

from bot.service.errors import ServiceSetupError
from bot.store.engine import AsyncEngine, make_url, url_location
from bot.store.errors import database_problem
from bot.store.migrate import SchemaState, head_revision, schema_state, upgrade
from bot.store.repository import create_engine

SCRATCH_URL = "sqlite+aiosqlite://"


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL; None for another backend or an in-memory database."""
    parsed = make_url(url)
    if (
        parsed.get_backend_name() != "sqlite"
        or not parsed.database
        or parsed.database == ":memory:"
    ):
        return None
    return Path(parsed.database)


async def open_existing(url: str) -> AsyncEngine:
    """An engine on a database that must already hold hedgebot's current schema."""
    path = sqlite_path(url)
    if path is not None and not path.exists():
        raise ServiceSetupError(
            f"no database at {path}; start the daemon with `hedgebot run` or apply the "
            "schema with `hedgebot db upgrade`"
        )
    engine = create_engine(url)
    try:
        state = await schema_state(engine)
    except Exception as exc:
        await engine.dispose()
        problem = database_problem(exc, url_location(url))
        raise ServiceSetupError(problem or f"cannot open {url_location(url)}: {exc}") from None
    if state is SchemaState.MISSING:
        await engine.dispose()
        raise ServiceSetupError("the database has no hedgebot schema; run `hedgebot db upgrade`")
    if state is SchemaState.OUTDATED:
        # Its tables lack columns this code reads (e.g. the audit hashes).
        await engine.dispose()
        raise ServiceSetupError(
            "the database schema is out of date; back it up, then run `hedgebot db upgrade`"
        )
    return engine


async def prepare_database(url: str, migrate: bool) -> AsyncEngine:
    """For the daemon: create a missing schema, refuse an outdated one unless ``migrate``."""
    path = sqlite_path(url)
    if path is not None and not path.parent.exists():
        raise ServiceSetupError(f"database directory {path.parent} does not exist; create it first")
    engine = create_engine(url)
    try:
        state = await schema_state(engine)
        if state is SchemaState.UNKNOWN:
            raise ServiceSetupError(
                "the database schema is newer than this hedgebot "
                f"(it knows up to revision {head_revision()}); upgrade hedgebot"
            )
        if state is SchemaState.OUTDATED and not migrate:
            raise ServiceSetupError(
                "the database schema is out of date; back it up, then run "
                "`hedgebot db upgrade` or start with `hedgebot run --migrate`"
            )
        if state is not SchemaState.CURRENT:
            await upgrade(engine, url)
    except Exception as exc:
        await engine.dispose()
        problem = database_problem(exc, url_location(url))
        if problem is None:
            raise
        raise ServiceSetupError(problem) from None
    except BaseException:
        await engine.dispose()
        raise
    return engine


async def open_for_reading(url: str) -> AsyncEngine:
    """The database if it exists; else a migrated in-memory one, so nothing is created."""
    path = sqlite_path(url)
    if path is None or path.exists():
        return await open_existing(url)
    engine = create_engine(SCRATCH_URL)
    await upgrade(engine, SCRATCH_URL)
    return engine


async def open_fresh(url: str) -> AsyncEngine:
    """An engine on ``url`` with the schema applied (a new database: the backtest's)."""
    engine = create_engine(url)
    try:
        await upgrade(engine, url)
    except BaseException:
        await engine.dispose()
        raise
    return engine
