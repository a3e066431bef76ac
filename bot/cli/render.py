"""Every table, JSON row and line the commands print, in one place."""

from __future__ import annotations

import csv
import json
import shutil
import sys
from contextlib import nullcontext
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.table import Table

from bot.domain.report import PairReport
from bot.domain.words import plural
from bot.service.describe import PairStatus
from bot.store.repository import AuditEvent, jsonable

if TYPE_CHECKING:
    from bot.service.daemon import Assessment

CSV_HEADER = ["id", "ts", "pair", "kind", "summary", "decision_id", "data"]
TIME_FORMAT = "%Y-%m-%d %H:%M:%S UTC"  # every stored time is UTC
# Tables fit the terminal; piped to a file they take this width (or $COLUMNS).
PIPED_WIDTH = 160


class AuditFormat(StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"


def table(title: str, *columns: str) -> Table:
    """A rich table whose long cells wrap instead of being cut."""
    result = Table(title=title)
    for column in columns:
        result.add_column(column, overflow="fold")
    return result


def print_table(rendered: Table) -> None:
    width = shutil.get_terminal_size(fallback=(PIPED_WIDTH, 24)).columns
    Console(width=width).print(rendered)


MAX_PLACES = 8  # of a quantity or price shown at its step


def at_step(value: Any, step: Any) -> str:
    """``value`` with as many places as ``step`` has (a price at the market's tick, a
    quantity at its step), at most 8 (a satoshi: an inverse contract's step in coins,
    ``face / price``, has as many as the context allows); as it is when the step is not
    known."""
    if value is None:
        return "-"
    number = Decimal(str(value))
    if step is None or Decimal(str(step)) <= 0:
        return str(number)
    exponent = Decimal(str(step)).normalize().as_tuple().exponent
    places = min(max(0, -exponent), MAX_PLACES) if isinstance(exponent, int) else 0
    shown = number.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
    return f"{shown:f}"


def ratio_text(value: Any) -> str:
    """A hedge ratio as tables show it: four places."""
    return "-" if value is None else f"{Decimal(str(value)):.4f}"


def print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2))


def num(value: Any) -> str | None:
    return None if value is None else str(value)


def money(value: Decimal | None, places: int = 8) -> str | None:
    if value is None:
        return None
    text = f"{value.quantize(Decimal(1).scaleb(-places)):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


# -- plan -----------------------------------------------------------------------------


def _plan_order(a: Assessment) -> str | None:
    intent = a.decision.intent
    if intent is None:
        return None
    order = f"{intent.side.value} {intent.amount} {intent.symbol}"
    if intent.reduce_only:
        order += " reduce-only"
    if a.order is not None and a.order.price is not None:
        order += f" IOC @ {a.order.price}"
    return order


def plan_json(a: Assessment) -> dict[str, Any]:
    obs, decision = a.observation, a.decision
    return {
        "pair": a.pair,
        "price": str(obs.price),
        "spot_qty": str(obs.spot_qty),
        "hedge_qty": str(-obs.perp_qty),
        "ratio": None if decision.ratio is None else str(round(decision.ratio, 6)),
        "target_ratio": str(decision.target_ratio),
        "drift_qty": str(decision.drift_qty),
        "action": a.action,
        "order": _plan_order(a),
        "verdict": None if a.verdict is None else a.verdict.reason,
        "reason": a.summary,
        "price_step": None if a.market is None else str(a.market.price_step),
        "quantity_step": None
        if a.market is None
        else str(a.market.amount_step * a.market.contract_size),
    }


def plan_table(mode: str, rows: list[dict[str, Any]]) -> Table:
    result = table(
        f"hedgebot plan ({mode}, nothing sent)",
        *("pair", "price", "spot", "hedge", "ratio", "target", "drift", "action", "order"),
        "reason",
    )
    for row in rows:
        step = row["quantity_step"]
        result.add_row(
            row["pair"],
            at_step(row["price"], row["price_step"]),
            at_step(row["spot_qty"], step),
            at_step(row["hedge_qty"], step),
            ratio_text(row["ratio"]),
            row["target_ratio"],
            at_step(row["drift_qty"], step),
            row["action"],
            row["order"] or "-",
            row["reason"],
        )
    return result


# -- status and report ----------------------------------------------------------------


def status_json(row: PairStatus) -> dict[str, Any]:
    return {
        "pair": row.pair,
        "price": num(row.price),
        "spot_qty": num(row.spot_qty),
        "hedge_qty": num(row.hedge_qty),
        "ratio": num(None if row.ratio is None else round(row.ratio, 6)),
        "target_ratio": num(row.target_ratio),
        "strategy": row.strategy,
        "target": row.target_text,
        "band": num(row.band),
        "drift_qty": num(row.drift_qty),
        "last_action": row.last_action,
        "last_action_at": None if row.last_action_at is None else row.last_action_at.isoformat(),
        "mode": row.mode,
        "foreign_orders": row.foreign_open_orders,
        "health": row.health,
        "held_by": row.held_by,
        "paused": row.paused,
        "daemon": row.daemon,
        "last_cycle_at": row.decided_at.isoformat(),
    }


STATUS_COLUMNS = ("pair", "mode", "price", "spot", "hedge", "ratio", "target", "band")


def status_table(rows: list[PairStatus]) -> Table:
    result = table(
        "hedgebot status", *STATUS_COLUMNS, "drift", "last action", "at", "foreign", "health"
    )
    for r in rows:
        result.add_row(
            r.pair,
            r.mode,
            at_step(r.price, r.price_step),
            at_step(r.spot_qty, r.quantity_step),
            at_step(r.hedge_qty, r.quantity_step),
            ratio_text(r.ratio),
            r.target_text,
            str(r.band),
            at_step(r.drift_qty, r.quantity_step),
            r.last_action,
            "-" if r.last_action_at is None else r.last_action_at.strftime(TIME_FORMAT),
            str(r.foreign_open_orders),
            r.health,
        )
    return result


def report_json(row: PairReport) -> dict[str, Any]:
    return {
        "pair": row.pair,
        "since": None if row.since is None else row.since.isoformat(),
        "until": row.until.isoformat(),
        "observations": row.observations,
        "start_price": money(row.start_price),
        "end_price": money(row.end_price),
        "spot_pnl": money(row.spot_pnl),
        "perp_realized_pnl": money(row.perp_realized_pnl),
        "perp_unrealized_pnl": money(row.perp_unrealized_pnl),
        "perp_pnl": money(row.perp_pnl),
        "funding": money(row.funding),
        "fees": money(row.fees),
        "net": money(row.net),
        "hedge_effectiveness": money(row.hedge_effectiveness, 6),
        "unpriced_spot": row.unpriced_spot,
        "fees_unconverted": {a: money(v) for a, v in sorted(row.fees_unconverted.items())},
        "funding_unconverted": {a: money(v) for a, v in sorted(row.funding_unconverted.items())},
    }


REPORT_COLUMNS = ("spot_pnl", "perp_pnl", "funding", "fees", "net")


def report_table(since: str, rows: list[dict[str, Any]]) -> Table:
    result = table(
        f"hedgebot report (since {since})",
        "pair",
        "observations",
        "price",
        *(c.replace("_", " ") for c in REPORT_COLUMNS),
        "hedge effectiveness",
    )
    for row in rows:
        result.add_row(
            row["pair"],
            str(row["observations"]),
            f"{row['start_price'] or '-'} -> {row['end_price'] or '-'}",
            *(money(Decimal(row[c]), 2) for c in REPORT_COLUMNS),
            row["hedge_effectiveness"] or "-",
        )
    return result


def report_notes(rows: list[dict[str, Any]]) -> list[str]:
    """What the figures of each row leave out or approximate, one line each."""
    notes: list[str] = []
    for row in rows:
        pair, unpriced = row["pair"], row["unpriced_spot"]
        if unpriced:
            notes.append(
                f"{pair}: {unpriced} of {row['observations']} observations have no spot price "
                "(stored before it was kept, or not observed): their spot is valued at the "
                "contract's price"
            )
        for label, key in (("fees", "fees_unconverted"), ("funding", "funding_unconverted")):
            if row[key]:
                amounts = ", ".join(f"{v} {a}" for a, v in row[key].items())
                notes.append(
                    f"{pair}: {label} of {amounts} not in net: no stored price of that asset "
                    "near their time"
                )
    return notes


# -- audit ----------------------------------------------------------------------------


def event_json(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "ts": event.ts.isoformat(),
        "pair": event.pair,
        "kind": event.kind,
        "summary": event.summary,
        "decision_id": event.decision_id,
        "data": jsonable(event.data),
    }


def csv_row(event: AuditEvent) -> list[Any]:
    row = event_json(event)
    return [
        row["id"],
        row["ts"],
        row["pair"] or "",
        row["kind"],
        row["summary"],
        row["decision_id"] or "",
        json.dumps(row["data"], sort_keys=True),
    ]


def csv_header() -> None:
    csv.writer(sys.stdout, lineterminator="\n").writerow(CSV_HEADER)


def _event_line(event: AuditEvent) -> str:
    return (
        f"{event.id}  {event.ts.strftime(TIME_FORMAT)}  {event.pair or '-'}  "
        f"{event.kind}  {event.summary}"
    )


def _events_table(events: list[AuditEvent]) -> Table:
    title = f"hedgebot audit ({plural(len(events), 'event')})"
    result = table(title, "id", "ts", "pair", "kind", "summary")
    for event in events:
        result.add_row(
            str(event.id),
            event.ts.strftime(TIME_FORMAT),
            event.pair or "-",
            event.kind,
            event.summary,
        )
    return result


def print_events(events: list[AuditEvent], output: AuditFormat, follow: bool) -> None:
    """Events to stdout; with --follow the table format becomes one line per event."""
    if output is AuditFormat.JSON:
        for event in events:
            typer.echo(json.dumps(event_json(event), sort_keys=True))
    elif output is AuditFormat.CSV:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        for event in events:
            writer.writerow(csv_row(event))
    elif follow:
        for event in events:
            typer.echo(_event_line(event))
    else:
        print_table(_events_table(events))
    sys.stdout.flush()


# -- backtest -------------------------------------------------------------------------


def backtest_summary(steps: int, summary: dict[str, Any], summary_file: Path, chart: Path) -> str:
    """The three lines a single backtest prints."""
    return (
        f"{steps} steps ({summary['cycles']} cycles, {summary['quiet_steps']} quiet), "
        f"{summary['orders']} orders, turnover {summary['turnover']}, fees {summary['fees']}, "
        f"funding {summary['funding']}\n"
        f"spot PnL {summary['spot_pnl']}, perp PnL {summary['perp_pnl']}, net {summary['net']}; "
        f"max drawdown hedged {summary['max_drawdown_hedged']:.2%}, "
        f"unhedged {summary['max_drawdown_unhedged']:.2%}\n"
        f"wrote {summary_file} and {chart}"
    )


def progress(console: Console) -> Any:
    """A progress bar on a terminal; nothing when stderr is not one."""
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
