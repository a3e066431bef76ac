"""Steering a running daemon through the database: ``pause``, ``resume``, ``set-target``."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer

from bot.cli.common import (
    ConfigOption,
    DatabaseOption,
    UsageError,
    fail,
    load,
    on_repository,
    resolve_url,
)
from bot.config import ConfigError
from bot.service.targets import parse_target_value
from bot.store.migrate import SchemaState, schema_state
from bot.store.repository import ALL_PAIRS, Repository, paused_reason

ReasonOption = Annotated[str | None, typer.Option("--reason", "-r", help="Why, for the audit.")]
PairArgument = Annotated[
    str | None, typer.Argument(help="The pair; every pair when left out.", show_default=False)
]


def _target_text(ratio: Decimal | None, outlook: str | None) -> str:
    if ratio is not None:
        return f"ratio {ratio}"
    if outlook is not None:
        return f"outlook {outlook}"
    return "the config's target"


def set_target(
    pair: Annotated[str, typer.Argument(help="The pair's name.")],
    value: Annotated[
        str,
        typer.Argument(
            help="A ratio 0..2 (strategy fixed), an outlook (strategy outlook), or 'config'."
        ),
    ],
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Change a pair's target while the daemon runs; it takes effect on the next cycle."""
    settings = load(config)
    try:
        pair_config = settings.pair(pair)
        ratio, outlook = parse_target_value(pair_config, value)
    except (ConfigError, ValueError) as exc:
        raise fail(f"set-target: {exc}") from None
    what = _target_text(ratio, outlook)

    async def _store(repository: Repository) -> None:
        if await schema_state(repository.engine) is not SchemaState.CURRENT:
            raise UsageError("the database schema is out of date; run `hedgebot db upgrade` first")
        await repository.set_pair_target(
            pair, ratio, outlook, f"target set to {what} (from the next cycle)"
        )

    on_repository(database_url or settings.database_url, _store)
    typer.echo(f"{pair}: target set to {what}; the daemon applies it on its next cycle")


def _paused_message(who: str, paused: bool, changed: bool, still: str | None) -> str:
    if paused:
        return f"{who} paused" if changed else f"{who} was already paused"
    if not changed and still is None:
        return f"{who} was not paused"
    if still is not None:
        return f"{who} resumed, but still {still}; `hedgebot resume` resumes every pair"
    return f"{who} resumed"


def _set_paused(
    config: Path | None, database_url: str | None, pair: str | None, paused: bool, reason: str
) -> str:
    if config is not None and pair is not None:
        try:
            load(config).pair(pair)
        except ConfigError as exc:
            raise fail(str(exc)) from None
    target = pair or ALL_PAIRS

    async def _write(repository: Repository) -> tuple[bool, str | None]:
        changed = await repository.set_pair_paused(target, paused, reason, "user")
        still = paused_reason(await repository.pair_controls(), target)
        return changed, still

    changed, still = on_repository(resolve_url(config, database_url), _write)
    return _paused_message(pair or "every pair", paused, changed, still)


def pause(
    pair: PairArgument = None,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    reason: ReasonOption = None,
) -> None:
    """Stop sending orders for PAIR (or every pair) until resumed; survives restarts."""
    typer.echo(_set_paused(config, database_url, pair, True, reason or "paused by hand"))


def resume(
    pair: PairArgument = None,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    reason: ReasonOption = None,
) -> None:
    """Let PAIR (or every pair) trade again, whether it was paused by hand or by itself."""
    typer.echo(_set_paused(config, database_url, pair, False, reason or "resumed by hand"))
