"""What the paper venue shows of the market: trading rules, quotes, tickers, a synthetic
order book, candles and funding rates, all from its config and a price feed.

* **Rules** come from ``config.markets[symbol]``, else ``config.default_market``.
* **Prices** come from the feed; bid/ask are the feed price ∓ half the configured spread,
  on the market's price grid (bid rounded down, ask up). A dated future is priced at
  spot x (1 + basis_apr x time left in years), so its basis converges to 0 at expiry, and
  pays no funding.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal

from bot.config import TIMEFRAMES, PaperConfig, PaperMarketConfig
from bot.domain.models import (
    ONE,
    ZERO,
    BookLevel,
    Candle,
    FundingRate,
    Market,
    MarketStats,
    OrderBook,
    Ticker,
)
from bot.exchange.candles import MAX_CANDLES, PricePath, bar_start, candles_from_path
from bot.exchange.feeds import FeedQuote, PriceFeed
from bot.exchange.gateway import FatalError, parse_symbol
from bot.exchange.paper.rules import delivery, next_funding_time, to_step

SECONDS_PER_YEAR = Decimal(365 * 86400)
BOOK_LEVEL_GAP = Decimal("0.0001")  # 1 bp between synthetic order-book levels
INVERSE_FACE = Decimal(100)  # USD a contract of an inverse market, as Binance COIN-M BTCUSD
INVERSE_RULES = PaperMarketConfig(amount_step=ONE, price_step=Decimal("0.1"), min_amount=ONE)


class PaperQuotes:
    """The paper venue's market data, derived from ``config`` and ``feed``."""

    def __init__(self, config: PaperConfig, feed: PriceFeed) -> None:
        self._config = config
        self._feed = feed

    def rules(self, symbol: str) -> PaperMarketConfig:
        """The configured trading rules of ``symbol`` (the default market's when unlisted)."""
        return self._config.markets.get(symbol, self._config.default_market)

    def market(self, symbol: str) -> Market:
        """The symbol's trading rules as a Market; FatalError for a malformed symbol. An
        inverse contract (``BTC/USD:BTC``) counts contracts of ``contract_size`` USD (100
        unless its rules say), one contract the step unless listed in ``markets``."""
        parts = parse_symbol(symbol)
        rules = self.rules(symbol)
        if parts.inverse:
            rules = self._config.markets.get(symbol) or INVERSE_RULES
        return Market(
            symbol=symbol,
            base=parts.base,
            quote=parts.quote,
            amount_step=rules.amount_step,
            price_step=rules.price_step,
            min_amount=rules.min_amount,
            min_notional=rules.min_notional,
            is_perp=parts.is_contract,
            expiry=(rules.expiry or delivery(parts)) if parts.is_dated else None,
            taker_fee=self._config.taker_fee_rate,
            # As on Binance USDⓈ-M: a reduce-only order may be under the min notional.
            reduce_only_below_min_notional=parts.is_contract,
            contract_size=(rules.contract_size or INVERSE_FACE) if parts.inverse else ONE,
            inverse=parts.inverse,
        )

    def quote(self, symbol: str, at: datetime) -> FeedQuote:
        """The feed's quote; a dated future's carries its basis and no funding."""
        quote = self._feed.quote(symbol, at)
        market = self.market(symbol)
        if market.expiry is None:
            return quote
        left = Decimal(max((market.expiry - at).total_seconds(), 0))
        price = quote.price * (ONE + self.rules(symbol).basis_apr * left / SECONDS_PER_YEAR)
        return replace(quote, price=price, funding_rate=ZERO)

    def bid_ask(self, price: Decimal, market: Market) -> tuple[Decimal, Decimal]:
        """``price`` ∓ half the spread; bid down, ask up: the grid never narrows the spread."""
        half_spread = price * self._config.spread_bps / 2 / 10_000
        bid = to_step(price - half_spread, market.price_step, ROUND_FLOOR)
        ask = to_step(price + half_spread, market.price_step, ROUND_CEILING)
        return max(bid, market.price_step), ask

    def ticker(self, market: Market, quote: FeedQuote) -> Ticker:
        """Bid/ask around the quote's price; last = the price on the grid."""
        bid, ask = self.bid_ask(quote.price, market)
        last = to_step(quote.price, market.price_step, ROUND_HALF_EVEN)
        return Ticker(symbol=market.symbol, bid=bid, ask=ask, last=last, timestamp=quote.timestamp)

    def order_book(self, market: Market, price: Decimal, depth: int, at: datetime) -> OrderBook:
        """A synthetic book: ``book_levels`` levels 1 bp apart from the touch, each worth
        ``book_level_notional`` of the quote asset."""
        bid, ask = self.bid_ask(price, market)

        def side(touch: Decimal, sign: int) -> tuple[BookLevel, ...]:
            levels = []
            for i in range(min(depth, self._config.book_levels)):
                level = to_step(
                    touch * (1 + sign * i * BOOK_LEVEL_GAP), market.price_step, ROUND_HALF_EVEN
                )
                amount = to_step(
                    self._config.book_level_notional
                    / (market.contract_size if market.inverse else level),
                    market.amount_step,
                    ROUND_DOWN,
                )
                levels.append(BookLevel(price=level, amount=amount))
            return tuple(levels)

        return OrderBook(symbol=market.symbol, bids=side(bid, -1), asks=side(ask, 1), timestamp=at)

    def candle_frame(self, timeframe: str) -> timedelta:
        """The bar length of ``timeframe``; FatalError when unknown or the feed has no path."""
        seconds = TIMEFRAMES.get(timeframe)
        if seconds is None:
            raise FatalError(f"timeframe {timeframe!r} is not one of {', '.join(TIMEFRAMES)}")
        self._path()
        return timedelta(seconds=seconds)

    def _path(self) -> PricePath:
        if not isinstance(self._feed, PricePath):
            raise FatalError(f"the paper feed {type(self._feed).__name__} has no price path")
        return self._feed

    def candles(
        self,
        symbol: str,
        frame: timedelta,
        since: datetime | None,
        limit: int | None,
        now: datetime,
    ) -> list[Candle]:
        """Bars of ``frame`` cut from the feed's price path up to ``now``, on the price grid."""
        path = self._path()
        self._feed.quote(symbol, now)  # walk the path up to now
        count = min(limit or MAX_CANDLES, MAX_CANDLES)
        first = since if since is not None else bar_start(now, frame) - (count - 1) * frame
        points = path.price_path(symbol, first, now)
        step = self.market(symbol).price_step
        return [
            replace(
                candle,
                open=to_step(candle.open, step, ROUND_HALF_EVEN),
                high=to_step(candle.high, step, ROUND_HALF_EVEN),
                low=to_step(candle.low, step, ROUND_HALF_EVEN),
                close=to_step(candle.close, step, ROUND_HALF_EVEN),
            )
            for candle in candles_from_path(points, frame, first, now, count)
        ]

    def funding_rate(self, symbol: str, quote: FeedQuote, now: datetime) -> FundingRate:
        """The quote's funding rate, due at the next boundary of the funding clock."""
        return FundingRate(
            symbol=symbol,
            rate=quote.funding_rate,
            next_funding_at=next_funding_time(now, self._config.funding_interval_hours),
            timestamp=quote.timestamp,
            interval_hours=Decimal(self._config.funding_interval_hours),
        )

    def market_stats(self, symbol: str, now: datetime) -> MarketStats:
        """Open interest and 24h volume as configured for the symbol (``paper.markets``)."""
        rules = self.rules(symbol)
        return MarketStats(
            symbol=symbol,
            open_interest_value=rules.open_interest_value,
            quote_volume_24h=rules.quote_volume_24h,
            timestamp=now,
        )
