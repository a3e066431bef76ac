"""Paper trading on live prices: public market data from a real exchange through ccxt,
without keys, while fills stay simulated (freqtrade's dry-run habit)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from bot.clock import Clock
from bot.config import AccountConfig, PaperConfig
from bot.domain.models import ZERO, Candle
from bot.domain.symbols import parse_or_none
from bot.exchange.ccxt_gateway import CcxtGateway, build_client
from bot.exchange.feeds import FeedError, FeedQuote, base_coin


class LiveFeed:
    """The last bid/ask mid and funding rate of each coin, refreshed from an exchange."""

    def __init__(self, gateway: CcxtGateway, min_refresh_s: float = 1.0) -> None:
        self._gateway = gateway
        self._min_refresh_s = min_refresh_s
        self._quotes: dict[str, FeedQuote] = {}
        self._refreshed_at: dict[str, float] = {}

    @classmethod
    def from_config(cls, config: PaperConfig, clock: Clock) -> LiveFeed:
        """A keyless client of ``config.live_exchange`` with ``live_ccxt_config``."""
        account = AccountConfig(exchange=config.live_exchange, ccxt_config=config.live_ccxt_config)
        client = build_client(account, with_keys=False)
        return cls(CcxtGateway(f"live-feed:{config.live_exchange}", client, clock))

    async def refresh(self, symbols: Iterable[str]) -> None:
        """Fetch the perps' bid/ask and funding (spot symbols share their coin's price)."""
        now = time.monotonic()
        perps = sorted({s for s in symbols if _is_contract(s)})
        stale = [s for s in perps if now - self._refreshed_at.get(s, -1e9) >= self._min_refresh_s]
        if not stale:
            return
        unknown = [s for s in stale if s not in self._refreshed_at]
        if unknown:
            await self._gateway.load_markets(unknown)
        tickers = await self._gateway.fetch_tickers(stale)
        rates = await self._gateway.fetch_funding_rates(stale)
        for symbol in stale:
            ticker = tickers.get(symbol)
            if ticker is None:
                continue  # no bid/ask this time: keep the last quote (none: quote() says so)
            rate = rates.get(symbol)
            previous = self._quotes.get(base_coin(symbol))
            # No rate in this answer: keep the last one known, else none.
            funding = rate.rate if rate else previous.funding_rate if previous else ZERO
            self._quotes[base_coin(symbol)] = FeedQuote(
                price=ticker.mid, funding_rate=funding, timestamp=ticker.timestamp
            )
            self._refreshed_at[symbol] = now

    def quote(self, symbol: str, now: datetime) -> FeedQuote:
        """The last fetched quote of the symbol's coin (stamped with the exchange's time)."""
        quote = self._quotes.get(base_coin(symbol))
        if quote is None:
            raise FeedError(
                f"live feed has no price for {symbol!r} yet; is it listed on "
                f"{self._gateway.name.split(':')[-1]}?"
            )
        return quote

    async def fetch_ohlcv(
        self, symbol: str, timeframe: str, since: datetime | None = None, limit: int | None = None
    ) -> list[Candle]:
        """The exchange's own candles of the symbol."""
        return await self._gateway.fetch_ohlcv(symbol, timeframe, since, limit)

    def state(self) -> dict[str, Any]:
        return {}

    def restore(self, state: Mapping[str, Any]) -> None:
        return None

    async def close(self) -> None:
        """Close the exchange client."""
        await self._gateway.close()


def _is_contract(text: str) -> bool:
    symbol = parse_or_none(text)
    return symbol is not None and symbol.is_contract
