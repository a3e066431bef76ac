"""Intents become orders exactly once.

The order's client id is derived from the decision that made it, and the intent
is committed before the order is sent: a crash before the commit sends nothing;
a crash or lost answer after it is resolved by looking the id up at the venue,
never by sending again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import structlog

from bot.domain.models import OrderIntent, OrderRequest, OrderResult, OrderStatus
from bot.exchange.gateway import (
    DuplicateOrderError,
    ExchangeGateway,
    GatewayError,
    OrderRejectedError,
    RateLimitedError,
    RetryableError,
)
from bot.store.leases import Lease
from bot.store.repository import Repository, StoredOrder

log = structlog.get_logger(__name__)

CLIENT_ORDER_ID_PREFIX = "hb"
MAX_CLIENT_ORDER_ID_LENGTH = 36  # Binance's limit, the tightest of the major venues


def client_order_id(decision_id: str) -> str:
    """The order id for a decision: the same decision always gives the same id."""
    coid = f"{CLIENT_ORDER_ID_PREFIX}{decision_id}"
    if len(coid) > MAX_CLIENT_ORDER_ID_LENGTH:
        raise ValueError(f"client order id {coid!r} exceeds {MAX_CLIENT_ORDER_ID_LENGTH} chars")
    return coid


@dataclass(frozen=True, slots=True)
class OrderPlan:
    """An approved intent and how to send it: market, or limit IOC at ``price``."""

    intent: OrderIntent
    order_type: str = "market"
    price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Execution:
    """What happened to one intent."""

    client_order_id: str
    status: OrderStatus
    result: OrderResult | None
    reason: str | None = None


class UnresolvedWatch:
    """Whether this process knows that no order (or transfer) of its pairs waits to be
    resolved, so a cycle can skip reading them.

    Unknown at start: the first read after a start finds what a previous process left.
    Known clear after a read that resolved everything it found (an item of a pair another
    daemon holds keeps the reads going). Unknown again as soon as this process stores an
    intent (``touched``) or takes a pair over (``forget``): only this process stores
    intents for the pairs it holds, so nothing else can make one unresolved."""

    def __init__(self) -> None:
        self._clear = False
        self._generation = 0  # bumped by every touch: a read that overlapped one proves nothing

    @property
    def clear(self) -> bool:
        return self._clear

    def touched(self) -> None:
        self._clear = False
        self._generation += 1

    forget = touched

    def began(self) -> int:
        return self._generation

    def read(self, generation: int, all_resolved: bool) -> None:
        """A read begun at ``generation`` ended: ``all_resolved`` when nothing it found is
        still unresolved or was left to the daemon holding its pair."""
        self._clear = all_resolved and generation == self._generation


class Executor:
    """Sends intents through a gateway and records each step."""

    def __init__(
        self, repository: Repository, settle_after: timedelta = timedelta(seconds=60)
    ) -> None:
        self._repo = repository
        # How long an order the venue has never heard of may still turn up there
        # (a request in flight when we crashed) before we call it lost.
        self._settle_after = settle_after
        self.unresolved = UnresolvedWatch()

    async def execute(
        self,
        pair: str,
        decision_id: str,
        plan: OrderPlan,
        gateway: ExchangeGateway,
        *,
        lease: Lease | None = None,
        lease_margin: timedelta = timedelta(0),
        send_by: float | None = None,
    ) -> Execution:
        """Store the intent, send it, store the outcome.

        With a ``lease``, the intent is stored only while this daemon holds the pair
        (LeaseLostError otherwise), and sent only before ``send_by`` (monotonic time).
        """
        intent = plan.intent
        request = OrderRequest(
            symbol=intent.symbol,
            side=intent.side,
            amount=intent.amount,
            client_order_id=client_order_id(decision_id),
            reduce_only=intent.reduce_only,
            order_type=plan.order_type,
            price=plan.price,
        )
        # If this raises (database down), nothing has been sent: the caller audits it.
        self.unresolved.touched()
        await self._repo.insert_order_intent(
            decision_id, pair, gateway.name, request, lease=lease, lease_margin=lease_margin
        )
        if send_by is not None and time.monotonic() > send_by:
            # Stalled between storing and sending: the lease may have passed to another
            # daemon, which will find this intent and call it never sent.
            reason = "not sent: the pair's lease could have lapsed before sending"
            return await self._rejected(pair, decision_id, request, reason)
        return await self._send(pair, decision_id, request, gateway)

    async def _send(
        self, pair: str, decision_id: str, request: OrderRequest, gateway: ExchangeGateway
    ) -> Execution:
        """Send the stored intent and record the answer, or find out what became of it."""
        try:
            result = await gateway.create_order(request)
        except asyncio.CancelledError:
            # Shutdown cut the wait short: the order may be at the venue. Say so (shielded
            # from the cancellation) so the next start looks it up instead of guessing.
            await asyncio.shield(
                self._repo.mark_order(
                    request.client_order_id,
                    OrderStatus.UNKNOWN,
                    "shutdown before the venue answered; looked up at the next start",
                    pair,
                    decision_id,
                )
            )
            raise
        except DuplicateOrderError as exc:
            # The id was taken: an earlier send of this very order got through.
            return await self._resolve_lost(pair, decision_id, request, gateway, str(exc))
        except RateLimitedError as exc:
            # A throttled request is not executed: safe to call it rejected and retry
            # with a fresh decision next cycle.
            reason = f"rate limited, not executed: {exc}"
            return await self._rejected(pair, decision_id, request, reason)
        except OrderRejectedError as exc:
            return await self._rejected(pair, decision_id, request, str(exc))
        except (RetryableError, TimeoutError) as exc:
            # The order may or may not have reached the venue: ask, don't resend.
            log.warning(
                "order.answer_lost", client_order_id=request.client_order_id, error=str(exc)
            )
            return await self._resolve_lost(pair, decision_id, request, gateway, str(exc))
        await self._repo.record_order_result(pair, decision_id, result)
        return Execution(request.client_order_id, result.status, result)

    async def _rejected(
        self, pair: str, decision_id: str, request: OrderRequest, reason: str
    ) -> Execution:
        """Record that the order was not executed (nothing is at the venue)."""
        await self._repo.mark_order(
            request.client_order_id, OrderStatus.REJECTED, reason, pair, decision_id
        )
        return Execution(request.client_order_id, OrderStatus.REJECTED, None, reason)

    async def _resolve_lost(
        self,
        pair: str,
        decision_id: str,
        request: OrderRequest,
        gateway: ExchangeGateway,
        error: str,
    ) -> Execution:
        try:
            found = await gateway.fetch_order(request.symbol, request.client_order_id)
        except GatewayError as exc:
            found = None
            error = f"{error}; look-up failed: {exc}"
        if found is None:
            reason = f"answer lost ({error}); will look {request.client_order_id} up again"
            await self._repo.mark_order(
                request.client_order_id, OrderStatus.UNKNOWN, reason, pair, decision_id
            )
            return Execution(request.client_order_id, OrderStatus.UNKNOWN, None, reason)
        await self._repo.record_order_result(pair, decision_id, found)
        return Execution(request.client_order_id, found.status, found)

    async def resolve_unresolved(
        self,
        gateways: Mapping[str, ExchangeGateway],
        now: datetime,
        skip_pairs: Collection[str] = (),
    ) -> dict[str, list[StoredOrder]]:
        """Look up every order of unknown outcome, except those of ``skip_pairs``;
        return those still unresolved, by pair. No read when this process knows there
        is none (``UnresolvedWatch``)."""
        if self.unresolved.clear:
            return {}
        generation = self.unresolved.began()
        orders = await self._repo.unresolved_orders()
        still_open = await self._resolve(orders, gateways, now, skip_pairs)
        skipped = any(o.pair in skip_pairs for o in orders)
        self.unresolved.read(generation, not still_open and not skipped)
        return still_open

    async def _resolve(
        self,
        orders: Sequence[StoredOrder],
        gateways: Mapping[str, ExchangeGateway],
        now: datetime,
        skip_pairs: Collection[str],
    ) -> dict[str, list[StoredOrder]]:
        still_open: dict[str, list[StoredOrder]] = {}
        for order in orders:
            pair = order.pair
            if pair in skip_pairs:
                continue  # another daemon holds it and follows its orders
            gateway = gateways.get(order.venue)
            if gateway is None:
                # Its account is no longer configured: keep the pair waiting, visibly.
                still_open.setdefault(pair, []).append(order)
                continue
            try:
                found = await gateway.fetch_order(order.symbol, order.client_order_id)
            except GatewayError as exc:
                log.warning(
                    "order.lookup_failed", client_order_id=order.client_order_id, error=str(exc)
                )
                still_open.setdefault(pair, []).append(order)
                continue
            if found is not None:
                if found.status in (OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED) and (
                    now - order.created_at >= self._settle_after
                ):
                    # Our orders are market or IOC: one still open this late is stuck.
                    try:
                        found = (
                            await gateway.cancel_order(order.symbol, order.client_order_id) or found
                        )
                    except GatewayError as exc:
                        log.warning(
                            "order.cancel_failed",
                            client_order_id=order.client_order_id,
                            error=str(exc),
                        )
                if found.status.value != order.status or found.filled != order.filled:
                    await self._repo.record_order_result(pair, order.decision_id, found)
                if found.status in (OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED):
                    still_open.setdefault(pair, []).append(order)
                continue
            if now - order.created_at >= self._settle_after:
                await self._repo.mark_order(
                    order.client_order_id,
                    OrderStatus.REJECTED,
                    f"not at the venue {int(self._settle_after.total_seconds())}s after its "
                    "intent was stored: it was never sent",
                    pair,
                    order.decision_id,
                )
            else:
                still_open.setdefault(pair, []).append(order)
        return still_open
