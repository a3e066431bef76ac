"""Which daemons may share a database.

SQLite takes one daemon (a file lock). Postgres takes several in testnet and live mode:
they lease the pairs among themselves (bot/store/leases.py). In paper mode the simulated
venue's account lives in the daemon's memory, so Postgres takes one paper daemon too.
A daemon that may not start is refused with one line, never raced.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TextIO

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.store.leases import instance_lock_key

# Postgres advisory lock key: "hedgebot" as a 64-bit number, the same in every process.
ADVISORY_KEY = int.from_bytes(b"hedgebot", "big") & 0x7FFFFFFFFFFFFFFF


def runs_alone(database_url: str, mode: str) -> bool:
    """Whether a daemon on this database is the only one (it holds the daemon lock)."""
    return make_url(database_url).get_backend_name() == "sqlite" or mode == "paper"


class InstanceLockedError(Exception):
    """Another hedgebot daemon holds this database."""


def _lock_file(lock_path: Path, database: str) -> TextIO:
    handle = lock_path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise InstanceLockedError(
            f"another hedgebot (pid {holder}) is running on {database}; SQLite takes one "
            "daemon: stop it first, or use Postgres"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


@contextlib.asynccontextmanager
async def single_instance(
    engine: AsyncEngine, database_url: str, shared: bool = False, instance_id: str = ""
) -> AsyncIterator[None]:
    """Hold the database's daemon lock while the block runs; refuse if it is taken.

    ``shared``: daemons lease pairs, so on Postgres none is refused (SQLite still is);
    the daemon holds a lock of its own instead, which tells the others it is alive.
    """
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            yield
            return
        handle = _lock_file(Path(f"{url.database}.lock"), url.database)
        try:
            yield
        finally:
            handle.close()  # closing releases the lock; so does the process dying
        return
    if shared:
        async with engine.connect() as conn:
            key = instance_lock_key(instance_id)
            await conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
            await conn.commit()
            try:
                yield
            finally:
                await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
        return
    async with engine.connect() as conn:
        got = (
            await conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": ADVISORY_KEY})
        ).scalar()
        await conn.commit()  # the lock is the session's: no transaction left open
        if not got:
            raise InstanceLockedError(
                "another paper-mode hedgebot is running on this database (the paper venue "
                "lives in one process); stop it first, or give this one its own database"
            )
        try:
            yield
        finally:
            await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_KEY})
