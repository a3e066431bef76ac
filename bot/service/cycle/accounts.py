"""Where each pair's legs trade: the account (and so the gateway) of its spot and its perp."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TypeVar

from bot.config import PairConfig, Settings
from bot.exchange.gateway import ExchangeGateway

T = TypeVar("T")


class Accounts:
    """The gateways by account name and the legs of every configured pair."""

    def __init__(self, settings: Settings, gateways: Mapping[str, ExchangeGateway]) -> None:
        self.gateways: Mapping[str, ExchangeGateway] = gateways
        self.pairs: Sequence[PairConfig] = settings.pairs
        self._legs = {p.name: settings.accounts_of(p) for p in settings.pairs}

    def spot_account(self, pair: PairConfig) -> str:
        return self._legs[pair.name][0]

    def perp_account(self, pair: PairConfig) -> str:
        return self._legs[pair.name][1]

    def perp_gateway(self, pair: PairConfig) -> ExchangeGateway:
        return self.gateways[self.perp_account(pair)]

    def spot_gateway(self, pair: PairConfig) -> ExchangeGateway:
        return self.gateways[self.spot_account(pair)]

    def gateway_for(self, pair: PairConfig, symbol: str) -> ExchangeGateway:
        """The account an order goes to: the spot account for a spot sell, else the perp's."""
        if symbol == pair.spot_symbol:
            return self.spot_gateway(pair)
        return self.perp_gateway(pair)

    def perps_on(self, account: str, pairs: Sequence[PairConfig]) -> list[PairConfig]:
        """The pairs of ``pairs`` whose perp leg trades on ``account``."""
        return [p for p in pairs if self.perp_account(p) == account]

    def spots_on(self, account: str, pairs: Sequence[PairConfig]) -> list[PairConfig]:
        """The pairs of ``pairs`` whose spot leg is held on ``account``."""
        return [p for p in pairs if self.spot_account(p) == account]

    async def each(self, work: Callable[[str, ExchangeGateway], Awaitable[list[T]]]) -> list[T]:
        """Run ``work`` for every account at once, each waiting only on its own limiter (one
        after the other, ten accounts' heavy requests took ten times as long); the first
        failure is raised once all have finished."""
        results = await asyncio.gather(
            *(work(account, gateway) for account, gateway in self.gateways.items()),
            return_exceptions=True,
        )
        collected: list[T] = []
        for result in results:
            if isinstance(result, BaseException):
                raise result
            collected.extend(result)
        return collected


def account_names(settings: Settings) -> set[str]:
    """Every account a configured pair trades on."""
    names: set[str] = set()
    for pair in settings.pairs:
        names.update(settings.accounts_of(pair))
    return names


def round_robin(items: Sequence[T], account: Callable[[T], str]) -> list[T]:
    """``items`` reordered to take one of each account in turn (stable within an account)."""
    queues: dict[str, list[T]] = {}
    for item in items:
        queues.setdefault(account(item), []).append(item)
    ordered: list[T] = []
    for rank in range(max((len(q) for q in queues.values()), default=0)):
        ordered.extend(q[rank] for q in queues.values() if rank < len(q))
    return ordered
