"""Shared fixtures: a migrated database per test on SQLite and on Postgres, a fake clock.

The Postgres tests use the server at 127.0.0.1:5432 (database ``test``), each test in a
schema of its own that is dropped afterwards. In CI (``CI=true``) an unreachable server
fails the tests; elsewhere they are skipped with the reason.
"""

from __future__ import annotations

import asyncio
import decimal
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.clock import FakeClock
from bot.store.migrate import upgrade
from bot.store.repository import Repository, create_engine
from tests.support.emulators.binance import BinanceEmulator

ROOT = Path(__file__).resolve().parents[1]
POSTGRES_URL = os.environ.get(
    "HEDGEBOT_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)


@dataclass(frozen=True)
class Backend:
    name: str
    url: str
    schema: str | None = None


async def _postgres(statement: str) -> None:
    import asyncpg

    dsn = POSTGRES_URL.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def _create_on_postgres(statement: str) -> None:
    """Run ``statement``; unreachable Postgres fails in CI and skips elsewhere."""
    try:
        asyncio.run(_postgres(statement))
    except (TimeoutError, OSError, ImportError) as exc:
        reason = f"Postgres at {POSTGRES_URL} is unreachable ({exc})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI must run the Postgres tests")
        pytest.skip(reason)


@pytest.fixture(autouse=True)
def _decimal_context_restored() -> Iterator[None]:
    """Each test ends with the decimal context it began with: ccxt, used raw by the
    emulator tests, sets ROUND_HALF_UP and traps on the context it finds (the daemon
    gives it a copy), which would change later tests' rounding."""
    saved = decimal.getcontext().copy()
    yield
    decimal.setcontext(saved)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        yield Backend("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'hedgebot.db'}")
        return
    schema = f"t_{uuid.uuid4().hex[:16]}"
    _create_on_postgres(f'CREATE SCHEMA "{schema}"')
    try:
        yield Backend("postgres", POSTGRES_URL, schema)
    finally:
        asyncio.run(_postgres(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture
def database_url(backend: Backend) -> str:
    return backend.url


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """The URL of a fresh Postgres database, dropped after the test (for subprocesses)."""
    name = f"hb_{uuid.uuid4().hex[:12]}"
    _create_on_postgres(f'CREATE DATABASE "{name}"')
    try:
        yield POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        asyncio.run(_postgres(f'DROP DATABASE "{name}" WITH (FORCE)'))


@pytest_asyncio.fixture
async def engine(backend: Backend) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(backend.url, schema=backend.schema)
    await upgrade(engine, backend.url)
    yield engine
    await engine.dispose()


@pytest_asyncio.fixture
async def repository(engine: AsyncEngine, clock: FakeClock) -> Repository:
    return Repository(engine, clock)


@pytest_asyncio.fixture
async def emulator() -> AsyncIterator[BinanceEmulator]:
    """A started Binance emulator (default BTC and ETH markets), stopped after the test."""
    emu = BinanceEmulator()
    await emu.start()
    try:
        yield emu
    finally:
        await emu.stop()
