"""The emulated OKX order book and order service: instruments, quotes, orders and fills.

Pure state, no I/O. Orders are validated as OKX's order service does and answer with
``OrderRejected`` (``sCode``/``sMsg``); IOC, FOK, market and ``optimal_limit_ioc`` orders
fill at once against the book, a limit order's crossing part fills and the rest rests,
and a resting order fills when a later price crosses it.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from tests.support.emulators.binance._binance_models import ceil_to, floor_to
from tests.support.emulators.okx import _okx_checks as checks
from tests.support.emulators.okx._okx_account import TAKER_FEE, Account
from tests.support.emulators.okx._okx_collateral import MultiCurrencyMargin
from tests.support.emulators.okx._okx_models import (
    ZERO,
    EmulatedOrder,
    FundingEvent,
    Instrument,
    OkxError,
    OkxMarket,
    OrderRejected,
)

TAKES_AT_ONCE = ("market", "fok", "ioc", "optimal_limit_ioc")
EIGHT_HOURS_MS = 8 * 3600 * 1000


@dataclass
class Quote:
    """Top of book and reference prices of one base coin (shared by its instruments)."""

    bid: Decimal
    ask: Decimal
    last: Decimal
    mark: Decimal


class Engine:
    """Instruments, quotes and the orders of one emulated OKX account."""

    def __init__(self, markets: Sequence[OkxMarket], clock: Callable[[], float]) -> None:
        self.clock = clock
        self.markets: dict[str, OkxMarket] = {}
        self.instruments: dict[str, Instrument] = {}
        self.quotes: dict[str, Quote] = {}
        self.price_history: dict[str, list[tuple[int, Decimal]]] = {}
        self.funding_rates: dict[str, Decimal] = {}
        self.funding_events: list[FundingEvent] = []
        self.orders: dict[str, EmulatedOrder] = {}
        self.client_order_id_scope = "open"
        self.account = Account(clock, self.instruments, self.mark_of)
        self.multi = MultiCurrencyMargin(self)  # acctLv 3: the coins as collateral
        self._order_ids = itertools.count(700_000_000_000_000_001)
        for market in markets:
            self._add_market(market)

    def _add_market(self, market: OkxMarket) -> None:
        self.markets[market.base] = market
        insts = []
        if market.spot:
            insts.append(Instrument(market.spot_id, "SPOT", market))
        if market.swap:
            insts.append(Instrument(market.swap_id, "SWAP", market))
            self.funding_rates[market.swap_id] = market.funding_rate
        if market.inverse_ct_val is not None:
            insts.append(Instrument(market.inverse_swap_id, "SWAP", market, inverse=True))
            self.funding_rates[market.inverse_swap_id] = market.funding_rate
        for expiry in market.futures:
            expiry_ms = int(expiry.timestamp() * 1000)
            insts.append(Instrument(market.futures_id(expiry), "FUTURES", market, expiry_ms))
        for inst in insts:
            self.instruments[inst.inst_id] = inst
        if market.base not in self.quotes:
            self.price_history[market.base] = []
            self.set_price(market.base, market.price, Decimal(2))

    def now_ms(self) -> int:
        """Current time in ms from the injected clock."""
        return int(self.clock() * 1000)

    def next_funding_ms(self) -> int:
        """The next 8-hour funding boundary after now."""
        return (self.now_ms() // EIGHT_HOURS_MS + 1) * EIGHT_HOURS_MS

    # ------------------------------------------------------------------ lookup
    def resolve_base(self, name: str) -> str:
        """``BTC``, ``BTC-USDT-SWAP``, ``BTC/USDT`` or ``BTC/USDT:USDT`` → ``BTC``."""
        text = name.upper()
        if text in self.instruments:
            return self.instruments[text].market.base
        base = re.split(r"[/\-]", text)[0]
        if base not in self.markets:
            raise KeyError(f"unknown market {name!r}")
        return base

    def inst(self, inst_id: str | None) -> Instrument:
        """The instrument of an id, or 51001 (HTTP 400 outside the order service)."""
        if not inst_id:
            raise OkxError("50014", "Parameter instId can not be empty.", 400)
        inst = self.instruments.get(inst_id)
        if inst is None:
            raise OkxError("51001", "Instrument ID or Spread ID doesn't exist.")
        return inst

    def mark_of(self, inst_id: str) -> Decimal:
        """Mark price of an instrument's coin."""
        return self.quotes[self.instruments[inst_id].market.base].mark

    def replace_market(self, base: str, **changes: Any) -> OkxMarket:
        """Swap a coin's market for one with ``changes`` (lot size, state ...)."""
        market = replace(self.markets[self.resolve_base(base)], **changes)
        self.markets[market.base] = market
        for inst in list(self.instruments.values()):
            if inst.market.base == market.base:
                self.instruments[inst.inst_id] = replace(inst, market=market)
        return market

    # ------------------------------------------------------------------ prices
    def set_price(self, base_or_id: str, price: Decimal, spread_bps: Decimal) -> None:
        """Set last/mark and bid/ask around ``price``; fills resting orders it crosses."""
        base = self.resolve_base(base_or_id)
        market = self.markets[base]
        half = price * spread_bps / Decimal(20000)
        bid = floor_to(price - half, market.tick_sz)
        ask = ceil_to(price + half, market.tick_sz)
        if ask <= bid:
            ask = bid + market.tick_sz
        self.quotes[base] = Quote(bid=bid, ask=ask, last=price, mark=price)
        self.price_history[base].append((self.now_ms(), price))
        self._match_resting(base)

    def book(self, inst: Instrument, levels: int) -> tuple[list[Any], list[Any]]:
        """``levels`` bid and ask levels, sizes in the instrument's unit (contracts)."""
        market = inst.market
        quote = self.quotes[market.base]
        size = floor_to(inst.contracts(market.level_base, quote.last), inst.lot)
        count = max(1, min(levels, market.depth_levels))
        bids = [(quote.bid - i * market.tick_sz, size) for i in range(count)]
        asks = [(quote.ask + i * market.tick_sz, size) for i in range(count)]
        return [b for b in bids if b[0] > 0], asks

    def _walk(
        self, inst: Instrument, side: str, size: Decimal, limit: Decimal | None
    ) -> list[tuple[Decimal, Decimal]]:
        bids, asks = self.book(inst, inst.market.depth_levels)
        fills: list[tuple[Decimal, Decimal]] = []
        remaining = size
        for price, level in asks if side == "buy" else bids:
            if remaining <= 0:
                break
            if limit is not None and (price > limit if side == "buy" else price < limit):
                break
            take = min(level, remaining)
            fills.append((price, take))
            remaining -= take
        return fills

    # ------------------------------------------------------------------ orders
    def ord_frozen(self) -> dict[str, Decimal]:
        """What open orders hold, per currency (spot coins, contract margin)."""
        held: dict[str, Decimal] = {}
        for o in self.orders.values():
            if not o.is_open:
                continue
            market = o.inst.market
            if o.inst.is_contract:
                lever = self.account.lever(o.inst.inst_id, o.td_mode, o.pos_side)
                ccy, amount = o.inst.settle_ccy, o.inst.value(o.remaining, o.price) / lever
            elif o.side == "buy":
                ccy, amount = market.quote, o.remaining * o.price
            else:
                ccy, amount = market.base, o.remaining
            held[ccy] = held.get(ccy, ZERO) + amount
        return held

    def find(self, inst_id: str | None, params: Mapping[str, str]) -> EmulatedOrder:
        """GET /trade/order: by ``ordId`` (first) or ``clOrdId``; 51603 when unknown."""
        inst = self.inst(inst_id)
        ord_id, cl_id = params.get("ordId"), params.get("clOrdId")
        if not ord_id and not cl_id:
            raise OkxError("51003", "Either client order ID or order ID is required.", 400)
        matches = [
            o
            for o in self.orders.values()
            if o.inst.inst_id == inst.inst_id
            and (o.ord_id == ord_id if ord_id else o.cl_ord_id == cl_id)
        ]
        if not matches:
            raise OkxError("51603", "Order does not exist")
        return max(matches, key=lambda o: o.time_ms)

    def cancel(self, params: Mapping[str, Any]) -> EmulatedOrder:
        """POST /trade/cancel-order."""
        try:
            order = self.find(params.get("instId"), params)
        except OkxError as exc:
            if exc.code == "51603":
                raise OrderRejected(
                    "51400", "Order cancellation failed as the order does not exist."
                ) from None
            raise OrderRejected(exc.code, exc.msg) from None
        if order.state == "canceled":
            raise OrderRejected("51401", "Order cancellation failed as the order is canceled.")
        if order.state == "filled":
            raise OrderRejected("51402", "Order cancellation failed as the order is completed.")
        order.state, order.cancel_source = "canceled", "1"
        order.update_ms = self.now_ms()
        return order

    def place(self, item: Mapping[str, Any], partial: Decimal | None) -> EmulatedOrder:
        """Validate and execute one order of POST /trade/order or /trade/batch-orders."""
        try:
            inst = self.inst(item.get("instId"))
        except OkxError as exc:
            raise OrderRejected(exc.code, exc.msg) from None
        side, ord_type, size, price = checks.shape(inst, item)
        td_mode, pos_side = checks.modes(inst, item, self.account.acct_lv, self.account.pos_mode)
        cl_id = checks.client_id(item, self.orders.values(), self.client_order_id_scope)
        reduce_only = checks.flag(item.get("reduceOnly"))
        closing = self._closing_size(inst, side, td_mode, pos_side, reduce_only)
        limit = price if ord_type not in ("market", "optimal_limit_ioc") else None
        if ord_type == "post_only" and self._walk(inst, side, size, limit):
            fills: list[tuple[Decimal, Decimal]] = []
            post_only_canceled = True
        else:
            fills = self._plan(inst, side, size, limit, ord_type, partial, closing)
            post_only_canceled = False
        self._check_funds(inst, side, size, price, fills, td_mode, pos_side, closing, ord_type)
        now = self.now_ms()
        order = EmulatedOrder(
            ord_id=str(next(self._order_ids)),
            cl_ord_id=cl_id,
            tag=str(item.get("tag") or ""),
            inst=inst,
            td_mode=td_mode,
            side=side,
            pos_side=pos_side,
            ord_type=ord_type,
            size=size,
            price=price,
            reduce_only=reduce_only,
            lever=str(self.account.lever(inst.inst_id, td_mode, pos_side))
            if inst.is_contract
            else "",
            time_ms=now,
            update_ms=now,
        )
        self.orders[order.ord_id] = order
        for fill_price, fill_size in fills:
            self._fill(order, fill_price, fill_size, maker=False)
        capped = closing is not None and closing < size  # the rest would open a position
        self._settle_state(order, post_only_canceled or capped)
        return order

    def _closing_size(
        self, inst: Instrument, side: str, td_mode: str, pos_side: str, reduce_only: bool
    ) -> Decimal | None:
        """How much a closing order may fill: None when it opens; 51169 with nothing to
        close (reduce-only in net mode, or a closing side in long/short mode)."""
        if not inst.is_contract:
            return None
        state = self.account.positions.get((inst.inst_id, td_mode, pos_side))
        held = state.pos if state is not None else ZERO
        if pos_side == "net":
            if not reduce_only:
                return None
            closable = -held if side == "buy" else held
        else:
            closes = (pos_side == "long") == (side == "sell")
            if not closes:
                return None
            closable = held
        if closable <= 0:
            raise OrderRejected(
                "51169",
                "Order failed because you don't have any positions in this direction "
                "for this contract to reduce or close.",
            )
        return closable

    def _plan(
        self,
        inst: Instrument,
        side: str,
        size: Decimal,
        limit: Decimal | None,
        ord_type: str,
        partial: Decimal | None,
        closing: Decimal | None,
    ) -> list[tuple[Decimal, Decimal]]:
        target = size if partial is None else floor_to(size * partial, inst.lot)
        if closing is not None:
            target = min(target, closing)
        fills = self._walk(inst, side, target, limit)
        if ord_type == "fok" and sum((q for _, q in fills), ZERO) < size:
            return []
        return fills

    def _check_funds(
        self,
        inst: Instrument,
        side: str,
        size: Decimal,
        price: Decimal,
        fills: list[tuple[Decimal, Decimal]],
        td_mode: str,
        pos_side: str,
        closing: Decimal | None,
        ord_type: str,
    ) -> None:
        market = inst.market
        rests = ord_type in ("limit", "post_only")
        filled = sum((q for _, q in fills), ZERO)
        value = sum((inst.value(q, p) for p, q in fills), ZERO)
        if rests:
            value += inst.value(size - filled, price)
        frozen = self.ord_frozen()
        if inst.is_contract:
            if closing is not None:
                return
            reference = value or inst.value(size, self.quotes[market.base].ask)
            lever = self.account.lever(inst.inst_id, td_mode, pos_side)
            need = reference / lever + reference * TAKER_FEE
            ccy = inst.settle_ccy
            have = self.multi.available(ccy, td_mode, frozen)
        elif side == "buy":
            ccy, need = market.quote, value
            have = self.account.cash.get(ccy, ZERO) - frozen.get(ccy, ZERO)
        else:
            ccy, need = market.base, size if rests else filled
            have = self.account.cash.get(ccy, ZERO) - frozen.get(ccy, ZERO)
        if need > have:
            kind = "margin" if inst.is_contract else "balance"
            raise OrderRejected("51008", f"Order failed. Insufficient {ccy} {kind} in account")

    def _fill(self, order: EmulatedOrder, price: Decimal, size: Decimal, *, maker: bool) -> None:
        if order.inst.is_contract:
            self.account.fill_contract(order, price, size, maker)
        else:
            self.account.fill_spot(order, price, size, maker)

    @staticmethod
    def _settle_state(order: EmulatedOrder, cancel_rest: bool) -> None:
        filled = order.filled
        if filled == order.size:
            order.state = "filled"
        elif cancel_rest or order.ord_type in TAKES_AT_ONCE:
            order.state = "canceled"
        else:
            order.state = "partially_filled" if filled > 0 else "live"

    def _match_resting(self, base: str) -> None:
        """Fill resting limit orders the new top of book crosses, at their price."""
        quote = self.quotes[base]
        for order in list(self.orders.values()):
            if not order.is_open or order.inst.market.base != base:
                continue
            crosses = quote.ask <= order.price if order.side == "buy" else quote.bid >= order.price
            if crosses:
                self._fill(order, order.price, order.remaining, maker=True)
                order.state = "filled"

    # ------------------------------------------------------------------ settings
    def set_position_mode(self, mode: str | None, *, strict: bool) -> None:
        """POST /account/set-position-mode; ``strict`` refuses with positions or orders."""
        if mode not in ("long_short_mode", "net_mode"):
            raise OkxError("51000", "Parameter posMode error", 400)
        if strict and (
            self.account.has_positions()
            or any(o.is_open and o.inst.is_contract for o in self.orders.values())
        ):
            raise OkxError(
                "59000",
                "Settings failed. Close any open positions or orders before modifying settings.",
            )
        self.account.pos_mode = mode

    def settle_funding(self) -> None:
        """Record a funding settlement of every perpetual and pay it on open positions."""
        now = self.now_ms()
        for inst_id, rate in self.funding_rates.items():
            self.funding_events.append(FundingEvent(inst_id, rate, now))
        self.account.settle_funding(self.funding_rates)
