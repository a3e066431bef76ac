"""The funding rates an account's observations use, read at most once per poll interval.

A funding rate is the venue's estimate for the current funding period (paid every 1 to 8
hours), which the strategies read as a yearly rate: a minute-old read serves a decision as
well as one of this cycle. Where the rate costs a request of its
own (OKX's /public/funding-rate, Binance's /premiumIndex: a whole-market answer of every
perpetual), the gateway asks for it when the last read is older than the poll interval
or did not ask for one of the symbols, and reuses that read in between (its ``timestamp``
stays the read's). Where the rate comes with the tickers (Bybit), every read is kept.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.domain.models import FundingRate
from bot.exchange import ccxt_parse

#: Between two reads of an account's funding rates.
FUNDING_RATE_POLL = timedelta(seconds=60)


@dataclass
class FundingRatePoll:
    """The last read of an account's funding rates, and when the next is due."""

    poll: timedelta = FUNDING_RATE_POLL
    _rates: dict[str, FundingRate] = field(default_factory=dict)
    _asked: frozenset[str] = frozenset()
    _read_at: datetime | None = None

    def due(self, symbols: Collection[str], now: datetime) -> bool:
        """Whether ``symbols``' rates must be read now: never read, read longer than the
        poll ago, or a symbol the last read did not ask for."""
        if not symbols:
            return False
        if self._read_at is None or now - self._read_at >= self.poll:
            return True
        return not self._asked.issuperset(symbols)

    def took(
        self, raw: Mapping[str, Any], symbols: Collection[str], now: datetime, *, asked: bool
    ) -> dict[str, FundingRate]:
        """After an observation's quotes: keep the rates of ``raw`` (ccxt's, by symbol) if
        they were ``asked`` for or came anyway (a symbol the venue does not list is absent),
        then the kept rates of ``symbols``."""
        if asked or raw:
            self._rates = ccxt_parse.funding_rates(raw, symbols, now)
            self._asked = frozenset(symbols)
            self._read_at = now
        return self.rates(symbols)

    def rates(self, symbols: Collection[str]) -> dict[str, FundingRate]:
        """The kept rates of ``symbols``."""
        return {s: self._rates[s] for s in symbols if s in self._rates}
