"""What the command groups share: option types, config loading, the one-line error exit
and running a coroutine on a repository."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from bot.clock import SystemClock
from bot.config_view import (
    ConfigError,
    ConfigView,
    DatabaseUrlError,
    find_config,
    normalize_database_url,
    read_view,
    unknown_pair_message,
)
from bot.interrupts import deferred
from bot.service.database import open_existing
from bot.service.errors import ServiceSetupError
from bot.store.engine import url_location
from bot.store.errors import database_problem
from bot.store.repository import Repository

if TYPE_CHECKING:  # the settings (pydantic) are built only by the commands that need them
    from bot.config import Settings

EXIT_USAGE = 2
T = TypeVar("T")

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="TOML config file.", envvar="HEDGEBOT_CONFIG", metavar="FILE"
    ),
]
DatabaseOption = Annotated[
    str | None,
    typer.Option("--database-url", help="Overrides database_url of the config.", metavar="URL"),
]
PairOption = Annotated[
    str | None, typer.Option("--pair", "-p", help="Only this pair.", metavar="PAIR")
]
SinceOption = Annotated[
    str | None, typer.Option("--since", help="ISO 8601 time (UTC when naive).", metavar="TIME")
]


class TableFormat(StrEnum):
    TABLE = "table"
    JSON = "json"


class UsageError(Exception):
    """A problem the user fixes; printed as one line, exit code 2."""


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    """Print ``message`` on stderr; the exit to raise (``raise fail(...) from None``)."""
    typer.echo(message, err=True)
    return typer.Exit(code)


NO_CONFIG = (
    "no config file: pass --config FILE, set HEDGEBOT_CONFIG, or put one at ./hedgebot.toml "
    "or /etc/hedgebot/hedgebot.toml (examples/paper.toml is a start)"
)


def load(config: Path | None, **overrides: Any) -> Settings:
    """The settings from the config :func:`~bot.config.find_config` finds, or exit 2 with
    the config error in one line (also when there is no config file and no pairs in the
    environment)."""
    path = find_config(config)
    if path is None and "HEDGEBOT_PAIRS" not in os.environ:
        raise fail(NO_CONFIG)
    try:
        with deferred():  # pydantic builds the settings' schema here
            from bot.config import load_settings

            return load_settings(path, **overrides)
    except ConfigError as exc:
        raise fail(str(exc)) from None


def view(config: Path | None) -> ConfigView:
    """What a reading command needs of the config (found as :func:`load` finds it, or
    none): its database URL and pair names, without building the settings; exit 2 in
    one line on a key or variable that names no setting or an unusable URL."""
    try:
        return read_view(find_config(config))
    except ConfigError as exc:
        raise fail(str(exc)) from None


def configured_pairs(config: Path | None) -> Sequence[str] | None:
    """The config's pair names; None when no config file is found."""
    return None if find_config(config) is None else view(config).pair_names


def resolve_url(config: Path | None, url: str | None) -> str:
    """--database-url, else the config's (found as :func:`load` finds it), else the URL
    the daemon would use."""
    if url:
        try:
            return normalize_database_url(url)
        except DatabaseUrlError as exc:
            raise fail(f"--database-url: {exc}") from None
    return view(config).database_url


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
    except Exception as exc:
        problem = database_problem(exc, url_location(url))
        if problem is None:
            raise
        raise UsageError(problem) from None
    finally:
        await engine.dispose()


def on_repository(url: str, work: Callable[[Repository], Awaitable[T]]) -> T:
    """:func:`with_repository` from synchronous code (a command)."""
    return run_async(lambda: with_repository(url, work))


async def known_pairs(repository: Repository, configured: Sequence[str] | None) -> list[str]:
    """The pairs a command may name: the config's, or the database's when no config."""
    if configured is not None:
        return list(configured)
    return await repository.pair_names()


def check_pair(pair: str, known: Sequence[str], configured: Sequence[str] | None) -> None:
    """UsageError (one line, exit 2) unless ``pair`` is one of ``known``."""
    if pair not in known:
        label = "configured pairs" if configured is not None else "pairs in the database"
        raise UsageError(unknown_pair_message(pair, known, label))


def require_known_pair(config: Path | None, url: str, pair: str | None) -> None:
    """Exit 2 in one line unless ``pair`` (when given) is a pair the daemon knows."""
    if pair is None:
        return
    configured = configured_pairs(config)

    async def _check(repository: Repository) -> None:
        check_pair(pair, await known_pairs(repository, configured), configured)

    on_repository(url, _check)


def load_for_start(config: Path | None, **overrides: Any) -> Settings:
    """:func:`load`, then refuse (exit 2, one line) a paper pair that would hold forever
    (:func:`~bot.config.paper_start_problems`): said before anything is written."""
    from bot.config import paper_start_problems

    settings = load(config, **overrides)
    problems = paper_start_problems(settings)
    if problems:
        raise fail("; ".join(problems))
    return settings
