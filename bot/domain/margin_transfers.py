"""Margin transfers as the venue lists them, and how one of ours is recognised there (pure).

The liquidation guard's margin transfer moves money like an order, but Binance's
``POST /fapi/v1/positionMargin`` takes no client id: a transfer whose answer was lost is
found again in the venue's margin history (``GET /fapi/v1/positionMargin/history``) by
what it was — symbol, direction, amount and time — never sent again.

The matching rule (``match_transfer``): a change in the history is our transfer when

* it adds margin (``added``; for a removal, takes it out) to the transfer's symbol,
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

The collateral keeper's transfers between the spot and futures wallets (Binance ``POST
/sapi/v1/asset/transfer``, no client id either) are found again the same way in the
venue's transfer history (``GET /sapi/v1/asset/transfer``), the route (``spot->futures``
or ``futures->spot``) standing for the symbol (``match_wallet_transfer``); a venue that
keeps our id (the paper venue) is matched by it.
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


class MoveKind(enum.StrEnum):
    """What a stored transfer moves: quote into (``add_margin``) or out of
    (``remove_margin``) an isolated position, or between the account's wallets
    (``to_futures``: spot -> futures, ``to_spot``: futures -> spot)."""

    ADD_MARGIN = "add_margin"
    REMOVE_MARGIN = "remove_margin"
    TO_FUTURES = "to_futures"
    TO_SPOT = "to_spot"

    @property
    def wallets(self) -> tuple[str, str] | None:
        """(source, destination) of a wallet transfer; None for a position's margin."""
        return {
            MoveKind.TO_FUTURES: (SPOT_WALLET, FUTURES_WALLET),
            MoveKind.TO_SPOT: (FUTURES_WALLET, SPOT_WALLET),
        }.get(self)


SPOT_WALLET = "spot"
FUTURES_WALLET = "futures"


@dataclass(frozen=True, slots=True)
class WalletTransfer:
    """One transfer between an account's spot and futures wallets, as the venue lists it
    (ours or anyone's); ``client_id`` where the venue keeps one (Binance does not)."""

    asset: str
    amount: Decimal  # positive
    source: str  # SPOT_WALLET or FUTURES_WALLET
    destination: str
    at: datetime  # the venue's time
    client_id: str | None = None


def match_wallet_transfer(
    client_id: str,
    kind: MoveKind,
    asset: str,
    amount: Decimal,
    stored_at: datetime,
    settle: timedelta,
    transfers: Iterable[WalletTransfer],
    claimed: Collection[datetime] = (),
) -> WalletTransfer | None:
    """Our wallet transfer among ``transfers``: the one with our ``client_id`` where the
    venue keeps ids, else by ``match_transfer``'s rule with the route (source ->
    destination) in place of the symbol."""
    listed = list(transfers)
    for transfer in listed:
        if transfer.client_id == client_id:
            return transfer
    route = kind.wallets
    if route is None:
        raise ValueError(f"{kind.value} is not a wallet transfer")
    key = f"{route[0]}->{route[1]}"
    by_change = {
        MarginChange(f"{t.source}->{t.destination}", t.amount, t.asset, True, t.at): t
        for t in listed
        if t.asset == asset and t.client_id is None
    }
    found = match_transfer(key, amount, stored_at, settle, by_change, claimed)
    return None if found is None else by_change[found]


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
    added: bool = True,
) -> MarginChange | None:
    """The earliest change of ``changes`` that is our transfer of ``amount`` to ``symbol``
    (``added`` False: taken out of it) whose intent was stored at ``stored_at`` (the rule
    in the module's docstring); None when the history holds none."""
    earliest = stored_at - CLOCK_SKEW
    latest = stored_at + settle + CLOCK_SKEW
    found = [
        change
        for change in changes
        if change.added is added
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
