"""Shared fixtures: a migrated SQLite database per test, a fake clock, a repository."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.clock import FakeClock
from bot.store.migrate import upgrade
from bot.store.repository import Repository, create_engine

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'hedgebot.db'}"


@pytest_asyncio.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    await upgrade(engine, database_url)
    yield engine
    await engine.dispose()


@pytest_asyncio.fixture
async def repository(engine: AsyncEngine, clock: FakeClock) -> Repository:
    return Repository(engine, clock)
