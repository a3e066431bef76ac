"""The emulated Binance account: books, balances, positions, orders and fills.

Pure state, no I/O: the HTTP layer (``binance_emulator``) parses requests, calls
into this engine and renders what it returns. Money is ``Decimal`` throughout.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from tests.support.emulators.binance._binance_models import (
    ZERO,
    BinanceError,
    EmulatedMarket,
    EmulatedOrder,
    Fill,
    FundingEvent,
    IncomeEntry,
    MarginChange,
    PositionState,
    Venue,
    WalletTransferRow,
    ceil_to,
    decimals_of,
    floor_to,
    fmt,
    is_multiple,
)

SPOT_TAKER_FEE = Decimal("0.001")
SPOT_MAKER_FEE = Decimal("0.001")
FUTURES_TAKER_FEE = Decimal("0.0004")
FUTURES_MAKER_FEE = Decimal("0.0002")
DEFAULT_LEVERAGE = 20
EIGHT_HOURS_MS = 8 * 3600 * 1000
CLIENT_ID_PATTERN = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
SPOT_QTY_DECIMALS = 8


@dataclass
class BookQuote:
    """Top of book and reference prices of one base coin (shared by spot and perp)."""

    bid: Decimal
    ask: Decimal
    last: Decimal
    mark: Decimal
    index: Decimal


@dataclass
class FuturesSnapshot:
    """What the lagged position/balance views show: wallet and positions, with times."""

    wallet: dict[str, Decimal]
    wallet_update_ms: dict[str, int]
    positions: dict[tuple[str, str], PositionState]


@dataclass
class SpotSnapshot:
    """What the lagged spot balance view shows: free and locked per asset, with time."""

    free: dict[str, Decimal]
    locked: dict[str, Decimal]
    update_ms: int


@dataclass
class PositionView:
    """A futures position as the position endpoints report it."""

    symbol: str
    position_side: str
    amount: Decimal
    entry: Decimal
    mark: Decimal
    leverage: int
    isolated: bool
    isolated_wallet: Decimal
    maint_ratio: Decimal
    liquidation: Decimal
    update_ms: int

    @property
    def notional(self) -> Decimal:
        """Signed notional at the mark."""
        return self.amount * self.mark

    @property
    def unrealized(self) -> Decimal:
        """Unrealized PnL at the mark."""
        return self.amount * (self.mark - self.entry)

    @property
    def initial_margin(self) -> Decimal:
        """Initial margin at the mark and the symbol's leverage."""
        return abs(self.notional) / self.leverage

    @property
    def maint_margin(self) -> Decimal:
        """Maintenance margin at the mark."""
        return abs(self.notional) * self.maint_ratio


class PositionTotals:
    """The account figures summed over ``positions`` (each with ``unrealized``,
    ``initial_margin``, ``maint_margin``, ``isolated`` and ``isolated_wallet``), of a
    wallet of ``wallet_balance`` with ``open_order_margin`` locked: the USDⓈ-M wallet in
    quote, a COIN-M wallet in its coin."""

    positions: Sequence[Any]
    open_order_margin: Decimal

    @property
    def wallet_balance(self) -> Decimal:
        raise NotImplementedError

    @property
    def unrealized(self) -> Decimal:
        """Sum of unrealized PnL."""
        return sum((p.unrealized for p in self.positions), ZERO)

    @property
    def position_initial_margin(self) -> Decimal:
        """Sum of positions' initial margin."""
        return sum((p.initial_margin for p in self.positions), ZERO)

    @property
    def maint_margin(self) -> Decimal:
        """Sum of positions' maintenance margin."""
        return sum((p.maint_margin for p in self.positions), ZERO)

    @property
    def isolated_wallets(self) -> Decimal:
        """Margin held by isolated positions."""
        return sum((p.isolated_wallet for p in self.positions if p.isolated), ZERO)

    @property
    def cross_wallet(self) -> Decimal:
        """Wallet balance less isolated margin."""
        return self.wallet_balance - self.isolated_wallets

    @property
    def cross_unrealized(self) -> Decimal:
        """Unrealized PnL of cross positions."""
        return sum((p.unrealized for p in self.positions if not p.isolated), ZERO)

    @property
    def available(self) -> Decimal:
        """Balance free for new orders (cross)."""
        cross_margin = sum((p.initial_margin for p in self.positions if not p.isolated), ZERO)
        value = self.cross_wallet + self.cross_unrealized - cross_margin - self.open_order_margin
        return max(value, ZERO)


@dataclass
class FuturesAccountView(PositionTotals):
    """Wallet and positions (possibly lagged), with derived totals."""

    wallet: dict[str, Decimal]
    wallet_update_ms: dict[str, int]
    positions: list[PositionView]
    open_order_margin: Decimal
    quote_asset: str

    @property
    def wallet_balance(self) -> Decimal:
        """Wallet balance of the quote asset."""
        return self.wallet.get(self.quote_asset, ZERO)


@dataclass
class _Accounting:
    """Mutable futures state that the lag snapshots copy."""

    wallet: dict[str, Decimal] = field(default_factory=dict)
    positions: dict[tuple[str, str], PositionState] = field(default_factory=dict)


def parse_decimal(params: Mapping[str, str], name: str, *, required: bool) -> Decimal | None:
    """Read a decimal parameter, raising Binance's -1102/-1100 errors."""
    raw = params.get(name)
    if raw is None or raw == "":
        if required:
            raise BinanceError(
                400,
                -1102,
                f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.",
            )
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise BinanceError(
            400,
            -1100,
            f"Illegal characters found in parameter '{name}'; "
            "legal range is '^([0-9]{1,20})(\\.[0-9]{1,20})?$'.",
        ) from None
    if not value.is_finite():
        raise BinanceError(400, -1100, f"Illegal characters found in parameter '{name}'.")
    return value


def required_decimal(params: Mapping[str, str], name: str) -> Decimal:
    """Read a mandatory decimal parameter (-1102 when absent)."""
    value = parse_decimal(params, name, required=True)
    if value is None:  # unreachable: required=True raises instead
        raise BinanceError(400, -1102, f"Mandatory parameter '{name}' was not sent.")
    return value


def parse_bool(params: Mapping[str, str], name: str) -> bool:
    """Read a ``true``/``false`` parameter (absent means false)."""
    return params.get(name, "false").lower() == "true"


def order_position_side(params: Mapping[str, str], dual_side: bool) -> str:
    """An order's ``positionSide`` as the account's position mode takes it: LONG or SHORT
    (and no ``reduceOnly``) in hedge mode, BOTH in one-way mode; -4061/-1106 else."""
    position_side = params.get("positionSide", "BOTH")
    if dual_side:
        if position_side not in ("LONG", "SHORT"):
            raise BinanceError(400, -4061, "Order's position side does not match user's setting.")
        if "reduceOnly" in params:
            raise BinanceError(400, -1106, "Parameter 'reduceOnly' sent when not required.")
    elif position_side != "BOTH":
        raise BinanceError(400, -4061, "Order's position side does not match user's setting.")
    return position_side


class CoinMargin(Protocol):
    """The COIN-M wallet as a transfer sees it."""

    def credit(self, asset: str, delta: Decimal) -> None: ...

    def available(self, asset: str) -> Decimal: ...


class Engine:
    """State and matching of one emulated Binance account."""

    def __init__(
        self,
        markets: Sequence[EmulatedMarket],
        quote_asset: str,
        clock: Callable[[], float],
    ) -> None:
        self.quote_asset = quote_asset
        self.clock = clock
        self.markets: dict[str, EmulatedMarket] = {}
        self.by_id: dict[str, EmulatedMarket] = {}
        self.quotes: dict[str, BookQuote] = {}
        self.price_history: dict[str, list[tuple[int, Decimal]]] = {}
        self.funding_rates: dict[str, Decimal] = {}
        self.funding_events: list[FundingEvent] = []
        self.spot_free: dict[str, Decimal] = {}
        self.spot_locked: dict[str, Decimal] = {}
        self.spot_update_ms = 0
        self.acct = _Accounting()
        self.wallet_update_ms: dict[str, int] = {}
        self.leverage: dict[str, int] = {}
        self.margin_type: dict[str, str] = {}
        self.dual_side = False
        self.orders: dict[int, EmulatedOrder] = {}
        self.client_ids: dict[tuple[Venue, str], int] = {}
        self.income: list[IncomeEntry] = []
        self.margin_history: list[MarginChange] = []
        self.wallet_transfers: list[WalletTransferRow] = []
        # Liquidated positions: (symbol id, signed amount, liquidation price, time ms).
        self.liquidations: list[tuple[str, Decimal, Decimal, int]] = []
        # Per (venue, symbol id): a status other than TRADING (suspended), or delisted.
        self.status: dict[tuple[Venue, str], str] = {}
        self.delisted: set[tuple[Venue, str]] = set()
        self.quoted_while_suspended: set[tuple[Venue, str]] = set()
        self.lag_s = 0.0
        self.client_order_id_scope = "all"
        self._fut_history: list[tuple[float, FuturesSnapshot]] = []
        self._spot_history: list[tuple[float, SpotSnapshot]] = []
        self._next_order_id = 8_000_000_001
        self._next_trade_id = 500_000_001
        self._next_tran_id = 9_000_000_001
        # The COIN-M wallet, where COIN-M is listed (``_binance_coinm``).
        self.coinm: CoinMargin | None = None
        # Called with the coin after each price change (the COIN-M book's matching).
        self.price_listeners: list[Callable[[str], None]] = []
        for market in markets:
            self.markets[market.base] = market
            self.by_id[market.symbol_id] = market
            self.leverage[market.symbol_id] = min(DEFAULT_LEVERAGE, market.max_leverage)
            self.margin_type[market.symbol_id] = "CROSSED"
            self.funding_rates[market.base] = market.funding_rate
            self.price_history[market.base] = []
            self.set_price(market.base, market.price, Decimal(2))

    # ------------------------------------------------------------------ time, ids
    def now_ms(self) -> int:
        """Current time in ms from the injected clock."""
        return int(self.clock() * 1000)

    def next_funding_ms(self) -> int:
        """The next 8-hour funding boundary after now."""
        now = self.now_ms()
        return (now // EIGHT_HOURS_MS + 1) * EIGHT_HOURS_MS

    def _order_id(self) -> int:
        self._next_order_id += 1
        return self._next_order_id

    def _trade_id(self) -> int:
        self._next_trade_id += 1
        return self._next_trade_id

    def _tran_id(self) -> int:
        self._next_tran_id += 1
        return self._next_tran_id

    # One sequence of ids for every venue of the account (COIN-M takes them too).
    next_order_id = _order_id
    next_trade_id = _trade_id
    next_tran_id = _tran_id

    # ------------------------------------------------------------------ lookup
    def resolve_base(self, symbol_or_base: str) -> str:
        """``BTC``, ``BTCUSDT``, ``BTC/USDT`` or ``BTC/USDT:USDT`` → ``BTC``."""
        text = symbol_or_base.upper()
        if "/" in text:
            text = text.split("/")[0]
        elif text in self.by_id:
            text = self.by_id[text].base
        if text not in self.markets:
            raise KeyError(f"unknown market {symbol_or_base!r}")
        return text

    def market_for(self, symbol: str | None, venue: Venue) -> EmulatedMarket:
        """The market of a Binance symbol id on a venue, or -1121."""
        market = self.by_id.get(symbol or "")
        if market is None or (venue == "spot" and not market.spot):
            raise BinanceError(400, -1121, "Invalid symbol.")
        if (venue, market.symbol_id) in self.delisted:
            raise BinanceError(400, -1121, "Invalid symbol.")
        if venue == "futures" and not market.perp:
            raise BinanceError(400, -1121, "Invalid symbol.")
        return market

    def quoted(self, venue: Venue, market: EmulatedMarket) -> bool:
        """Whether the ticker endpoints quote the market (trading, or suspended but quoted)."""
        key = (venue, market.symbol_id)
        return self.symbol_status(venue, market) == "TRADING" or key in self.quoted_while_suspended

    def symbol_status(self, venue: Venue, market: EmulatedMarket) -> str:
        """exchangeInfo's status of the market on ``venue``: TRADING unless suspended."""
        return self.status.get((venue, market.symbol_id), "TRADING")

    def listed(self, venue: Venue, market: EmulatedMarket) -> bool:
        """Whether the venue still lists the market (it was not delisted)."""
        return (venue, market.symbol_id) not in self.delisted

    def set_step_size(self, symbol_or_base: str, step: Decimal) -> None:
        """Replace a coin's market with one of another LOT_SIZE stepSize."""
        market = replace(self.markets[self.resolve_base(symbol_or_base)], step_size=step)
        self.markets[market.base] = market
        self.by_id[market.symbol_id] = market

    # ------------------------------------------------------------------ prices
    def set_price(self, symbol_or_base: str, price: Decimal, spread_bps: Decimal) -> None:
        """Set last/mark/index to ``price`` and bid/ask around it; fills crossing orders."""
        base = self.resolve_base(symbol_or_base)
        market = self.markets[base]
        half = price * spread_bps / Decimal(20000)
        bid = floor_to(price - half, market.tick_size)
        ask = ceil_to(price + half, market.tick_size)
        if ask <= bid:
            ask = bid + market.tick_size
        self.quotes[base] = BookQuote(bid=bid, ask=ask, last=price, mark=price, index=price)
        self.price_history[base].append((self.now_ms(), price))
        self._match_resting(base)
        self._liquidate(base)
        for listener in self.price_listeners:
            listener(base)

    def _liquidate(self, base: str) -> None:
        """Close the positions of ``base``'s perp that the mark has taken past their
        liquidation price, as Binance's liquidation engine does: at that price, the loss
        and the maintenance margin left there (the insurance clearance fee) taken from
        the position's margin: an isolated position's own, a cross one's the whole cross
        wallet. Each is remembered in ``liquidations``."""
        symbol = self.markets[base].symbol_id
        for view in self.futures_view(lagged=False).positions:
            price = view.liquidation
            if view.symbol != symbol or price <= 0:
                continue
            if (view.mark < price) if view.amount < 0 else (view.mark > price):
                continue
            self._snapshot_futures()
            now = self.now_ms()
            realized = view.amount * (price - view.entry)
            clearance = abs(view.amount) * price * view.maint_ratio
            self.acct.positions[(view.symbol, view.position_side)] = PositionState(update_ms=now)
            self._credit_wallet(self.quote_asset, realized - clearance, lagged=True)
            self._add_income(view.symbol, "REALIZED_PNL", realized, now)
            self._add_income(view.symbol, "INSURANCE_CLEAR", -clearance, now)
            self.liquidations.append((view.symbol, view.amount, price, now))

    def book(
        self, base: str, levels: int
    ) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        """``levels`` bid and ask levels around the top of book."""
        market = self.markets[base]
        quote = self.quotes[base]
        count = max(1, min(levels, market.depth_levels))
        bids = [(quote.bid - i * market.tick_size, market.level_qty) for i in range(count)]
        asks = [(quote.ask + i * market.tick_size, market.level_qty) for i in range(count)]
        return [b for b in bids if b[0] > 0], asks

    def _walk(
        self, base: str, side: str, qty: Decimal, limit: Decimal | None
    ) -> list[tuple[Decimal, Decimal]]:
        """Taker fills of ``qty`` against the book, up to the limit price."""
        bids, asks = self.book(base, self.markets[base].depth_levels)
        levels = asks if side == "BUY" else bids
        fills: list[tuple[Decimal, Decimal]] = []
        remaining = qty
        for price, size in levels:
            if remaining <= 0:
                break
            if limit is not None and (price > limit if side == "BUY" else price < limit):
                break
            take = min(size, remaining)
            fills.append((price, take))
            remaining -= take
        return fills

    # ------------------------------------------------------------------ balances
    def set_spot_balance(self, asset: str, amount: Decimal) -> None:
        """Set the free spot balance, now and in every lagged snapshot."""
        self.spot_free[asset] = amount
        self.spot_locked.setdefault(asset, ZERO)
        self.spot_update_ms = self.now_ms()
        for _, snap in self._spot_history:
            snap.free[asset] = amount
            snap.locked.setdefault(asset, ZERO)
            snap.update_ms = self.spot_update_ms

    def set_futures_balance(self, asset: str, amount: Decimal) -> None:
        """Set the futures wallet balance, now and in every lagged snapshot."""
        self.acct.wallet[asset] = amount
        self.wallet_update_ms[asset] = self.now_ms()
        for _, snap in self._fut_history:
            snap.wallet[asset] = amount
            snap.wallet_update_ms[asset] = self.wallet_update_ms[asset]

    def _credit_wallet(self, asset: str, delta: Decimal, *, lagged: bool) -> None:
        self.acct.wallet[asset] = self.acct.wallet.get(asset, ZERO) + delta
        self.wallet_update_ms[asset] = self.now_ms()
        if not lagged:
            for _, snap in self._fut_history:
                snap.wallet[asset] = snap.wallet.get(asset, ZERO) + delta
                snap.wallet_update_ms[asset] = self.wallet_update_ms[asset]

    # ------------------------------------------------------------------ lag
    def _snapshot_futures(self) -> None:
        if self.lag_s <= 0:
            return
        self._prune()
        snap = FuturesSnapshot(
            wallet=dict(self.acct.wallet),
            wallet_update_ms=dict(self.wallet_update_ms),
            positions=copy.deepcopy(self.acct.positions),
        )
        self._fut_history.append((self.clock(), snap))

    def _snapshot_spot(self) -> None:
        if self.lag_s <= 0:
            return
        self._prune()
        snap = SpotSnapshot(
            free=dict(self.spot_free), locked=dict(self.spot_locked), update_ms=self.spot_update_ms
        )
        self._spot_history.append((self.clock(), snap))

    def _prune(self) -> None:
        cutoff = self.clock() - self.lag_s
        self._fut_history = [(t, s) for t, s in self._fut_history if t > cutoff]
        self._spot_history = [(t, s) for t, s in self._spot_history if t > cutoff]

    def _current_futures(self) -> FuturesSnapshot:
        return FuturesSnapshot(self.acct.wallet, self.wallet_update_ms, self.acct.positions)

    def _lagged_futures(self) -> FuturesSnapshot:
        """The oldest state still inside the lag window, else the current one."""
        self._prune()
        if self.lag_s > 0 and self._fut_history:
            return self._fut_history[0][1]
        return self._current_futures()

    def spot_view(self) -> SpotSnapshot:
        """Free and locked spot balances as the (lagged) account view shows them."""
        self._prune()
        if self.lag_s > 0 and self._spot_history:
            return self._spot_history[0][1]
        return SpotSnapshot(self.spot_free, self.spot_locked, self.spot_update_ms)

    def futures_view(self, *, lagged: bool = True) -> FuturesAccountView:
        """Wallet and positions as the (lagged) account and position views show them."""
        snap = self._lagged_futures() if lagged else self._current_futures()
        views = [
            self._position_view(symbol, side, state)
            for (symbol, side), state in sorted(snap.positions.items())
            if state.amount != 0
        ]
        account = FuturesAccountView(
            wallet=dict(snap.wallet),
            wallet_update_ms=dict(snap.wallet_update_ms),
            positions=views,
            open_order_margin=self._open_order_margin(),
            quote_asset=self.quote_asset,
        )
        for view in views:
            view.liquidation = liquidation_price(
                view.amount, view.entry, margin_balance(account, view), view.maint_ratio
            )
        return account

    def _position_view(self, symbol: str, side: str, state: PositionState) -> PositionView:
        market = self.by_id[symbol]
        leverage = self.leverage[symbol]
        isolated = self.margin_type[symbol] == "ISOLATED"
        isolated_wallet = (
            abs(state.amount) * state.entry / leverage + state.added_margin if isolated else ZERO
        )
        view = PositionView(
            symbol=symbol,
            position_side=side,
            amount=state.amount,
            entry=state.entry,
            mark=self.quotes[market.base].mark,
            leverage=leverage,
            isolated=isolated,
            isolated_wallet=isolated_wallet,
            maint_ratio=market.maint_margin_ratio,
            liquidation=ZERO,
            update_ms=state.update_ms,
        )
        return view

    def _open_order_margin(self) -> Decimal:
        total = ZERO
        for order in self.orders.values():
            if order.venue == "futures" and order.is_open and not order.reduce_only:
                total += order.remaining * order.price / self.leverage[order.symbol]
        return total

    def true_position(self, symbol_or_base: str, position_side: str | None = None) -> Decimal:
        """Signed position without lag, netted over sides unless one is named."""
        market = self.markets[self.resolve_base(symbol_or_base)]
        total = ZERO
        for (symbol, side), state in self.acct.positions.items():
            if symbol == market.symbol_id and position_side in (None, side):
                total += state.amount
        return total

    # ------------------------------------------------------------------ orders
    def find_order(
        self, venue: Venue, symbol: str | None, params: Mapping[str, str]
    ) -> EmulatedOrder:
        """The order named by ``orderId`` or ``origClientOrderId``, or -2013."""
        self.market_for(symbol, venue)
        order: EmulatedOrder | None = None
        order_id = params.get("orderId")
        client_id = params.get("origClientOrderId")
        if order_id:
            try:
                order = self.orders.get(int(order_id))
            except ValueError:
                order = None
        elif client_id:
            known = self.client_ids.get((venue, client_id))
            order = self.orders.get(known) if known is not None else None
        else:
            raise BinanceError(
                400,
                -1102,
                "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
            )
        if order is None or order.venue != venue or order.symbol != symbol:
            raise BinanceError(400, -2013, "Order does not exist.")
        return order

    def cancel(self, venue: Venue, symbol: str | None, params: Mapping[str, str]) -> EmulatedOrder:
        """Cancel an open order, or -2011 when it is not open."""
        try:
            order = self.find_order(venue, symbol, params)
        except BinanceError as exc:
            if exc.code == -2013:
                raise BinanceError(400, -2011, "Unknown order sent.") from None
            raise
        if not order.is_open:
            raise BinanceError(400, -2011, "Unknown order sent.")
        self._close_order(order, "CANCELED")
        return order

    def _close_order(self, order: EmulatedOrder, status: str) -> None:
        if order.venue == "spot" and order.is_open:
            market = self.by_id[order.symbol]
            self._snapshot_spot()
            if order.side == "BUY":
                self._unlock(market.quote, order.remaining * order.price)
            else:
                self._unlock(market.base, order.remaining)
        order.status = status
        order.update_ms = self.now_ms()

    def _unlock(self, asset: str, amount: Decimal) -> None:
        self.spot_locked[asset] = self.spot_locked.get(asset, ZERO) - amount
        self.spot_free[asset] = self.spot_free.get(asset, ZERO) + amount

    def _check_client_id(
        self, venue: Venue, params: Mapping[str, str], duplicate: BinanceError
    ) -> str:
        client_id = params.get("newClientOrderId") or f"emu-{self._next_order_id + 1}"
        if not CLIENT_ID_PATTERN.match(client_id):
            raise BinanceError(
                400,
                -1100,
                "Illegal characters found in parameter 'newClientOrderId'; "
                "legal range is '^[\\.A-Z\\:/a-z0-9_-]{1,36}$'.",
            )
        known = self.client_ids.get((venue, client_id))
        if known is not None and (
            self.client_order_id_scope == "all" or self.orders[known].is_open
        ):
            raise duplicate
        return client_id

    def _order_shape(
        self, venue: Venue, params: Mapping[str, str]
    ) -> tuple[EmulatedMarket, str, str, str]:
        market = self.market_for(params.get("symbol"), venue)
        if self.symbol_status(venue, market) != "TRADING":
            if venue == "futures":
                raise BinanceError(400, -4140, "Invalid symbol status for opening position.")
            raise BinanceError(400, -1013, "Market is closed.")
        side = params.get("side", "")
        if side not in ("BUY", "SELL"):
            raise BinanceError(
                400, -1102, "Mandatory parameter 'side' was not sent, was empty/null, or malformed."
            )
        order_type = params.get("type", "")
        allowed = ("MARKET", "LIMIT") if venue == "futures" else ("MARKET", "LIMIT", "LIMIT_MAKER")
        if order_type not in allowed:
            raise BinanceError(400, -1116, "Invalid orderType.")
        tif = params.get("timeInForce", "")
        if order_type == "LIMIT":
            if tif not in ("GTC", "IOC", "FOK", "GTX"):
                raise BinanceError(
                    400,
                    -1102,
                    "Mandatory parameter 'timeInForce' was not sent, was empty/null, or malformed.",
                )
        else:
            tif = "GTC"
        return market, side, order_type, tif

    def _check_limit_price(
        self, venue: Venue, market: EmulatedMarket, params: Mapping[str, str]
    ) -> Decimal:
        price = required_decimal(params, "price")
        if price <= 0:
            raise BinanceError(
                400,
                -4001 if venue == "futures" else -1013,
                "Price less than 0." if venue == "futures" else "Filter failure: PRICE_FILTER",
            )
        if venue == "futures":
            if decimals_of(price) > decimals_of(market.tick_size) + 1:
                raise BinanceError(
                    400, -1111, "Precision is over the maximum defined for this asset."
                )
            if not is_multiple(price, market.tick_size):
                raise BinanceError(400, -4014, "Price not increased by tick size.")
        elif not is_multiple(price, market.tick_size):
            raise BinanceError(400, -1013, "Filter failure: PRICE_FILTER")
        return price

    def _check_qty(self, venue: Venue, market: EmulatedMarket, qty: Decimal) -> None:
        if venue == "futures":
            if qty <= 0:
                raise BinanceError(400, -4003, "Quantity less than or equal to zero.")
            if decimals_of(qty) > decimals_of(market.step_size):
                raise BinanceError(
                    400, -1111, "Precision is over the maximum defined for this asset."
                )
            if qty > market.max_qty:
                raise BinanceError(400, -4005, "Quantity greater than max quantity.")
        elif decimals_of(qty) > SPOT_QTY_DECIMALS:
            raise BinanceError(400, -1111, "Parameter 'quantity' has too much precision.")
        if qty < market.min_qty or qty > market.max_qty or not is_multiple(qty, market.step_size):
            raise BinanceError(400, -1013, "Filter failure: LOT_SIZE")

    def place_futures(self, params: Mapping[str, str], partial: Decimal | None) -> EmulatedOrder:
        """Validate and execute a USDⓈ-M order (POST /fapi/v1/order)."""
        market, side, order_type, tif = self._order_shape("futures", params)
        symbol = market.symbol_id
        qty = required_decimal(params, "quantity")
        self._check_qty("futures", market, qty)
        price = (
            self._check_limit_price("futures", market, params) if order_type == "LIMIT" else ZERO
        )
        reduce_only = parse_bool(params, "reduceOnly")
        position_side = order_position_side(params, self.dual_side)
        client_id = self._check_client_id(
            "futures", params, BinanceError(400, -4116, "ClientOrderId is duplicated.")
        )
        signed = qty if side == "BUY" else -qty
        current = self.acct.positions.get((symbol, position_side), PositionState()).amount
        closing = self.dual_side and (
            (position_side == "LONG" and side == "SELL")
            or (position_side == "SHORT" and side == "BUY")
        )
        if reduce_only or closing:
            shrinks = current != 0 and (current > 0) != (signed > 0) and qty <= abs(current)
            if not shrinks:
                raise BinanceError(400, -2022, "ReduceOnly Order is rejected.")
        quote = self.quotes[market.base]
        if not reduce_only and not closing:
            reference = price if order_type == "LIMIT" else quote.mark
            if qty * reference < market.min_notional:
                raise BinanceError(
                    400,
                    -4164,
                    f"Order's notional must be no smaller than {fmt(market.min_notional)} "
                    "(unless you choose reduce only).",
                )
        limit = price if order_type == "LIMIT" else None
        if tif == "GTX" and self._walk(market.base, side, qty, limit):
            raise BinanceError(
                400,
                -5022,
                "Due to the order could not be executed as maker, "
                "the Post Only order will be rejected.",
            )
        fills = self._planned_fills(market, side, qty, limit, tif, partial)
        self._check_margin(market, position_side, signed, qty, price, fills, order_type, tif)
        now = self.now_ms()
        order = EmulatedOrder(
            venue="futures",
            order_id=self._order_id(),
            client_order_id=client_id,
            symbol=symbol,
            side=side,
            type=order_type,
            time_in_force=tif,
            orig_qty=qty,
            price=price,
            reduce_only=reduce_only,
            position_side=position_side,
            time_ms=now,
            update_ms=now,
        )
        self._register(order)
        for fill_price, fill_qty in fills:
            self._fill_futures(order, fill_price, fill_qty, maker=False)
        self._settle_status(order)
        return order

    def _planned_fills(
        self,
        market: EmulatedMarket,
        side: str,
        qty: Decimal,
        limit: Decimal | None,
        tif: str,
        partial: Decimal | None,
    ) -> list[tuple[Decimal, Decimal]]:
        if tif == "GTX":
            return []
        target = qty if partial is None else floor_to(qty * partial, market.step_size)
        fills = self._walk(market.base, side, target, limit)
        if tif == "FOK" and sum((q for _, q in fills), ZERO) < qty:
            return []
        return fills

    def _check_margin(
        self,
        market: EmulatedMarket,
        position_side: str,
        signed: Decimal,
        qty: Decimal,
        price: Decimal,
        fills: list[tuple[Decimal, Decimal]],
        order_type: str,
        tif: str,
    ) -> None:
        current = self.acct.positions.get((market.symbol_id, position_side), PositionState()).amount
        increase = max(abs(current + signed) - abs(current), ZERO)
        if increase == 0:
            return
        filled = sum((q for _, q in fills), ZERO)
        value = sum((p * q for p, q in fills), ZERO)
        if order_type == "LIMIT" and tif == "GTC":
            value += (qty - filled) * price
        elif filled < qty and fills:
            value = value * qty / filled
        if value == 0:
            value = qty * self.quotes[market.base].mark
        estimate = value * increase / qty
        required = estimate / self.leverage[market.symbol_id] + value * FUTURES_TAKER_FEE
        if required > self.futures_view(lagged=False).available:
            raise BinanceError(400, -2019, "Margin is insufficient.")

    def _register(self, order: EmulatedOrder) -> None:
        self.orders[order.order_id] = order
        self.client_ids[(order.venue, order.client_order_id)] = order.order_id

    def _settle_status(self, order: EmulatedOrder) -> None:
        executed = order.executed_qty
        if executed == order.orig_qty:
            order.status = "FILLED"
        elif order.type == "MARKET" or order.time_in_force in ("IOC", "FOK"):
            order.status = "EXPIRED"
        elif executed > 0:
            order.status = "PARTIALLY_FILLED"
        else:
            order.status = "NEW"
        if order.venue == "spot" and order.is_open:
            market = self.by_id[order.symbol]
            if order.side == "BUY":
                self._lock(market.quote, order.remaining * order.price)
            else:
                self._lock(market.base, order.remaining)

    def _lock(self, asset: str, amount: Decimal) -> None:
        self.spot_free[asset] = self.spot_free.get(asset, ZERO) - amount
        self.spot_locked[asset] = self.spot_locked.get(asset, ZERO) + amount

    def _fill_futures(
        self, order: EmulatedOrder, price: Decimal, qty: Decimal, *, maker: bool
    ) -> None:
        self._snapshot_futures()
        now = self.now_ms()
        key = (order.symbol, order.position_side)
        state = self.acct.positions.setdefault(key, PositionState())
        signed = qty if order.side == "BUY" else -qty
        realized = ZERO
        if state.amount == 0 or (state.amount > 0) == (signed > 0):
            total = abs(state.amount) + qty
            state.entry = (abs(state.amount) * state.entry + qty * price) / total
            state.amount += signed
        else:
            closed = min(qty, abs(state.amount))
            direction = Decimal(1) if state.amount > 0 else Decimal(-1)
            realized = closed * (price - state.entry) * direction
            before = abs(state.amount)
            state.amount += signed
            # Added margin is released with the position, pro rata.
            state.added_margin = state.added_margin * abs(state.amount) / before
            if state.amount == 0:
                state.entry = ZERO
                state.added_margin = ZERO
            elif (state.amount > 0) == (signed > 0):
                state.entry = price
                state.added_margin = ZERO
        state.update_ms = now
        fee = qty * price * (FUTURES_MAKER_FEE if maker else FUTURES_TAKER_FEE)
        self._credit_wallet(self.quote_asset, realized - fee, lagged=True)
        trade_id = self._trade_id()
        order.fills.append(
            Fill(
                trade_id=trade_id,
                price=price,
                qty=qty,
                commission=fee,
                commission_asset=self.quote_asset,
                maker=maker,
                time_ms=now,
                realized_pnl=realized,
            )
        )
        order.update_ms = now
        if realized != 0:
            self._add_income(order.symbol, "REALIZED_PNL", realized, now, str(trade_id))
        self._add_income(order.symbol, "COMMISSION", -fee, now, str(trade_id))

    def _add_income(
        self, symbol: str, kind: str, amount: Decimal, now: int, trade_id: str = ""
    ) -> None:
        self.income.append(
            IncomeEntry(
                tran_id=self._tran_id(),
                symbol=symbol,
                income_type=kind,
                income=amount,
                asset=self.quote_asset,
                time_ms=now,
                info=kind,
                trade_id=trade_id,
            )
        )

    def place_spot(self, params: Mapping[str, str], partial: Decimal | None) -> EmulatedOrder:
        """Validate and execute a spot order (POST /api/v3/order)."""
        market, side, order_type, tif = self._order_shape("spot", params)
        quote = self.quotes[market.base]
        quote_qty = parse_decimal(params, "quoteOrderQty", required=False)
        if order_type == "MARKET" and quote_qty is not None and "quantity" not in params:
            reference = quote.ask if side == "BUY" else quote.bid
            qty = floor_to(quote_qty / reference, market.step_size)
        else:
            qty = required_decimal(params, "quantity")
        self._check_qty("spot", market, qty)
        price = ZERO
        if order_type in ("LIMIT", "LIMIT_MAKER"):
            price = self._check_limit_price("spot", market, params)
        reference = price if price else (quote.ask if side == "BUY" else quote.bid)
        if qty * reference < market.spot_min_notional:
            raise BinanceError(400, -1013, "Filter failure: NOTIONAL")
        client_id = self._check_client_id(
            "spot", params, BinanceError(400, -2010, "Duplicate order sent.")
        )
        limit = price if price else None
        if order_type == "LIMIT_MAKER":
            if self._walk(market.base, side, qty, limit):
                raise BinanceError(400, -2010, "Order would immediately match and take.")
            fills: list[tuple[Decimal, Decimal]] = []
            tif = "GTC"
        else:
            fills = self._planned_fills(market, side, qty, limit, tif, partial)
        filled = sum((q for _, q in fills), ZERO)
        if side == "BUY":
            need = sum((p * q for p, q in fills), ZERO) * (1 + SPOT_TAKER_FEE)
            if order_type != "MARKET" and tif == "GTC":
                need += (qty - filled) * price
            have = self.spot_free.get(market.quote, ZERO)
        else:
            need = qty if order_type != "MARKET" and tif == "GTC" else filled
            have = self.spot_free.get(market.base, ZERO)
        if need > have:
            raise BinanceError(400, -2010, "Account has insufficient balance for requested action.")
        now = self.now_ms()
        order = EmulatedOrder(
            venue="spot",
            order_id=self._order_id(),
            client_order_id=client_id,
            symbol=market.symbol_id,
            side=side,
            type=order_type,
            time_in_force=tif,
            orig_qty=qty,
            price=price,
            reduce_only=False,
            position_side="",
            time_ms=now,
            update_ms=now,
        )
        self._register(order)
        for fill_price, fill_qty in fills:
            self._fill_spot(order, fill_price, fill_qty, maker=False)
        self._settle_status(order)
        return order

    def _fill_spot(
        self, order: EmulatedOrder, price: Decimal, qty: Decimal, *, maker: bool
    ) -> None:
        self._snapshot_spot()
        market = self.by_id[order.symbol]
        now = self.now_ms()
        value = price * qty
        fee = value * (SPOT_MAKER_FEE if maker else SPOT_TAKER_FEE)
        free = self.spot_free
        if order.side == "BUY":
            free[market.base] = free.get(market.base, ZERO) + qty
            free[market.quote] = free.get(market.quote, ZERO) - value - fee
        else:
            free[market.base] = free.get(market.base, ZERO) - qty
            free[market.quote] = free.get(market.quote, ZERO) + value - fee
        self.spot_locked.setdefault(market.base, ZERO)
        self.spot_locked.setdefault(market.quote, ZERO)
        self.spot_update_ms = now
        order.fills.append(
            Fill(
                trade_id=self._trade_id(),
                price=price,
                qty=qty,
                commission=fee,
                commission_asset=market.quote,
                maker=maker,
                time_ms=now,
            )
        )
        order.update_ms = now

    def _match_resting(self, base: str) -> None:
        """Fill resting limit orders that the new top of book crosses, at their price."""
        quote = self.quotes[base]
        market = self.markets[base]
        for order in list(self.orders.values()):
            if not order.is_open or order.symbol != market.symbol_id:
                continue
            crosses = quote.ask <= order.price if order.side == "BUY" else quote.bid >= order.price
            if not crosses:
                continue
            qty = order.remaining
            if order.venue == "spot":
                if order.side == "BUY":
                    self._unlock(market.quote, qty * order.price)
                else:
                    self._unlock(market.base, qty)
                self._fill_spot(order, order.price, qty, maker=True)
            else:
                self._fill_futures(order, order.price, qty, maker=True)
            order.status = "FILLED"

    # ------------------------------------------------------------------ settings
    def set_leverage(self, symbol: str | None, raw: str | None) -> tuple[EmulatedMarket, int]:
        """POST /fapi/v1/leverage."""
        market = self.market_for(symbol, "futures")
        try:
            leverage = int(raw or "")
        except ValueError:
            raise BinanceError(
                400,
                -1102,
                "Mandatory parameter 'leverage' was not sent, was empty/null, or malformed.",
            ) from None
        if not 1 <= leverage <= market.max_leverage:
            raise BinanceError(400, -4028, f"Leverage {leverage} is not valid")
        self.leverage[market.symbol_id] = leverage
        return market, leverage

    def add_position_margin(
        self, symbol: str | None, position_side: str, amount: Decimal
    ) -> tuple[EmulatedMarket, Decimal]:
        """POST /fapi/v1/positionMargin type 1: move wallet balance into an isolated position."""
        market = self.market_for(symbol, "futures")
        if self.margin_type[market.symbol_id] != "ISOLATED":
            raise BinanceError(400, -4048, "Cannot add position margin: position is not isolated.")
        state = self.acct.positions.get((market.symbol_id, position_side))
        if state is None or state.amount == 0:
            raise BinanceError(400, -2019, "Margin is insufficient.")
        view = self.futures_view(lagged=False)
        if amount <= 0 or amount > view.available:
            raise BinanceError(400, -2019, "Margin is insufficient.")
        self._snapshot_futures()
        state.added_margin += amount
        state.update_ms = self.now_ms()
        self.margin_history.append(
            MarginChange(market.symbol_id, 1, amount, market.quote, state.update_ms, position_side)
        )
        return market, amount

    def reduce_position_margin(
        self, symbol: str | None, position_side: str, amount: Decimal
    ) -> tuple[EmulatedMarket, Decimal]:
        """POST /fapi/v1/positionMargin type 2: move margin out of an isolated position back
        to the wallet; the emulator lets out at most what was added (-4051 beyond it)."""
        market = self.market_for(symbol, "futures")
        if self.margin_type[market.symbol_id] != "ISOLATED":
            raise BinanceError(400, -4048, "Cannot reduce position margin: not isolated.")
        state = self.acct.positions.get((market.symbol_id, position_side))
        if state is None or state.amount == 0:
            raise BinanceError(400, -2019, "Margin is insufficient.")
        if amount <= 0 or amount > state.added_margin:
            raise BinanceError(400, -4051, "Isolated balance insufficient.")
        self._snapshot_futures()
        state.added_margin -= amount
        state.update_ms = self.now_ms()
        self.margin_history.append(
            MarginChange(market.symbol_id, 2, amount, market.quote, state.update_ms, position_side)
        )
        return market, amount

    def wallet_transfer(self, asset: str | None, amount: Decimal, kind: str | None) -> int:
        """POST /sapi/v1/asset/transfer between the spot (MAIN) and USDⓈ-M (UMFUTURE)
        wallets; the transfer's ``tranId``. Binance takes no client id here."""
        coin_margined = kind in ("MAIN_CMFUTURE", "CMFUTURE_MAIN") and self.coinm is not None
        if kind not in ("MAIN_UMFUTURE", "UMFUTURE_MAIN", "MAIN_CMFUTURE", "CMFUTURE_MAIN") or (
            kind in ("MAIN_CMFUTURE", "CMFUTURE_MAIN") and not coin_margined
        ):
            raise BinanceError(
                400,
                -1102,
                f"Transfer type {kind} is not emulated (MAIN_UMFUTURE, UMFUTURE_MAIN, "
                "and MAIN_CMFUTURE, CMFUTURE_MAIN where COIN-M is listed).",
            )
        if not asset or amount <= 0:
            raise BinanceError(
                400, -1102, "Mandatory parameter 'amount' was not sent, or malformed."
            )
        if coin_margined:
            self._coin_margin_transfer(asset, amount, kind == "MAIN_CMFUTURE")
        elif kind == "MAIN_UMFUTURE":
            if amount > self.spot_free.get(asset, ZERO):
                raise BinanceError(400, -5013, "Asset transfer failed: insufficient balance")
            self._snapshot_spot()
            self.spot_free[asset] = self.spot_free.get(asset, ZERO) - amount
            self.spot_update_ms = self.now_ms()
            self._snapshot_futures()
            self._credit_wallet(asset, amount, lagged=False)
        else:
            if amount > self.futures_view(lagged=False).available:
                raise BinanceError(400, -5013, "Asset transfer failed: insufficient balance")
            self._snapshot_futures()
            self._credit_wallet(asset, -amount, lagged=False)
            self._snapshot_spot()
            self.spot_free[asset] = self.spot_free.get(asset, ZERO) + amount
            self.spot_update_ms = self.now_ms()
        tran_id = 13_526_853_623 + len(self.wallet_transfers)
        self.wallet_transfers.append(WalletTransferRow(asset, amount, kind, self.now_ms(), tran_id))
        return tran_id

    def _coin_margin_transfer(self, asset: str, amount: Decimal, to_coinm: bool) -> None:
        """Spot (MAIN) to the COIN-M wallet or back; out of COIN-M at most its available."""
        if self.coinm is None:  # unreachable: the caller checked
            raise BinanceError(400, -1102, "COIN-M is not listed.")
        source = self.spot_free.get(asset, ZERO) if to_coinm else self.coinm.available(asset)
        if amount > source:
            raise BinanceError(400, -5013, "Asset transfer failed: insufficient balance")
        self._snapshot_spot()
        self.spot_free[asset] = self.spot_free.get(asset, ZERO) + (-amount if to_coinm else amount)
        self.spot_update_ms = self.now_ms()
        self.coinm.credit(asset, amount if to_coinm else -amount)

    def set_margin_type(self, symbol: str | None, raw: str | None) -> None:
        """POST /fapi/v1/marginType."""
        market = self.market_for(symbol, "futures")
        wanted = (raw or "").upper()
        if wanted not in ("ISOLATED", "CROSSED"):
            raise BinanceError(
                400,
                -1102,
                "Mandatory parameter 'marginType' was not sent, was empty/null, or malformed.",
            )
        if self.margin_type[market.symbol_id] == wanted:
            raise BinanceError(400, -4046, "No need to change margin type.")
        held = any(
            state.amount != 0
            for (symbol, _side), state in self.acct.positions.items()
            if symbol == market.symbol_id
        )
        if held or any(
            o.is_open and o.symbol == market.symbol_id and o.venue == "futures"
            for o in self.orders.values()
        ):
            raise BinanceError(
                400, -4048, "Margin type cannot be changed if there exists position."
            )
        self.margin_type[market.symbol_id] = wanted

    def set_dual_side(self, dual: bool, *, strict: bool) -> None:
        """Change the position mode; ``strict`` applies Binance's -4059/-4068 checks."""
        if strict:
            if dual == self.dual_side:
                raise BinanceError(400, -4059, "No need to change position side.")
            if any(state.amount != 0 for state in self.acct.positions.values()):
                raise BinanceError(
                    400, -4068, "Position side cannot be changed if there exists position."
                )
        self.dual_side = dual

    def set_funding_rate(self, symbol_or_base: str, rate: Decimal) -> None:
        """Set the rate the next settlement uses and premiumIndex reports."""
        self.funding_rates[self.resolve_base(symbol_or_base)] = rate

    def settle_funding(self) -> None:
        """Pay or charge funding on every open position at the current rate."""
        now = self.now_ms()
        for base, market in self.markets.items():
            if not market.perp:
                continue
            rate = self.funding_rates[base]
            mark = self.quotes[base].mark
            self.funding_events.append(FundingEvent(market.symbol_id, rate, now, mark))
            for (symbol, _side), state in self.acct.positions.items():
                if symbol != market.symbol_id or state.amount == 0:
                    continue
                payment = -state.amount * mark * rate
                self._credit_wallet(self.quote_asset, payment, lagged=False)
                self._add_income(symbol, "FUNDING_FEE", payment, now)


def margin_balance(account: FuturesAccountView, view: PositionView) -> Decimal:
    """WB of Binance's USDⓈ-M liquidation price formula for ``view``: an isolated
    position's isolated wallet; a cross one's cross wallet balance (the wallet less the
    isolated positions' margin) less the other cross positions' maintenance margin (TMM1)
    plus their unrealized PnL (UPNL1)."""
    if view.isolated:
        return view.isolated_wallet
    others = [p for p in account.positions if not p.isolated and p is not view]
    return (
        account.cross_wallet
        - sum((p.maint_margin for p in others), ZERO)
        + sum((p.unrealized for p in others), ZERO)
    )


def liquidation_price(amount: Decimal, entry: Decimal, balance: Decimal, mmr: Decimal) -> Decimal:
    """Simplified one-position liquidation price (Binance's formula, no brackets)."""
    if amount == 0:
        return ZERO
    size = abs(amount)
    direction = Decimal(1) if amount > 0 else Decimal(-1)
    denominator = size * mmr - direction * size
    if denominator == 0:
        return ZERO
    price = (balance - direction * size * entry) / denominator
    return max(price, ZERO)
