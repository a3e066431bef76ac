"""The paper account's books: balances, isolated-margin positions, leverage, realized PnL,
the remembered orders, and what time does to the account without a request.

* **Funding** is settled at every funding boundary (every ``funding_interval_hours`` on
  the UTC clock from midnight) crossed since the last settlement: ``-qty * mark * rate``,
  so a short receives when the rate is positive. A new account is not back-paid.
* **Liquidation price**: Binance's isolated formula with the maintenance tiers of
  ``PaperConfig.maintenance``, from the margin the position holds; on a unified account
  (``paper.account = "unified"``) the account's (``paper/unified.py``).
* **Liquidation and settlement at expiry** are the venue's own closes
  (``paper/forced.py``).

Prices come in through ``quote`` (the venue's, so a venue that prices differently is
settled at its own prices); nothing here saves: the venue does, after each change.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from bot.config import PaperConfig
from bot.domain.margin import (
    MaintenanceTiers,
    initial_margin,
    isolated_liquidation_price,
    isolated_liquidation_price_with_margin,
)
from bot.domain.models import (
    ONE,
    ZERO,
    Balance,
    FundingPayment,
    Market,
    OrderResult,
    Position,
)
from bot.domain.paper_account import PaperAccountState, PaperPosition
from bot.exchange.feeds import FeedQuote
from bot.exchange.gateway import FatalError, OrderRejectedError
from bot.exchange.paper import wallets
from bot.exchange.paper.forced import (
    LIQUIDATION_PREFIX,
    ForcedCloses,
    crossed,
)
from bot.exchange.paper.inverse import InverseBooks
from bot.exchange.paper.rules import funding_times, next_funding_time, settle_asset
from bot.exchange.paper.unified import UnifiedBooks

# Orders remembered for fetch_order and duplicate detection; older ones are forgotten.
MAX_REMEMBERED_ORDERS = 1000
# Funding payments nobody collected are kept up to this many, so the saved state stays bounded.
MAX_PENDING_FUNDING = 10_000
MIN_LEVERAGE = Decimal(1)
MAX_LEVERAGE = Decimal(125)

QuoteFn = Callable[[str, datetime], FeedQuote]


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


def checked_leverage(symbol: str, leverage: Decimal) -> Decimal:
    """``leverage`` when the venue allows it; FatalError otherwise."""
    if not MIN_LEVERAGE <= leverage <= MAX_LEVERAGE:
        raise FatalError(
            f"leverage {leverage} for {symbol} must be between {MIN_LEVERAGE} and {MAX_LEVERAGE}"
        )
    return leverage


class PaperLedger:
    """The books of one paper account, kept in ``state`` (the saved form)."""

    def __init__(
        self,
        state: PaperAccountState,
        config: PaperConfig,
        *,
        quote: QuoteFn,
        spot: QuoteFn,
        market: Callable[[str], Market],
        leverage: Mapping[str, Decimal] | None = None,
    ) -> None:
        """``quote`` prices marks and funding, ``spot`` values spot balances and settles
        dated futures at expiry, ``market`` gives a symbol's expiry."""
        self.state = state
        self._config = config
        self._quote = quote
        self._spot = spot
        self._market = market
        self._leverage = {s: checked_leverage(s, v) for s, v in (leverage or {}).items()}
        self.unsaved_orders: list[OrderResult] = []
        # Settling runs on every request (and every backtest step): the next funding time
        # and each position's liquidation price are kept until their inputs change.
        self._funding_due: tuple[datetime, datetime] | None = None  # (last paid, next)
        self._liquidation_at: dict[
            str, tuple[tuple[Decimal, Decimal, Decimal], Decimal | None]
        ] = {}
        self._tiers: dict[str, MaintenanceTiers] = {}
        # Coin-margined contracts keep books of their own (a wallet apart, coin PnL).
        self.inverse = InverseBooks(
            state, config, quote=quote, market=market, leverage=self.leverage
        )
        # paper.account "cross" or "unified": the account-level margin (paper/unified.py),
        # at the prices of the last settle (every request settles first).
        self._unified = (
            UnifiedBooks(state, config, quote, spot, self.maintenance)
            if config.account != "isolated"
            else None
        )
        self._now: datetime | None = None
        self._forced = ForcedCloses(
            self,
            quote=quote,
            spot=spot,
            market=market,
            quote_asset=config.quote_asset,
            unified=self._unified,
            inverse=self.inverse,
        )

    # -- balances and orders ---------------------------------------------------------------

    def balances(self) -> dict[str, Balance]:
        """Wallet balances; the settle asset's ``free`` excludes locked isolated margin."""
        return {
            asset: Balance(asset=asset, free=self.free(asset), total=total)
            for asset, total in self.state.balances.items()
        }

    def margin_balances(self, now: datetime) -> dict[str, Balance]:
        """The wallet as a margin wallet: each asset's ``equity`` adds the unrealized PnL of
        the positions it settles, marked at ``now``; on a unified account the quote asset's
        equity is the account's margin balance (the coins at their collateral ratios)."""
        if self._unified is not None:
            return self._unified.margin_balances(self.balances(), now) | self.inverse.wallets(now)
        unrealized: dict[str, Decimal] = {}
        for symbol, position in self.state.positions.items():
            pnl = position.qty * (self._quote(symbol, now).price - position.entry_price)
            asset = settle_asset(symbol)
            unrealized[asset] = unrealized.get(asset, ZERO) + pnl
        linear = {
            asset: replace(balance, equity=balance.total + unrealized.get(asset, ZERO))
            for asset, balance in self.balances().items()
        }
        return linear | self.inverse.wallets(now)

    def locked(self, asset: str) -> Decimal:
        """Margin of ``asset`` locked in open positions."""
        return sum(
            (p.margin for p in self.state.positions.values() if settle_asset(p.symbol) == asset),
            ZERO,
        )

    def free(self, asset: str) -> Decimal:
        """The balance of ``asset`` not locked as margin; on a unified account the quote
        asset's is the account's available balance (the coins back margin too)."""
        if self._unified is not None and self._now is not None:
            if asset == self._config.quote_asset:
                return self._unified.available(self._now)
        return self.state.balances.get(asset, ZERO) - self.locked(asset)

    def credit(self, asset: str, amount: Decimal) -> None:
        """Add ``amount`` (negative: take it) to the balance of ``asset``."""
        self.state.balances[asset] = self.state.balances.get(asset, ZERO) + amount

    def spot_free(self, asset: str) -> Decimal:
        """What a spot order may spend of ``asset``: the spot wallet's (``wallets``); with
        one wallet its free balance, and on a cross or unified account no more than the
        account holds (the paper venue lends nothing to buy)."""
        if self.state.spot_wallet is not None:
            return self.state.spot_wallet.get(asset, ZERO)
        free = self.free(asset)
        if self._unified is None:
            return free
        return min(free, self.state.balances.get(asset, ZERO))

    def spot_credit(self, asset: str, amount: Decimal) -> None:
        """Add ``amount`` (negative: take it) to the spot wallet's ``asset``."""
        wallet = wallets.spot_wallet(self.state)
        wallet[asset] = wallet.get(asset, ZERO) + amount

    def next_seq(self) -> int:
        """The next trade / order number of the account."""
        self.state.trade_seq += 1
        return self.state.trade_seq

    def remember(self, order: OrderResult) -> None:
        """Keep ``order`` for look-ups (the newest MAX_REMEMBERED_ORDERS) and the next save."""
        self.unsaved_orders.append(order)
        orders = self.state.orders
        orders[order.client_order_id] = order
        while len(orders) > MAX_REMEMBERED_ORDERS:
            del orders[next(iter(orders))]

    def take_unsaved_orders(self) -> list[OrderResult]:
        """The orders remembered since the last call (for the store), handed out once."""
        taken, self.unsaved_orders = self.unsaved_orders, []
        return taken

    def liquidations(self) -> list[OrderResult]:
        """Liquidations still remembered among the orders, oldest first."""
        return [
            order for cid, order in self.state.orders.items() if cid.startswith(LIQUIDATION_PREFIX)
        ]

    # -- positions and margin --------------------------------------------------------------

    def leverage(self, symbol: str) -> Decimal:
        """Leverage of the open position, else the one set for ``symbol`` (default 1)."""
        position = self.state.positions.get(symbol)
        return position.leverage if position else self._leverage.get(symbol, ONE)

    def set_leverage(self, symbol: str, leverage: Decimal, now: datetime) -> bool:
        """Use ``leverage`` for ``symbol``, re-locking an open position's margin at it;
        True when a position changed. OrderRejectedError (nothing changed) when the extra
        margin is not free or the new liquidation price is already crossed by the mark."""
        position = self.state.positions.get(symbol)
        relocked = position is not None and position.leverage != leverage
        if position is not None and relocked:
            self._relock(position, leverage, now)
        self._leverage[symbol] = leverage
        return relocked

    def _relock(self, position: PaperPosition, leverage: Decimal, now: datetime) -> None:
        asset = settle_asset(position.symbol)
        margin = initial_margin(position.qty, position.entry_price, leverage)
        extra = margin - position.margin
        if extra > self.free(asset):
            raise OrderRejectedError(
                f"cannot set {position.symbol} leverage to {leverage}: needs {extra:f} more "
                f"{asset} margin, {self.free(asset):f} free"
            )
        liquidation = isolated_liquidation_price(
            position.qty, position.entry_price, leverage, self.maintenance(position.symbol)
        )
        mark = self._quote(position.symbol, now).price
        if liquidation is not None and crossed(position.qty, mark, liquidation):
            raise OrderRejectedError(
                f"cannot set {position.symbol} leverage to {leverage}: liquidation price "
                f"{liquidation:f} is already crossed by the mark {mark:f}"
            )
        position.leverage = leverage
        position.margin = margin

    def add_margin(self, symbol: str, amount: Decimal) -> None:
        """Move ``amount`` of the settle asset into the isolated position of ``symbol``;
        OrderRejectedError (nothing changed) when there is none or the amount is not free."""
        position = self.state.positions.get(symbol)
        asset = settle_asset(symbol)
        if self._unified is not None:
            raise OrderRejectedError(
                f"a {self._config.account} account margins every position across the "
                f"account: there is no isolated margin to add to {symbol}"
            )
        if position is None or amount > self.free(asset):
            raise OrderRejectedError(
                f"no open {symbol} position to add margin to"
                if position is None
                else f"adding {amount:f} {asset} margin: {self.free(asset):f} free"
            )
        position.margin += amount

    def remove_margin(self, symbol: str, amount: Decimal, now: datetime) -> None:
        """Take ``amount`` out of the isolated position of ``symbol`` into the wallet;
        OrderRejectedError (nothing changed) when there is none, it holds less, or its
        liquidation price would be crossed by the mark (a simpler bound than a venue's)."""
        position = self.state.positions.get(symbol)
        if position is None or amount >= position.margin:
            raise OrderRejectedError(
                f"no open {symbol} position to take margin from"
                if position is None
                else f"taking {amount:f} margin: the position holds {position.margin:f}"
            )
        liquidation = isolated_liquidation_price_with_margin(
            position.qty, position.entry_price, position.margin - amount, self.maintenance(symbol)
        )
        mark = self._quote(symbol, now).price
        if liquidation is not None and crossed(position.qty, mark, liquidation):
            raise OrderRejectedError(
                f"taking {amount:f} margin would put the liquidation price {liquidation:f} "
                f"past the mark {mark:f}"
            )
        position.margin -= amount

    def liquidation_price(
        self, position: PaperPosition, now: datetime | None = None
    ) -> Decimal | None:
        """From the margin the position holds, so margin added later moves it; on a
        unified account the account's, for the position's coin, nearest to the mark."""
        at = now or self._now
        if self._unified is not None and at is not None:
            return self._unified.liquidation_price(position, at)
        # Cached, because a backtest asks at every step and the inputs rarely change.
        key = (position.qty, position.entry_price, position.margin)
        cached = self._liquidation_at.get(position.symbol)
        if cached is not None and cached[0] == key:
            return cached[1]
        price = isolated_liquidation_price_with_margin(
            position.qty, position.entry_price, position.margin, self.maintenance(position.symbol)
        )
        self._liquidation_at[position.symbol] = (key, price)
        return price

    def maintenance(self, symbol: str) -> MaintenanceTiers:
        """The maintenance margin tiers ``symbol`` is liquidated with (built once)."""
        tiers = self._tiers.get(symbol)
        if tiers is None:
            tiers = self._tiers[symbol] = self._config.maintenance(symbol)[1]
        return tiers

    def positions(self, symbols: set[str], now: datetime) -> dict[str, Position]:
        """Open positions among ``symbols``, marked at ``quote``; flat ones are absent."""
        linear = {
            symbol: self._position_view(position, now)
            for symbol, position in self.state.positions.items()
            if symbol in symbols
        }
        return linear | self.inverse.positions(symbols, now)

    def _position_view(self, position: PaperPosition, now: datetime) -> Position:
        mark = self._quote(position.symbol, now).price
        return Position(
            symbol=position.symbol,
            qty=position.qty,
            entry_price=position.entry_price,
            mark_price=mark,
            unrealized_pnl=position.qty * (mark - position.entry_price),
            leverage=position.leverage,
            liquidation_price=self.liquidation_price(position, now),
            margin=position.margin,
        )

    def summary(self, now: datetime) -> AccountSummary:
        """The account valued at ``now`` in ``config.quote_asset`` (settle first)."""
        state = self.state
        quote_asset = self._config.quote_asset
        spot_value = ZERO
        quote_balance = state.balances.get(quote_asset, ZERO)
        held = (
            [state.balances] if state.spot_wallet is None else [state.balances, state.spot_wallet]
        )
        for wallet in held:
            for asset, total in wallet.items():
                if asset != quote_asset and total != ZERO:
                    spot_value += total * self._spot(f"{asset}/{quote_asset}", now).price
        if state.spot_wallet is not None:
            quote_balance += state.spot_wallet.get(quote_asset, ZERO)
        for coin, balance in self.inverse.wallets(now).items():  # the coin-margin wallet
            spot_value += (balance.equity or ZERO) * self._spot(f"{coin}/{quote_asset}", now).price
        unrealized = ZERO
        for symbol, position in state.positions.items():
            mark = self._quote(symbol, now).price
            unrealized += position.qty * (mark - position.entry_price)
        return AccountSummary(
            at=now,
            quote_asset=quote_asset,
            quote_balance=quote_balance,
            spot_value=spot_value,
            unrealized_pnl=unrealized,
            margin_locked=sum((p.margin for p in state.positions.values()), ZERO),
            fees_paid=state.fees_paid,
            funding_total=state.funding_total,
            realized_pnl=state.realized_pnl,
        )

    # -- what time does --------------------------------------------------------------------

    def settle_horizon(self, now: datetime) -> tuple[datetime, list[tuple[str, Decimal, bool]]]:
        """The next funding time or open dated position's expiry, whichever comes first,
        and per open position (symbol, liquidation price, short?) the price the mark must
        reach (at or above it for a short, at or below for a long)."""
        last = self.state.last_funding_at or now
        triggers: list[tuple[str, Decimal, bool]] = []
        for position in self.state.positions.values():
            liquidation = self.liquidation_price(position, now)
            if liquidation is None:
                continue
            # A unified account's nearest liquidation may be on either side of the mark.
            above = (
                liquidation > self._quote(position.symbol, now).price
                if self._unified is not None
                else position.qty < ZERO
            )
            triggers.append((position.symbol, liquidation, above))
        triggers += self.inverse.triggers()
        return min([self._next_funding(last), *self._expiries()]), triggers

    def _expiries(self) -> list[datetime]:
        """The expiry of every open dated position."""
        expiries = (self._market(p.symbol).expiry for p in self.state.positions.values())
        return [expiry for expiry in expiries if expiry is not None]

    def settle(self, now: datetime) -> bool:
        """Apply liquidations, funding and expiries due up to ``now``; True when the account
        changed."""
        state = self.state
        self._now = now
        changed = False
        if state.last_funding_at is None:
            state.last_funding_at = now  # never back-pay a state that has no funding clock
            changed = True
        if now >= self._next_funding(state.last_funding_at):
            self._pay_funding_between(state.last_funding_at, now)
            changed = True
        # An expiry between funding times is settled as soon as it is reached.
        changed = self._forced.settle_expired(now) or changed
        return self._forced.liquidate_crossed(now) or changed

    def _pay_funding_between(self, last: datetime, now: datetime) -> None:
        """Every funding boundary in ``(last, now]``, in time order."""
        for boundary in funding_times(last, now, self._config.funding_interval_hours):
            # At each boundary, in time order: a contract that expired before it is settled
            # at its expiry, a position liquidated before it pays nothing.
            self._forced.settle_expired(boundary)
            self._forced.liquidate_crossed(boundary)
            self._pay_funding(boundary)
            self.state.last_funding_at = boundary

    def _next_funding(self, last: datetime) -> datetime:
        if self._funding_due is None or self._funding_due[0] != last:
            self._funding_due = (last, next_funding_time(last, self._config.funding_interval_hours))
        return self._funding_due[1]

    def _pay_funding(self, at: datetime) -> None:
        state = self.state
        for position in state.positions.values():
            quote = self._quote(position.symbol, at)
            amount = -position.qty * quote.price * quote.funding_rate
            if amount == ZERO:
                continue
            asset = settle_asset(position.symbol)
            self.credit(asset, amount)
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
        state.pending_funding += self.inverse.pay_funding(at)  # in coins, apart from the total
        if len(state.pending_funding) > MAX_PENDING_FUNDING:
            del state.pending_funding[: len(state.pending_funding) - MAX_PENDING_FUNDING]

    def pending_funding(self, symbols: set[str]) -> list[FundingPayment]:
        """Funding settled on ``symbols`` and not yet dropped (stored), oldest first."""
        return [p for p in self.state.pending_funding if p.symbol in symbols]

    def drop_funding(self, stored: list[FundingPayment]) -> bool:
        """Forget the payments the store has; whether any were pending."""
        kept = [p for p in self.state.pending_funding if p not in stored]
        dropped = len(kept) != len(self.state.pending_funding)
        self.state.pending_funding = kept
        return dropped
