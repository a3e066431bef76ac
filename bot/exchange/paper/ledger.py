"""The paper account's books: balances, isolated-margin positions, leverage, realized PnL,
the remembered orders, and what time does to the account without a request.

* **Funding** is settled at every funding boundary (every ``funding_interval_hours`` on
  the UTC clock from midnight) crossed since the last settlement: ``-qty * mark * rate``,
  so a short receives when the rate is positive. A new account is not back-paid.
* **Liquidation**: when the mark reaches a position's isolated liquidation price
  (Binance's formula with the maintenance tiers of ``PaperConfig.maintenance``, from the
  margin the position holds), the position is closed at that price and its whole margin
  is lost; the event is recorded as an order ``liquidation-<n>``.
* **Settlement**: a dated future still open at its expiry is closed at the feed's spot
  price (its basis 0 by then), the PnL realized; recorded as an order ``settlement-<n>``.

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
    Fill,
    FundingPayment,
    Market,
    OrderResult,
    OrderStatus,
    Position,
    Side,
)
from bot.domain.paper_account import PaperAccountState, PaperPosition
from bot.exchange.feeds import FeedQuote
from bot.exchange.gateway import FatalError, OrderRejectedError
from bot.exchange.paper import wallets
from bot.exchange.paper.rules import funding_times, next_funding_time, settle_asset

# Orders remembered for fetch_order and duplicate detection; older ones are forgotten.
MAX_REMEMBERED_ORDERS = 1000
# Funding payments nobody collected are kept up to this many, so the saved state stays bounded.
MAX_PENDING_FUNDING = 10_000
MIN_LEVERAGE = Decimal(1)
MAX_LEVERAGE = Decimal(125)
LIQUIDATION_PREFIX = "liquidation-"
SETTLEMENT_PREFIX = "settlement-"

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


def filled_order(
    client_order_id: str, exchange_order_id: str, fill: Fill, reason: str | None = None
) -> OrderResult:
    """An order filled completely by the one trade ``fill``."""
    return OrderResult(
        client_order_id=client_order_id,
        exchange_order_id=exchange_order_id,
        symbol=fill.symbol,
        side=fill.side,
        status=OrderStatus.FILLED,
        amount=fill.amount,
        filled=fill.amount,
        average_price=fill.price,
        fee=fill.fee,
        fee_asset=fill.fee_asset,
        fills=(fill,),
        reason=reason,
    )


def crossed(qty: Decimal, mark: Decimal, liquidation: Decimal) -> bool:
    """Whether ``mark`` has reached the liquidation price of a position of signed ``qty``."""
    return mark >= liquidation if qty < ZERO else mark <= liquidation


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

    # -- balances and orders ---------------------------------------------------------------

    def balances(self) -> dict[str, Balance]:
        """Wallet balances; the settle asset's ``free`` excludes locked isolated margin."""
        return {
            asset: Balance(asset=asset, free=self.free(asset), total=total)
            for asset, total in self.state.balances.items()
        }

    def margin_balances(self, now: datetime) -> dict[str, Balance]:
        """The wallet as a margin wallet: each asset's ``equity`` adds the unrealized PnL of
        the positions it settles, marked at ``now``."""
        unrealized: dict[str, Decimal] = {}
        for symbol, position in self.state.positions.items():
            pnl = position.qty * (self._quote(symbol, now).price - position.entry_price)
            asset = settle_asset(symbol)
            unrealized[asset] = unrealized.get(asset, ZERO) + pnl
        return {
            asset: replace(balance, equity=balance.total + unrealized.get(asset, ZERO))
            for asset, balance in self.balances().items()
        }

    def locked(self, asset: str) -> Decimal:
        """Margin of ``asset`` locked in open positions."""
        return sum(
            (p.margin for p in self.state.positions.values() if settle_asset(p.symbol) == asset),
            ZERO,
        )

    def free(self, asset: str) -> Decimal:
        """The balance of ``asset`` not locked as margin."""
        return self.state.balances.get(asset, ZERO) - self.locked(asset)

    def credit(self, asset: str, amount: Decimal) -> None:
        """Add ``amount`` (negative: take it) to the balance of ``asset``."""
        self.state.balances[asset] = self.state.balances.get(asset, ZERO) + amount

    def spot_free(self, asset: str) -> Decimal:
        """What a spot order may spend of ``asset``: the spot wallet's (``wallets``)."""
        if self.state.spot_wallet is None:
            return self.free(asset)
        return self.state.spot_wallet.get(asset, ZERO)

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

    def liquidation_price(self, position: PaperPosition) -> Decimal | None:
        """From the margin the position holds, so margin added later moves it."""
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
        return {
            symbol: self._position_view(position, now)
            for symbol, position in self.state.positions.items()
            if symbol in symbols
        }

    def _position_view(self, position: PaperPosition, now: datetime) -> Position:
        mark = self._quote(position.symbol, now).price
        return Position(
            symbol=position.symbol,
            qty=position.qty,
            entry_price=position.entry_price,
            mark_price=mark,
            unrealized_pnl=position.qty * (mark - position.entry_price),
            leverage=position.leverage,
            liquidation_price=self.liquidation_price(position),
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
            liquidation = self.liquidation_price(position)
            if liquidation is not None:
                triggers.append((position.symbol, liquidation, position.qty < ZERO))
        return min([self._next_funding(last), *self._expiries()]), triggers

    def _expiries(self) -> list[datetime]:
        """The expiry of every open dated position."""
        expiries = (self._market(p.symbol).expiry for p in self.state.positions.values())
        return [expiry for expiry in expiries if expiry is not None]

    def settle(self, now: datetime) -> bool:
        """Apply liquidations, funding and expiries due up to ``now``; True when the account
        changed."""
        state = self.state
        changed = False
        if state.last_funding_at is None:
            state.last_funding_at = now  # never back-pay a state that has no funding clock
            changed = True
        if now >= self._next_funding(state.last_funding_at):
            self._pay_funding_between(state.last_funding_at, now)
            changed = True
        # An expiry between funding times is settled as soon as it is reached.
        changed = self._settle_expired(now) or changed
        return self._liquidate_crossed(now) or changed

    def _pay_funding_between(self, last: datetime, now: datetime) -> None:
        """Every funding boundary in ``(last, now]``, in time order."""
        for boundary in funding_times(last, now, self._config.funding_interval_hours):
            # At each boundary, in time order: a contract that expired before it is settled
            # at its expiry, a position liquidated before it pays nothing.
            self._settle_expired(boundary)
            self._liquidate_crossed(boundary)
            self._pay_funding(boundary)
            self.state.last_funding_at = boundary

    def _next_funding(self, last: datetime) -> datetime:
        if self._funding_due is None or self._funding_due[0] != last:
            self._funding_due = (last, next_funding_time(last, self._config.funding_interval_hours))
        return self._funding_due[1]

    def _liquidate_crossed(self, at: datetime) -> bool:
        liquidated = False
        for position in list(self.state.positions.values()):
            liquidation = self.liquidation_price(position)
            if liquidation is None:
                continue
            mark = self._quote(position.symbol, at).price
            if crossed(position.qty, mark, liquidation):
                self._liquidate(position, liquidation, mark, at)
                liquidated = True
        return liquidated

    def _liquidate(
        self, position: PaperPosition, price: Decimal, mark: Decimal, at: datetime
    ) -> None:
        asset = settle_asset(position.symbol)
        # Closed at the liquidation price; what the margin still held after the trading
        # loss goes too (the venue's liquidation fee), so the whole margin is lost.
        self.credit(asset, -position.margin)
        self.state.realized_pnl -= position.margin
        del self.state.positions[position.symbol]
        self._record_forced_close(
            position,
            LIQUIDATION_PREFIX,
            price,
            at,
            f"liquidated: mark {mark:f} crossed liquidation price {price:f} of "
            f"{position.qty:f} at entry {position.entry_price:f} and leverage "
            f"{position.leverage:f}; margin {position.margin:f} {asset} lost",
        )

    def _settle_expired(self, now: datetime) -> bool:
        """Settle every dated position whose expiry has passed at the feed's spot price (the
        future's price at expiry, its basis 0): realized PnL to the wallet, margin released."""
        settled = False
        for position in list(self.state.positions.values()):
            expiry = self._market(position.symbol).expiry
            if expiry is None or expiry > now:
                continue
            price = self._spot(position.symbol, expiry).price
            realized = position.qty * (price - position.entry_price)
            asset = settle_asset(position.symbol)
            self.credit(asset, realized)
            self.state.realized_pnl += realized
            del self.state.positions[position.symbol]
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

    def _record_forced_close(
        self, position: PaperPosition, prefix: str, price: Decimal, at: datetime, reason: str
    ) -> None:
        """Remember a close the venue made itself (a liquidation, a settlement at expiry)
        as a filled, fee-less order, so look-ups and fills show it like any other."""
        seq = self.next_seq()
        side = Side.BUY if position.qty < ZERO else Side.SELL
        asset = settle_asset(position.symbol)
        fill = Fill(str(seq), position.symbol, side, abs(position.qty), price, ZERO, asset, at)
        client_order_id = f"{prefix}{seq}"
        self.remember(filled_order(client_order_id, client_order_id, fill, reason))

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
