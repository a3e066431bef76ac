"""Isolated-margin transfers through ccxt: the transfer itself and the venue's history of
them, where a transfer whose answer was lost is looked up (it has no client id).

The transfer itself is the venue module's call (``bot/exchange/venues``); this module
checks its amount first. Binance: ``add_margin`` is ``POST /fapi/v1/positionMargin`` (type 1), and
``fetch_margin_adjustment_history`` is ``GET /fapi/v1/positionMargin/history`` (the last
30 days, startTime and endTime at most 30 days apart). ccxt rounds the amount to the
market's amount precision before sending it: an amount that rounding would change is
refused here, not sent as another figure (the look-up matches the exact amount).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from bot.domain.margin_transfers import MarginChange
from bot.exchange.ccxt_client import CcxtCalls
from bot.exchange.ccxt_parse import dec, ms_time
from bot.exchange.gateway import FatalError, OrderRejectedError


def check_precision(calls: CcxtCalls, client: Any, symbol: str, amount: Decimal) -> None:
    """Refuse (OrderRejectedError) an amount ccxt would round before sending: the look-up
    of a lost answer matches the exact amount, so another figure must never be sent."""
    refuse_rounded(
        calls,
        "add_margin",
        amount,
        lambda: client.amount_to_precision(symbol, str(amount)),
        f"margin {amount} for {symbol} is finer than the market's amount precision",
    )


def refuse_rounded(
    calls: CcxtCalls, what: str, amount: Decimal, rounded: Callable[[], str], problem: str
) -> None:
    """OrderRejectedError naming ``problem`` when ccxt's ``rounded()`` figure is not
    ``amount``: a transfer matched by its amount must be sent as exactly that."""
    with calls.translated(what, for_order=True):
        sent = rounded()
    if Decimal(sent) != amount:
        raise OrderRejectedError(f"{problem}; ccxt would send {sent}: not sent")


async def margin_history(
    calls: CcxtCalls, client: Any, symbol: str, since: datetime
) -> list[MarginChange]:
    """The symbol's isolated-margin changes since ``since`` (ccxt
    ``fetch_margin_adjustment_history``), oldest first."""
    if not client.has.get("fetchMarginAdjustmentHistory"):
        raise FatalError(
            f"{client.id} has no margin history in ccxt: a margin transfer whose answer "
            "was lost cannot be looked up"
        )
    raw = await calls.call(
        "fetch_margin_adjustment_history",
        client.fetch_margin_adjustment_history,
        symbol,
        None,
        int(since.timestamp() * 1000),
    )
    return margin_changes(raw, symbol)


def margin_changes(raw: Sequence[Any], symbol: str) -> list[MarginChange]:
    """ccxt's margin modifications as domain values; the amount from the venue's own
    string (``info.amount``) where it has one, so nothing passes through a float."""
    changes = []
    for item in raw:
        at = ms_time(item.get("timestamp"))
        if item.get("symbol") != symbol or at is None or item.get("amount") is None:
            continue
        info = item.get("info") or {}
        changes.append(
            MarginChange(
                symbol=symbol,
                amount=abs(dec(info.get("amount") or item["amount"])),
                asset=str(item.get("code") or info.get("asset") or ""),
                added=item.get("type") == "add",
                at=at,
            )
        )
    return sorted(changes, key=lambda change: change.at)
