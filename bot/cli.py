"""The ``hedgebot`` command line."""

from __future__ import annotations

import asyncio
import csv
import json
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import structlog
import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.clock import SystemClock
from bot.config import PAPER_ACCOUNT, ConfigError, Settings, load_settings, masked_dump
from bot.exchange.gateway import ExchangeGateway, FatalError, GatewayError
from bot.logging import configure_logging
from bot.store.instance import InstanceLockedError, single_instance
from bot.store.migrate import SchemaState, head_revision, schema_state, upgrade
from bot.store.repository import AuditEvent, PairStatus, Repository, create_engine, jsonable

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
    configure_logging(log_format.value if log_format else settings.log_format)
    _run_async(lambda: _run_daemon(settings, max_cycles, migrate))


async def _run_daemon(settings: Settings, max_cycles: int | None, migrate: bool) -> None:
    clock = SystemClock()
    engine = await _prepare_database(settings.database_url, migrate)
    try:
        async with single_instance(engine, settings.database_url):
            await _run_locked(settings, max_cycles, engine, clock)
    except InstanceLockedError as exc:
        raise UsageError(str(exc)) from None
    finally:
        await engine.dispose()


async def _run_locked(
    settings: Settings, max_cycles: int | None, engine: AsyncEngine, clock: SystemClock
) -> None:
    from bot.service.daemon import HedgeDaemon
    from bot.service.venues import open_gateways

    log = structlog.get_logger("hedgebot")
    repository = Repository(engine, clock)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    gateways: dict[str, ExchangeGateway] = {}
    reason = "stopped"
    try:
        gateways = await open_gateways(settings, repository, clock)
        daemon = HedgeDaemon(settings, repository, gateways, clock)
        await daemon.start()
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
        await daemon.stop(reason)
    except FatalError as exc:
        reason = f"fatal: {exc}"
        await repository.append_audit("daemon.fatal", f"hedgebot cannot run: {exc}")
        raise UsageError(str(exc)) from None
    finally:
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
    configure_logging("json", level=logging.WARNING)
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
    from bot.exchange.paper_state import InMemoryPaperAccountStore
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
        "band": _num(row.band),
        "drift_qty": _num(row.drift_qty),
        "last_action": row.last_action,
        "last_action_at": None if row.last_action_at is None else row.last_action_at.isoformat(),
        "mode": row.mode,
        "foreign_orders": row.foreign_open_orders,
        "health": row.health,
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
            return await Repository(engine, SystemClock()).pair_status()
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
            str(r.target_ratio),
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


@app.command()
def audit(
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    pair: Annotated[str | None, typer.Option("--pair", "-p", help="Only this pair.")] = None,
    kind: Annotated[
        str | None, typer.Option("--kind", "-k", help="Kind or kind prefix, e.g. order.")
    ] = None,
    since: Annotated[str | None, typer.Option("--since", help="ISO 8601 time.")] = None,
    limit: Annotated[int | None, typer.Option("--limit", "-n", min=1, help="Newest N.")] = None,
    output: Annotated[AuditFormat, typer.Option("--format", "-f")] = AuditFormat.TABLE,
) -> None:
    """The audit log, oldest first."""
    url = _database_url(config, database_url)
    since_at = _parse_since(since)

    async def _read() -> list[AuditEvent]:
        engine = await _open_existing(url)
        try:
            return await Repository(engine, SystemClock()).audit_events(pair, kind, since_at, limit)
        finally:
            await engine.dispose()

    events = _run_async(_read)
    if output is AuditFormat.JSON:
        for event in events:
            typer.echo(json.dumps(_event_json(event), sort_keys=True))
    elif output is AuditFormat.CSV:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["id", "ts", "pair", "kind", "summary", "decision_id", "data"])
        for event in events:
            row = _event_json(event)
            writer.writerow(
                [
                    row["id"],
                    row["ts"],
                    row["pair"] or "",
                    row["kind"],
                    row["summary"],
                    row["decision_id"] or "",
                    json.dumps(row["data"], sort_keys=True),
                ]
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
