"""A database the store cannot reach surfaces as StoreUnavailable, in one line that
names the database and the problem, and never the password."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from bot.clock import FakeClock
from bot.store.errors import StoreUnavailable
from bot.store.repository import Repository, create_engine


def closed_port() -> int:
    """A local port nobody listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _sqlite_threads_finished() -> None:
    """Wait for aiosqlite's worker threads: a failed connect leaves one that answers its
    last future after the test's loop closed, an error pinned on the next test."""
    workers = [t for t in threading.enumerate() if "_connection_worker_thread" in t.name]
    for worker in workers:
        await asyncio.to_thread(worker.join, 10)


@pytest_asyncio.fixture
async def refused() -> AsyncIterator[Repository]:
    """A repository on a Postgres URL (with a password) whose server refuses connections."""
    engine = create_engine(f"postgresql+asyncpg://hedgebot:s3cret@127.0.0.1:{closed_port()}/prod")
    try:
        yield Repository(engine, FakeClock())
    finally:
        await engine.dispose()


async def test_a_refused_connection_is_store_unavailable_on_reads_and_writes(
    refused: Repository,
) -> None:
    with pytest.raises(StoreUnavailable) as ping:
        await refused.ping()
    with pytest.raises(StoreUnavailable):
        await refused.pair_controls()
    with pytest.raises(StoreUnavailable):
        await refused.append_audit("test", "nothing to store")
    message = str(ping.value)
    assert message.startswith("cannot connect to postgresql database prod at 127.0.0.1:")
    assert message.endswith(": connection refused; is the server running?")
    assert "\n" not in message
    assert "s3cret" not in message
    assert "hedgebot" not in message  # nor the user
    assert isinstance(ping.value.__cause__, OSError)


async def test_an_sqlite_file_that_cannot_be_opened_is_store_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "missing-directory" / "hedgebot.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        with pytest.raises(StoreUnavailable, match="cannot be opened") as raised:
            await Repository(engine, FakeClock()).last_cycle()
    finally:
        await engine.dispose()
        await _sqlite_threads_finished()
    assert str(raised.value) == (
        f"sqlite database {path} cannot be opened; check the path and its permissions"
    )
