"""Moved to :mod:`bot.domain.paper_account` (the store may import the domain, not the
exchange layer); these names stay importable from here for code written against the
old place."""

from bot.domain.paper_account import (
    InMemoryPaperAccountStore,
    PaperAccountState,
    PaperAccountStore,
    PaperPosition,
    order_from_json,
    order_to_json,
    state_from_json,
    state_to_json,
)

__all__ = [
    "InMemoryPaperAccountStore",
    "PaperAccountState",
    "PaperAccountStore",
    "PaperPosition",
    "order_from_json",
    "order_to_json",
    "state_from_json",
    "state_to_json",
]
