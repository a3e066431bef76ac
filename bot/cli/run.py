"""Starting the daemon: ``check-config``, ``run`` and ``plan``."""

from __future__ import annotations

import json
import logging
import os
from enum import StrEnum
from typing import Annotated

import typer

from bot.cli import render
from bot.cli.common import ConfigOption, TableFormat, fail, load_for_start, run_async
from bot.config import Settings, masked_dump
from bot.domain.words import plural
from bot.exchange.gateway import GatewayError
from bot.logging import configure_logging

LIVE_CONFIRM_ENV = "HEDGEBOT_LIVE_CONFIRM"


class LogFormat(StrEnum):
    AUTO = "auto"
    CONSOLE = "console"
    JSON = "json"


def check_config(config: ConfigOption = None) -> None:
    """Validate the configuration and print it, secrets masked."""
    settings = load_for_start(config)
    typer.echo(json.dumps(masked_dump(settings), indent=2))
    typer.echo(f"config ok: {plural(len(settings.pairs), 'pair')}, mode {settings.mode}", err=True)


def _check_mode(settings: Settings, live: bool) -> None:
    """Refuse, in one line, a mode the user has not fully asked for or equipped."""
    if settings.mode == "live":
        if not live or os.environ.get(LIVE_CONFIRM_ENV) != "yes":
            raise fail(
                'mode "live" trades real money: start with --live and '
                f"{LIVE_CONFIRM_ENV}=yes to confirm"
            )
    elif live:
        raise fail(f'--live given but the config\'s mode is {settings.mode!r}; set mode = "live"')
    if settings.mode in ("testnet", "live"):
        _check_keys(settings)


def _check_keys(settings: Settings) -> None:
    used = {name for pair in settings.pairs for name in settings.accounts_of(pair)}
    for name in sorted(used):
        account = settings.accounts[name]
        if account.api_key is None or account.secret is None:
            raise fail(
                f"accounts.{name}: mode {settings.mode!r} needs api_key and secret "
                f"(HEDGEBOT_ACCOUNTS__{name.upper()}__API_KEY / __SECRET, or api_key_file)"
            )


def run(
    config: ConfigOption = None,
    max_cycles: Annotated[
        int | None, typer.Option("--max-cycles", min=1, help="Stop after N cycles.")
    ] = None,
    log_format: Annotated[
        LogFormat | None, typer.Option("--log-format", help="console, json or auto (TTY).")
    ] = None,
    migrate: Annotated[
        bool, typer.Option("--migrate", help="Apply pending migrations before starting.")
    ] = False,
    live: Annotated[
        bool, typer.Option("--live", help=f"Confirm mode live (with {LIVE_CONFIRM_ENV}=yes).")
    ] = False,
) -> None:
    """Run the hedging daemon until SIGINT/SIGTERM (or --max-cycles)."""
    settings = load_for_start(config)
    _check_mode(settings, live)
    configure_logging(
        log_format.value if log_format else settings.log_format,
        log_file=settings.log_file,
        max_bytes=settings.log_file_max_bytes,
        backups=settings.log_file_backups,
    )
    from bot.service import wiring  # ccxt and the runtime: only for the daemon

    try:
        run_async(lambda: wiring.serve(settings, max_cycles, migrate))
    except GatewayError as exc:
        # Only start-up lets an exchange error out (a cycle records it and goes on);
        # one line, without the vendor exception's chain (request URLs and signatures).
        raise fail(
            f"hedgebot could not start: {exc}; check the exchange and start again", 1
        ) from None


def plan(
    config: ConfigOption = None,
    output: Annotated[TableFormat, typer.Option("--format", "-f")] = TableFormat.TABLE,
    live: Annotated[bool, typer.Option("--live", help="Allow reading a live config.")] = False,
) -> None:
    """What the daemon would do now for each pair; sends nothing, writes nothing."""
    settings = load_for_start(config)
    if settings.mode == "live" and not live:
        raise fail('mode "live": pass --live to read the live accounts (plan sends nothing)')
    configure_logging("json", level=logging.WARNING, to_stderr=True)
    from bot.service import wiring

    try:
        assessments = run_async(lambda: wiring.plan(settings))
    except GatewayError as exc:
        raise fail(f"plan: {exc}") from None
    rows = [render.plan_json(a) for a in assessments]
    if output is TableFormat.JSON:
        render.print_json(rows)
        return
    render.print_table(render.plan_table(settings.mode, rows))
