"""The emulated Bybit matching and settlement: orders, fills, executions, funding.

Pure state, no I/O: the HTTP layer parses requests, calls into this engine and
renders what it returns. Orders fill against the emulated book (market, IOC, FOK and
the crossing part of a limit order as taker; resting limits as maker when a new price
crosses them). Money is ``Decimal`` throughout. Inverse contracts (category ``inverse``)
trade USD contracts; their fees, PnL and funding are in the base coin of the unified
wallet (value = contracts / price).
"""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from tests.support.emulators._common import floor_to, is_multiple
from tests.support.emulators.bybit._bybit_account import Account, Marks
from tests.support.emulators.bybit._bybit_book import Book, Level
from tests.support.emulators.bybit._bybit_collateral import UnifiedMargin
from tests.support.emulators.bybit._bybit_models import (
    CONTRACTS,
    ZERO,
    BybitError,
    Category,
    EmulatedMarket,
    EmulatedOrder,
    Execution,
    FundingEvent,
    Instrument,
    LedgerEntry,
    params_error,
)

SPOT_FEE = Decimal("0.001")
LINEAR_TAKER_FEE = Decimal("0.00055")
LINEAR_MAKER_FEE = Decimal("0.0002")
LINK_ID = re.compile(r"^[A-Za-z0-9_-]{1,36}$")
SETTLE = "USDT"
Params = Mapping[str, Any]


def decimal_param(params: Params, name: str, *, required: bool) -> Decimal | None:
    """A positive decimal parameter (Bybit sends numbers as strings), or 10001."""
    raw = params.get(name)
    if raw is None or raw == "":
        if required:
            raise params_error(f"params error: {name} is required")
        return None
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        raise params_error(f"params error: {name} invalid") from None
    if not value.is_finite() or value <= 0:
        raise params_error(f"params error: {name} invalid")
    return value


def bool_param(params: Params, name: str) -> bool:
    """``true``/``false`` as JSON bool or string (absent: false)."""
    raw = params.get(name, False)
    return raw is True or str(raw).lower() == "true"


@dataclass
class OrderRequest:
    """An order request, parsed and checked for shape (not yet against the account)."""

    inst: Instrument
    side: str
    order_type: str
    tif: str
    qty: Decimal
    price: Decimal
    link_id: str
    reduce_only: bool
    idx: int
    market_unit: str
    post_only_crossed: bool = False


def parse_order(book: Book, params: Params) -> OrderRequest:
    """Shape checks of /v5/order/create that need no account state (10001)."""
    inst = book.instrument(params.get("category"), params.get("symbol"))
    side, order_type = params.get("side"), params.get("orderType")
    if side not in ("Buy", "Sell"):
        raise params_error("params error: side invalid")
    if order_type not in ("Market", "Limit"):
        raise params_error("params error: orderType invalid")
    tif = params.get("timeInForce") or ("IOC" if order_type == "Market" else "GTC")
    if tif not in ("GTC", "IOC", "FOK", "PostOnly"):
        raise params_error("params error: timeInForce invalid")
    qty = decimal_param(params, "qty", required=True)
    price = decimal_param(params, "price", required=order_type == "Limit")
    link_id = str(params.get("orderLinkId") or "")
    if link_id and not LINK_ID.match(link_id):
        raise params_error("params error: orderLinkId invalid")
    try:
        idx = int(params.get("positionIdx", 0))
    except (TypeError, ValueError):
        raise params_error("params error: positionIdx invalid") from None
    unit = str(params.get("marketUnit") or ("quoteCoin" if side == "Buy" else "baseCoin"))
    return OrderRequest(
        inst=inst,
        side=side,
        order_type=order_type,
        tif="IOC" if order_type == "Market" else tif,
        qty=qty or ZERO,
        price=price if order_type == "Limit" and price else ZERO,
        link_id=link_id,
        reduce_only=bool_param(params, "reduceOnly"),
        idx=idx,
        market_unit=unit if inst.category == "spot" and order_type == "Market" else "",
    )


class Engine:
    """Orders and settlement over one ``Book`` and one unified ``Account``."""

    def __init__(self, markets: Sequence[EmulatedMarket], clock: Callable[[], float]) -> None:
        self.book = Book(markets, clock)
        self.account = Account(clock)
        self.orders: dict[str, EmulatedOrder] = {}
        self.link_ids: dict[tuple[Category, str], str] = {}
        self.executions: list[Execution] = []
        self.ledger: list[LedgerEntry] = []
        self.forgotten: set[str] = set()
        self._ids = itertools.count(1)
        self.margin = UnifiedMargin(self)

    def now_ms(self) -> int:
        """Current time in ms."""
        return self.book.now_ms()

    def _uuid(self) -> str:
        return str(uuid.UUID(int=next(self._ids) + (0x5A << 120)))

    # ------------------------------------------------------------------ placing
    def place(self, params: Params, partial: Decimal | None = None) -> EmulatedOrder:
        """Validate and execute POST /v5/order/create."""
        req = parse_order(self.book, params)
        if req.inst.category in CONTRACTS:
            return self._place_linear(req, partial)
        return self._place_spot(req, partial)

    def _check_link_id(self, req: OrderRequest, error: BybitError) -> None:
        if req.link_id and (req.inst.category, req.link_id) in self.link_ids:
            raise error

    def _planned(self, req: OrderRequest, qty: Decimal, partial: Decimal | None) -> list[Level]:
        step = req.inst.lot[0]
        if req.inst.category == "spot":
            step = req.inst.market.spot_base_precision
        target = qty if partial is None else floor_to(qty * partial, step)
        limit = req.price if req.order_type == "Limit" else None
        fills = self.book.walk(req.inst.market.base, req.side, target, limit, req.inst.inverse)
        filled = sum((q for _, q in fills), ZERO)
        if req.tif == "PostOnly" and fills:
            req.post_only_crossed = True
            return []
        if req.tif == "FOK" and filled < qty:
            return []
        return fills

    def _check_linear_qty(self, req: OrderRequest) -> None:
        m = req.inst.market
        step, least, most = req.inst.lot
        if not is_multiple(req.qty, step):
            raise params_error("Qty invalid")
        if req.qty < least:
            raise params_error("The number of contracts exceeds minimum limit allowed")
        if req.qty > most:
            raise params_error("The number of contracts exceeds maximum limit allowed")
        if req.price and not is_multiple(req.price, m.tick_size):
            raise params_error("Price invalid")

    def _check_position_idx(self, req: OrderRequest) -> None:
        hedged = self.account.hedged(req.inst.symbol)
        if (hedged and req.idx not in (1, 2)) or (not hedged and req.idx != 0):
            raise params_error("position idx not match position mode")

    def _reduce_only_qty(self, req: OrderRequest) -> Decimal:
        """The quantity a reduce-only order may trade: Bybit trims it to the position."""
        size = self.account.position(req.inst.symbol, req.idx).size
        if size == 0:
            raise BybitError(110017, "current position is zero, cannot fix reduce-only order qty")
        if (size > 0) == (req.side == "Buy"):
            raise BybitError(110017, "Reduce-only rule not satisfied")
        return min(req.qty, abs(size))

    def _place_linear(self, req: OrderRequest, partial: Decimal | None) -> EmulatedOrder:
        self._check_linear_qty(req)
        self._check_position_idx(req)
        self._check_link_id(req, BybitError(110072, "OrderLinkedID is duplicate"))
        qty = self._reduce_only_qty(req) if req.reduce_only else req.qty
        quote = self.book.quotes[req.inst.market.base]
        reference = req.price or (quote.ask if req.side == "Buy" else quote.bid)
        # An inverse contract has no minimum order value (its minimum is one contract).
        small = not req.inst.inverse and qty * reference < req.inst.market.min_notional
        if not req.reduce_only and small:
            raise BybitError(
                110094,
                f"Order does not meet minimum order value {req.inst.market.min_notional}USDT",
            )
        fills = self._planned(req, qty, partial)
        if not req.reduce_only:
            self._check_margin(req, qty, reference)
        order = self._new_order(req, qty)
        self._execute(order, req, fills)
        return order

    def _check_margin(self, req: OrderRequest, qty: Decimal, reference: Decimal) -> None:
        state = self.account.position(req.inst.symbol, req.idx)
        signed = qty if req.side == "Buy" else -qty
        increase = max(abs(state.size + signed) - abs(state.size), ZERO)
        if increase == 0:
            return
        lev = self.account.leverage_of(req.inst.symbol, req.inst.market.max_leverage)
        value = increase / reference if req.inst.inverse else increase * reference
        needed = value / lev + value * LINEAR_TAKER_FEE
        if needed > self.available(req.inst.settle):
            raise BybitError(110007, "ab not enough for new order")

    def _check_spot(self, req: OrderRequest, base_qty: Decimal, reference: Decimal) -> None:
        m = req.inst.market
        if req.market_unit != "quoteCoin" and not is_multiple(req.qty, m.spot_base_precision):
            raise BybitError(170137, "Order quantity has too many decimals.")
        if base_qty < m.spot_base_precision:
            raise BybitError(170136, "Order quantity lower than the minimum.")
        if req.price and not is_multiple(req.price, m.spot_tick_size):
            raise BybitError(170134, "Order price has too many decimals.")
        if base_qty * reference < m.spot_min_amt:
            raise BybitError(170140, "Order value exceeded lower limit.")
        self._check_link_id(req, BybitError(170141, "Duplicate clientOrderId."))

    def _place_spot(self, req: OrderRequest, partial: Decimal | None) -> EmulatedOrder:
        m = req.inst.market
        quote = self.book.quotes[m.base]
        reference = req.price or (quote.ask if req.side == "Buy" else quote.bid)
        base_qty = req.qty
        if req.market_unit == "quoteCoin":
            base_qty = floor_to(req.qty / reference, m.spot_base_precision)
        self._check_spot(req, base_qty, reference)
        fills = self._planned(req, base_qty, partial)
        filled = sum((q for _, q in fills), ZERO)
        rests = req.order_type == "Limit" and req.tif == "GTC"
        if req.side == "Buy":
            need = sum((p * q for p, q in fills), ZERO) + (
                (base_qty - filled) * req.price if rests else ZERO
            )
            have = self.account.free(m.quote)
        else:
            need, have = (base_qty if rests else filled), self.account.free(m.base)
        if need > have:
            raise BybitError(170131, "Insufficient balance.")
        order = self._new_order(req, base_qty)
        self._execute(order, req, fills)
        return order

    def _new_order(self, req: OrderRequest, qty: Decimal) -> EmulatedOrder:
        now = self.now_ms()
        order = EmulatedOrder(
            category=req.inst.category,
            order_id=self._uuid(),
            order_link_id=req.link_id,
            symbol=req.inst.symbol,
            side=req.side,
            order_type=req.order_type,
            time_in_force=req.tif,
            qty=qty,
            price=req.price,
            reduce_only=req.reduce_only,
            position_idx=req.idx,
            market_unit=req.market_unit,
            created_ms=now,
            updated_ms=now,
        )
        self.orders[order.order_id] = order
        if req.link_id:
            self.link_ids[(order.category, req.link_id)] = order.order_id
        return order

    def _execute(self, order: EmulatedOrder, req: OrderRequest, fills: list[Level]) -> None:
        if req.post_only_crossed:
            order.status = "Cancelled"
            order.reject_reason = "EC_PostOnlyWillTakeLiquidity"
            return
        for price, fill_qty in fills:
            self._fill(order, price, fill_qty, maker=False)
        self._settle_status(order)

    def _settle_status(self, order: EmulatedOrder) -> None:
        filled = order.cum_qty
        final = order.order_type == "Market" or order.time_in_force in ("IOC", "FOK")
        if filled == order.qty:
            order.status = "Filled"
        elif final and filled > 0:
            order.status = "PartiallyFilledCanceled" if order.category == "spot" else "Cancelled"
        elif final:
            order.status = "Cancelled"
        else:
            order.status = "PartiallyFilled" if filled > 0 else "New"
        if order.category == "spot" and order.is_open:
            market = self.book.instruments["spot"][order.symbol].market
            if order.side == "Buy":
                self.account.lock(market.quote, order.leaves_qty * order.price)
            else:
                self.account.lock(market.base, order.leaves_qty)

    # ------------------------------------------------------------------ fills
    def _fill(self, order: EmulatedOrder, price: Decimal, qty: Decimal, *, maker: bool) -> None:
        inst = self.book.instruments[order.category][order.symbol]
        self.account.snapshot()
        value = qty / price if inst.inverse else price * qty
        if order.category in CONTRACTS:
            rate = LINEAR_MAKER_FEE if maker else LINEAR_TAKER_FEE
            fee, fee_coin = value * rate, inst.settle
            signed = qty if order.side == "Buy" else -qty
            before = self.account.position(order.symbol, order.position_idx).size
            realised = self.account.apply_fill(
                order.symbol, order.position_idx, signed, price, inst.inverse
            )
            closed = min(qty, abs(before)) if before and (before > 0) != (signed > 0) else ZERO
            self.account.credit(inst.settle, realised - fee)
        else:
            rate = SPOT_FEE
            m = inst.market
            fee_coin = m.base if order.side == "Buy" else m.quote
            fee = qty * rate if order.side == "Buy" else value * rate
            sign = Decimal(1) if order.side == "Buy" else Decimal(-1)
            self.account.credit(m.base, sign * qty - (fee if order.side == "Buy" else ZERO))
            self.account.credit(m.quote, -sign * value - (fee if order.side == "Sell" else ZERO))
            closed = ZERO
        self._record_fill(order, price, qty, fee, rate, fee_coin, maker, closed)
        if order.category in CONTRACTS:
            # The position changes with the execution: its updatedTime is never before
            # the execTime (both are read from the clock, a millisecond apart at times).
            state = self.account.position(order.symbol, order.position_idx)
            state.updated_ms = max(state.updated_ms, order.updated_ms)

    def _record_fill(
        self,
        order: EmulatedOrder,
        price: Decimal,
        qty: Decimal,
        fee: Decimal,
        rate: Decimal,
        fee_coin: str,
        maker: bool,
        closed: Decimal,
    ) -> None:
        now = self.now_ms()
        quote = self.book.quotes[self.book.instruments[order.category][order.symbol].market.base]
        execution = Execution(
            exec_id=self._uuid(),
            category=order.category,
            symbol=order.symbol,
            exec_type="Trade",
            side=order.side,
            price=price,
            qty=qty,
            fee=fee,
            fee_rate=rate,
            fee_coin=fee_coin,
            is_maker=maker,
            time_ms=now,
            order_id=order.order_id,
            order_link_id=order.order_link_id,
            order_type=order.order_type,
            order_price=order.price,
            order_qty=order.qty,
            leaves_qty=order.qty - order.cum_qty - qty,
            closed_size=closed,
            mark_price=quote.mark,
        )
        order.fills.append(execution)
        order.updated_ms = now
        self.executions.append(execution)
        if order.category == "inverse":
            self._ledger(execution, "TRADE", -fee, coin=fee_coin)
        else:
            self._ledger(execution, "TRADE", -fee if fee_coin == SETTLE else ZERO)

    def _ledger(
        self,
        e: Execution,
        kind: str,
        change: Decimal,
        funding: Decimal = ZERO,
        coin: str = SETTLE,
    ) -> None:
        self.ledger.append(
            LedgerEntry(
                entry_id=self._uuid(),
                symbol=e.symbol,
                category=e.category,
                kind=kind,
                side=e.side,
                coin=coin,
                qty=e.qty,
                price=e.price,
                fee=e.fee if kind == "TRADE" else ZERO,
                funding=funding,
                cash_flow=ZERO,
                change=change,
                cash_balance=self.account.live.wallet.get(coin, ZERO),
                time_ms=e.time_ms,
                trade_id=e.exec_id,
                order_id=e.order_id,
                order_link_id=e.order_link_id,
            )
        )

    def match_resting(self, base: str) -> None:
        """Fill resting limit orders that the top of book now crosses, at their price."""
        quote = self.book.quotes[base]
        for order in list(self.orders.values()):
            inst = self.book.instruments[order.category].get(order.symbol)
            if not order.is_open or inst is None or inst.market.base != base:
                continue
            if not (quote.ask <= order.price if order.side == "Buy" else quote.bid >= order.price):
                continue
            self._release(order)
            self._fill(order, order.price, order.qty - order.cum_qty, maker=True)
            order.status = "Filled"

    # ------------------------------------------------------------------ cancel
    def _release(self, order: EmulatedOrder) -> None:
        if order.category != "spot" or not order.is_open:
            return
        market = self.book.instruments["spot"][order.symbol].market
        if order.side == "Buy":
            self.account.lock(market.quote, -order.leaves_qty * order.price)
        else:
            self.account.lock(market.base, -order.leaves_qty)

    def find(self, category: Category, params: Params) -> EmulatedOrder | None:
        """The order named by orderId (first) or orderLinkId, if any."""
        order_id = params.get("orderId")
        if order_id:
            order = self.orders.get(str(order_id))
            return order if order is not None and order.category == category else None
        link = params.get("orderLinkId")
        found = self.link_ids.get((category, str(link))) if link else None
        return self.orders.get(found) if found else None

    def cancel(self, params: Params) -> EmulatedOrder:
        """POST /v5/order/cancel: 110001 (linear) / 170213 (spot) when not open."""
        category = self.book.check_category(params.get("category"))
        if not params.get("orderId") and not params.get("orderLinkId"):
            raise params_error("params error: orderId or orderLinkId is required")
        order = self.find(category, params)
        if order is None or not order.is_open or order.symbol != params.get("symbol"):
            if category == "spot":
                raise BybitError(170213, "Order does not exist.")
            raise BybitError(110001, "Order does not exist")
        self._release(order)
        order.status = "Cancelled"
        order.reject_reason = "EC_NoError"
        order.updated_ms = self.now_ms()
        return order

    # ------------------------------------------------------------------ funding
    def settle_funding(self) -> None:
        """Charge or pay funding on every perp position at the current rate and mark (an
        inverse position's in its coin: contracts / mark x rate)."""
        now = self.now_ms()
        perps = [i for c in CONTRACTS for i in self.book.instruments[c].values()]
        for inst in perps:
            symbol = inst.symbol
            if inst.delivery_ms:
                continue
            base = inst.market.base
            rate, mark = self.book.funding_rates[base], self.book.quotes[base].mark
            self.book.funding_events.append(FundingEvent(symbol, rate, now))
            for (sym, _idx), state in list(self.account.live.positions.items()):
                if sym != symbol or state.size == 0:
                    continue
                # positive: the position pays
                fee = state.size / mark * rate if inst.inverse else state.size * mark * rate
                self.account.credit(inst.settle, -fee, lagged=False)
                execution = Execution(
                    exec_id=self._uuid(),
                    category=inst.category,
                    symbol=symbol,
                    exec_type="Funding",
                    side="Buy" if state.size > 0 else "Sell",
                    price=mark,
                    qty=abs(state.size),
                    fee=fee,
                    fee_rate=rate,
                    fee_coin=inst.settle,
                    is_maker=False,
                    time_ms=now,
                    mark_price=mark,
                )
                self.executions.append(execution)
                self._ledger(execution, "SETTLEMENT", -fee, funding=-fee, coin=inst.settle)

    # ------------------------------------------------------------------ margin
    def marks(self) -> Marks:
        """symbol → (mark, maintenance margin rate, max leverage, settle coin, inverse) of
        every contract."""
        return {
            i.symbol: (
                self.book.quotes[i.market.base].mark,
                i.market.maint_margin_ratio,
                i.market.max_leverage,
                i.settle,
                i.inverse,
            )
            for c in CONTRACTS
            for i in self.book.instruments[c].values()
        }

    def order_margin(self) -> Decimal:
        """Initial margin held by resting linear orders."""
        total = ZERO
        for o in self.orders.values():
            if o.category == "linear" and o.is_open and not o.reduce_only:
                inst = self.book.instruments["linear"][o.symbol]
                lev = self.account.leverage_of(o.symbol, inst.market.max_leverage)
                total += o.leaves_qty * o.price / lev
        return total

    def available(self, coin: str, *, lagged: bool = False) -> Decimal:
        """What a new order may use of ``coin``: the coin less the margin its contracts
        hold (USDT: linear, a coin: its inverse ones), plus their cross PnL. On a cross
        account USDT's is the account's available balance (every collateral coin at its
        ratio), less the USDT resting spot buys lock."""
        holdings = self.account.view(lagged=lagged)
        free = holdings.wallet.get(coin, ZERO) - holdings.locked.get(coin, ZERO)
        if coin == SETTLE and self.margin.cross:
            available = self.margin.figures(lagged=lagged).available
            return max(available - holdings.locked.get(coin, ZERO), ZERO)
        rows = [r for r in self.account.views(self.marks(), lagged=lagged) if r.coin == coin]
        if coin != SETTLE and not rows:
            return free
        used = sum((r.balance for r in rows), ZERO)
        pnl = sum((r.unrealised for r in rows if not r.isolated), ZERO)
        orders = self.order_margin() if coin == SETTLE else ZERO
        return max(free + pnl - used - orders, ZERO)
