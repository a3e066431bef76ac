"""The database engine hedgebot uses, with its per-backend settings.

Code outside the store takes the engine type and URL parser from here, so SQLAlchemy
stays behind ``bot/store/``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from bot.config_view import DatabaseUrlError, normalize_database_url

__all__ = [
    "SQLITE_ONE_STATEMENT",
    "SQLITE_WRITE",
    "AsyncEngine",
    "DatabaseUrlError",
    "create_engine",
    "database_location",
    "make_url",
    "normalize_database_url",
    "url_location",
]


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    # WAL lets `status` and `audit` read while the daemon writes; the busy timeout
    # makes a concurrent writer wait instead of failing at once.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
    # Transactions are begun by _sqlite_begin, not by the driver's implicit BEGIN.
    dbapi_connection.isolation_level = None


# A write transaction on SQLite starts with BEGIN IMMEDIATE: it takes the write lock
# (waiting up to the busy timeout) before it reads anything, so another process's
# writer (a `hedgebot pause` beside the daemon) cannot commit between the audit chain's
# read of the newest hash and the append after it. A deferred BEGIN would fail the
# upgrade from reading to writing at once ("database is locked"), or fork the chain.
SQLITE_WRITE = "hedgebot_write"


# A read of one statement needs no BEGIN on SQLite: the statement is its own read
# transaction (the driver is in autocommit mode), so its rows are one snapshot anyway.
# The daemon's per-cycle reads skip the BEGIN and its driver round trips.
SQLITE_ONE_STATEMENT = "hedgebot_one_statement"


def _sqlite_begin(conn: Connection) -> None:
    options = conn.get_execution_options()
    if options.get(SQLITE_ONE_STATEMENT, False):
        return
    conn.exec_driver_sql("BEGIN IMMEDIATE" if options.get(SQLITE_WRITE, False) else "BEGIN")


def create_engine(database_url: str, *, schema: str | None = None) -> AsyncEngine:
    """An async engine with the per-backend settings hedgebot relies on.

    ``schema`` (Postgres only) puts every table in that schema, via the search path.
    """
    database_url = normalize_database_url(database_url)
    if database_url.startswith("sqlite"):
        engine = create_async_engine(database_url)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    connect_args: dict[str, Any] = {}
    if schema is not None:
        connect_args["server_settings"] = {"search_path": schema}
    # A server may drop idle connections; ping before use rather than fail a cycle.
    return create_async_engine(database_url, pool_pre_ping=True, connect_args=connect_args)


def database_location(engine: AsyncEngine) -> str:
    """Which database the engine opens, for a message: backend, host, port and name;
    never the user or the password."""
    return url_location(engine.url)


def url_location(url: str | URL) -> str:
    """:func:`database_location` of a URL."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return f"sqlite database {parsed.database or ':memory:'}"
    host = parsed.host or "localhost"
    port = f":{parsed.port}" if parsed.port else ""
    return f"{backend} database {parsed.database or ''} at {host}{port}"
