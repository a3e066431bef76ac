"""Sentences for people about stored records: a pair's status and health, an order.

The store returns data (bot/store/read_models.py); ``hedgebot status`` and the
service's readers show it through these functions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from bot.domain.controls import pause_text
from bot.domain.words import utc_time
from bot.store.orders import StoredOrder
from bot.store.read_models import PairFigures, PairStatusRecord, ReadModels
from bot.store.status_facts import DaemonFacts


@dataclass(frozen=True, slots=True)
class PairStatus(PairFigures):
    """A pair's status as ``hedgebot status`` shows it."""

    last_action: str
    last_action_at: datetime | None
    foreign_open_orders: int = 0  # open orders on the perp that hedgebot did not place
    health: str = "ok"  # or why the pair sends no order now (stale data, exchange down…)
    held_by: str | None = None  # the daemon (host:pid:suffix) that made the latest decision
    strategy: str = "fixed"
    strategy_detail: str = ""  # e.g. "outlook neutral", "regime bear"
    pending_target: str | None = None  # set with set-target after the last decision
    paused: str | None = None  # why the pair is paused (`hedgebot pause`, or automatically)
    daemon: str = "running"  # running, stopped (given back or no daemon) or stale (lapsed)
    price_step: Decimal | None = None  # the market's tick, to show the price at
    quantity_step: Decimal | None = None  # its quantity step in coins

    @property
    def target_text(self) -> str:
        """The effective target as status shows it: ratio, strategy, a pending change."""
        text = f"{self.target_ratio} ({self.strategy_detail or self.strategy})"
        if self.pending_target is not None:
            text += f"; set {self.pending_target}, from next cycle"
        return text


def describe_order(order: StoredOrder) -> str:
    """One line: side, amount, symbol, status and price."""
    text = f"{order.side} {order.amount} {order.symbol} {order.status}"
    if order.average_price is not None and order.filled:
        text += f" {order.filled} @ {order.average_price}"
    if order.reason:
        text += f" ({order.reason})"
    return text


def strategy_detail(inputs: Mapping[str, Any]) -> str:
    """The strategy and its state as status shows it: "outlook neutral", "trend bear"."""
    name = str(inputs.get("name", "fixed"))
    if "outlook" in inputs:
        return f"{name} {inputs['outlook']}"
    if inputs.get("regime"):
        return f"{name} {inputs['regime']}"
    if inputs.get("set_target"):
        return f"{name}, set"
    return name


def health_text(record: PairStatusRecord) -> str:
    """Why the pair is not trading normally, from what happened since its last decision
    (a pause is told apart, by ``pair_status``)."""
    failure = record.failure
    if failure is not None:
        prefix = "exchange unreachable" if failure.kind == "cycle.observe_failed" else "error"
        return f"{prefix}: {failure.summary}"
    if record.action == "denied":
        return f"not trading: {record.verdict}"
    if record.action == "waiting":
        return "waiting: an order's or a margin transfer's outcome is not known yet"
    if record.action == "liquidity_wait":
        return f"waiting for liquidity: {record.verdict}"
    return "ok"


def daemon_state(facts: DaemonFacts, decided_at: datetime) -> tuple[str, str | None]:
    """Whether a daemon runs the pair (``running``, ``stopped`` or ``stale``) and, when
    none does, the health line that says so."""
    last = f"last cycle {utc_time(decided_at)}"
    if facts.leased and facts.holder is None:
        return (
            "stopped",
            f"stopped: its daemon stopped at {utc_time(facts.expires_at or decided_at)}",
        )
    if facts.leased and facts.expires_at is not None and facts.expires_at < facts.now:
        return "stale", (
            f"stale: its daemon's lease lapsed at {utc_time(facts.expires_at)} ({last}); "
            "is it hung or killed? start `hedgebot run` again"
        )
    if not facts.leased and facts.live_instances == 0:
        return "stopped", f"stopped: no daemon is running ({last})"
    return "running", None


def pair_status(record: PairStatusRecord) -> PairStatus:
    """A pair's stored status, in the words ``hedgebot status`` shows."""
    paused = None if record.pause is None else pause_text(record.pause, record.pair)
    pending = record.pending_target
    order = record.last_order
    daemon, not_running = daemon_state(record.daemon, record.decided_at)
    return PairStatus(
        **record.figures(),
        last_action=describe_order(order) if order else "none yet",
        last_action_at=order.updated_at if order else None,
        foreign_open_orders=record.foreign_open_orders,
        health=not_running or paused or health_text(record),
        held_by=record.held_by,
        strategy=str(record.strategy.get("name", "fixed")),
        strategy_detail=strategy_detail(record.strategy),
        pending_target=None if pending is None else pending.outlook or str(pending.ratio),
        paused=paused,
        daemon=daemon,
        price_step=_step(record.steps.get("price")),
        quantity_step=_step(record.steps.get("quantity")),
    )


def _step(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


async def pair_statuses(store: ReadModels, pairs: Sequence[str] | None = None) -> list[PairStatus]:
    """Every pair's status (or those of ``pairs``), described."""
    return [pair_status(record) for record in await store.pair_status(pairs)]
