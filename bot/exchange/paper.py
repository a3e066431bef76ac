"""The paper venue: a simulated exchange account behind the ExchangeGateway Protocol.

The model, kept deliberately small:

* **Prices** come from a ``PriceFeed``; bid/ask are the feed price ∓ half the configured
  spread, on the market's price grid (bid rounded down, ask up).
* **Fills**: market orders only, filled at once and completely at the ask (buy) or bid
  (sell); taker fee = ``taker_fee_rate`` * notional, in the quote (settle) asset.
* **Spot** orders move the base and quote balances.
* **Perps** are isolated-margin positions: opening or increasing averages the entry price
  and locks ``notional / leverage`` of the settle asset; reducing realizes PnL into the
  balance and releases margin pro rata. A reduce-only order that would increase or flip
  the position is *rejected*, not trimmed: the caller asked for something the venue will
  not do, and trimming silently would hide a bug in the caller.
* **Funding** is settled at every funding boundary (every ``funding_interval_hours`` on
  the UTC clock from midnight) crossed since the last settlement: ``-qty * mark * rate``,
  so a short receives when the rate is positive. A new account is not back-paid.
* **Liquidation**: when the mark reaches a position's isolated liquidation price, the
  position is closed at that price and its whole margin is lost; the event is recorded
  as an order ``liquidation-<n>`` (see ``liquidations()`` and ``fetch_order``).

The account (balances, positions, orders, funding, the feed's state) is saved through a
``PaperAccountStore`` after every change, so a restart continues where it stopped. A quote
alone (fetch_tickers) is not saved: the sim walk is a function of its step index, so a
restart from an older feed state walks the same steps again and arrives at the same price.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING

from bot.clock import Clock
from bot.config import TIMEFRAMES, PaperConfig, PaperMarketConfig
from bot.domain.margin import (
    initial_margin,
    isolated_liquidation_price,
    isolated_liquidation_price_with_margin,
)
from bot.domain.models import (
    Balance,
    BookLevel,
    Candle,
    Fill,
    FundingPayment,
    FundingRate,
    Market,
    MarketStats,
    OrderBook,
    OrderRequest,
    OrderResult,
    OrderStatus,
    Position,
    Side,
    Ticker,
)
from bot.domain.paper_account import PaperAccountState, PaperAccountStore, PaperPosition
from bot.domain.symbols import Symbol, SymbolError
from bot.exchange.candles import MAX_CANDLES, CandleSource, PricePath, bar_start, candles_from_path
from bot.exchange.feeds import FeedQuote, PriceFeed, RefreshableFeed
from bot.exchange.gateway import (
    DuplicateOrderError,
    ExchangeGateway,
    FatalError,
    OrderRejectedError,
)

ZERO = Decimal(0)
ONE = Decimal(1)
# Orders remembered for fetch_order and duplicate detection; older ones are forgotten.
MAX_REMEMBERED_ORDERS = 1000
# Funding payments nobody collected are kept up to this many, so the saved state stays bounded.
MAX_PENDING_FUNDING = 10_000
MIN_LEVERAGE = Decimal(1)
MAX_LEVERAGE = Decimal(125)
LIQUIDATION_PREFIX = "liquidation-"
SETTLEMENT_PREFIX = "settlement-"
# Binance delivers its quarterly futures at 08:00 UTC of the date in the symbol.
DELIVERY_TIME = timedelta(hours=8)
SECONDS_PER_YEAR = Decimal(365 * 86400)


@dataclass(frozen=True, slots=True)
class AccountSummary:
    """The paper account valued at the feed's prices, in the quote asset."""

    at: datetime
    quote_asset: str
    quote_balance: Decimal  # wallet total of the quote asset, locked margin included
    spot_value: Decimal  # every other spot balance at the feed price
    unrealized_pnl: Decimal  # of all open perp positions
    margin_locked: Decimal
    fees_paid: Decimal
    funding_total: Decimal
    realized_pnl: Decimal

    @property
    def equity(self) -> Decimal:
        """Quote balance + spot value + unrealized PnL: what the account is worth now."""
        return self.quote_balance + self.spot_value + self.unrealized_pnl


def _parse_symbol(symbol: str) -> Symbol:
    try:
        return Symbol.parse(symbol)
    except SymbolError as exc:
        raise FatalError(f"unknown symbol {symbol!r}: {exc.reason}") from None


def _delivery(symbol: Symbol) -> datetime | None:
    """A dated future's delivery: its expiry date at DELIVERY_TIME (UTC); None otherwise."""
    if symbol.expiry is None:
        return None
    return datetime.combine(symbol.expiry, time(), UTC) + DELIVERY_TIME


def _to_step(value: Decimal, step: Decimal, rounding: str) -> Decimal:
    return (value / step).to_integral_value(rounding=rounding) * step


def next_funding_time(after: datetime, interval_hours: int) -> datetime:
    """The first funding boundary strictly after ``after``.

    Boundaries are every ``interval_hours`` from UTC midnight (00:00, 08:00, 16:00 for 8);
    an interval that does not divide 24 restarts at each midnight.
    """
    after = after.astimezone(UTC)
    midnight = after.replace(hour=0, minute=0, second=0, microsecond=0)
    interval = timedelta(hours=interval_hours)
    candidate = midnight + ((after - midnight) // interval + 1) * interval
    return min(candidate, midnight + timedelta(days=1))


def funding_times(after: datetime, until: datetime, interval_hours: int) -> Iterator[datetime]:
    """Funding boundaries in ``(after, until]``, oldest first."""
    boundary = next_funding_time(after, interval_hours)
    while boundary <= until:
        yield boundary
        boundary = next_funding_time(boundary, interval_hours)


class PaperVenue:
    """A simulated exchange account implementing ``ExchangeGateway``.

    Build it with ``await PaperVenue.open(...)``, which loads the saved account or starts a
    new one from ``config.balances``.
    """

    def __init__(
        self,
        config: PaperConfig,
        feed: PriceFeed,
        clock: Clock,
        store: PaperAccountStore,
        state: PaperAccountState,
        *,
        account: str = "paper",
        leverage: Mapping[str, Decimal] | None = None,
    ) -> None:
        """Wrap an already loaded ``state``; prefer ``open()``, which loads or creates it."""
        self.name = "paper"
        self.account = account
        self._config = config
        self._feed = feed
        self._clock = clock
        self._store = store
        self._state = state
        self._leverage: dict[str, Decimal] = {}
        for symbol, value in (leverage or {}).items():
            self._leverage[symbol] = self._checked_leverage(symbol, value)
        # One mutation (settle + fill + save) at a time, when pairs share the account.
        self._lock = asyncio.Lock()
        self._unsaved_orders: list[OrderResult] = []
        # Settled by settle_due (no save there): saved at the next settle of a request.
        self._settled_unsaved = False
        # Settling runs on every request (and every backtest step): the next funding time
        # and each position's liquidation price are kept until their inputs change.
        self._funding_due: tuple[datetime, datetime] | None = None  # (last paid, next)
        self._liquidation_at: dict[
            str, tuple[tuple[Decimal, Decimal, Decimal], Decimal | None]
        ] = {}

    @classmethod
    async def open(
        cls,
        config: PaperConfig,
        feed: PriceFeed,
        clock: Clock,
        store: PaperAccountStore,
        *,
        account: str = "paper",
        leverage: Mapping[str, Decimal] | None = None,
    ) -> PaperVenue:
        """Load the saved account ``account`` (restoring the feed) or start it from config."""
        state = await store.load_paper_account(account)
        fresh = state is None
        if state is None:
            # last_funding_at = now: a new account owes and earns nothing for the past.
            state = PaperAccountState(balances=dict(config.balances), last_funding_at=clock.now())
        elif state.feed_state:
            feed.restore(state.feed_state)
        venue = cls(config, feed, clock, store, state, account=account, leverage=leverage)
        if fresh:
            await venue._save()
        return venue

    @property
    def state(self) -> PaperAccountState:
        """The live account state (read it; change it only through the venue)."""
        return self._state

    # -- ExchangeGateway -------------------------------------------------------------------

    async def load_markets(self, symbols: Iterable[str]) -> Mapping[str, Market]:
        """Trading rules from ``config.markets[symbol]``, else ``config.default_market``."""
        return {symbol: self._market(symbol) for symbol in symbols}

    async def fetch_balances(self) -> Mapping[str, Balance]:
        """Wallet balances; the settle asset's ``free`` excludes locked isolated margin."""
        async with self._lock:
            await self._settle_and_save(self._clock.now())
            return {
                asset: Balance(asset=asset, free=self._free(asset), total=total)
                for asset, total in self._state.balances.items()
            }

    async def fetch_margin_balances(self) -> Mapping[str, Balance]:
        """The paper account has one wallet: spot and margin balances are the same."""
        return await self.fetch_balances()

    async def fetch_order_book(self, symbol: str, depth: int = 20) -> OrderBook:
        """A synthetic book: ``book_levels`` levels 1 bp apart from the touch, each worth
        ``book_level_notional`` of the quote asset."""
        now = self._clock.now()
        market = self._market(symbol)
        bid, ask = self._bid_ask(self._quote(symbol, now).price, market)
        bp = Decimal("0.0001")

        def side(touch: Decimal, sign: int) -> tuple[BookLevel, ...]:
            levels = []
            for i in range(min(depth, self._config.book_levels)):
                price = _to_step(touch * (1 + sign * i * bp), market.price_step, ROUND_HALF_EVEN)
                amount = _to_step(
                    self._config.book_level_notional / price, market.amount_step, ROUND_DOWN
                )
                levels.append(BookLevel(price=price, amount=amount))
            return tuple(levels)

        return OrderBook(symbol=symbol, bids=side(bid, -1), asks=side(ask, 1), timestamp=now)

    async def fetch_ohlcv(
        self, symbol: str, timeframe: str, since: datetime | None = None, limit: int | None = None
    ) -> list[Candle]:
        """Bars cut from the feed's price path (the live feed asks its exchange)."""
        if isinstance(self._feed, CandleSource):
            return await self._feed.fetch_ohlcv(symbol, timeframe, since, limit)
        seconds = TIMEFRAMES.get(timeframe)
        if seconds is None:
            raise FatalError(f"timeframe {timeframe!r} is not one of {', '.join(TIMEFRAMES)}")
        if not isinstance(self._feed, PricePath):
            raise FatalError(f"the paper feed {type(self._feed).__name__} has no price path")
        await self._refresh([symbol])
        now = self._clock.now()
        self._feed.quote(symbol, now)  # walk the path up to now
        frame = timedelta(seconds=seconds)
        count = min(limit or MAX_CANDLES, MAX_CANDLES)
        first = since if since is not None else bar_start(now, frame) - (count - 1) * frame
        points = self._feed.price_path(symbol, first, now)
        market = self._market(symbol)
        return [
            replace(
                candle,
                open=_to_step(candle.open, market.price_step, ROUND_HALF_EVEN),
                high=_to_step(candle.high, market.price_step, ROUND_HALF_EVEN),
                low=_to_step(candle.low, market.price_step, ROUND_HALF_EVEN),
                close=_to_step(candle.close, market.price_step, ROUND_HALF_EVEN),
            )
            for candle in candles_from_path(points, frame, first, now, count)
        ]

    async def fetch_market_stats(self, symbol: str) -> MarketStats:
        """Open interest and 24h volume as configured for the symbol (``paper.markets``)."""
        rules = self._config.markets.get(symbol, self._config.default_market)
        return MarketStats(
            symbol=symbol,
            open_interest_value=rules.open_interest_value,
            quote_volume_24h=rules.quote_volume_24h,
            timestamp=self._clock.now(),
        )

    async def set_margin_mode(self, symbol: str, margin_mode: str) -> None:
        """Only isolated margin is modelled; asking for cross is a configuration error."""
        if margin_mode != "isolated":
            raise FatalError(
                f'the paper venue models isolated margin only; set margin_mode = "isolated" '
                f"for {symbol}"
            )

    async def fetch_open_orders(self, symbols: Iterable[str]) -> list[OrderResult]:
        """Paper orders fill or expire at once: nothing is ever open."""
        return []

    async def cancel_order(self, symbol: str, client_order_id: str) -> OrderResult | None:
        """Paper orders fill at once, so there is nothing open to cancel: the final state."""
        return await self.fetch_order(symbol, client_order_id)

    async def _refresh(self, symbols: Iterable[str]) -> None:
        # A live feed fetches its quotes; the sim and replay feeds need nothing.
        if isinstance(self._feed, RefreshableFeed):
            await self._feed.refresh(symbols)

    async def fetch_positions(self, symbols: Iterable[str]) -> Mapping[str, Position]:
        """Open positions among ``symbols``, marked at the feed price; flat ones are absent."""
        symbols = list(symbols)
        await self._refresh(symbols)
        async with self._lock:
            now = self._clock.now()
            await self._settle_and_save(now)
            wanted = set(symbols)
            return {
                symbol: self._position_view(position, now)
                for symbol, position in self._state.positions.items()
                if symbol in wanted
            }

    async def fetch_tickers(self, symbols: Iterable[str]) -> Mapping[str, Ticker]:
        """Bid/ask = feed price ∓ half the spread, on the price grid; last = the feed price."""
        symbols = list(symbols)
        await self._refresh(symbols)
        now = self._clock.now()
        tickers: dict[str, Ticker] = {}
        for symbol in symbols:
            market = self._market(symbol)
            quote = self._quote(symbol, now)
            bid, ask = self._bid_ask(quote.price, market)
            last = _to_step(quote.price, market.price_step, ROUND_HALF_EVEN)
            tickers[symbol] = Ticker(
                symbol=symbol, bid=bid, ask=ask, last=last, timestamp=quote.timestamp
            )
        return tickers

    async def fetch_funding_rates(self, symbols: Iterable[str]) -> Mapping[str, FundingRate]:
        """The feed's funding rate per perp symbol (spot symbols are skipped)."""
        now = self._clock.now()
        rates: dict[str, FundingRate] = {}
        for symbol in symbols:
            if not _parse_symbol(symbol).is_perpetual:
                continue  # spot, or a dated future (no funding)
            quote = self._quote(symbol, now)
            rates[symbol] = FundingRate(
                symbol=symbol,
                rate=quote.funding_rate,
                next_funding_at=next_funding_time(now, self._config.funding_interval_hours),
                timestamp=quote.timestamp,
                interval_hours=Decimal(self._config.funding_interval_hours),
            )
        return rates

    async def create_order(self, request: OrderRequest) -> OrderResult:
        """Fill a market order now and completely; OrderRejectedError says why not."""
        await self._refresh([request.symbol])
        async with self._lock:
            now = self._clock.now()
            changed = self._settle(now)
            try:
                if request.client_order_id not in self._state.orders:
                    earlier = await self._store.load_paper_order(
                        self.account, request.client_order_id
                    )
                    if earlier is not None:
                        self._state.orders[earlier.client_order_id] = earlier
                result = self._fill(request, now)
            except OrderRejectedError:
                if changed:
                    await self._save()
                raise
            await self._save()
            return result

    async def fetch_order(self, symbol: str, client_order_id: str) -> OrderResult | None:
        """A remembered order (or liquidation) of ``symbol``; None when there is none."""
        order = self._state.orders.get(client_order_id)
        if order is None:
            order = await self._store.load_paper_order(self.account, client_order_id)
        return order if order is not None and order.symbol == symbol else None

    async def fetch_funding_payments(self, symbols: Iterable[str]) -> list[FundingPayment]:
        """Funding settled on ``symbols`` since the last call, oldest first; hands them out once."""
        async with self._lock:
            now = self._clock.now()
            changed = self._settle(now)
            wanted = set(symbols)
            taken = [p for p in self._state.pending_funding if p.symbol in wanted]
            if taken:
                self._state.pending_funding = [
                    p for p in self._state.pending_funding if p.symbol not in wanted
                ]
            if taken or changed:
                await self._save()
            return taken

    async def close(self) -> None:
        """Save the account, the feed's position in its walk included."""
        async with self._lock:
            await self._save()
        if isinstance(self._feed, RefreshableFeed):
            await self._feed.close()

    # -- paper-only ------------------------------------------------------------------------

    async def set_leverage(self, symbol: str, leverage: Decimal) -> None:
        """Use ``leverage`` for ``symbol``; an open position's margin is re-locked at it.

        Rejected when the extra margin is not free, or when the new liquidation price is
        already crossed by the mark.
        """
        leverage = self._checked_leverage(symbol, leverage)
        async with self._lock:
            now = self._clock.now()
            changed = self._settle(now)
            position = self._state.positions.get(symbol)
            if position is not None and position.leverage != leverage:
                try:
                    self._relock(position, leverage, now)
                except OrderRejectedError:
                    if changed:
                        await self._save()
                    raise
                changed = True
            self._leverage[symbol] = leverage
            if changed:
                await self._save()

    async def add_margin(self, symbol: str, amount: Decimal) -> None:
        """Move ``amount`` of the settle asset into the isolated position of ``symbol``."""
        if amount <= ZERO:
            raise OrderRejectedError(f"margin to add must be positive, got {amount:f}")
        async with self._lock:
            now = self._clock.now()
            changed = self._settle(now)
            position = self._state.positions.get(symbol)
            asset = _settle_asset(symbol)
            if position is None or amount > self._free(asset):
                if changed:
                    await self._save()
                raise OrderRejectedError(
                    f"no open {symbol} position to add margin to"
                    if position is None
                    else f"adding {amount:f} {asset} margin: {self._free(asset):f} free"
                )
            position.margin += amount
            await self._save()

    def leverage(self, symbol: str) -> Decimal:
        """Leverage of the open position, else the one set for ``symbol`` (default 1)."""
        position = self._state.positions.get(symbol)
        return position.leverage if position else self._leverage.get(symbol, ONE)

    async def account_summary(self) -> AccountSummary:
        """The account valued now (after settling funding and liquidations)."""
        async with self._lock:
            now = self._clock.now()
            await self._settle_and_save(now)
            quote_asset = self._config.quote_asset
            spot_value = ZERO
            for asset, total in self._state.balances.items():
                if asset != quote_asset and total != ZERO:
                    spot_value += total * self._feed.quote(f"{asset}/{quote_asset}", now).price
            unrealized = ZERO
            for symbol, position in self._state.positions.items():
                mark = self._quote(symbol, now).price
                unrealized += position.qty * (mark - position.entry_price)
            return AccountSummary(
                at=now,
                quote_asset=quote_asset,
                quote_balance=self._state.balances.get(quote_asset, ZERO),
                spot_value=spot_value,
                unrealized_pnl=unrealized,
                margin_locked=sum((p.margin for p in self._state.positions.values()), ZERO),
                fees_paid=self._state.fees_paid,
                funding_total=self._state.funding_total,
                realized_pnl=self._state.realized_pnl,
            )

    def liquidations(self) -> list[OrderResult]:
        """Liquidations still remembered among the orders, oldest first."""
        return [
            order for cid, order in self._state.orders.items() if cid.startswith(LIQUIDATION_PREFIX)
        ]

    # -- internals -------------------------------------------------------------------------

    def _market(self, symbol: str) -> Market:
        parts = _parse_symbol(symbol)
        rules: PaperMarketConfig = self._config.markets.get(symbol, self._config.default_market)
        return Market(
            symbol=symbol,
            base=parts.base,
            quote=parts.quote,
            amount_step=rules.amount_step,
            price_step=rules.price_step,
            min_amount=rules.min_amount,
            min_notional=rules.min_notional,
            is_perp=parts.is_contract,
            expiry=(rules.expiry or _delivery(parts)) if parts.is_dated else None,
        )

    def _quote(self, symbol: str, at: datetime) -> FeedQuote:
        """The feed's quote; a dated future is priced at spot x (1 + basis_apr x time left
        in years), so its basis converges to 0 at expiry, and pays no funding."""
        quote = self._feed.quote(symbol, at)
        market = self._market(symbol)
        if market.expiry is None:
            return quote
        rules = self._config.markets.get(symbol, self._config.default_market)
        left = Decimal(max((market.expiry - at).total_seconds(), 0))
        price = quote.price * (ONE + rules.basis_apr * left / SECONDS_PER_YEAR)
        return replace(quote, price=price, funding_rate=ZERO)

    def _settle_expired(self, now: datetime) -> bool:
        """Settle every dated position whose expiry has passed at the feed's spot price (the
        future's price at expiry, its basis 0): realized PnL to the wallet, margin released."""
        settled = False
        for position in list(self._state.positions.values()):
            expiry = self._market(position.symbol).expiry
            if expiry is None or expiry > now:
                continue
            price = self._feed.quote(position.symbol, expiry).price
            realized = position.qty * (price - position.entry_price)
            asset = _settle_asset(position.symbol)
            self._credit(asset, realized)
            self._state.realized_pnl += realized
            del self._state.positions[position.symbol]
            self._record_forced_close(
                position,
                SETTLEMENT_PREFIX,
                price,
                expiry,
                f"settled at expiry {expiry.isoformat()}: {position.qty:f} at "
                f"{price:f}, entry {position.entry_price:f}, PnL {realized:f} {asset}",
            )
            settled = True
        return settled

    def _bid_ask(self, price: Decimal, market: Market) -> tuple[Decimal, Decimal]:
        half_spread = price * self._config.spread_bps / 2 / 10_000
        # Bid down, ask up: the grid never narrows the configured spread.
        bid = _to_step(price - half_spread, market.price_step, ROUND_FLOOR)
        ask = _to_step(price + half_spread, market.price_step, ROUND_CEILING)
        return max(bid, market.price_step), ask

    def _locked(self, asset: str) -> Decimal:
        return sum(
            (p.margin for p in self._state.positions.values() if _settle_asset(p.symbol) == asset),
            ZERO,
        )

    def _free(self, asset: str) -> Decimal:
        return self._state.balances.get(asset, ZERO) - self._locked(asset)

    def _credit(self, asset: str, amount: Decimal) -> None:
        self._state.balances[asset] = self._state.balances.get(asset, ZERO) + amount

    def _next_seq(self) -> int:
        self._state.trade_seq += 1
        return self._state.trade_seq

    def _remember(self, order: OrderResult) -> None:
        self._unsaved_orders.append(order)
        orders = self._state.orders
        orders[order.client_order_id] = order
        while len(orders) > MAX_REMEMBERED_ORDERS:
            del orders[next(iter(orders))]

    def _liquidation_price(self, position: PaperPosition) -> Decimal | None:
        # From the margin the position holds, so margin added later moves it; cached,
        # because a backtest asks at every step and the inputs rarely change.
        key = (position.qty, position.entry_price, position.margin)
        cached = self._liquidation_at.get(position.symbol)
        if cached is not None and cached[0] == key:
            return cached[1]
        price = isolated_liquidation_price_with_margin(
            position.qty,
            position.entry_price,
            position.margin,
            self._config.maintenance_margin_rate,
        )
        self._liquidation_at[position.symbol] = (key, price)
        return price

    def _next_funding(self, last: datetime) -> datetime:
        if self._funding_due is None or self._funding_due[0] != last:
            self._funding_due = (last, next_funding_time(last, self._config.funding_interval_hours))
        return self._funding_due[1]

    def _position_view(self, position: PaperPosition, now: datetime) -> Position:
        mark = self._quote(position.symbol, now).price
        return Position(
            symbol=position.symbol,
            qty=position.qty,
            entry_price=position.entry_price,
            mark_price=mark,
            unrealized_pnl=position.qty * (mark - position.entry_price),
            leverage=position.leverage,
            liquidation_price=self._liquidation_price(position),
            margin=position.margin,
        )

    def _checked_leverage(self, symbol: str, leverage: Decimal) -> Decimal:
        if not MIN_LEVERAGE <= leverage <= MAX_LEVERAGE:
            raise FatalError(
                f"leverage {leverage} for {symbol} must be between {MIN_LEVERAGE} and "
                f"{MAX_LEVERAGE}"
            )
        return leverage

    def _relock(self, position: PaperPosition, leverage: Decimal, now: datetime) -> None:
        asset = _settle_asset(position.symbol)
        margin = initial_margin(position.qty, position.entry_price, leverage)
        extra = margin - position.margin
        if extra > self._free(asset):
            raise OrderRejectedError(
                f"cannot set {position.symbol} leverage to {leverage}: needs {extra:f} more "
                f"{asset} margin, {self._free(asset):f} free"
            )
        liquidation = isolated_liquidation_price(
            position.qty, position.entry_price, leverage, self._config.maintenance_margin_rate
        )
        mark = self._quote(position.symbol, now).price
        if liquidation is not None and _crossed(position.qty, mark, liquidation):
            raise OrderRejectedError(
                f"cannot set {position.symbol} leverage to {leverage}: liquidation price "
                f"{liquidation:f} is already crossed by the mark {mark:f}"
            )
        position.leverage = leverage
        position.margin = margin

    async def _save(self) -> None:
        self._state.feed_state = self._feed.state()
        await self._store.save_paper_account(self.account, self._state, self._unsaved_orders)
        self._unsaved_orders = []

    async def _settle_and_save(self, now: datetime) -> None:
        if self._settle(now) or self._settled_unsaved:
            self._settled_unsaved = False
            await self._save()

    def settle_horizon(self) -> tuple[datetime, list[tuple[str, Decimal, bool]]]:
        """What can next change the account without a request: the next funding time, and
        per open position (symbol, liquidation price, short?) the price the mark must reach
        (at or above it for a short, at or below for a long). A backtest settles only at the
        steps where one of them may be met."""
        state = self._state
        last = state.last_funding_at or self._clock.now()
        triggers: list[tuple[str, Decimal, bool]] = []
        for position in state.positions.values():
            liquidation = self._liquidation_price(position)
            if liquidation is not None:
                triggers.append((position.symbol, liquidation, position.qty < ZERO))
        return self._next_funding(last), triggers

    def settle_due(self) -> bool:
        """Apply the funding and liquidations due by now; True when the account changed.

        For a backtest stepping between cycles: nothing is saved here (the next request
        that settles saves it, and so does close())."""
        changed = self._settle(self._clock.now())
        self._settled_unsaved = self._settled_unsaved or changed
        return changed

    def _settle(self, now: datetime) -> bool:
        """Apply liquidations and funding due up to ``now``; True when the account changed."""
        state = self._state
        changed = False
        if state.last_funding_at is None:
            state.last_funding_at = now  # never back-pay a state that has no funding clock
            changed = True
        if now < self._next_funding(state.last_funding_at):
            return self._liquidate_crossed(now) or changed
        for boundary in funding_times(
            state.last_funding_at, now, self._config.funding_interval_hours
        ):
            # At each boundary, in time order: a position liquidated before it pays nothing.
            self._liquidate_crossed(boundary)
            self._pay_funding(boundary)
            state.last_funding_at = boundary
            changed = True
        changed = self._settle_expired(now) or changed
        return self._liquidate_crossed(now) or changed

    def _liquidate_crossed(self, at: datetime) -> bool:
        liquidated = False
        for position in list(self._state.positions.values()):
            liquidation = self._liquidation_price(position)
            if liquidation is None:
                continue
            mark = self._quote(position.symbol, at).price
            if _crossed(position.qty, mark, liquidation):
                self._liquidate(position, liquidation, mark, at)
                liquidated = True
        return liquidated

    def _liquidate(
        self, position: PaperPosition, price: Decimal, mark: Decimal, at: datetime
    ) -> None:
        asset = _settle_asset(position.symbol)
        # Closed at the liquidation price; what the margin still held after the trading
        # loss goes too (the venue's liquidation fee), so the whole margin is lost.
        self._credit(asset, -position.margin)
        self._state.realized_pnl -= position.margin
        del self._state.positions[position.symbol]
        self._record_forced_close(
            position,
            LIQUIDATION_PREFIX,
            price,
            at,
            f"liquidated: mark {mark:f} crossed liquidation price {price:f} of "
            f"{position.qty:f} at entry {position.entry_price:f} and leverage "
            f"{position.leverage:f}; margin {position.margin:f} {asset} lost",
        )

    def _record_forced_close(
        self, position: PaperPosition, prefix: str, price: Decimal, at: datetime, reason: str
    ) -> None:
        """Remember a close the venue made itself (a liquidation, a settlement at expiry)
        as a filled, fee-less order, so look-ups and fills show it like any other."""
        seq = self._next_seq()
        side = Side.BUY if position.qty < ZERO else Side.SELL
        amount = abs(position.qty)
        asset = _settle_asset(position.symbol)
        client_order_id = f"{prefix}{seq}"
        fill = Fill(str(seq), position.symbol, side, amount, price, ZERO, asset, at)
        self._remember(
            OrderResult(
                client_order_id=client_order_id,
                exchange_order_id=client_order_id,
                symbol=position.symbol,
                side=side,
                status=OrderStatus.FILLED,
                amount=amount,
                filled=amount,
                average_price=price,
                fee=ZERO,
                fee_asset=asset,
                fills=(fill,),
                reason=reason,
            )
        )

    def _pay_funding(self, at: datetime) -> None:
        state = self._state
        for position in state.positions.values():
            quote = self._quote(position.symbol, at)
            amount = -position.qty * quote.price * quote.funding_rate
            if amount == ZERO:
                continue
            asset = _settle_asset(position.symbol)
            self._credit(asset, amount)
            state.funding_total += amount
            state.pending_funding.append(
                FundingPayment(
                    symbol=position.symbol,
                    amount=amount,
                    asset=asset,
                    rate=quote.funding_rate,
                    position_qty=position.qty,
                    mark_price=quote.price,
                    timestamp=at,
                )
            )
        if len(state.pending_funding) > MAX_PENDING_FUNDING:
            del state.pending_funding[: len(state.pending_funding) - MAX_PENDING_FUNDING]

    def _fill(self, request: OrderRequest, now: datetime) -> OrderResult:
        """Validate and fill ``request`` against the state; raise before changing anything."""
        symbol = request.symbol
        if request.client_order_id in self._state.orders:
            raise DuplicateOrderError(
                f"duplicate client order id {request.client_order_id!r}: already used for "
                f"an order on {self._state.orders[request.client_order_id].symbol}"
            )
        if request.order_type not in ("market", "limit"):
            raise OrderRejectedError(
                f"order type {request.order_type!r} not supported: the paper venue fills "
                "market and limit IOC orders"
            )
        if request.order_type == "limit" and (request.price is None or request.price <= ZERO):
            raise OrderRejectedError("a limit order needs a positive price")
        market = self._market(symbol)
        if market.expiry is not None and market.expiry <= now:
            raise OrderRejectedError(
                f"{symbol} expired at {market.expiry.isoformat()}: it no longer trades"
            )
        amount = request.amount
        if amount <= ZERO:
            raise OrderRejectedError(f"amount {amount:f} must be positive")
        if amount % market.amount_step != ZERO:
            raise OrderRejectedError(
                f"amount {amount:f} is not a multiple of the amount step "
                f"{market.amount_step:f} of {symbol}"
            )
        if amount < market.min_amount:
            raise OrderRejectedError(
                f"amount {amount:f} below the min amount {market.min_amount:f} of {symbol}"
            )
        bid, ask = self._bid_ask(self._quote(symbol, now).price, market)
        price = ask if request.side is Side.BUY else bid
        if request.price is not None and request.order_type == "limit":
            crosses = price <= request.price if request.side is Side.BUY else price >= request.price
            if not crosses:
                # Immediate-or-cancel: the touch is beyond the limit, nothing fills.
                expired = OrderResult(
                    client_order_id=request.client_order_id,
                    exchange_order_id=f"paper-{self._next_seq()}",
                    symbol=symbol,
                    side=request.side,
                    status=OrderStatus.CANCELED,
                    amount=amount,
                    filled=ZERO,
                    average_price=None,
                    fee=ZERO,
                    fee_asset=None,
                    reason=f"IOC limit {request.price:f} not reached (touch {price:f})",
                )
                self._remember(expired)
                return expired
        notional = amount * price
        if notional < market.min_notional:
            raise OrderRejectedError(
                f"notional {notional:f} below the min notional {market.min_notional:f} of {symbol}"
            )
        fee = notional * self._config.taker_fee_rate
        if market.is_perp:
            fee_asset = self._fill_perp(request, price, fee)
        else:
            fee_asset = self._fill_spot(request, market, price, fee)
        self._state.fees_paid += fee
        seq = self._next_seq()
        fill = Fill(
            trade_id=str(seq),
            symbol=symbol,
            side=request.side,
            amount=amount,
            price=price,
            fee=fee,
            fee_asset=fee_asset,
            timestamp=now,
        )
        result = OrderResult(
            client_order_id=request.client_order_id,
            exchange_order_id=f"paper-{seq}",
            symbol=symbol,
            side=request.side,
            status=OrderStatus.FILLED,
            amount=amount,
            filled=amount,
            average_price=price,
            fee=fee,
            fee_asset=fee_asset,
            fills=(fill,),
        )
        self._remember(result)
        return result

    def _fill_spot(
        self, request: OrderRequest, market: Market, price: Decimal, fee: Decimal
    ) -> str:
        if request.reduce_only:
            raise OrderRejectedError(
                f"reduce_only applies to perp orders only; {request.symbol} is spot"
            )
        notional = request.amount * price
        if request.side is Side.BUY:
            cost = notional + fee
            free = self._free(market.quote)
            if cost > free:
                raise OrderRejectedError(
                    f"insufficient {market.quote}: buying {request.amount:f} {market.base} "
                    f"costs {cost:f} with fee, {free:f} free"
                )
            self._credit(market.quote, -cost)
            self._credit(market.base, request.amount)
        else:
            held = self._state.balances.get(market.base, ZERO)
            if request.amount > held:
                raise OrderRejectedError(
                    f"insufficient {market.base}: selling {request.amount:f}, {held:f} held"
                )
            self._credit(market.base, -request.amount)
            self._credit(market.quote, notional - fee)
        return market.quote

    def _fill_perp(self, request: OrderRequest, price: Decimal, fee: Decimal) -> str:
        symbol = request.symbol
        asset = _settle_asset(symbol)
        amount = request.amount
        signed = amount if request.side is Side.BUY else -amount
        position = self._state.positions.get(symbol)
        qty = position.qty if position else ZERO
        if request.reduce_only:
            _check_reduce_only(request, qty)
        leverage = position.leverage if position else self._leverage.get(symbol, ONE)

        # Split the order into the part that closes the current position and the rest.
        closing = min(amount, abs(qty)) if qty * signed < ZERO else ZERO
        opening = amount - closing
        realized = ZERO
        released = ZERO
        if position is not None and closing > ZERO:
            direction = ONE if qty > ZERO else -ONE
            realized = closing * (price - position.entry_price) * direction
            released = (
                position.margin if closing == abs(qty) else position.margin * closing / abs(qty)
            )
        added = initial_margin(opening, price, leverage) if opening > ZERO else ZERO
        if opening > ZERO:
            # Only an order that adds exposure can be refused for funds; a reduction
            # always goes through, as on a real venue.
            free_after = self._free(asset) + released + realized - fee - added
            if free_after < ZERO:
                raise OrderRejectedError(
                    f"insufficient {asset}: {symbol} {request.side.value} {amount:f} needs "
                    f"fee {fee:f} + margin {added:f}, {self._free(asset):f} free"
                )

        new_qty = qty + signed
        self._credit(asset, realized - fee)
        self._state.realized_pnl += realized
        if new_qty == ZERO:
            self._state.positions.pop(symbol, None)
        elif position is None or qty * new_qty < ZERO:
            # New position, or flipped: the remainder opens at the fill price.
            self._state.positions[symbol] = PaperPosition(
                symbol=symbol, qty=new_qty, entry_price=price, leverage=leverage, margin=added
            )
        elif opening > ZERO:
            # Increased: the entry is the size-weighted average of old and new.
            position.entry_price = (abs(qty) * position.entry_price + opening * price) / abs(
                new_qty
            )
            position.qty = new_qty
            position.margin += added
        else:
            position.qty = new_qty
            position.margin -= released
        return asset


def _settle_asset(symbol: str) -> str:
    return _parse_symbol(symbol).margin_asset


def _crossed(qty: Decimal, mark: Decimal, liquidation: Decimal) -> bool:
    """Whether ``mark`` has reached the liquidation price of a position of signed ``qty``."""
    return mark >= liquidation if qty < ZERO else mark <= liquidation


def _check_reduce_only(request: OrderRequest, qty: Decimal) -> None:
    side = request.side.value
    if qty == ZERO:
        raise OrderRejectedError(
            f"reduce-only {side} {request.amount:f} {request.symbol}: no open position to reduce"
        )
    if (qty > ZERO) == (request.side is Side.BUY):
        raise OrderRejectedError(
            f"reduce-only {side} {request.amount:f} {request.symbol} would increase the "
            f"position {qty:f}"
        )
    if request.amount > abs(qty):
        raise OrderRejectedError(
            f"reduce-only {side} {request.amount:f} {request.symbol} would flip the position "
            f"{qty:f}; at most {abs(qty):f} can be reduced"
        )


if TYPE_CHECKING:
    # mypy proves here that PaperVenue satisfies the gateway Protocol.
    _gateway: type[ExchangeGateway] = PaperVenue
