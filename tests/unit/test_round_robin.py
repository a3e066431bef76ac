"""The daemon sends a cycle's orders taking the accounts in turn."""

from __future__ import annotations

from bot.service.cycle.accounts import round_robin


def test_orders_alternate_between_accounts_and_keep_their_order_within_one() -> None:
    orders = ["a1", "a2", "a3", "b1", "c1", "c2"]

    assert round_robin(orders, lambda order: order[0]) == ["a1", "b1", "c1", "a2", "c2", "a3"]


def test_no_orders_give_no_orders() -> None:
    assert round_robin([], lambda order: order) == []
