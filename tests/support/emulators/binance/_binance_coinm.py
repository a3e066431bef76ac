"""The emulated Binance COIN-M (coin-margined, inverse) futures account, behind /dapi.

A COIN-M perpetual (``BTCUSD_PERP``) trades whole contracts of a fixed USD face value
(``contractSize``: 100 USD for BTC, 10 for ETH); its margin, fees, PnL and funding are in
the base coin, held in the COIN-M wallet, one balance per coin, apart from spot and
USDⓈ-M (``/sapi/v1/asset/transfer`` types ``MAIN_CMFUTURE`` and ``CMFUTURE_MAIN``).

Binance's inverse arithmetic, per position of ``n`` contracts of size ``s`` (signed ``n``):
the notional in coin is ``n x s / mark``; the unrealized PnL in coin
``n x s x (1/entry - 1/mark)``; the entry of an added position the contract-weighted
harmonic mean; a fee ``|n| x s / price x rate``; a funding payment
``-n x s / mark x rate``; the liquidation price of one position
``(Size x MMR + Side x Size) / (WB + Side x Size / EP)`` (Size ``|n| x s``, WB its isolated
margin, or the coin's cross wallet balance). A mark past it closes the position at the
liquidation price (``liquidations`` keeps it).

Prices are the main engine's (one book per coin, as the spot and USDⓈ-M markets); the
COIN-M book is ``level_qty`` contracts a tick apart around them. Pure state, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from tests.support.emulators.binance._binance_engine import (
    CLIENT_ID_PATTERN,
    DEFAULT_LEVERAGE,
    Engine,
    PositionTotals,
    order_position_side,
    parse_bool,
    required_decimal,
)
from tests.support.emulators.binance._binance_models import (
    ZERO,
    BinanceError,
    EmulatedOrder,
    Fill,
    FundingEvent,
    IncomeEntry,
    ceil_to,
    decimals_of,
    floor_to,
    is_multiple,
)

COINM_TAKER_FEE = Decimal("0.0005")
COINM_MAKER_FEE = Decimal("0.0002")
ONE = Decimal(1)


@dataclass(frozen=True)
class CoinmMarket:
    """One coin's COIN-M perpetual: ``{base}USD_PERP``, ``contract_size`` USD a contract."""

    base: str
    contract_size: Decimal = Decimal(100)
    tick_size: Decimal = Decimal("0.1")
    min_qty: Decimal = ONE
    step_size: Decimal = ONE
    max_qty: Decimal = Decimal(1_000_000)
    level_qty: Decimal = Decimal(100_000)  # contracts per book level
    depth_levels: int = 20
    max_leverage: int = 125
    maint_margin_ratio: Decimal = Decimal("0.004")
    funding_rate: Decimal = Decimal("0.0001")

    @property
    def symbol_id(self) -> str:
        """Binance's id, e.g. ``BTCUSD_PERP``."""
        return f"{self.base}USD_PERP"

    @property
    def pair(self) -> str:
        """The underlying pair, e.g. ``BTCUSD``."""
        return f"{self.base}USD"


DEFAULT_COINM_MARKETS: tuple[CoinmMarket, ...] = (
    CoinmMarket(base="BTC"),
    CoinmMarket(base="ETH", contract_size=Decimal(10), tick_size=Decimal("0.01"), max_leverage=100),
)


@dataclass
class CoinmPosition:
    """Signed contracts, entry, margin added to an isolated position, last change (ms)."""

    amount: Decimal = ZERO
    entry: Decimal = ZERO
    added_margin: Decimal = ZERO
    update_ms: int = 0


@dataclass
class CoinmPositionView:
    """A COIN-M position as /dapi reports it, figures in the coin."""

    market: CoinmMarket
    side: str
    amount: Decimal
    entry: Decimal
    mark: Decimal
    leverage: int
    isolated: bool
    isolated_wallet: Decimal
    liquidation: Decimal
    update_ms: int

    @property
    def face(self) -> Decimal:
        """Signed USD face value."""
        return self.amount * self.market.contract_size

    @property
    def notional(self) -> Decimal:
        """Signed notional in the coin at the mark."""
        return self.face / self.mark if self.mark else ZERO

    @property
    def unrealized(self) -> Decimal:
        """Unrealized PnL in the coin at the mark."""
        if not self.entry or not self.mark:
            return ZERO
        return self.face * (self.mark - self.entry) / (self.entry * self.mark)

    @property
    def initial_margin(self) -> Decimal:
        """Initial margin in the coin at the mark and the symbol's leverage."""
        return abs(self.notional) / self.leverage

    @property
    def maint_margin(self) -> Decimal:
        """Maintenance margin in the coin at the mark."""
        return abs(self.notional) * self.market.maint_margin_ratio


@dataclass
class CoinmWalletView(PositionTotals):
    """One coin's COIN-M wallet with its positions' figures (``PositionTotals``)."""

    asset: str
    wallet: Decimal
    positions: list[CoinmPositionView]
    open_order_margin: Decimal
    update_ms: int

    @property
    def wallet_balance(self) -> Decimal:
        return self.wallet

    @property
    def margin_balance(self) -> Decimal:
        """Wallet balance with every position's unrealized PnL."""
        return self.wallet + self.unrealized


@dataclass(frozen=True)
class Liquidation:
    """A position the emulator closed at its liquidation price."""

    symbol: str
    side: str
    amount: Decimal
    price: Decimal
    time_ms: int


@dataclass
class _State:
    wallet: dict[str, Decimal] = field(default_factory=dict)
    wallet_update_ms: dict[str, int] = field(default_factory=dict)
    positions: dict[tuple[str, str], CoinmPosition] = field(default_factory=dict)


class CoinmEngine:
    """State and matching of the COIN-M side of one emulated Binance account."""

    def __init__(self, main: Engine, markets: Sequence[CoinmMarket]) -> None:
        self.main = main
        self.markets: dict[str, CoinmMarket] = {}
        self.by_id: dict[str, CoinmMarket] = {}
        self.state = _State()
        self.leverage: dict[str, int] = {}
        self.margin_type: dict[str, str] = {}
        self.funding_rates: dict[str, Decimal] = {}
        self.funding_events: list[FundingEvent] = []
        self.income: list[IncomeEntry] = []
        self.liquidations: list[Liquidation] = []
        self.dual_side = False
        for market in markets:
            main.resolve_base(market.base)  # priced by the main engine's book: KeyError else
            self.markets[market.base] = market
            self.by_id[market.symbol_id] = market
            self.leverage[market.symbol_id] = min(DEFAULT_LEVERAGE, market.max_leverage)
            self.margin_type[market.symbol_id] = "CROSSED"
            self.funding_rates[market.base] = market.funding_rate
        main.price_listeners.append(self.on_price)
        main.coinm = self

    # ------------------------------------------------------------------ lookup, prices
    def market_for(self, symbol: str | None) -> CoinmMarket:
        """The market of a COIN-M symbol id, or -1121."""
        market = self.by_id.get(symbol or "")
        if market is None:
            raise BinanceError(400, -1121, "Invalid symbol.")
        return market

    def mark(self, market: CoinmMarket) -> Decimal:
        return self.main.quotes[market.base].mark

    def top(self, market: CoinmMarket) -> tuple[Decimal, Decimal]:
        """Bid and ask on the COIN-M tick around the coin's price."""
        quote = self.main.quotes[market.base]
        bid = floor_to(quote.bid, market.tick_size)
        ask = ceil_to(quote.ask, market.tick_size)
        return bid, ask if ask > bid else bid + market.tick_size

    def book(self, market: CoinmMarket, levels: int) -> tuple[list[tuple[Decimal, Decimal]], ...]:
        bid, ask = self.top(market)
        count = max(1, min(levels, market.depth_levels))
        step, qty = market.tick_size, market.level_qty
        bids = [(bid - i * step, qty) for i in range(count) if bid - i * step > 0]
        return bids, [(ask + i * step, qty) for i in range(count)]

    # ------------------------------------------------------------------ wallet
    def set_balance(self, asset: str, amount: Decimal) -> None:
        """Set the COIN-M wallet balance of ``asset``."""
        self.state.wallet[asset] = amount
        self.state.wallet_update_ms[asset] = self.main.now_ms()

    def credit(self, asset: str, delta: Decimal) -> None:
        self.state.wallet[asset] = self.state.wallet.get(asset, ZERO) + delta
        self.state.wallet_update_ms[asset] = self.main.now_ms()

    def available(self, asset: str) -> Decimal:
        """What a transfer out of the wallet may take."""
        return self.wallet_view(asset).available

    def assets(self) -> list[str]:
        """The coins the wallet lists: every market's, and any other held."""
        return sorted({m.base for m in self.markets.values()} | set(self.state.wallet))

    def wallet_view(self, asset: str) -> CoinmWalletView:
        positions = [v for v in self.position_views() if v.market.base == asset]
        return CoinmWalletView(
            asset=asset,
            wallet=self.state.wallet.get(asset, ZERO),
            positions=positions,
            open_order_margin=self._open_order_margin(asset),
            update_ms=self.state.wallet_update_ms.get(asset, self.main.now_ms()),
        )

    def _open_order_margin(self, asset: str) -> Decimal:
        total = ZERO
        for order in self.main.orders.values():
            if order.venue != "coinm" or not order.is_open or order.reduce_only:
                continue
            market = self.by_id[order.symbol]
            if market.base == asset:
                coins = order.remaining * market.contract_size / order.price
                total += coins / self.leverage[order.symbol]
        return total

    # ------------------------------------------------------------------ positions
    def position_views(self) -> list[CoinmPositionView]:
        return [
            self._view(symbol, side, state)
            for (symbol, side), state in sorted(self.state.positions.items())
            if state.amount != 0
        ]

    def _view(self, symbol: str, side: str, state: CoinmPosition) -> CoinmPositionView:
        market = self.by_id[symbol]
        leverage = self.leverage[symbol]
        isolated = self.margin_type[symbol] == "ISOLATED"
        face = abs(state.amount) * market.contract_size
        isolated_wallet = face / state.entry / leverage + state.added_margin if isolated else ZERO
        view = CoinmPositionView(
            market=market,
            side=side,
            amount=state.amount,
            entry=state.entry,
            mark=self.mark(market),
            leverage=leverage,
            isolated=isolated,
            isolated_wallet=isolated_wallet,
            liquidation=ZERO,
            update_ms=state.update_ms,
        )
        if isolated:
            balance = isolated_wallet
        else:
            balance = self.state.wallet.get(market.base, ZERO) - sum(
                (v.isolated_wallet for v in self._isolated_views(market.base)), ZERO
            )
        view.liquidation = liquidation_price(state.amount, state.entry, balance, market)
        return view

    def _isolated_views(self, asset: str) -> list[CoinmPositionView]:
        views = []
        for (symbol, side), state in self.state.positions.items():
            market = self.by_id[symbol]
            if market.base == asset and state.amount and self.margin_type[symbol] == "ISOLATED":
                views.append(self._view(symbol, side, state))
        return views

    def true_position(self, symbol: str, side: str | None = None) -> Decimal:
        """Signed contracts held, netted over the sides unless one is named."""
        return sum(
            (
                state.amount
                for (sym, s), state in self.state.positions.items()
                if sym == symbol and side in (None, s)
            ),
            ZERO,
        )

    # ------------------------------------------------------------------ orders
    def place(self, params: Mapping[str, str], partial: Decimal | None) -> EmulatedOrder:
        """Validate and execute a COIN-M order (POST /dapi/v1/order); quantity in contracts."""
        market, side, order_type, tif, qty, price = self._order_shape(params)
        reduce_only = parse_bool(params, "reduceOnly")
        position_side = order_position_side(params, self.dual_side)
        client_id = self._client_id(params)
        signed = qty if side == "BUY" else -qty
        current = self.state.positions.get(
            (market.symbol_id, position_side), CoinmPosition()
        ).amount
        closing = self.dual_side and (position_side == "LONG") == (side == "SELL")
        if (reduce_only or closing) and not (
            current != 0 and (current > 0) != (signed > 0) and qty <= abs(current)
        ):
            raise BinanceError(400, -2022, "ReduceOnly Order is rejected.")
        limit = price if order_type == "LIMIT" else None
        fills = self._planned(market, side, qty, limit, tif, partial)
        if not reduce_only and not closing:
            self._check_margin(market, current, signed, fills, qty, price)
        now = self.main.now_ms()
        order = EmulatedOrder(
            venue="coinm",
            order_id=self.main.next_order_id(),
            client_order_id=client_id,
            symbol=market.symbol_id,
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
        self.main.orders[order.order_id] = order
        self.main.client_ids[("coinm", client_id)] = order.order_id
        for fill_price, fill_qty in fills:
            self._fill(order, fill_price, fill_qty, maker=False)
        executed = order.executed_qty
        if executed == qty:
            order.status = "FILLED"
        elif order_type == "MARKET" or tif in ("IOC", "FOK"):
            order.status = "EXPIRED"
        else:
            order.status = "PARTIALLY_FILLED" if executed else "NEW"
        return order

    def _order_shape(
        self, params: Mapping[str, str]
    ) -> tuple[CoinmMarket, str, str, str, Decimal, Decimal]:
        market = self.market_for(params.get("symbol"))
        side = params.get("side", "")
        if side not in ("BUY", "SELL"):
            raise BinanceError(400, -1102, "Mandatory parameter 'side' was not sent.")
        order_type = params.get("type", "")
        if order_type not in ("MARKET", "LIMIT"):
            raise BinanceError(400, -1116, "Invalid orderType.")
        tif = params.get("timeInForce", "GTC") if order_type == "LIMIT" else "GTC"
        if tif not in ("GTC", "IOC", "FOK", "GTX"):
            raise BinanceError(400, -1102, "Mandatory parameter 'timeInForce' was not sent.")
        qty = required_decimal(params, "quantity")
        if qty <= 0:
            raise BinanceError(400, -4003, "Quantity less than or equal to zero.")
        if decimals_of(qty) > decimals_of(market.step_size):
            raise BinanceError(400, -1111, "Precision is over the maximum defined for this asset.")
        if qty < market.min_qty or qty > market.max_qty or not is_multiple(qty, market.step_size):
            raise BinanceError(400, -1013, "Filter failure: LOT_SIZE")
        price = ZERO
        if order_type == "LIMIT":
            price = required_decimal(params, "price")
            if price <= 0 or not is_multiple(price, market.tick_size):
                raise BinanceError(400, -4014, "Price not increased by tick size.")
        return market, side, order_type, tif, qty, price

    def _client_id(self, params: Mapping[str, str]) -> str:
        client_id = params.get("newClientOrderId") or f"emu-cm-{len(self.main.orders) + 1}"
        if not CLIENT_ID_PATTERN.match(client_id):
            raise BinanceError(
                400, -1100, "Illegal characters found in parameter 'newClientOrderId'."
            )
        if ("coinm", client_id) in self.main.client_ids:
            raise BinanceError(400, -4116, "ClientOrderId is duplicated.")
        return client_id

    def _planned(
        self,
        market: CoinmMarket,
        side: str,
        qty: Decimal,
        limit: Decimal | None,
        tif: str,
        partial: Decimal | None,
    ) -> list[tuple[Decimal, Decimal]]:
        bids, asks = self.book(market, market.depth_levels)
        if tif == "GTX":
            return []
        target = qty if partial is None else floor_to(qty * partial, market.step_size)
        fills: list[tuple[Decimal, Decimal]] = []
        for price, size in asks if side == "BUY" else bids:
            if target <= 0 or (
                limit is not None and (price > limit if side == "BUY" else price < limit)
            ):
                break
            take = min(size, target)
            fills.append((price, take))
            target -= take
        if tif == "FOK" and sum((q for _, q in fills), ZERO) < qty:
            return []
        return fills

    def _check_margin(
        self,
        market: CoinmMarket,
        current: Decimal,
        signed: Decimal,
        fills: list[tuple[Decimal, Decimal]],
        qty: Decimal,
        price: Decimal,
    ) -> None:
        increase = max(abs(current + signed) - abs(current), ZERO)
        if increase == 0:
            return
        reference = fills[0][0] if fills else (price or self.mark(market))
        coins = increase * market.contract_size / reference
        required = coins / self.leverage[market.symbol_id] + coins * COINM_TAKER_FEE
        if required > self.wallet_view(market.base).available:
            raise BinanceError(400, -2019, "Margin is insufficient.")

    def _fill(self, order: EmulatedOrder, price: Decimal, qty: Decimal, *, maker: bool) -> None:
        market = self.by_id[order.symbol]
        now = self.main.now_ms()
        state = self.state.positions.setdefault(
            (order.symbol, order.position_side), CoinmPosition()
        )
        signed = qty if order.side == "BUY" else -qty
        size = market.contract_size
        realized = ZERO
        if state.amount == 0 or (state.amount > 0) == (signed > 0):
            held = abs(state.amount)
            state.entry = (held + qty) / ((held / state.entry if held else ZERO) + qty / price)
            state.amount += signed
        else:
            closed = min(qty, abs(state.amount))
            direction = ONE if state.amount > 0 else -ONE
            realized = direction * closed * size * (ONE / state.entry - ONE / price)
            before = abs(state.amount)
            state.amount += signed
            state.added_margin = state.added_margin * abs(state.amount) / before
            if state.amount == 0:
                state.entry, state.added_margin = ZERO, ZERO
            elif (state.amount > 0) == (signed > 0):
                state.entry, state.added_margin = price, ZERO
        state.update_ms = now
        fee = qty * size / price * (COINM_MAKER_FEE if maker else COINM_TAKER_FEE)
        self.credit(market.base, realized - fee)
        trade_id = self.main.next_trade_id()
        order.fills.append(
            Fill(trade_id, price, qty, fee, market.base, maker, now, realized_pnl=realized)
        )
        order.update_ms = now
        if realized != 0:
            self._income(market, "REALIZED_PNL", realized, str(trade_id))
        self._income(market, "COMMISSION", -fee, str(trade_id))

    def _income(self, market: CoinmMarket, kind: str, amount: Decimal, trade_id: str = "") -> None:
        self.income.append(
            IncomeEntry(
                tran_id=self.main.next_tran_id(),
                symbol=market.symbol_id,
                income_type=kind,
                income=amount,
                asset=market.base,
                time_ms=self.main.now_ms(),
                info=kind,
                trade_id=trade_id,
            )
        )

    def find_order(self, symbol: str | None, params: Mapping[str, str]) -> EmulatedOrder:
        """The COIN-M order named by ``orderId`` or ``origClientOrderId``, or -2013."""
        self.market_for(symbol)
        order_id, client_id = params.get("orderId"), params.get("origClientOrderId")
        if order_id:
            found = self.main.orders.get(int(order_id)) if order_id.isdigit() else None
        elif client_id:
            known = self.main.client_ids.get(("coinm", client_id))
            found = None if known is None else self.main.orders.get(known)
        else:
            raise BinanceError(
                400,
                -1102,
                "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
            )
        if found is None or found.venue != "coinm" or found.symbol != symbol:
            raise BinanceError(400, -2013, "Order does not exist.")
        return found

    def cancel(self, symbol: str | None, params: Mapping[str, str]) -> EmulatedOrder:
        """Cancel an open COIN-M order, or -2011 "Unknown order sent."."""
        try:
            order = self.find_order(symbol, params)
        except BinanceError as exc:
            if exc.code == -2013:
                raise BinanceError(400, -2011, "Unknown order sent.") from None
            raise
        if not order.is_open:
            raise BinanceError(400, -2011, "Unknown order sent.")
        order.status, order.update_ms = "CANCELED", self.main.now_ms()
        return order

    def on_price(self, base: str) -> None:
        """A new price: fill the resting orders it crosses, liquidate what it reaches."""
        market = self.markets.get(base)
        if market is None:
            return
        bid, ask = self.top(market)
        for order in list(self.main.orders.values()):
            if order.venue != "coinm" or not order.is_open or order.symbol != market.symbol_id:
                continue
            if ask <= order.price if order.side == "BUY" else bid >= order.price:
                self._fill(order, order.price, order.remaining, maker=True)
                order.status = "FILLED"
        self._liquidate(market)

    def _liquidate(self, market: CoinmMarket) -> None:
        mark = self.mark(market)
        for view in self.position_views():
            if view.market != market or view.liquidation <= 0:
                continue
            reached = mark >= view.liquidation if view.amount < 0 else mark <= view.liquidation
            if not reached:
                continue
            state = self.state.positions[(market.symbol_id, view.side)]
            direction = ONE if state.amount > 0 else -ONE
            size = abs(state.amount) * market.contract_size
            realized = direction * size * (ONE / state.entry - ONE / view.liquidation)
            self.credit(market.base, realized)
            self._income(market, "INSURANCE_CLEAR", realized)
            self.liquidations.append(
                Liquidation(
                    market.symbol_id, view.side, state.amount, view.liquidation, self.main.now_ms()
                )
            )
            state.amount, state.entry, state.added_margin = ZERO, ZERO, ZERO

    # ------------------------------------------------------------------ settings
    def set_leverage(self, symbol: str | None, raw: str | None) -> tuple[CoinmMarket, int]:
        """POST /dapi/v1/leverage."""
        market = self.market_for(symbol)
        try:
            leverage = int(raw or "")
        except ValueError:
            raise BinanceError(400, -1102, "Mandatory parameter 'leverage' was not sent.") from None
        if not 1 <= leverage <= market.max_leverage:
            raise BinanceError(400, -4028, f"Leverage {leverage} is not valid")
        self.leverage[market.symbol_id] = leverage
        return market, leverage

    def set_margin_type(self, symbol: str | None, raw: str | None) -> None:
        """POST /dapi/v1/marginType: -4046 when already so, -4048 with a position or order."""
        market = self.market_for(symbol)
        wanted = (raw or "").upper()
        if wanted not in ("ISOLATED", "CROSSED"):
            raise BinanceError(400, -1102, "Mandatory parameter 'marginType' was not sent.")
        if self.margin_type[market.symbol_id] == wanted:
            raise BinanceError(400, -4046, "No need to change margin type.")
        held = self.true_position(market.symbol_id) != 0 or any(
            s == market.symbol_id and state.amount for (s, _), state in self.state.positions.items()
        )
        open_orders = any(
            o.venue == "coinm" and o.is_open and o.symbol == market.symbol_id
            for o in self.main.orders.values()
        )
        if held or open_orders:
            raise BinanceError(
                400, -4048, "Margin type cannot be changed if there exists position."
            )
        self.margin_type[market.symbol_id] = wanted

    def set_dual_side(self, dual: bool) -> None:
        """POST /dapi/v1/positionSide/dual: -4059 when already so, -4068 with a position."""
        if dual == self.dual_side:
            raise BinanceError(400, -4059, "No need to change position side.")
        if any(state.amount != 0 for state in self.state.positions.values()):
            raise BinanceError(
                400, -4068, "Position side cannot be changed if there exists position."
            )
        self.dual_side = dual

    def settle_funding(self) -> None:
        """Pay or charge funding in the coin on every open position at the current rate."""
        now = self.main.now_ms()
        for base, market in self.markets.items():
            rate, mark = self.funding_rates[base], self.mark(market)
            self.funding_events.append(FundingEvent(market.symbol_id, rate, now, mark))
            for (symbol, _side), state in self.state.positions.items():
                if symbol != market.symbol_id or state.amount == 0:
                    continue
                payment = -state.amount * market.contract_size / mark * rate
                self.credit(base, payment)
                self._income(market, "FUNDING_FEE", payment)


def liquidation_price(
    amount: Decimal, entry: Decimal, balance: Decimal, market: CoinmMarket
) -> Decimal:
    """Binance's COIN-M liquidation price of one position (first bracket, ``cum`` 0);
    0 when no price liquidates it (a short holding its face value in coin at 1x)."""
    if amount == 0 or entry <= 0:
        return ZERO
    size = abs(amount) * market.contract_size
    side = ONE if amount > 0 else -ONE
    denominator = balance + side * size / entry
    if denominator == 0:
        return ZERO
    price = (size * market.maint_margin_ratio + side * size) / denominator
    return price if price > 0 else ZERO
