"""In-flight fills: our fills the venue's position view does not show yet.

After an order of ours the venue's position may lag its fills for a moment; until then the
fills stored by the executor are added to the observed position, so the next decision
neither sends the same order again nor mistakes the lag for an outside change.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timedelta

from bot.config import PairConfig
from bot.domain.inflight import RecentFill, unreflected_qty
from bot.domain.models import ZERO, Market, Observation, Side
from bot.store.repository import Repository, StoredFill


class InflightStage:
    """Owns, per pair, until when its fills may be missing from the venue's position."""

    def __init__(
        self, repository: Repository, fill_settle: timedelta, order_settle: timedelta
    ) -> None:
        self._repo = repository
        self._settle = fill_settle
        self._order_settle = order_settle
        # Until when a pair may have fills the venue does not show yet (absent: unknown,
        # as after a restart, so the store is asked).
        self._watch_until: dict[str, datetime] = {}
        self._cache: dict[str, list[StoredFill]] | None = None
        self._lock = asyncio.Lock()

    def new_cycle(self) -> None:
        """Forget the fills read for the last cycle (one query per cycle, not per pair)."""
        self._cache = None

    def forget(self, pairs: Iterable[str]) -> None:
        """Another daemon may have traded these pairs: ask the store again."""
        for name in pairs:
            self._watch_until.pop(name, None)

    def settled(self, pair: str, now: datetime) -> bool:
        """Whether every fill of ours on the pair shows in the venue's position by now."""
        watch_until = self._watch_until.get(pair)
        return watch_until is not None and now > watch_until

    def sending(self, pair: str, now: datetime) -> None:
        """Before an order is sent: a fill may land even if the answer is lost."""
        self._watch_until[pair] = now + self._settle + self._order_settle

    def sent(self, pair: str, now: datetime) -> None:
        """After the answer: the fills may take ``fill_settle_s`` to show."""
        self._watch_until[pair] = max(self._watch_until[pair], now + self._settle)

    def settle_by(self, pair: str, when: datetime) -> None:
        """Treat the pair's fills as shown from ``when`` on (tests, takeovers)."""
        self._watch_until[pair] = when

    async def with_unreflected_fills(
        self, pair: PairConfig, observation: Observation, market: Market, now: datetime
    ) -> Observation:
        """The observation with our fills the position does not reflect yet added."""
        if self._settle <= timedelta(0) or self.settled(pair.name, now):
            # No order of ours within the settle window: nothing can be unreflected.
            return observation
        stored = (await self._recent_fills(now)).get(pair.name, [])
        if pair.name not in self._watch_until:
            latest = max((f.filled_at for f in stored), default=now - self._settle)
            self._watch_until[pair.name] = latest + self._settle
        fills = [
            RecentFill(
                delta_qty=(f.amount if f.side == Side.BUY.value else -f.amount)
                * market.contract_size,
                filled_at=f.filled_at,
                position_before=f.position_before,
            )
            for f in stored
            if f.symbol == pair.perp_symbol  # a spot sell does not move the position
        ]
        position = observation.position
        extra = unreflected_qty(
            observation.perp_qty,
            position.updated_at if position else None,
            fills,
            now,
            self._settle,
        )
        if extra == ZERO:
            return observation
        return replace(observation, perp_qty=observation.perp_qty + extra, unreflected_qty=extra)

    async def _recent_fills(self, now: datetime) -> dict[str, list[StoredFill]]:
        # One query per cycle for every pair that may need it, filled by the first that asks.
        async with self._lock:
            if self._cache is None:
                by_pair: dict[str, list[StoredFill]] = {}
                for fill in await self._repo.recent_fills(None, now - self._settle):
                    by_pair.setdefault(fill.pair, []).append(fill)
                self._cache = by_pair
            return self._cache
