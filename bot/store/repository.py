"""Reads and writes of the daemon's records: one repository per aggregate, and
``Repository``, the one object the daemon, the CLI and the backtest hold.

Each aggregate lives in its own module (audit_log, decisions, orders, margin_transfers,
leases, funding, controls, read_models, paper_accounts) over ``StoreBase`` (database.py), which owns
the sessions, the write transaction and the audit chain. ``Repository`` is all of
them on one engine, so they share one writer queue on SQLite.

The names below stay importable from here for callers written against one module.
"""

from __future__ import annotations

from bot.domain.controls import ALL_PAIRS, PairControl, paused_reason
from bot.store.audit_log import AuditEvent, AuditLog
from bot.store.controls import Controls, PairTarget
from bot.store.database import StoreBase, jsonable
from bot.store.decisions import DecisionRecord, Decisions, PairCycle
from bot.store.engine import SQLITE_WRITE, create_engine
from bot.store.funding import Funding
from bot.store.leases import Leases
from bot.store.margin_transfers import MarginTransferIntent, MarginTransfers, StoredMarginTransfer
from bot.store.orders import UNRESOLVED, Orders, StoredFill, StoredOrder
from bot.store.paper_accounts import PaperAccounts
from bot.store.read_models import PairStatusRecord, ReadModels
from bot.store.retention import PruneReport, Retention

__all__ = [
    "ALL_PAIRS",
    "SQLITE_WRITE",
    "UNRESOLVED",
    "AuditEvent",
    "DecisionRecord",
    "MarginTransferIntent",
    "PairControl",
    "PairCycle",
    "PairStatusRecord",
    "PairTarget",
    "PruneReport",
    "Repository",
    "StoreBase",
    "StoredFill",
    "StoredMarginTransfer",
    "StoredOrder",
    "create_engine",
    "jsonable",
    "paused_reason",
]


class Repository(
    AuditLog,
    Decisions,
    Orders,
    MarginTransfers,
    Leases,
    Funding,
    Controls,
    ReadModels,
    PaperAccounts,
    Retention,
):
    """All database access of the daemon and the CLI; implements the paper venue's
    ``PaperAccountStore`` port."""
