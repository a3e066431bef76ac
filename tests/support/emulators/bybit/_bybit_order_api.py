"""Bybit v5 order endpoints of the emulator: create, cancel, look up, executions.

Lookup follows Bybit's rules for a unified account:

- ``/v5/order/realtime`` lists open orders; ``openOnly=1`` adds the recent closed
  ones (the last 500 per category). Asked by ``orderId`` or ``orderLinkId`` it finds
  an open or a recent closed order whatever ``openOnly`` says; ``orderId`` wins when
  both are given. After a restart (``BybitEmulator.restart_order_cache()``) closed
  orders are found only in the history.
- ``/v5/order/history`` lists final orders (Filled, Cancelled,
  PartiallyFilledCanceled, Rejected) inside a 7-day window.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.support.emulators._common import fmt
from tests.support.emulators.bybit._bybit_engine import Engine, Params
from tests.support.emulators.bybit._bybit_market_api import int_param, page
from tests.support.emulators.bybit._bybit_models import (
    Category,
    EmulatedOrder,
    Execution,
    params_error,
)

JSON = Any
RECENT_CLOSED = 500
WEEK_MS = 7 * 86_400_000


class OrderApi:
    """The /v5/order/* and /v5/execution/list handlers."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.book = engine.book

    # ------------------------------------------------------------------ rendering
    def render(self, o: EmulatedOrder) -> JSON:
        """One order as realtime and history list it."""
        filled = o.cum_qty
        inst = self.book.instruments[o.category][o.symbol]
        fee_coin = inst.settle if o.category != "spot" or o.side == "Sell" else inst.market.base
        row: dict[str, JSON] = {
            "orderId": o.order_id,
            "orderLinkId": o.order_link_id,
            "blockTradeId": "",
            "symbol": o.symbol,
            "price": fmt(o.price),
            "qty": fmt(o.qty),
            "side": o.side,
            "isLeverage": "0" if o.category == "spot" else "",
            "positionIdx": o.position_idx,
            "orderStatus": o.status,
            "createType": "CreateByUser",
            "cancelType": "CancelByUser" if o.status == "Cancelled" and filled == 0 else "UNKNOWN",
            "rejectReason": o.reject_reason,
            "avgPrice": fmt(o.avg_price),
            "leavesQty": fmt(o.leaves_qty),
            "leavesValue": fmt(
                o.leaves_qty / o.price if inst.inverse and o.price else o.leaves_qty * o.price
            ),
            "cumExecQty": fmt(filled),
            "cumExecValue": fmt(o.cum_value),
            "cumExecFee": fmt(o.cum_fee),
            "cumFeeDetail": {fee_coin: fmt(o.cum_fee)} if o.fills else {},
            "timeInForce": o.time_in_force,
            "orderType": o.order_type,
            "stopOrderType": "",
            "orderIv": "",
            "marketUnit": o.market_unit,
            "triggerPrice": "0",
            "takeProfit": "0",
            "stopLoss": "0",
            "tpTriggerBy": "",
            "slTriggerBy": "",
            "triggerDirection": 0,
            "triggerBy": "",
            "lastPriceOnCreated": "",
            "reduceOnly": o.reduce_only,
            "closeOnTrigger": False,
            "placeType": "",
            "smpType": "None",
            "smpGroup": 0,
            "smpOrderId": "",
            "createdTime": str(o.created_ms),
            "updatedTime": str(o.updated_ms),
        }
        if o.category != "spot":
            row.update({"tpslMode": "UNKNOWN", "tpLimitPrice": "0", "slLimitPrice": "0"})
        return row

    # ------------------------------------------------------------------ writes
    def create(self, params: Params, partial: Any = None) -> tuple[JSON, EmulatedOrder]:
        """POST /v5/order/create: the answer holds only orderId and orderLinkId."""
        order = self.engine.place(params, partial)
        return {"orderId": order.order_id, "orderLinkId": order.order_link_id}, order

    def cancel(self, params: Params) -> JSON:
        """POST /v5/order/cancel by orderId or orderLinkId."""
        order = self.engine.cancel(params)
        return {"orderId": order.order_id, "orderLinkId": order.order_link_id}

    def cancel_all(self, params: Params) -> JSON:
        """POST /v5/order/cancel-all of a symbol, base coin or settle coin."""
        cat = self.book.check_category(params.get("category"))
        match = self._matcher(cat, params, require=cat != "spot")
        done = []
        for o in list(self.engine.orders.values()):
            if o.category == cat and o.is_open and match(o):
                self.engine.cancel({"category": cat, "symbol": o.symbol, "orderId": o.order_id})
                done.append({"orderId": o.order_id, "orderLinkId": o.order_link_id})
        return {"list": done, "success": "1"}

    # ------------------------------------------------------------------ lookups
    def _matcher(
        self, cat: Category, params: Params, *, require: bool
    ) -> Callable[[EmulatedOrder], bool]:
        symbol, base, settle = (params.get(k) for k in ("symbol", "baseCoin", "settleCoin"))
        if require and not (symbol or base or settle):
            raise params_error(
                "Missing some parameters that must be filled in, symbol or settleCoin or baseCoin"
            )
        if symbol:
            self.book.instrument(cat, symbol)

        def match(o: EmulatedOrder) -> bool:
            inst = self.book.instruments[o.category][o.symbol]
            return (
                symbol in (None, "", o.symbol)
                and base in (None, "", inst.market.base)
                and settle in (None, "", inst.settle if o.category != "spot" else inst.market.quote)
            )

        return match

    def _recent_closed(self, cat: Category) -> set[str]:
        closed = [
            o
            for o in self.engine.orders.values()
            if o.category == cat and not o.is_open and o.order_id not in self.engine.forgotten
        ]
        closed.sort(key=lambda o: o.updated_ms)
        return {o.order_id for o in closed[-RECENT_CLOSED:]}

    def realtime(self, params: Params) -> JSON:
        """GET /v5/order/realtime: open orders, and recent closed ones when asked."""
        cat = self.book.check_category(params.get("category"))
        by_id = bool(params.get("orderId") or params.get("orderLinkId"))
        match = self._matcher(cat, params, require=cat != "spot" and not by_id)
        recent = self._recent_closed(cat)
        open_only = str(params.get("openOnly") or "0")
        if by_id:
            found = self.engine.find(cat, params)
            candidates = [found] if found is not None else []
        else:
            candidates = [o for o in self.engine.orders.values() if o.category == cat]
        rows = [
            o
            for o in candidates
            if match(o) and (o.is_open or ((by_id or open_only == "1") and o.order_id in recent))
        ]
        rows.sort(key=lambda o: o.created_ms, reverse=True)
        chunk, cursor = page([self.render(o) for o in rows], params, 20, 50)
        return {"category": cat, "list": chunk, "nextPageCursor": cursor}

    def _window(self, params: Params) -> tuple[int, int]:
        now = self.engine.now_ms()
        end = int_param(params, "endTime", now, 0, 1 << 62)
        start = int_param(params, "startTime", end - WEEK_MS, 0, 1 << 62)
        if end - start > WEEK_MS:
            raise params_error("params error: startTime and endTime must be within 7 days")
        return start, end

    def history(self, params: Params) -> JSON:
        """GET /v5/order/history: final orders of the last 7 days (or the window asked)."""
        cat = self.book.check_category(params.get("category"))
        match = self._matcher(cat, params, require=False)
        start, end = self._window(params)
        status = params.get("orderStatus")
        by_id = bool(params.get("orderId") or params.get("orderLinkId"))
        found = self.engine.find(cat, params) if by_id else None
        candidates = [found] if found else ([] if by_id else list(self.engine.orders.values()))
        rows = [
            o
            for o in candidates
            if o.category == cat
            and not o.is_open
            and match(o)
            and status in (None, "", o.status)
            and start <= o.created_ms <= end
        ]
        rows.sort(key=lambda o: o.created_ms, reverse=True)
        chunk, cursor = page([self.render(o) for o in rows], params, 20, 50)
        return {"category": cat, "list": chunk, "nextPageCursor": cursor}

    # ------------------------------------------------------------------ executions
    def _execution(self, e: Execution) -> JSON:
        inst = self.book.instruments[e.category][e.symbol]
        return {
            "symbol": e.symbol,
            "orderId": e.order_id,
            "orderLinkId": e.order_link_id,
            "side": e.side,
            "orderPrice": fmt(e.order_price),
            "orderQty": fmt(e.order_qty),
            "leavesQty": fmt(e.leaves_qty),
            "createType": "CreateByUser" if e.exec_type == "Trade" else "",
            "orderType": e.order_type,
            "stopOrderType": "",
            "execFee": fmt(e.fee),
            "execId": e.exec_id,
            "execPrice": fmt(e.price),
            "execQty": fmt(e.qty),
            "execType": e.exec_type,
            "execValue": fmt(e.value),
            "execTime": str(e.time_ms),
            "feeCurrency": e.fee_coin if e.category == "spot" else "",
            "isMaker": e.is_maker,
            "feeRate": fmt(e.fee_rate),
            "tradeIv": "",
            "markIv": "",
            "markPrice": fmt(e.mark_price),
            "indexPrice": fmt(self.book.quotes[inst.market.base].index),
            "underlyingPrice": "",
            "blockTradeId": "",
            "closedSize": fmt(e.closed_size) if e.category != "spot" else "",
            "seq": e.time_ms,
        }

    def executions(self, params: Params) -> JSON:
        """GET /v5/execution/list: trades (execType Trade) and funding (Funding)."""
        cat = self.book.check_category(params.get("category"))
        match_symbol = params.get("symbol")
        if match_symbol:
            self.book.instrument(cat, match_symbol)
        start, end = self._window(params)
        keys = {k: params.get(k) for k in ("orderId", "orderLinkId", "execType")}
        base = params.get("baseCoin")
        rows = [
            self._execution(e)
            for e in reversed(self.engine.executions)
            if e.category == cat
            and match_symbol in (None, "", e.symbol)
            and base in (None, "", self.book.instruments[cat][e.symbol].market.base)
            and keys["orderId"] in (None, "", e.order_id)
            and keys["orderLinkId"] in (None, "", e.order_link_id)
            and keys["execType"] in (None, "", e.exec_type)
            and start <= e.time_ms <= end
        ]
        chunk, cursor = page(rows, params, 50, 100)
        return {"category": cat, "list": chunk, "nextPageCursor": cursor}
