"""Alembic's own upgrade, each migration in turn, for tests that compare or need an older
revision (``bot.store.migrate.upgrade`` builds a new database's schema in one step)."""

from __future__ import annotations

from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.store.migrate import alembic_config


async def migrate_one_by_one(engine: AsyncEngine, url: str, revision: str = "head") -> None:
    """Run the migrations up to ``revision`` through Alembic on ``engine``'s database."""
    from alembic import command

    config = alembic_config(url)

    def run(connection: Connection) -> None:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    async with engine.begin() as connection:
        await connection.run_sync(run)
