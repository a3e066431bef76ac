"""The paper venue: a simulated exchange account behind the ExchangeGateway Protocol.

This class is the facade: it takes the requests, holds the lock, settles the account up
to now before each one and saves it after every change. The model lives in the modules
it wires together: ``quotes`` (rules, prices, book, candles), ``fills`` (how an order
fills and what it does to the account) and ``ledger`` (balances, positions, margin,
funding, liquidation and expiry).

The account (balances, positions, orders, funding, the feed's state) is saved through a
``PaperAccountStore`` after every change, so a restart continues where it stopped. A quote
alone (fetch_tickers) is not saved: the sim walk is a function of its step index, so a
restart from an older feed state walks the same steps again and arrives at the same price.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from bot.clock import Clock
from bot.config import PaperConfig
from bot.domain.margin_transfers import MarginChange, WalletTransfer
from bot.domain.models import (
    ZERO,
    Balance,
    Candle,
    FundingPayment,
    FundingRate,
    Market,
    MarketStats,
    OrderBook,
    OrderRequest,
    OrderResult,
    Position,
    Ticker,
    settle_asset,
)
from bot.domain.paper_account import PaperAccountState, PaperAccountStore
from bot.exchange.candles import CandleSource
from bot.exchange.feeds import FeedQuote, PriceFeed, RefreshableFeed
from bot.exchange.gateway import (
    ContractSetting,
    ExchangeGateway,
    FatalError,
    OrderRejectedError,
    parse_symbol,
)
from bot.exchange.paper import wallets
from bot.exchange.paper.fills import PaperMatcher
from bot.exchange.paper.ledger import AccountSummary, PaperLedger, checked_leverage
from bot.exchange.paper.quotes import PaperQuotes

MARGIN_HISTORY = timedelta(days=30)  # as long as Binance lists margin changes


@dataclass(slots=True)
class _Change:
    now: datetime
    settled: bool  # settling up to now changed the account
    changed: bool = False  # set by the block that changed it


class PaperVenue:
    """A simulated exchange account implementing ``ExchangeGateway``.

    Build it with ``await PaperVenue.open(...)``, which loads the saved account or starts a
    new one from ``config.balances``. Prices go through ``_quote`` and rules through
    ``_market``, so a subclass that prices differently trades and settles at its prices.
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
        self._quotes = PaperQuotes(config, feed)
        self._ledger = PaperLedger(
            state,
            config,
            quote=self._quote,
            spot=feed.quote,
            market=self._market,
            leverage=leverage,
        )
        self._matcher = PaperMatcher(
            self._ledger, config, self._quotes, quote=self._quote, market=self._market
        )
        # One mutation (settle + fill + save) at a time, when pairs share the account.
        self._lock = asyncio.Lock()
        # Settled by settle_due (no save there): saved at the next settle of a request.
        self._settled_unsaved = False
        # The funding payments handed out and not yet committed (see commit_funding).
        self._funding_fetched: list[FundingPayment] = []

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
            state = PaperAccountState(
                balances=dict(config.balances),
                last_funding_at=clock.now(),
                coin_margin=dict(config.coin_margin_balances),
            )
            if config.separate_wallets:  # balances: the spot wallet; the futures wallet apart
                state.spot_wallet, state.balances = state.balances, dict(config.futures_balances)
        elif state.feed_state:
            feed.restore(state.feed_state)
        venue = cls(config, feed, clock, store, state, account=account, leverage=leverage)
        if fresh:
            await venue._save()
        return venue

    @property
    def state(self) -> PaperAccountState:
        """The live account state (read it; change it only through the venue)."""
        return self._ledger.state

    # -- ExchangeGateway -------------------------------------------------------------------

    async def load_markets(
        self, symbols: Iterable[str], reload: bool = False
    ) -> Mapping[str, Market]:
        """Trading rules from ``config.markets[symbol]``, else ``config.default_market``
        (fixed for the venue's life: ``reload`` changes nothing)."""
        return {symbol: self._market(symbol) for symbol in symbols}

    async def fetch_balances(self) -> Mapping[str, Balance]:
        """Wallet balances; the settle asset's ``free`` excludes locked isolated margin."""
        async with self._lock:
            await self._settle_and_save(self._clock.now())
            if wallets.separate(self.state):
                return wallets.spot_balances(self.state)
            return self._ledger.balances()

    async def fetch_margin_balances(self) -> Mapping[str, Balance]:
        """The futures wallet (with one wallet: the spot balances), each asset with its
        equity (the unrealized PnL of the positions it settles added, at the feed price);
        the coins of the coin-margin wallet (inverse contracts) in place of the spot ones."""
        state = self._ledger.state
        await self._refresh([*state.positions, *state.inverse_positions])
        async with self._lock:
            now = self._clock.now()
            await self._settle_and_save(now)
            return self._ledger.margin_balances(now)

    async def fetch_order_book(self, symbol: str, depth: int = 20) -> OrderBook:
        """A synthetic book: ``book_levels`` levels 1 bp apart from the touch, each worth
        ``book_level_notional`` of the quote asset."""
        now = self._clock.now()
        market = self._market(symbol)
        return self._quotes.order_book(market, self._quote(symbol, now).price, depth, now)

    async def fetch_ohlcv(
        self, symbol: str, timeframe: str, since: datetime | None = None, limit: int | None = None
    ) -> list[Candle]:
        """Bars cut from the feed's price path (the live feed asks its exchange)."""
        if isinstance(self._feed, CandleSource):
            return await self._feed.fetch_ohlcv(symbol, timeframe, since, limit)
        frame = self._quotes.candle_frame(timeframe)
        await self._refresh([symbol])
        return self._quotes.candles(symbol, frame, since, limit, self._clock.now())

    async def fetch_market_stats(self, symbol: str) -> MarketStats:
        """Open interest and 24h volume as configured for the symbol (``paper.markets``)."""
        return self._quotes.market_stats(symbol, self._clock.now())

    async def set_margin_mode(self, symbol: str, margin_mode: str) -> None:
        """An isolated paper account models isolated margin only, a cross or unified one
        cross margin across the account; asking for the other is a configuration error."""
        wanted = "isolated" if self._config.account == "isolated" else "cross"
        if margin_mode != wanted:
            raise FatalError(
                f"the paper venue's {self._config.account} account models {wanted} margin "
                f'only; set margin_mode = "{wanted}" for {symbol}'
            )

    async def fetch_open_orders(self, symbols: Iterable[str]) -> list[OrderResult]:
        """Paper orders fill or expire at once: nothing is ever open."""
        return []

    async def cancel_order(self, symbol: str, client_order_id: str) -> OrderResult | None:
        """Paper orders fill at once, so there is nothing open to cancel: the final state."""
        return await self.fetch_order(symbol, client_order_id)

    async def fetch_positions(self, symbols: Iterable[str]) -> Mapping[str, Position]:
        """Open positions among ``symbols``, marked at the feed price; flat ones are absent."""
        symbols = list(symbols)
        await self._refresh(symbols)
        async with self._lock:
            now = self._clock.now()
            await self._settle_and_save(now)
            return self._ledger.positions(set(symbols), now)

    async def fetch_tickers(self, symbols: Iterable[str]) -> Mapping[str, Ticker]:
        """Bid/ask = feed price ∓ half the spread, on the price grid; last = the feed price."""
        symbols = list(symbols)
        await self._refresh(symbols)
        now = self._clock.now()
        tickers: dict[str, Ticker] = {}
        for symbol in symbols:
            market = self._market(symbol)
            tickers[symbol] = self._quotes.ticker(market, self._quote(symbol, now))
        return tickers

    async def fetch_funding_rates(self, symbols: Iterable[str]) -> Mapping[str, FundingRate]:
        """The feed's funding rate per perp symbol (spot symbols are skipped)."""
        now = self._clock.now()
        return {
            symbol: self._quotes.funding_rate(symbol, self._quote(symbol, now), now)
            for symbol in symbols
            if parse_symbol(symbol).is_perpetual  # not spot, nor a dated future (no funding)
        }

    async def fetch_contract_quotes(
        self, symbols: Iterable[str]
    ) -> tuple[Mapping[str, Ticker], Mapping[str, FundingRate]]:
        """``fetch_tickers`` and ``fetch_funding_rates`` (the feed answers both)."""
        wanted = list(symbols)
        return await self.fetch_tickers(wanted), await self.fetch_funding_rates(wanted)

    async def create_order(self, request: OrderRequest) -> OrderResult:
        """Fill a market order now and completely; OrderRejectedError says why not."""
        await self._refresh([request.symbol])
        async with self._change() as change:
            if request.client_order_id not in self.state.orders:
                earlier = await self._store.load_paper_order(self.account, request.client_order_id)
                if earlier is not None:
                    self.state.orders[earlier.client_order_id] = earlier
            result = self._matcher.fill(request, change.now)
            change.changed = True
        return result

    async def fetch_order(self, symbol: str, client_order_id: str) -> OrderResult | None:
        """A remembered order (or liquidation) of ``symbol``; None when there is none."""
        order = self.state.orders.get(client_order_id)
        if order is None:
            order = await self._store.load_paper_order(self.account, client_order_id)
        return order if order is not None and order.symbol == symbol else None

    async def fetch_funding_payments(self, symbols: Iterable[str]) -> list[FundingPayment]:
        """Funding settled on ``symbols`` and not yet committed, oldest first."""
        async with self._change():
            self._funding_fetched = self._ledger.pending_funding(set(symbols))
        return list(self._funding_fetched)

    async def commit_funding(self) -> None:
        """The fetched payments are stored: they are handed out no more."""
        async with self._change() as change:
            change.changed = self._ledger.drop_funding(self._funding_fetched)
            self._funding_fetched = []

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
        leverage = checked_leverage(symbol, leverage)
        async with self._change() as change:
            change.changed = self._ledger.set_leverage(symbol, leverage, change.now)

    async def apply_settings(self, wanted: Mapping[str, ContractSetting]) -> None:
        """Each contract's margin mode (isolated only) and leverage, one after another."""
        for symbol, setting in sorted(wanted.items()):
            await self.set_margin_mode(symbol, setting.margin_mode)
            await self.set_leverage(symbol, setting.leverage)

    async def add_margin(self, symbol: str, amount: Decimal) -> None:
        """Move ``amount`` of the settle asset into the isolated position of ``symbol``;
        the change goes into the account's margin history, saved with it."""
        if amount <= ZERO:
            raise OrderRejectedError(f"margin to add must be positive, got {amount:f}")
        async with self._change() as change:
            self._ledger.add_margin(symbol, amount)
            self._remember_margin(
                MarginChange(symbol, amount, settle_asset(symbol), True, change.now)
            )
            change.changed = True

    async def remove_margin(self, symbol: str, amount: Decimal) -> None:
        """Take ``amount`` out of the isolated position of ``symbol`` (a reduction in the
        margin history)."""
        if amount <= ZERO:
            raise OrderRejectedError(f"margin to take must be positive, got {amount:f}")
        async with self._change() as change:
            self._ledger.remove_margin(symbol, amount, change.now)
            self._remember_margin(
                MarginChange(symbol, amount, settle_asset(symbol), False, change.now)
            )
            change.changed = True

    @property
    def separate_wallets(self) -> bool:
        """Whether the account was opened with separate spot and futures wallets."""
        return wallets.separate(self.state)

    async def transfer(
        self, asset: str, amount: Decimal, source: str, destination: str, client_id: str
    ) -> None:
        """Move quote between the spot and futures wallets (``wallets.transfer``)."""
        async with self._change() as change:
            wallets.transfer(
                self.state,
                self._ledger.free(asset),
                asset,
                amount,
                source,
                destination,
                client_id,
                change.now,
            )
            change.changed = True

    async def fetch_transfers(self, asset: str, since: datetime) -> list[WalletTransfer]:
        """The transfers of ``asset`` since ``since``, with our client ids."""
        return wallets.transfers_since(self.state, asset, since)

    def _remember_margin(self, change: MarginChange) -> None:
        history = self.state.margin_changes
        kept = change.at - MARGIN_HISTORY
        history[:] = [c for c in history if c.at >= kept]
        history.append(change)

    @property
    def hedge_mode(self) -> bool:
        """The paper account is in one-way mode: one net position per symbol."""
        return False

    @property
    def has_margin_history(self) -> bool:
        """The paper account keeps its margin changes."""
        return True

    @property
    def one_wallet(self) -> bool:
        """The paper account keeps its coin-margin wallet apart from the spot coins."""
        return False

    async def fetch_margin_history(self, symbol: str, since: datetime) -> list[MarginChange]:
        """The margin history of ``symbol`` since ``since``, oldest first."""
        return [c for c in self.state.margin_changes if c.symbol == symbol and c.at >= since]

    def leverage(self, symbol: str) -> Decimal:
        """Leverage of the open position, else the one set for ``symbol`` (default 1)."""
        return self._ledger.leverage(symbol)

    async def account_summary(self) -> AccountSummary:
        """The account valued now (after settling funding and liquidations)."""
        async with self._lock:
            now = self._clock.now()
            await self._settle_and_save(now)
            return self._ledger.summary(now)

    def liquidation_price(self, symbol: str) -> Decimal | None:
        """The open position's liquidation price, from its margin (None: no position, or
        an inverse one that no price liquidates)."""
        position = self.state.positions.get(symbol)
        if position is not None:
            return self._ledger.liquidation_price(position)
        inverse = self.state.inverse_positions.get(symbol)
        return None if inverse is None else self._ledger.inverse.liquidation_price(inverse)

    def liquidations(self) -> list[OrderResult]:
        """Liquidations still remembered among the orders, oldest first."""
        return self._ledger.liquidations()

    def settle_horizon(self) -> tuple[datetime, list[tuple[str, Decimal, bool]]]:
        """What can next change the account without a request: the next funding time or
        open dated position's expiry, whichever is first, and per open position (symbol,
        liquidation price, short?) the price the mark must reach (at or above it for a
        short, at or below for a long). A backtest settles only at the steps where one of
        them may be met."""
        return self._ledger.settle_horizon(self._clock.now())

    def settle_due(self) -> bool:
        """Apply the funding and liquidations due by now; True when the account changed.

        For a backtest stepping between cycles: nothing is saved here (the next request
        that settles saves it, and so does close())."""
        changed = self._ledger.settle(self._clock.now())
        self._settled_unsaved = self._settled_unsaved or changed
        return changed

    # -- internals -------------------------------------------------------------------------

    def _market(self, symbol: str) -> Market:
        return self._quotes.market(symbol)

    def _quote(self, symbol: str, at: datetime) -> FeedQuote:
        """The feed's quote; a dated future is priced at spot x (1 + basis_apr x time left
        in years), so its basis converges to 0 at expiry, and pays no funding."""
        return self._quotes.quote(symbol, at)

    async def _refresh(self, symbols: Iterable[str]) -> None:
        # A live feed fetches its quotes; the sim and replay feeds need nothing.
        if isinstance(self._feed, RefreshableFeed):
            await self._feed.refresh(symbols)

    @asynccontextmanager
    async def _change(self) -> AsyncIterator[_Change]:
        """One change of the account: under the lock, settle it up to now, run the block,
        then save when settling or the block (``changed``) changed anything. A block that
        is rejected changed nothing: what settling changed is saved before the error goes
        on."""
        async with self._lock:
            now = self._clock.now()
            change = _Change(now, settled=self._ledger.settle(now))
            try:
                yield change
            except OrderRejectedError:
                if change.settled:
                    await self._save()
                raise
            if change.settled or change.changed:
                await self._save()

    async def _save(self) -> None:
        state = self._ledger.state
        state.feed_state = self._feed.state()
        await self._store.save_paper_account(
            self.account, state, self._ledger.take_unsaved_orders()
        )

    async def _settle_and_save(self, now: datetime) -> None:
        if self._ledger.settle(now) or self._settled_unsaved:
            self._settled_unsaved = False
            await self._save()


if TYPE_CHECKING:
    # mypy proves here that PaperVenue satisfies the gateway Protocol.
    _gateway: type[ExchangeGateway] = PaperVenue
