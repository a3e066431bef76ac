"""The ``hedgebot`` command line."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TextIO, TypeVar

import structlog
import typer
from rich.console import Console
from rich.table import Table

from bot.clock import SystemClock
from bot.config import PAPER_ACCOUNT, ConfigError, Settings, load_settings, masked_dump
from bot.domain.report import PairReport
from bot.exchange.gateway import ExchangeGateway, FatalError, GatewayError
from bot.logging import configure_logging
from bot.service.describe import PairStatus, pair_statuses
from bot.service.targets import parse_target_value
from bot.store.audit import ChainReport, verify_chain
from bot.store.engine import AsyncEngine, make_url
from bot.store.instance import InstanceLockedError, runs_alone, single_instance
from bot.store.migrate import SchemaState, head_revision, schema_state, upgrade
from bot.store.repository import (
    ALL_PAIRS,
    AuditEvent,
    Repository,
    create_engine,
    jsonable,
    paused_reason,
)

app = typer.Typer(
    name="hedgebot",
    help="Keeps spot holdings hedged with perpetual futures.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema commands.", no_args_is_help=True)
app.add_typer(db_app, name="db")

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


class TableFormat(StrEnum):
    TABLE = "table"
    JSON = "json"


class AuditFormat(StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"


class LogFormat(StrEnum):
    AUTO = "auto"
    CONSOLE = "console"
    JSON = "json"


class UsageError(Exception):
    """A problem the user fixes; printed as one line, exit code 2."""


def _fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


def _settings(config: Path | None, **overrides: Any) -> Settings:
    try:
        return load_settings(config, **overrides)
    except ConfigError as exc:
        raise _fail(str(exc)) from None


def _database_url(config: Path | None, database_url: str | None) -> str:
    if database_url:
        return database_url
    if config is not None:
        return _settings(config).database_url
    # Reading commands need no pairs: take the URL the daemon would use.
    default = str(Settings.model_fields["database_url"].default)
    return os.environ.get("HEDGEBOT_DATABASE_URL", default)


def _sqlite_path(url: str) -> Path | None:
    parsed = make_url(url)
    if (
        parsed.get_backend_name() != "sqlite"
        or not parsed.database
        or parsed.database == ":memory:"
    ):
        return None
    return Path(parsed.database)


def _run_async(factory: Callable[[], Awaitable[T]]) -> T:
    try:
        return asyncio.run(_call(factory))
    except UsageError as exc:
        raise _fail(str(exc)) from None


async def _call(factory: Callable[[], Awaitable[T]]) -> T:
    return await factory()


async def _open_existing(url: str) -> AsyncEngine:
    """An engine on a database that must already hold hedgebot's schema."""
    path = _sqlite_path(url)
    if path is not None and not path.exists():
        raise UsageError(
            f"no database at {path}; start the daemon with `hedgebot run` or apply the "
            "schema with `hedgebot db upgrade`"
        )
    engine = create_engine(url)
    try:
        state = await schema_state(engine)
    except Exception as exc:
        await engine.dispose()
        raise UsageError(
            f"cannot open database {make_url(url).render_as_string(hide_password=True)}: {exc}"
        ) from None
    if state is SchemaState.MISSING:
        await engine.dispose()
        raise UsageError("the database has no hedgebot schema; run `hedgebot db upgrade`")
    if state is SchemaState.OUTDATED:
        # Its tables lack columns this code reads (e.g. the audit hashes).
        await engine.dispose()
        raise UsageError(
            "the database schema is out of date; back it up, then run `hedgebot db upgrade`"
        )
    return engine


async def _prepare_database(url: str, migrate: bool) -> AsyncEngine:
    """For `run`: create a missing schema, refuse an outdated one unless asked to migrate."""
    path = _sqlite_path(url)
    if path is not None and not path.parent.exists():
        raise UsageError(f"database directory {path.parent} does not exist; create it first")
    engine = create_engine(url)
    try:
        state = await schema_state(engine)
        if state is SchemaState.UNKNOWN:
            raise UsageError(
                "the database schema is newer than this hedgebot "
                f"(it knows up to revision {head_revision()}); upgrade hedgebot"
            )
        if state is SchemaState.OUTDATED and not migrate:
            raise UsageError(
                "the database schema is out of date; back it up, then run "
                "`hedgebot db upgrade` or start with `hedgebot run --migrate`"
            )
        if state is not SchemaState.CURRENT:
            await upgrade(engine, url)
    except BaseException:
        await engine.dispose()
        raise
    return engine


@app.command("check-config")
def check_config(config: ConfigOption = None) -> None:
    """Validate the configuration and print it, secrets masked."""
    settings = _settings(config)
    typer.echo(json.dumps(masked_dump(settings), indent=2))
    typer.echo(f"config ok: {len(settings.pairs)} pair(s), mode {settings.mode}", err=True)


LIVE_CONFIRM_ENV = "HEDGEBOT_LIVE_CONFIRM"
SHUTDOWN_GRACE_S = 3.5  # leaves time to record, close and exit inside 5 s


def _check_mode(settings: Settings, live: bool) -> None:
    """Refuse, in one line, a mode the user has not fully asked for or equipped."""
    if settings.mode == "live":
        if not live or os.environ.get(LIVE_CONFIRM_ENV) != "yes":
            raise _fail(
                'mode "live" trades real money: start with --live and '
                f"{LIVE_CONFIRM_ENV}=yes to confirm"
            )
    elif live:
        raise _fail(f'--live given but the config\'s mode is {settings.mode!r}; set mode = "live"')
    if settings.mode in ("testnet", "live"):
        used = {name for pair in settings.pairs for name in settings.accounts_of(pair)}
        for name in sorted(used):
            account = settings.accounts[name]
            if account.api_key is None or account.secret is None:
                raise _fail(
                    f"accounts.{name}: mode {settings.mode!r} needs api_key and secret "
                    f"(HEDGEBOT_ACCOUNTS__{name.upper()}__API_KEY / __SECRET, or api_key_file)"
                )


@app.command()
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
    settings = _settings(config)
    _check_mode(settings, live)
    configure_logging(
        log_format.value if log_format else settings.log_format,
        log_file=settings.log_file,
        max_bytes=settings.log_file_max_bytes,
        backups=settings.log_file_backups,
    )
    try:
        _run_async(lambda: _run_daemon(settings, max_cycles, migrate))
    except GatewayError as exc:
        # Only start-up lets an exchange error out (a cycle records it and goes on);
        # one line, without the vendor exception's chain (request URLs and signatures).
        raise _fail(
            f"hedgebot could not start: {exc}; check the exchange and start again", 1
        ) from None


async def _run_daemon(settings: Settings, max_cycles: int | None, migrate: bool) -> None:
    from bot.service.daemon import default_instance_id

    clock = SystemClock()
    instance_id = default_instance_id()
    engine = await _prepare_database(settings.database_url, migrate)
    try:
        async with single_instance(
            engine,
            settings.database_url,
            shared=not runs_alone(settings.database_url, settings.mode),
            instance_id=instance_id,
        ):
            await _run_locked(settings, max_cycles, engine, clock, instance_id)
    except InstanceLockedError as exc:
        raise UsageError(str(exc)) from None
    finally:
        await engine.dispose()


async def _run_locked(
    settings: Settings,
    max_cycles: int | None,
    engine: AsyncEngine,
    clock: SystemClock,
    instance_id: str,
) -> None:
    from bot.service.daemon import HedgeDaemon
    from bot.service.runtime import ServiceRuntime, ServiceSetupError
    from bot.service.venues import open_gateways

    log = structlog.get_logger("hedgebot")
    repository = Repository(engine, clock)
    runtime = ServiceRuntime(settings, repository)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    gateways: dict[str, ExchangeGateway] = {}
    reason = "stopped"
    try:
        await runtime.start_http()
        gateways = await open_gateways(settings, repository, clock)
        runtime.watch_gateways(gateways)
        daemon = HedgeDaemon(
            settings,
            repository,
            gateways,
            clock,
            instance_id=instance_id,
            observer=runtime.observer,
        )
        await runtime.start_alerts()
        await daemon.start()
        runtime.ready()
        first_cycle = await repository.last_cycle() + 1
        running = asyncio.create_task(daemon.run(stop, max_cycles, first_cycle=first_cycle))
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        try:
            # A signal lets the cycle in flight finish (an order's answer is awaited and
            # recorded), but not for longer than the grace: systemd and Docker kill later.
            cycles = await asyncio.wait_for(asyncio.shield(running), timeout=SHUTDOWN_GRACE_S)
            reason = "signal" if stop.is_set() else f"ran {cycles} cycle(s)"
        except TimeoutError:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
            reason = f"signal; the cycle in flight was cut after {SHUTDOWN_GRACE_S:g} s"
        runtime.stopping(reason)
        await daemon.stop(reason)
    except FatalError as exc:
        reason = f"fatal: {exc}"
        await repository.append_audit("daemon.fatal", f"hedgebot cannot run: {exc}")
        raise UsageError(str(exc)) from None
    except ServiceSetupError as exc:
        raise UsageError(str(exc)) from None
    finally:
        await runtime.close()
        for gateway in gateways.values():
            await gateway.close()
        log.info("daemon.exit", reason=reason)


@app.command()
def plan(
    config: ConfigOption = None,
    output: Annotated[TableFormat, typer.Option("--format", "-f")] = TableFormat.TABLE,
    live: Annotated[bool, typer.Option("--live", help="Allow reading a live config.")] = False,
) -> None:
    """What the daemon would do now for each pair; sends nothing, writes nothing."""
    settings = _settings(config)
    if settings.mode == "live" and not live:
        raise _fail('mode "live": pass --live to read the live accounts (plan sends nothing)')
    configure_logging("json", level=logging.WARNING, to_stderr=True)
    rows = _run_async(lambda: _plan(settings))
    if output is TableFormat.JSON:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = _table(
        f"hedgebot plan ({settings.mode}, nothing sent)",
        "pair",
        "price",
        "spot",
        "hedge",
        "ratio",
        "target",
        "drift",
        "action",
        "order",
        "reason",
    )
    for row in rows:
        table.add_row(
            row["pair"],
            row["price"],
            row["spot_qty"],
            row["hedge_qty"],
            row["ratio"] or "-",
            row["target_ratio"],
            row["drift_qty"],
            row["action"],
            row["order"] or "-",
            row["reason"],
        )
    Console(width=200).print(table)


async def _plan(settings: Settings) -> list[dict[str, Any]]:
    from bot.domain.paper_account import InMemoryPaperAccountStore
    from bot.service.daemon import HedgeDaemon
    from bot.service.venues import open_gateways

    clock = SystemClock()
    path = _sqlite_path(settings.database_url)
    engine = None
    if path is None or path.exists():
        engine = await _open_existing(settings.database_url)
    else:
        # No database yet: plan from a throw-away copy, so nothing is created.
        engine = create_engine("sqlite+aiosqlite://")
        await upgrade(engine, "sqlite+aiosqlite://")
    repository = Repository(engine, clock)
    gateways: dict[str, ExchangeGateway] = {}
    try:
        if settings.mode == "paper":
            # A copy of the saved paper account: planning must not move its feed or state.
            memory = InMemoryPaperAccountStore()
            saved = await repository.load_paper_account(PAPER_ACCOUNT)
            if saved is not None:
                await memory.save_paper_account(PAPER_ACCOUNT, saved)
            gateways = await open_gateways(settings, memory, clock)
        else:
            gateways = await open_gateways(settings, repository, clock)
        daemon = HedgeDaemon(settings, repository, gateways, clock)
        await daemon.load_markets()
        assessments = await daemon.plan()
    except GatewayError as exc:
        raise UsageError(f"plan: {exc}") from None
    finally:
        for gateway in gateways.values():
            await gateway.close()
        await engine.dispose()
    rows = []
    for a in assessments:
        obs, decision = a.observation, a.decision
        order = None
        if decision.intent is not None:
            intent = decision.intent
            order = f"{intent.side.value} {intent.amount} {intent.symbol}"
            if intent.reduce_only:
                order += " reduce-only"
            if a.order is not None and a.order.price is not None:
                order += f" IOC @ {a.order.price}"
        rows.append(
            {
                "pair": a.pair,
                "price": str(obs.price),
                "spot_qty": str(obs.spot_qty),
                "hedge_qty": str(-obs.perp_qty),
                "ratio": None if decision.ratio is None else str(round(decision.ratio, 6)),
                "target_ratio": str(decision.target_ratio),
                "drift_qty": str(decision.drift_qty),
                "action": a.action,
                "order": order,
                "verdict": None if a.verdict is None else a.verdict.reason,
                "reason": a.summary,
            }
        )
    return rows


def _table(title: str, *columns: str) -> Table:
    """A rich table whose long cells wrap instead of being cut."""
    table = Table(title=title)
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def _num(value: Any) -> str | None:
    return None if value is None else str(value)


def _status_json(row: PairStatus) -> dict[str, Any]:
    return {
        "pair": row.pair,
        "price": _num(row.price),
        "spot_qty": _num(row.spot_qty),
        "hedge_qty": _num(row.hedge_qty),
        "ratio": _num(None if row.ratio is None else round(row.ratio, 6)),
        "target_ratio": _num(row.target_ratio),
        "strategy": row.strategy,
        "target": row.target_text,
        "band": _num(row.band),
        "drift_qty": _num(row.drift_qty),
        "last_action": row.last_action,
        "last_action_at": None if row.last_action_at is None else row.last_action_at.isoformat(),
        "mode": row.mode,
        "foreign_orders": row.foreign_open_orders,
        "health": row.health,
        "held_by": row.held_by,
        "paused": row.paused,
    }


@app.command()
def status(
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    output: Annotated[TableFormat, typer.Option("--format", "-f")] = TableFormat.TABLE,
) -> None:
    """Per pair: spot, hedge, ratio against target, drift, last action."""
    url = _database_url(config, database_url)

    async def _read() -> list[PairStatus]:
        engine = await _open_existing(url)
        try:
            return await pair_statuses(Repository(engine, SystemClock()))
        finally:
            await engine.dispose()

    rows = _run_async(_read)
    if output is TableFormat.JSON:
        typer.echo(json.dumps([_status_json(r) for r in rows], indent=2))
        return
    if not rows:
        typer.echo("no decisions recorded yet; is the daemon running?")
        return
    table = _table(
        "hedgebot status",
        "pair",
        "mode",
        "price",
        "spot",
        "hedge",
        "ratio",
        "target",
        "band",
        "drift",
        "last action",
        "at",
        "foreign",
        "health",
    )
    for r in rows:
        table.add_row(
            r.pair,
            r.mode,
            str(r.price),
            str(r.spot_qty),
            str(r.hedge_qty),
            "-" if r.ratio is None else f"{r.ratio:.4f}",
            r.target_text,
            str(r.band),
            str(r.drift_qty),
            r.last_action,
            "-" if r.last_action_at is None else r.last_action_at.strftime("%Y-%m-%d %H:%M:%S"),
            str(r.foreign_open_orders),
            r.health,
        )
    Console(width=200).print(table)


def _parse_since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _fail(
            f"--since {value!r} is not an ISO 8601 time; use e.g. 2026-11-22T08:00:00Z"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def _event_json(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "ts": event.ts.isoformat(),
        "pair": event.pair,
        "kind": event.kind,
        "summary": event.summary,
        "decision_id": event.decision_id,
        "data": jsonable(event.data),
    }


audit_app = typer.Typer(
    help="The audit log, oldest first (with no subcommand); verify, export.",
    invoke_without_command=True,
)
app.add_typer(audit_app, name="audit")

PairOption = Annotated[str | None, typer.Option("--pair", "-p", help="Only this pair.")]
KindOption = Annotated[
    str | None, typer.Option("--kind", "-k", help="Kind or kind prefix, e.g. order.")
]
SinceOption = Annotated[str | None, typer.Option("--since", help="ISO 8601 time.")]
AUDIT_PAGE = 500  # events read per query when streaming (follow, export, verify)
CSV_HEADER = ["id", "ts", "pair", "kind", "summary", "decision_id", "data"]


def _csv_row(event: AuditEvent) -> list[Any]:
    row = _event_json(event)
    return [
        row["id"],
        row["ts"],
        row["pair"] or "",
        row["kind"],
        row["summary"],
        row["decision_id"] or "",
        json.dumps(row["data"], sort_keys=True),
    ]


def _print_events(events: list[AuditEvent], output: AuditFormat, follow: bool) -> None:
    """Events to stdout; with --follow the table format becomes one line per event."""
    if output is AuditFormat.JSON:
        for event in events:
            typer.echo(json.dumps(_event_json(event), sort_keys=True))
    elif output is AuditFormat.CSV:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        for event in events:
            writer.writerow(_csv_row(event))
    elif follow:
        for event in events:
            typer.echo(
                f"{event.id}  {event.ts.strftime('%Y-%m-%d %H:%M:%S')}  {event.pair or '-'}  "
                f"{event.kind}  {event.summary}"
            )
    else:
        table = _table(
            f"hedgebot audit ({len(events)} events)", "id", "ts", "pair", "kind", "summary"
        )
        for event in events:
            table.add_row(
                str(event.id),
                event.ts.strftime("%Y-%m-%d %H:%M:%S"),
                event.pair or "-",
                event.kind,
                event.summary,
            )
        Console(width=200).print(table)
    sys.stdout.flush()


@audit_app.callback()
def audit(
    ctx: typer.Context,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    pair: PairOption = None,
    kind: KindOption = None,
    since: SinceOption = None,
    limit: Annotated[int | None, typer.Option("--limit", "-n", min=1, help="Newest N.")] = None,
    output: Annotated[AuditFormat, typer.Option("--format", "-f")] = AuditFormat.TABLE,
    follow: Annotated[
        bool, typer.Option("--follow", help="Keep printing new events until Ctrl-C/SIGTERM.")
    ] = False,
    interval: Annotated[
        float, typer.Option("--interval", min=0.05, help="Seconds between polls (--follow).")
    ] = 1.0,
) -> None:
    """The audit log, oldest first; `verify` checks its hash chain, `export` writes it."""
    if ctx.invoked_subcommand is not None:
        return
    url = _database_url(config, database_url)
    since_at = _parse_since(since)
    if follow:
        _run_async(lambda: _follow(url, pair, kind, since_at, limit, output, interval))
        return

    async def _read() -> list[AuditEvent]:
        engine = await _open_existing(url)
        try:
            return await Repository(engine, SystemClock()).audit_events(pair, kind, since_at, limit)
        finally:
            await engine.dispose()

    events = _run_async(_read)
    if output is AuditFormat.CSV:
        _csv_header()
    _print_events(events, output, follow=False)


def _csv_header() -> None:
    csv.writer(sys.stdout, lineterminator="\n").writerow(CSV_HEADER)


async def _follow(
    url: str,
    pair: str | None,
    kind: str | None,
    since: datetime | None,
    limit: int | None,
    output: AuditFormat,
    interval: float,
) -> None:
    """Print the matching events, then poll for newer ones (by id) until a signal."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    engine = await _open_existing(url)
    try:
        repository = Repository(engine, SystemClock())
        if output is AuditFormat.CSV:
            _csv_header()
        last_id = 0
        if limit is not None:
            newest = await repository.audit_events(pair, kind, since, limit)
            _print_events(newest, output, follow=True)
            # Appends are serialized and committed in id order, so polling by id
            # never skips an event.
            last_id = newest[-1].id if newest else 0
        while not stop.is_set():
            page = await repository.audit_page(last_id, AUDIT_PAGE, pair, kind, since)
            if page:
                _print_events(page, output, follow=True)
                last_id = page[-1].id
                if len(page) == AUDIT_PAGE:
                    continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)
    finally:
        await engine.dispose()


def _parse_anchor(value: str | None) -> tuple[int, str] | None:
    if value is None:
        return None
    event_id, _, digest = value.partition(":")
    if not event_id.isdigit() or len(digest) != 64:
        raise _fail(
            f"--anchor {value!r} is not ID:HASH; pass the `head` that verify printed, "
            "e.g. 1234:3f2a… (64 hex digits)"
        )
    return int(event_id), digest.lower()


@audit_app.command("verify")
def audit_verify(
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    anchor: Annotated[
        str | None,
        typer.Option(
            "--anchor", help="ID:HASH of a head recorded earlier; fails if it was rewritten."
        ),
    ] = None,
) -> None:
    """Walk the audit hash chain: exit 0 if every event matches, 1 at the first that does not."""
    url = _database_url(config, database_url)
    anchored = _parse_anchor(anchor)

    async def _walk() -> ChainReport:
        engine = await _open_existing(url)
        try:
            return await verify_chain(Repository(engine, SystemClock()), anchored)
        finally:
            await engine.dispose()

    report = _run_async(_walk)
    if report.broken is not None:
        raise _fail(f"{report.broken.describe()}; {report.intact} event(s) before it are intact", 1)
    if report.anchor_problem is not None:
        raise _fail(report.anchor_problem, 1)
    if report.head_id is None:
        typer.echo("audit chain intact: 0 events")
        return
    typer.echo(
        f"audit chain intact: {report.intact} events (#{report.first_id} to #{report.head_id})"
    )
    # Kept elsewhere (a note, a ticket, another machine), the head makes a rewrite of
    # the chain detectable: `verify --anchor ID:HASH`.
    typer.echo(f"head {report.head_id}:{report.head_hash}")
    if anchored is not None:
        typer.echo(f"anchor #{anchored[0]} matches")


class ExportFormat(StrEnum):
    JSONL = "jsonl"
    CSV = "csv"


@audit_app.command("export")
def audit_export(
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write.")],
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    file_format: Annotated[ExportFormat, typer.Option("--format", "-f")] = ExportFormat.JSONL,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    pair: PairOption = None,
    kind: KindOption = None,
    since: SinceOption = None,
) -> None:
    """Write the audit events (with their hashes) to a JSON-lines or CSV file."""
    url = _database_url(config, database_url)
    since_at = _parse_since(since)
    if output.exists() and not force:
        raise _fail(f"{output} already exists; pass --force to overwrite it")
    if not output.parent.is_dir():
        raise _fail(f"directory {output.parent} does not exist; create it first")
    partial = output.with_name(f".{output.name}.partial")
    with partial.open("w", encoding="utf-8", newline="") as handle:
        try:
            count = _run_async(lambda: _export(url, handle, file_format, pair, kind, since_at))
        except BaseException:
            handle.close()
            partial.unlink(missing_ok=True)
            raise
    partial.replace(output)
    typer.echo(f"exported {count} audit events to {output}", err=True)


async def _export(
    url: str,
    handle: TextIO,
    file_format: ExportFormat,
    pair: str | None,
    kind: str | None,
    since: datetime | None,
) -> int:
    """Stream the matching events to ``handle``, a page at a time; returns how many."""
    engine = await _open_existing(url)
    try:
        repository = Repository(engine, SystemClock())
        writer = csv.writer(handle, lineterminator="\n")
        if file_format is ExportFormat.CSV:
            writer.writerow([*CSV_HEADER, "prev_hash", "hash"])
        count, after = 0, 0
        while page := await repository.audit_page(after, AUDIT_PAGE, pair, kind, since):
            for event in page:
                if file_format is ExportFormat.CSV:
                    writer.writerow([*_csv_row(event), event.prev_hash, event.hash])
                else:
                    row = {**_event_json(event), "prev_hash": event.prev_hash, "hash": event.hash}
                    handle.write(json.dumps(row, sort_keys=True) + "\n")
            count += len(page)
            after = page[-1].id
        return count
    finally:
        await engine.dispose()


@app.command("set-target")
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
    settings = _settings(config)
    try:
        pair_config = settings.pair(pair)
        ratio, outlook = parse_target_value(pair_config, value)
    except (ConfigError, ValueError) as exc:
        raise _fail(f"set-target: {exc}") from None
    url = database_url or settings.database_url
    if ratio is not None:
        what = f"ratio {ratio}"
    elif outlook is not None:
        what = f"outlook {outlook}"
    else:
        what = "the config's target"

    async def _store() -> None:
        engine = await _open_existing(url)
        try:
            if await schema_state(engine) is not SchemaState.CURRENT:
                raise UsageError(
                    "the database schema is out of date; run `hedgebot db upgrade` first"
                )
            await Repository(engine, SystemClock()).set_pair_target(
                pair, ratio, outlook, f"target set to {what} (from the next cycle)"
            )
        finally:
            await engine.dispose()

    _run_async(_store)
    typer.echo(f"{pair}: target set to {what}; the daemon applies it on its next cycle")


def _money(value: Decimal | None, places: int = 8) -> str | None:
    if value is None:
        return None
    text = f"{value.quantize(Decimal(1).scaleb(-places)):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _report_json(row: PairReport) -> dict[str, Any]:
    return {
        "pair": row.pair,
        "since": None if row.since is None else row.since.isoformat(),
        "until": row.until.isoformat(),
        "observations": row.observations,
        "start_price": _money(row.start_price),
        "end_price": _money(row.end_price),
        "spot_pnl": _money(row.spot_pnl),
        "perp_realized_pnl": _money(row.perp_realized_pnl),
        "perp_unrealized_pnl": _money(row.perp_unrealized_pnl),
        "perp_pnl": _money(row.perp_pnl),
        "funding": _money(row.funding),
        "fees": _money(row.fees),
        "net": _money(row.net),
        "hedge_effectiveness": _money(row.hedge_effectiveness, 6),
    }


@app.command()
def report(
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    pair: Annotated[str | None, typer.Option("--pair", "-p", help="Only this pair.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="ISO 8601 time.")] = None,
    output: Annotated[TableFormat, typer.Option("--format", "-f")] = TableFormat.TABLE,
) -> None:
    """Per pair over the period: spot and perp PnL, funding, fees, net, hedge effectiveness."""
    url = _database_url(config, database_url)
    since_at = _parse_since(since)

    async def _read() -> list[PairReport]:
        engine = await _open_existing(url)
        try:
            return await Repository(engine, SystemClock()).report(pair, since_at)
        finally:
            await engine.dispose()

    rows = [_report_json(r) for r in _run_async(_read)]
    if output is TableFormat.JSON:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo("nothing recorded for that pair and period")
        return
    columns = ("spot_pnl", "perp_pnl", "funding", "fees", "net")
    table = _table(
        f"hedgebot report (since {since_at.isoformat() if since_at else 'the start'})",
        "pair",
        "observations",
        "price",
        *(c.replace("_", " ") for c in columns),
        "hedge effectiveness",
    )
    for row in rows:
        table.add_row(
            row["pair"],
            str(row["observations"]),
            f"{row['start_price'] or '-'} -> {row['end_price'] or '-'}",
            *(_money(Decimal(row[c]), 2) for c in columns),
            row["hedge_effectiveness"] or "-",
        )
    Console(width=200).print(table)


def _set_paused(
    config: Path | None, database_url: str | None, pair: str | None, paused: bool, reason: str
) -> str:
    if config is not None and pair is not None:
        try:
            _settings(config).pair(pair)
        except ConfigError as exc:
            raise _fail(str(exc)) from None
    url = _database_url(config, database_url)
    target = pair or ALL_PAIRS

    async def _write() -> tuple[bool, str | None]:
        engine = await _open_existing(url)
        try:
            repository = Repository(engine, SystemClock())
            changed = await repository.set_pair_paused(target, paused, reason, "user")
            still = paused_reason(await repository.pair_controls(), target)
            return changed, still
        finally:
            await engine.dispose()

    changed, still = _run_async(_write)
    who = pair or "every pair"
    if paused:
        return f"{who} paused" if changed else f"{who} was already paused"
    if not changed and still is None:
        return f"{who} was not paused"
    if still is not None:
        return f"{who} resumed, but still {still}; `hedgebot resume` resumes every pair"
    return f"{who} resumed"


ReasonOption = Annotated[str | None, typer.Option("--reason", "-r", help="Why, for the audit.")]
PairArgument = Annotated[
    str | None, typer.Argument(help="The pair; every pair when left out.", show_default=False)
]


@app.command()
def pause(
    pair: PairArgument = None,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    reason: ReasonOption = None,
) -> None:
    """Stop sending orders for PAIR (or every pair) until resumed; survives restarts."""
    typer.echo(_set_paused(config, database_url, pair, True, reason or "paused by hand"))


@app.command()
def resume(
    pair: PairArgument = None,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    reason: ReasonOption = None,
) -> None:
    """Let PAIR (or every pair) trade again, whether it was paused by hand or by itself."""
    typer.echo(_set_paused(config, database_url, pair, False, reason or "resumed by hand"))


@app.command()
def backtest(
    prices: Annotated[
        list[str],
        typer.Option(
            "--prices",
            help="Price CSV (timestamp,price[,funding_rate]); COIN=FILE per coin, repeatable.",
        ),
    ],
    config: ConfigOption = None,
    funding: Annotated[
        Path | None,
        typer.Option("--funding", help="Funding CSV (timestamp,funding_rate) for every perp."),
    ] = None,
    start: Annotated[
        str | None, typer.Option("--from", help="First time replayed (ISO 8601, UTC if naive).")
    ] = None,
    end: Annotated[
        str | None, typer.Option("--to", help="Last time replayed (ISO 8601, UTC if naive).")
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", help="Folder for summary.json and report.png.")
    ] = Path("backtest-out"),
    compare: Annotated[
        bool,
        typer.Option("--compare", help="Run band vs interval rebalancing (and every strategy)."),
    ] = False,
) -> None:
    """Replay a recorded price path through the daemon's own cycle on the paper venue."""
    from bot.backtest.command import COMPARE_COLUMNS, compare_row
    from bot.backtest.command import backtest as run_one
    from bot.backtest.command import compare as run_all
    from bot.backtest.engine import coins_of
    from bot.backtest.path import load_path, parse_price_args
    from bot.exchange.feeds import FeedError

    settings = _settings(config)
    configure_logging("json", level=logging.WARNING)
    try:
        path = load_path(
            parse_price_args(prices),
            coins_of(settings),
            funding,
            _parse_time("--from", start),
            _parse_time("--to", end),
        )
    except FeedError as exc:
        raise _fail(f"backtest: {exc}") from None
    console = Console(stderr=True)
    steps = len(path.steps)
    with _progress(console) as bar:
        if not compare:
            task = bar.add_task("backtest", total=steps) if bar else None

            def advance(index: int) -> None:
                if bar is not None and task is not None:
                    bar.update(task, completed=index)

            summary = _backtest_call(lambda: run_one(settings, path, out, advance))
        else:
            tasks: dict[str, Any] = {}

            def advance_named(name: str, index: int) -> None:
                if bar is None:
                    return
                if name not in tasks:
                    tasks[name] = bar.add_task(name, total=steps)
                bar.update(tasks[name], completed=index)

            results = _backtest_call(lambda: run_all(settings, path, advance_named))
    if compare:
        table = _table(
            f"{steps} steps, {path.steps[0].isoformat()} to {path.steps[-1].isoformat()}",
            "configuration",
            *(name for name, _ in COMPARE_COLUMNS),
        )
        for name, result in results:
            table.add_row(name, *compare_row(result))
        Console(width=200).print(table)
        return
    typer.echo(
        f"{steps} steps ({summary['cycles']} cycles, {summary['quiet_steps']} quiet), "
        f"{summary['orders']} orders, turnover {summary['turnover']}, fees {summary['fees']}, "
        f"funding {summary['funding']}\n"
        f"spot PnL {summary['spot_pnl']}, perp PnL {summary['perp_pnl']}, net {summary['net']}; "
        f"max drawdown hedged {summary['max_drawdown_hedged']:.2%}, "
        f"unhedged {summary['max_drawdown_unhedged']:.2%}\n"
        f"wrote {out / 'summary.json'} and {out / 'report.png'}"
    )


def _backtest_call(work: Callable[[], T]) -> T:
    try:
        return work()
    except FatalError as exc:  # the config asks for what the paper venue cannot do
        raise _fail(f"backtest: {exc}") from None


def _parse_time(option: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _fail(
            f"{option} {value!r} is not an ISO 8601 time; use e.g. 2026-01-05T00:00:00Z"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def _progress(console: Console) -> Any:
    """A progress bar on a terminal; nothing when stderr is not one."""
    from contextlib import nullcontext

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    if not console.is_terminal:
        return nullcontext(None)
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )


@db_app.command("upgrade")
def db_upgrade(config: ConfigOption = None, database_url: DatabaseOption = None) -> None:
    """Apply every pending migration."""
    url = _database_url(config, database_url)

    async def _upgrade() -> SchemaState:
        engine = await _prepare_database(url, migrate=True)
        try:
            return await schema_state(engine)
        finally:
            await engine.dispose()

    state = _run_async(_upgrade)
    typer.echo(f"database schema {state.value} at revision {head_revision()}")


def main() -> None:
    """Console-script entry point."""
    app()
