"""Reconcile: what changed at the venue without an order of ours.

Foreign open orders (listed at start, then once a minute: a heavy request) are reported
once and left alone; a spot balance or a position that moved without our order is audited.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal

from bot.config import PairConfig
from bot.exchange.gateway import ExchangeGateway
from bot.service.cycle.accounts import Accounts
from bot.service.cycle.inflight import InflightStage
from bot.service.cycle.observe import ObserveStage
from bot.store.repository import DecisionRecord, Repository


class ReconcileStage:
    """Owns what the last cycle saw per pair and the foreign orders already reported."""

    def __init__(
        self,
        accounts: Accounts,
        observe: ObserveStage,
        inflight: InflightStage,
        repository: Repository,
    ) -> None:
        self._accounts = accounts
        self._observe = observe
        self._inflight = inflight
        self._repo = repository
        self._last_seen: dict[str, tuple[Decimal, Decimal]] = {}
        self._foreign_open: dict[str, int] = {}
        self._foreign_reported: set[tuple[str, str]] = set()
        # Pairs whose spot sell was sent: their next spot change is ours, not an outside one.
        self._spot_sold: set[str] = set()
        # Listing every open order is a heavy request (Binance: weight 40, two seconds of a
        # 20/s budget): at start, then once a minute. Our own orders are looked up by id
        # every cycle regardless.
        self.foreign_orders_every_s = 60.0
        self._orders_reconciled_at = float("-inf")

    async def restore(self, pairs: Iterable[str] | None = None) -> None:
        """What the store says the pairs last saw (all of them when ``pairs`` is None)."""
        seen = await self._repo.last_seen()
        if pairs is None:
            self._last_seen = seen
            return
        for name in pairs:
            if name in seen:
                self._last_seen[name] = seen[name]
            else:
                self._last_seen.pop(name, None)

    def foreign_open(self, pair: str) -> int:
        """How many open orders hedgebot did not place sit on the pair's contracts."""
        return self._foreign_open.get(pair, 0)

    def spot_sold(self, pair: str) -> None:
        """Our spot sell was sent: the next spot change is ours."""
        self._spot_sold.add(pair)

    async def foreign_orders(self, pairs: Sequence[PairConfig]) -> None:
        """Open orders at each exchange that the store never made: leave them, report them
        (every account at once, at most every ``foreign_orders_every_s``)."""
        if time.monotonic() - self._orders_reconciled_at < self.foreign_orders_every_s:
            return

        async def reconcile(account: str, gateway: ExchangeGateway) -> list[None]:
            await self._foreign_orders_of(account, gateway, pairs)
            return []

        await self._accounts.each(reconcile)
        self._orders_reconciled_at = time.monotonic()

    async def _foreign_orders_of(
        self, account: str, gateway: ExchangeGateway, pairs: Sequence[PairConfig]
    ) -> None:
        by_symbol: dict[str, str] = {}
        for pair in self._accounts.perps_on(account, pairs):
            for symbol in self._observe.listed_contracts([pair], account):
                by_symbol[symbol] = pair.name
        if not by_symbol:
            return
        open_orders = await gateway.fetch_open_orders(list(by_symbol))
        known = await self._repo.known_client_order_ids(
            [o.client_order_id for o in open_orders if o.client_order_id]
        )
        counts = dict.fromkeys(by_symbol.values(), 0)
        for order in open_orders:
            if order.client_order_id and order.client_order_id in known:
                continue  # ours: the executor follows it
            pair_name = by_symbol[order.symbol]
            counts[pair_name] += 1
            key = (account, order.exchange_order_id or order.client_order_id)
            if key in self._foreign_reported:
                continue
            self._foreign_reported.add(key)
            await self._repo.append_audit(
                "reconcile.foreign_order",
                f"open order {order.exchange_order_id} ({order.side.value} {order.amount} "
                f"{order.symbol}, client id {order.client_order_id or '-'}) was not placed "
                "by hedgebot: left alone",
                {
                    "account": account,
                    "exchange_order_id": order.exchange_order_id,
                    "client_order_id": order.client_order_id,
                    "side": order.side.value,
                    "amount": order.amount,
                    "filled": order.filled,
                },
                pair=pair_name,
            )
        self._foreign_open.update(counts)

    async def outside_changes(
        self, records: Sequence[tuple[PairConfig, DecisionRecord]], now: datetime
    ) -> None:
        """Say when the spot balance or the position moved without an order of ours."""
        for pair, record in records:
            observation = record.observation
            reported = observation.perp_qty - observation.unreflected_qty
            last = self._last_seen.get(pair.name)
            self._last_seen[pair.name] = (reported, observation.spot_qty)
            if last is None:
                continue
            last_perp, last_spot = last
            # A spot sell sent last cycle shows now: that change is ours, not an outside one.
            ours = pair.name in self._spot_sold
            self._spot_sold.discard(pair.name)
            if observation.spot_qty != last_spot and not ours:
                await self._repo.append_audit(
                    "reconcile.spot_changed",
                    f"spot {pair.spot_base} went from {last_spot} to {observation.spot_qty} "
                    "without a spot order of hedgebot's: the hedge follows",
                    {"before": last_spot, "after": observation.spot_qty},
                    pair=pair.name,
                )
            if reported != last_perp and self._inflight.settled(pair.name, now):
                await self._repo.append_audit(
                    "reconcile.position_changed",
                    f"{pair.perp_symbol} position went from {last_perp} to {reported} without "
                    "an order of hedgebot's (a manual trade, a liquidation or ADL)",
                    {"before": last_perp, "after": reported},
                    pair=pair.name,
                )
