"""Steering a running daemon through the database: ``pause``, ``resume``, ``set-target``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer

from bot.cli.common import (
    ConfigOption,
    DatabaseOption,
    UsageError,
    check_pair,
    configured_pairs,
    fail,
    known_pairs,
    load,
    on_repository,
    resolve_url,
)
from bot.config_view import ConfigError
from bot.domain.controls import PairControl
from bot.service.targets import parse_target_value
from bot.store.migrate import SchemaState, schema_state
from bot.store.repository import ALL_PAIRS, Repository, paused_reason

ReasonOption = Annotated[
    str | None, typer.Option("--reason", "-r", help="Why, for the audit.", metavar="TEXT")
]
PairArgument = Annotated[
    str | None,
    typer.Argument(
        help="The pair; every pair when left out.", show_default=False, metavar="[PAIR]"
    ),
]


def _target_text(ratio: Decimal | None, outlook: str | None) -> str:
    if ratio is not None:
        return f"ratio {ratio}"
    if outlook is not None:
        return f"outlook {outlook}"
    return "the config's target"


def set_target(
    pair: Annotated[str, typer.Argument(help="The pair's name.", metavar="PAIR")],
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

    on_repository(resolve_url(config, database_url), _store)
    typer.echo(f"{pair}: target set to {what}; the daemon applies it on its next cycle")


@dataclass(frozen=True, slots=True)
class PauseOutcome:
    """What a pause or resume changed: the pairs whose state flipped, and for a pair it
    did not change, why (already so, or still paused by the pause of every pair)."""

    scope: list[str]
    changed: list[str]
    unchanged_why: str | None


def _pause_outcome(
    before: Mapping[str, PairControl],
    after: Mapping[str, PairControl],
    pair: str | None,
    known: Sequence[str],
    paused: bool,
) -> PauseOutcome:
    scope = [pair] if pair is not None else list(known)
    changed = [
        p for p in scope if (paused_reason(before, p) is None) != (paused_reason(after, p) is None)
    ]
    why = None
    if pair is not None and not changed:
        still = paused_reason(after, pair)
        if paused:
            why = f"{pair} was already {still}"
        elif still is not None:
            why = f"{pair} is still {still}; `hedgebot resume` resumes every pair"
        else:
            why = f"{pair} was not paused"
    return PauseOutcome(scope, changed, why)


def _pause_text(outcome: PauseOutcome, pair: str | None, paused: bool) -> tuple[str, int]:
    """The line to print and the exit code: 1 when nothing changed (never a success)."""
    verb = "paused" if paused else "resumed"
    if outcome.changed and pair is not None:
        return f"{pair} {verb}", 0
    if outcome.changed:
        return f"every pair {verb}: {', '.join(outcome.changed)}", 0
    if pair is not None:
        return f"no pair was {verb}: {outcome.unchanged_why}", 1
    if paused and not outcome.scope:
        return "every pair paused (no pair is known yet: each stays paused when it starts)", 0
    state = "already paused" if paused else "paused"
    return f"no pair was {verb}: {'every pair was' if paused else 'none was'} {state}", 1


def _set_paused(
    config: Path | None, database_url: str | None, pair: str | None, paused: bool, reason: str
) -> tuple[str, int]:
    configured = configured_pairs(config)
    target = pair or ALL_PAIRS

    async def _write(repository: Repository) -> tuple[str, int]:
        known = await known_pairs(repository, configured)
        if pair is not None:
            check_pair(pair, known, configured)
        before = await repository.pair_controls()
        await repository.set_pair_paused(target, paused, reason, "user")
        outcome = _pause_outcome(before, await repository.pair_controls(), pair, known, paused)
        return _pause_text(outcome, pair, paused)

    return on_repository(resolve_url(config, database_url), _write)


def _echo_outcome(text: str, code: int) -> None:
    if code:
        raise fail(text, code)
    typer.echo(text)


def pause(
    pair: PairArgument = None,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    reason: ReasonOption = None,
) -> None:
    """Stop sending orders for PAIR (or every pair) until resumed; survives restarts."""
    _echo_outcome(*_set_paused(config, database_url, pair, True, reason or "paused by hand"))


def resume(
    pair: PairArgument = None,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    reason: ReasonOption = None,
) -> None:
    """Let PAIR (or every pair) trade again, whether it was paused by hand or by itself."""
    _echo_outcome(*_set_paused(config, database_url, pair, False, reason or "resumed by hand"))
