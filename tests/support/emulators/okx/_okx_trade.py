"""OKX v5 trade endpoints of the emulator (signed): place, look up, cancel, list, fills.

Placing answers per order inside ``data`` (``sCode``/``sMsg``) under a top-level
``code``: ``"0"`` all placed, ``"1"`` all failed, ``"2"`` a batch partly placed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tests.support.emulators.okx._okx_engine import Engine
from tests.support.emulators.okx._okx_models import (
    ZERO,
    EmulatedOrder,
    Fill,
    OkxError,
    OrderRejected,
    fmt,
)
from tests.support.emulators.okx._okx_public import (
    JSON,
    Params,
    RequestContext,
    Route,
    inst_type_param,
    int_param,
)

MAX_BATCH = 20
CANCELED_UNFILLED_KEPT_MS = 2 * 3600 * 1000  # orders-history drops them after 2 hours


#: /trade/fills answers the last 3 days' fills; older ones are in /trade/fills-history.
RECENT_FILLS_MS = 3 * 24 * 3600 * 1000


class BatchFailed(Exception):
    """Every order of a request failed: OKX's ``code "1"`` with the per-order rows."""

    def __init__(self, rows: list[JSON]) -> None:
        super().__init__("All operations failed")
        self.rows = rows


def _result(order: EmulatedOrder | None, item: Mapping[str, Any], now: int, exc: Any) -> JSON:
    return {
        "clOrdId": order.cl_ord_id if order else str(item.get("clOrdId") or ""),
        "ordId": order.ord_id if order else "",
        "sCode": "0" if exc is None else exc.code,
        "sMsg": "Order placed" if exc is None else exc.msg,
        "tag": order.tag if order else str(item.get("tag") or ""),
        "ts": str(now),
    }


class TradeApi:
    """Handlers of ``/api/v5/trade/*`` over one ``Engine``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        t = "/api/v5/trade"
        self.routes: dict[tuple[str, str], Route] = {
            ("POST", f"{t}/order"): Route(self.place, True, 60, scope="inst", creates_order=True),
            ("POST", f"{t}/batch-orders"): Route(
                self.place_batch, True, 300, scope="inst", creates_order=True
            ),
            ("GET", f"{t}/order"): Route(self.get_order, True, 60, scope="inst"),
            ("POST", f"{t}/cancel-order"): Route(self.cancel, True, 60, scope="inst"),
            ("GET", f"{t}/orders-pending"): Route(self.pending, True, 60, scope="user"),
            ("GET", f"{t}/orders-history"): Route(self.history, True, 40, scope="user"),
            ("GET", f"{t}/orders-history-archive"): Route(self.history, True, 20, scope="user"),
            ("GET", f"{t}/fills"): Route(self.recent_fills, True, 60, scope="user"),
            ("GET", f"{t}/fills-history"): Route(self.fills, True, 10, scope="user"),
        }

    # ------------------------------------------------------------------ placing
    def _place_items(self, items: list[Any], ctx: RequestContext) -> JSON:
        now = self.engine.now_ms()
        rows = []
        for item in items:
            if not isinstance(item, dict):
                raise OkxError("50002", "Json data format error.", 400)
            try:
                order = self.engine.place(item, ctx.partial)
            except OrderRejected as exc:
                ctx.orders.append(None)
                rows.append(_result(None, item, now, exc))
                continue
            ctx.orders.append(order)
            rows.append(_result(order, item, now, None))
        if all(r["sCode"] != "0" for r in rows):
            raise BatchFailed(rows)
        return rows

    def place(self, params: Params, ctx: RequestContext) -> JSON:
        """POST /trade/order: one JSON object."""
        if not isinstance(ctx.body, dict):
            raise OkxError("50002", "Json data format error.", 400)
        return self._place_items([ctx.body], ctx)

    def place_batch(self, params: Params, ctx: RequestContext) -> JSON:
        """POST /trade/batch-orders: a JSON array of up to 20 orders (ccxt's default)."""
        body = ctx.body if isinstance(ctx.body, list) else [ctx.body]
        if len(body) > MAX_BATCH:
            raise OkxError("51111", f"Maximum {MAX_BATCH} orders can be placed in bulk.")
        return self._place_items(body, ctx)

    # ------------------------------------------------------------------ orders
    def _order(self, o: EmulatedOrder) -> JSON:
        last = o.fills[-1] if o.fills else None
        return {
            "accFillSz": fmt(o.filled),
            "algoClOrdId": "",
            "algoId": "",
            "attachAlgoOrds": [],
            "avgPx": fmt(o.avg_price) if o.fills else "",
            "cTime": str(o.time_ms),
            "cancelSource": o.cancel_source,
            "category": "normal",
            "ccy": "",
            "clOrdId": o.cl_ord_id,
            "fee": fmt(o.fee),
            "feeCcy": last.fee_ccy if last else o.inst.settle_ccy,
            "fillPx": fmt(last.price) if last else "",
            "fillSz": fmt(last.size) if last else "0",
            "fillTime": str(last.time_ms) if last else "",
            "instId": o.inst.inst_id,
            "instType": o.inst.inst_type,
            "isTpLimit": "false",
            "lever": o.lever,
            "ordId": o.ord_id,
            "ordType": o.ord_type,
            "pnl": fmt(sum((f.pnl for f in o.fills), ZERO)),
            "posSide": o.pos_side,
            "px": fmt(o.price) if o.price else "",
            "quickMgnType": "",
            "rebate": "0",
            "rebateCcy": o.inst.settle_ccy,
            "reduceOnly": "true" if o.reduce_only else "false",
            "side": o.side,
            "slOrdPx": "",
            "slTriggerPx": "",
            "source": "",
            "state": o.state,
            "stpId": "",
            "stpMode": "cancel_maker",
            "sz": fmt(o.size),
            "tag": o.tag,
            "tdMode": o.td_mode,
            "tgtCcy": "" if o.inst.is_contract else "base_ccy",
            "tpOrdPx": "",
            "tpTriggerPx": "",
            "tradeId": str(last.trade_id) if last else "",
            "uTime": str(o.update_ms),
        }

    def get_order(self, params: Params, ctx: RequestContext) -> JSON:
        """GET /trade/order?instId&ordId|clOrdId (shows fills at once, whatever the lag)."""
        return [self._order(self.engine.find(params.get("instId"), params))]

    def cancel(self, params: Params, ctx: RequestContext) -> JSON:
        """POST /trade/cancel-order {instId, ordId|clOrdId}."""
        item = ctx.body if isinstance(ctx.body, dict) else {}
        now = self.engine.now_ms()
        try:
            order = self.engine.cancel(item)
        except OrderRejected as exc:
            raise BatchFailed([_result(None, item, now, exc)]) from None
        return [{**_result(order, item, now, None), "sMsg": ""}]

    def _listed(self, params: Params, *, open_ones: bool) -> list[EmulatedOrder]:
        inst_type = inst_type_param(params, required=not open_ones)
        inst_id, ord_type = params.get("instId"), params.get("ordType")
        state = params.get("state")
        limit = min(int_param(params, "limit", 100) or 100, 100)
        cutoff = self.engine.now_ms() - CANCELED_UNFILLED_KEPT_MS
        rows = [
            o
            for o in sorted(self.engine.orders.values(), key=lambda o: o.time_ms, reverse=True)
            if o.is_open == open_ones
            and not (o.state == "canceled" and o.filled == 0 and o.update_ms < cutoff)
            and (not inst_type or o.inst.inst_type == inst_type)
            and (not inst_id or o.inst.inst_id == inst_id)
            and (not ord_type or o.ord_type in str(ord_type).split(","))
            and (not state or o.state == state)
        ]
        return rows[:limit]

    def pending(self, params: Params, ctx: RequestContext) -> JSON:
        """GET /trade/orders-pending: live and partially filled orders, newest first."""
        return [self._order(o) for o in self._listed(params, open_ones=True)]

    def history(self, params: Params, ctx: RequestContext) -> JSON:
        """GET /trade/orders-history(-archive)?instType: filled and canceled, newest first."""
        return [self._order(o) for o in self._listed(params, open_ones=False)]

    def recent_fills(self, params: Params, ctx: RequestContext) -> JSON:
        """GET /trade/fills: as /fills-history, of the last 3 days only."""
        since = self.engine.now_ms() - RECENT_FILLS_MS
        return [row for row in self.fills(params, ctx) if int(row["ts"]) >= since]

    def fills(self, params: Params, ctx: RequestContext) -> JSON:
        """GET /trade/fills-history (3 months): newest first; filters instType, instId,
        ordId."""
        inst_type = inst_type_param(params, required=False)
        inst_id, ord_id = params.get("instId"), params.get("ordId")
        limit = min(int_param(params, "limit", 100) or 100, 100)
        pairs: list[tuple[EmulatedOrder, Fill]] = [
            (o, f)
            for o in self.engine.orders.values()
            if (not inst_type or o.inst.inst_type == inst_type)
            and (not inst_id or o.inst.inst_id == inst_id)
            and (not ord_id or o.ord_id == ord_id)
            for f in o.fills
        ]
        pairs.sort(key=lambda pair: pair[1].bill_id, reverse=True)
        return [self._fill(o, f) for o, f in pairs[:limit]]

    def _fill(self, o: EmulatedOrder, f: Fill) -> JSON:
        return {
            "billId": str(f.bill_id),
            "clOrdId": o.cl_ord_id,
            "execType": "M" if f.maker else "T",
            "fee": fmt(f.fee),
            "feeCcy": f.fee_ccy,
            "fillIdxPx": fmt(f.price),
            "fillMarkPx": fmt(f.price),
            "fillPnl": fmt(f.pnl),
            "fillPx": fmt(f.price),
            "fillSz": fmt(f.size),
            "fillTime": str(f.time_ms),
            "instId": o.inst.inst_id,
            "instType": o.inst.inst_type,
            "ordId": o.ord_id,
            "posSide": o.pos_side,
            "side": o.side,
            "subType": "1" if o.side == "buy" else "2",
            "tag": o.tag,
            "tradeId": str(f.trade_id),
            "ts": str(f.time_ms),
        }
