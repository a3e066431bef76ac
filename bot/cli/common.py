"""What the command groups share: option types, config loading, the one-line error exit
and running a coroutine on a repository."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from bot.clock import SystemClock
from bot.config import ConfigError, Settings, load_settings
from bot.service.database import open_existing
from bot.service.errors import ServiceSetupError
from bot.store.repository import Repository

EXIT_USAGE = 2
T = TypeVar("T")

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML config file.", envvar="HEDGEBOT_CONFIG"),
]
DatabaseOption = Annotated[
    str | None,
    typer.Option("--database-url", help="Overrides database_url of the config."),
]
PairOption = Annotated[str | None, typer.Option("--pair", "-p", help="Only this pair.")]
SinceOption = Annotated[str | None, typer.Option("--since", help="ISO 8601 time.")]


class TableFormat(StrEnum):
    TABLE = "table"
    JSON = "json"


class UsageError(Exception):
    """A problem the user fixes; printed as one line, exit code 2."""


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    """Print ``message`` on stderr; the exit to raise (``raise fail(...) from None``)."""
    typer.echo(message, err=True)
    return typer.Exit(code)


def load(config: Path | None, **overrides: Any) -> Settings:
    """The settings, or exit 2 with the config error in one line."""
    try:
        return load_settings(config, **overrides)
    except ConfigError as exc:
        raise fail(str(exc)) from None


def resolve_url(config: Path | None, url: str | None) -> str:
    """--database-url, else the config's, else the URL the daemon would use."""
    if url:
        return url
    if config is not None:
        return load(config).database_url
    # Reading commands need no pairs: take the URL the daemon would use.
    default = str(Settings.model_fields["database_url"].default)
    return os.environ.get("HEDGEBOT_DATABASE_URL", default)


def parse_time(option: str, value: str | None, example: str) -> datetime | None:
    """An ISO 8601 option value, UTC when naive; exit 2 naming ``option`` if it is not one."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise fail(f"{option} {value!r} is not an ISO 8601 time; use e.g. {example}") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def parse_since(value: str | None) -> datetime | None:
    return parse_time("--since", value, "2026-11-22T08:00:00Z")


def run_async(factory: Callable[[], Awaitable[T]]) -> T:
    """Run the coroutine ``factory`` makes; a usage or setup error exits 2 in one line."""
    try:
        return asyncio.run(_call(factory))
    except (UsageError, ServiceSetupError) as exc:
        raise fail(str(exc)) from None


async def _call(factory: Callable[[], Awaitable[T]]) -> T:
    return await factory()


async def with_repository(url: str, work: Callable[[Repository], Awaitable[T]]) -> T:
    """``work`` on a repository over the existing database at ``url``, disposed after."""
    engine = await open_existing(url)
    try:
        return await work(Repository(engine, SystemClock()))
    finally:
        await engine.dispose()


def on_repository(url: str, work: Callable[[Repository], Awaitable[T]]) -> T:
    """:func:`with_repository` from synchronous code (a command)."""
    return run_async(lambda: with_repository(url, work))
