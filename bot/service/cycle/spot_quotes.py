"""The spot tickers a cycle's sell-downs price their sales at.

One request per spot account and cycle for every pair on it that may sell spot, not one
per pair: a bearish view over many pairs would otherwise grow a cycle's requests with
the pairs (issue 14: a cycle's requests stay O(accounts)).
"""

from __future__ import annotations

from collections.abc import Mapping

from bot.config import PairConfig
from bot.domain.models import Ticker
from bot.service.cycle.accounts import Accounts


class SpotQuotes:
    """Per cycle, per spot account: the tickers of its pairs' spot symbols."""

    def __init__(self, accounts: Accounts) -> None:
        self._accounts = accounts
        self._fetched: dict[str, Mapping[str, Ticker]] = {}

    def new_cycle(self) -> None:
        self._fetched.clear()

    async def tickers(self, pair: PairConfig) -> Mapping[str, Ticker]:
        """The tickers of every spot symbol the pair's spot account may sell this cycle
        (fetched once; a symbol the venue does not quote is absent)."""
        account = self._accounts.spot_account(pair)
        fetched = self._fetched.get(account)
        if fetched is None:
            on_account = self._accounts.spots_on(account, self._accounts.pairs)
            symbols = sorted({p.spot_symbol for p in on_account if p.allow_spot_trades})
            fetched = await self._accounts.spot_gateway(pair).fetch_tickers(symbols)
            self._fetched[account] = fetched
        return fetched
