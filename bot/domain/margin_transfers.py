"""Margin transfers as the venue lists them, and how one of ours is recognised there (pure).

The liquidation guard's margin transfer moves money like an order, but Binance's
``POST /fapi/v1/positionMargin`` takes no client id: a transfer whose answer was lost is
found again in the venue's margin history (``GET /fapi/v1/positionMargin/history``) by
what it was — symbol, direction, amount and time — never sent again.

The matching rule (``match_transfer``): a change in the history is our transfer when

* it adds margin (``added``) to the transfer's symbol,
* its amount is exactly the transfer's (the venue records the amount it was sent),
* its venue time lies in ``[stored_at - CLOCK_SKEW, stored_at + settle + CLOCK_SKEW]``,
* and no other transfer of ours was matched to it already (``claimed``).

Why that is safe: the intent is stored before the request leaves, so the venue cannot
have applied it before ``stored_at`` (give or take the clocks' difference, which Binance
itself bounds: a signed request stamped outside its ``recvWindow`` is refused); a request
that reached the venue is executed within that window, so a transfer not in the history
``settle`` after its intent (``settle`` >= the recvWindow) was never executed and never
will be. While one transfer of a pair is unresolved the pair sends no other, so at most
one of ours is looked for at a time; the guard's amounts are cent-rounded figures of the
moment, so a false match needs someone else to add exactly the same amount to the same
symbol within that minute (a hand-made transfer of the identical figure) — the one case
the rule cannot tell apart, and then it records a transfer that did happen, just not ours.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

CLIENT_ID_PREFIX = "hbm"
MAX_CLIENT_ID_LENGTH = 36  # the order ids' limit, so both kinds read alike
# How far the venue's clock may be from ours: Binance refuses a signed request stamped
# more than its recvWindow (ccxt sends 10 s) from its own time.
CLOCK_SKEW = timedelta(seconds=30)


class TransferState(enum.StrEnum):
    """``intent``: stored, not sent (a daemon that stops here sent nothing); ``sent``: the
    request may have left; ``unknown``: the answer was lost; ``done``: the venue moved
    the margin; ``failed``: the venue refused it, or it was never sent."""

    INTENT = "intent"
    SENT = "sent"
    UNKNOWN = "unknown"
    DONE = "done"
    FAILED = "failed"


UNRESOLVED_STATES = (TransferState.INTENT, TransferState.SENT, TransferState.UNKNOWN)


@dataclass(frozen=True, slots=True)
class MarginChange:
    """One isolated-margin change in the venue's history (ours or anyone's)."""

    symbol: str
    amount: Decimal  # positive
    asset: str
    added: bool  # True: margin added to the position; False: taken out
    at: datetime  # the venue's time


def margin_client_id(decision_id: str) -> str:
    """The transfer's id for a decision: the same decision always gives the same id."""
    client_id = f"{CLIENT_ID_PREFIX}{decision_id}"
    if len(client_id) > MAX_CLIENT_ID_LENGTH:
        raise ValueError(f"margin client id {client_id!r} exceeds {MAX_CLIENT_ID_LENGTH} chars")
    return client_id


def match_transfer(
    symbol: str,
    amount: Decimal,
    stored_at: datetime,
    settle: timedelta,
    changes: Iterable[MarginChange],
    claimed: Collection[datetime] = (),
) -> MarginChange | None:
    """The earliest change of ``changes`` that is our transfer of ``amount`` to ``symbol``
    whose intent was stored at ``stored_at`` (the rule in the module's docstring); None
    when the history holds none."""
    earliest = stored_at - CLOCK_SKEW
    latest = stored_at + settle + CLOCK_SKEW
    found = [
        change
        for change in changes
        if change.added
        and change.symbol == symbol
        and change.amount == amount
        and earliest <= change.at <= latest
        and change.at not in claimed
    ]
    return min(found, key=lambda change: change.at, default=None)


def history_is_complete(stored_at: datetime, settle: timedelta, now: datetime) -> bool:
    """Whether the venue's history would surely show a transfer stored at ``stored_at``
    by ``now``: after ``settle`` a transfer not there was never executed."""
    return now - stored_at >= settle
