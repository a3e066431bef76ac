"""The emulated Bybit instruments and prices: instrument lists, quotes, book, history.

Pure state, no I/O. Spot, linear and inverse instruments of one base coin share one
quote (bid/ask/last/mark/index), like the Binance emulator's; an inverse contract's book
shows each level's coins as USD contracts at its price.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from tests.support.emulators._common import ceil_to, floor_to
from tests.support.emulators.bybit._bybit_models import (
    Category,
    EmulatedMarket,
    FundingEvent,
    Instrument,
    future_id,
    params_error,
)

Level = tuple[Decimal, Decimal]


@dataclass
class Quote:
    """Top of book and reference prices of one base coin."""

    bid: Decimal
    ask: Decimal
    last: Decimal
    mark: Decimal
    index: Decimal


class Book:
    """Instruments by category, quotes by base coin, and the price and funding history."""

    def __init__(self, markets: Sequence[EmulatedMarket], clock: Callable[[], float]) -> None:
        self.clock = clock
        self.markets: dict[str, EmulatedMarket] = {}
        self.instruments: dict[Category, dict[str, Instrument]] = {
            "spot": {},
            "linear": {},
            "inverse": {},
        }
        self.quotes: dict[str, Quote] = {}
        self.history: dict[str, list[tuple[int, Decimal]]] = {}
        self.funding_rates: dict[str, Decimal] = {}
        self.funding_events: list[FundingEvent] = []
        for market in markets:
            self._add(market)
            self.set_price(market.base, market.price, Decimal(2))

    def now_ms(self) -> int:
        """Current time in ms from the injected clock."""
        return int(self.clock() * 1000)

    def _add(self, market: EmulatedMarket) -> None:
        self.markets[market.base] = market
        self.history.setdefault(market.base, [])
        self.funding_rates[market.base] = market.funding_rate
        if market.spot:
            self.instruments["spot"][market.perp_id] = Instrument(market.perp_id, "spot", market)
        if market.perp:
            self.instruments["linear"][market.perp_id] = Instrument(
                market.perp_id, "linear", market
            )
        if market.inverse:
            self.instruments["inverse"][market.inverse_id] = Instrument(
                market.inverse_id, "inverse", market
            )
        for delivery in market.futures:
            symbol = future_id(market, delivery)
            self.instruments["linear"][symbol] = Instrument(
                symbol, "linear", market, int(delivery.timestamp() * 1000)
            )

    # ------------------------------------------------------------------ lookup
    def resolve_base(self, name: str) -> str:
        """``BTC``, ``BTCUSDT``, ``BTC/USDT`` or ``BTC/USDT:USDT`` → ``BTC``."""
        text = name.upper().split("/")[0]
        for table in self.instruments.values():
            if text in table:
                return table[text].market.base
        if text not in self.markets:
            raise KeyError(f"unknown market {name!r}")
        return text

    def instrument(
        self, category: str | None, symbol: str | None, *, public: bool = False
    ) -> Instrument:
        """The instrument of a category, or Bybit's 10001 (category or symbol invalid).

        Market-data endpoints word an unknown symbol "Not supported symbols".
        """
        found = self.instruments[self.check_category(category)].get(symbol or "")
        if found is None:
            raise params_error(
                "Not supported symbols" if public else "params error: symbol invalid"
            )
        return found

    def check_category(self, category: str | None) -> Category:
        """``spot``, ``linear`` or ``inverse``; option is listed empty, not traded."""
        if category == "spot":
            return "spot"
        if category == "linear":
            return "linear"
        if category == "inverse":
            return "inverse"
        raise params_error(f"Illegal category: {category}")

    def replace_market(self, base: str, **changes: Any) -> None:
        """Swap a coin's market spec (e.g. another ``qty_step``) from now on."""
        market = replace(self.markets[self.resolve_base(base)], **changes)
        for table in self.instruments.values():
            for symbol, inst in list(table.items()):
                if inst.market.base == market.base:
                    table[symbol] = replace(inst, market=market)
        self.markets[market.base] = market

    # ------------------------------------------------------------------ prices
    def set_price(self, base: str, price: Decimal, spread_bps: Decimal) -> None:
        """Set last/mark/index to ``price`` and bid/ask ``spread_bps`` apart around it."""
        market = self.markets[self.resolve_base(base)]
        half = price * spread_bps / Decimal(20000)
        bid = floor_to(price - half, market.tick_size)
        ask = ceil_to(price + half, market.tick_size)
        if ask <= bid:
            ask = bid + market.tick_size
        self.quotes[market.base] = Quote(bid=bid, ask=ask, last=price, mark=price, index=price)
        self.history[market.base].append((self.now_ms(), price))

    def book(self, base: str, levels: int) -> tuple[list[Level], list[Level]]:
        """``levels`` bid and ask levels around the top of book."""
        market = self.markets[base]
        quote = self.quotes[base]
        count = max(1, min(levels, market.depth_levels))
        bids = [(quote.bid - i * market.tick_size, market.level_qty) for i in range(count)]
        asks = [(quote.ask + i * market.tick_size, market.level_qty) for i in range(count)]
        return [b for b in bids if b[0] > 0], asks

    def walk(
        self,
        base: str,
        side: str,
        qty: Decimal,
        limit: Decimal | None,
        contracts: bool = False,
    ) -> list[Level]:
        """Taker fills of ``qty`` against the book, up to the limit price; ``contracts``:
        ``qty`` is USD contracts (inverse), each level's coins worth so many at its price."""
        bids, asks = self.book(base, self.markets[base].depth_levels)
        fills: list[Level] = []
        remaining = qty
        for price, coins in asks if side == "Buy" else bids:
            if remaining <= 0:
                break
            size = floor_to(coins * price, Decimal(1)) if contracts else coins
            if limit is not None and (price > limit if side == "Buy" else price < limit):
                break
            take = min(size, remaining)
            fills.append((price, take))
            remaining -= take
        return fills

    def candles(
        self, base: str, step_ms: int, start: int, end: int, limit: int
    ) -> list[tuple[int, Decimal, Decimal, Decimal, Decimal]]:
        """(open time, open, high, low, close) from the price history, oldest first."""
        history = self.history[base]
        first = max(start // step_ms * step_ms, (end // step_ms - limit + 1) * step_ms)
        rows: list[tuple[int, Decimal, Decimal, Decimal, Decimal]] = []
        prev = history[0][1] if history else self.quotes[base].last
        index = 0
        open_time = first
        while open_time <= end and len(rows) < limit:
            close_time = open_time + step_ms - 1
            while index < len(history) and history[index][0] < open_time:
                prev = history[index][1]
                index += 1
            prices = [prev]
            while index < len(history) and history[index][0] <= close_time:
                prices.append(history[index][1])
                index += 1
            prev = prices[-1]
            rows.append((open_time, prices[0], max(prices), min(prices), prices[-1]))
            open_time += step_ms
        return rows

    # ------------------------------------------------------------------ funding
    def next_funding_ms(self, market: EmulatedMarket) -> int:
        """The next funding boundary after now."""
        step = market.funding_interval_min * 60_000
        return (self.now_ms() // step + 1) * step
