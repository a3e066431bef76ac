"""Margin transfers move exactly once, like orders.

The transfer's client id derives from the decision that made it; its intent is stored
(fenced by the pair's lease) before anything is sent, and moved to ``sent`` (a compare
and set) just before the request leaves. Binance's margin call takes no client id, so a
lost answer, or a daemon that died between the intent and the outcome, is resolved by
looking the transfer up in the venue's margin history (``match_transfer`` says how and
why that is safe), never by sending it again:

* ``intent`` left behind: the daemon stopped before sending: never sent, at once;
* ``sent`` or ``unknown``: found in the history → ``done``; not there once the history
  would surely show it (``settle_after`` after the intent) → ``failed``, never sent, and
  the next decision decides afresh; until then the pair sends no other transfer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import structlog

from bot.domain.margin_transfers import (
    CLOCK_SKEW,
    MoveKind,
    TransferState,
    history_is_complete,
    margin_client_id,
    match_transfer,
    match_wallet_transfer,
)
from bot.domain.models import settle_asset
from bot.exchange.gateway import (
    ExchangeGateway,
    GatewayError,
    RateLimitedError,
    RetryableError,
)
from bot.execution.executor import UnresolvedWatch
from bot.store.leases import Lease
from bot.store.repository import MarginTransferIntent, Repository, StoredMarginTransfer

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class MarginOutcome:
    """What became of one transfer."""

    client_id: str
    state: TransferState
    reason: str


class MarginExecutor:
    """Sends the liquidation guard's margin transfers and resolves those of unknown outcome."""

    def __init__(
        self, repository: Repository, settle_after: timedelta = timedelta(seconds=60)
    ) -> None:
        self._repo = repository
        # How long after its intent a transfer may still turn up in the venue's history.
        self._settle_after = settle_after
        self.unresolved = UnresolvedWatch()

    async def transfer(
        self,
        pair: str,
        decision_id: str,
        symbol: str,
        amount: Decimal,
        gateway: ExchangeGateway,
        *,
        lease: Lease | None = None,
        lease_margin: timedelta = timedelta(0),
        send_by: float | None = None,
        kind: MoveKind = MoveKind.ADD_MARGIN,
    ) -> MarginOutcome:
        """Store the intent, send the transfer once, store the outcome. ``kind``: into or
        out of the position of ``symbol``, or between the wallets (stored under its route,
        in ``symbol``'s settle asset)."""
        route = kind.wallets
        intent = MarginTransferIntent(
            client_id=margin_client_id(decision_id),
            decision_id=decision_id,
            pair=pair,
            venue=gateway.name,
            symbol=symbol if route is None else f"{route[0]}->{route[1]}",
            amount=amount,
            asset=settle_asset(symbol),
            kind=kind.value,
        )
        # If this raises (database down, lease lost), nothing has been sent.
        self.unresolved.touched()
        stored = await self._repo.insert_margin_intent(intent, lease, lease_margin)
        if send_by is not None and time.monotonic() > send_by:
            reason = "not sent: the pair's lease could have lapsed before sending"
            return await self._outcome(stored, TransferState.FAILED, reason)
        if not await self._repo.mark_margin_sent(stored, lease, lease_margin):
            return MarginOutcome(stored.client_id, TransferState.FAILED, "resolved elsewhere")
        return await self._send(stored, gateway)

    async def _send(
        self, transfer: StoredMarginTransfer, gateway: ExchangeGateway
    ) -> MarginOutcome:
        try:
            await _send_move(transfer, gateway)
        except asyncio.CancelledError:
            # Shutdown cut the wait short: the margin may have moved. Say so (shielded from
            # the cancellation) so the next start looks it up instead of guessing.
            await asyncio.shield(
                self._outcome(
                    transfer,
                    TransferState.UNKNOWN,
                    "shutdown before the venue answered; looked up at the next start",
                )
            )
            raise
        except RateLimitedError as exc:
            reason = f"rate limited, not executed: {exc}"
            return await self._outcome(transfer, TransferState.FAILED, reason)
        except (RetryableError, TimeoutError) as exc:
            # The transfer may or may not have been made: ask, don't resend.
            log.warning("margin.answer_lost", client_id=transfer.client_id, error=str(exc))
            await self._outcome(transfer, TransferState.UNKNOWN, f"answer lost: {exc}")
            return await self._look_up(transfer, gateway, transfer.created_at)
        except GatewayError as exc:
            # Refused (no position, not enough free margin) or impossible: not executed.
            return await self._outcome(transfer, TransferState.FAILED, str(exc))
        return await self._outcome(transfer, TransferState.DONE, _done(transfer))

    async def _outcome(
        self,
        transfer: StoredMarginTransfer,
        state: TransferState,
        reason: str,
        venue_time: datetime | None = None,
    ) -> MarginOutcome:
        await self._repo.resolve_margin_transfer(transfer, state, reason, venue_time)
        return MarginOutcome(transfer.client_id, state, reason)

    async def _look_up(
        self, transfer: StoredMarginTransfer, gateway: ExchangeGateway, now: datetime
    ) -> MarginOutcome:
        """Find the transfer in the venue's margin history: done when there, never sent
        when the history would surely show it by ``now`` and does not, else unknown."""
        try:
            claimed = await self._repo.claimed_margin_changes(
                transfer.venue, transfer.symbol, transfer.kind
            )
            found = await _find(transfer, gateway, self._settle_after, claimed)
        except GatewayError as exc:
            reason = f"look-up failed: {exc}; looked up again next cycle"
            log.warning("margin.lookup_failed", client_id=transfer.client_id, error=str(exc))
            return MarginOutcome(transfer.client_id, TransferState.UNKNOWN, reason)
        if found is not None:
            reason = f"{_done(transfer)} (found in the venue's history at {found.isoformat()})"
            return await self._outcome(transfer, TransferState.DONE, reason, found)
        if history_is_complete(transfer.created_at, self._settle_after, now):
            reason = (
                f"not sent: not in the venue's history "
                f"{int(self._settle_after.total_seconds())}s after its intent was stored"
            )
            return await self._outcome(transfer, TransferState.FAILED, reason)
        reason = "not in the venue's history yet; looked up again next cycle"
        return MarginOutcome(transfer.client_id, TransferState.UNKNOWN, reason)

    async def resolve_unresolved(
        self,
        gateways: Mapping[str, ExchangeGateway],
        now: datetime,
        skip_pairs: Collection[str] = (),
    ) -> dict[str, list[StoredMarginTransfer]]:
        """Resolve every transfer of unknown outcome, except those of ``skip_pairs``;
        return those still unresolved, by pair (those pairs send no other transfer). No
        read when this process knows there is none (``UnresolvedWatch``)."""
        if self.unresolved.clear:
            return {}
        generation = self.unresolved.began()
        transfers = await self._repo.unresolved_margin_transfers()
        still_open = await self._resolve(transfers, gateways, now, skip_pairs)
        skipped = any(t.pair in skip_pairs for t in transfers)
        self.unresolved.read(generation, not still_open and not skipped)
        return still_open

    async def _resolve(
        self,
        transfers: Sequence[StoredMarginTransfer],
        gateways: Mapping[str, ExchangeGateway],
        now: datetime,
        skip_pairs: Collection[str],
    ) -> dict[str, list[StoredMarginTransfer]]:
        still_open: dict[str, list[StoredMarginTransfer]] = {}
        for transfer in transfers:
            if transfer.pair in skip_pairs:
                continue  # another daemon holds the pair and follows its transfers
            if transfer.state == TransferState.INTENT.value:
                # Stored, never marked sent: the daemon stopped before sending it.
                reason = "not sent: the daemon stopped between storing the intent and sending"
                await self._outcome(transfer, TransferState.FAILED, reason)
                continue
            gateway = gateways.get(transfer.venue)
            outcome = None
            if gateway is not None:
                outcome = await self._look_up(transfer, gateway, now)
            if outcome is None or outcome.state is TransferState.UNKNOWN:
                still_open.setdefault(transfer.pair, []).append(transfer)
        return still_open


async def _send_move(transfer: StoredMarginTransfer, gateway: ExchangeGateway) -> None:
    """The venue call of the transfer's kind."""
    kind = MoveKind(transfer.kind)
    route = kind.wallets
    if kind is MoveKind.ADD_MARGIN:
        await gateway.add_margin(transfer.symbol, transfer.amount)
    elif kind is MoveKind.REMOVE_MARGIN:
        await gateway.remove_margin(transfer.symbol, transfer.amount)
    elif route is not None:
        source, destination = route
        await gateway.transfer(
            transfer.asset, transfer.amount, source, destination, transfer.client_id
        )


async def _find(
    transfer: StoredMarginTransfer,
    gateway: ExchangeGateway,
    settle: timedelta,
    claimed: Collection[datetime],
) -> datetime | None:
    """The venue time of our transfer in the history of its kind (``match_transfer``,
    ``match_wallet_transfer``); None when it is not there."""
    kind = MoveKind(transfer.kind)
    since = transfer.created_at - CLOCK_SKEW
    if kind.wallets is not None:
        transfers = await gateway.fetch_transfers(transfer.asset, since)
        moved = match_wallet_transfer(
            transfer.client_id,
            kind,
            transfer.asset,
            transfer.amount,
            transfer.created_at,
            settle,
            transfers,
            claimed,
        )
        return None if moved is None else moved.at
    changes = await gateway.fetch_margin_history(transfer.symbol, since)
    found = match_transfer(
        transfer.symbol,
        transfer.amount,
        transfer.created_at,
        settle,
        changes,
        claimed,
        added=kind is MoveKind.ADD_MARGIN,
    )
    return None if found is None else found.at


def _done(transfer: StoredMarginTransfer) -> str:
    """The done transfer in words (the guard's as before: ``added 5 USDT margin to X``)."""
    if transfer.kind == MoveKind.ADD_MARGIN.value:
        return f"added {transfer.amount} {transfer.asset} margin to {transfer.symbol}"
    return f"done: {transfer.describe()}"
