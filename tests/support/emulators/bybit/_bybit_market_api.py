"""Bybit v5 public endpoints of the emulator: instruments, tickers, book, klines, funding.

Each handler takes the query parameters and returns the ``result`` object of Bybit's
envelope, or raises ``BybitError``. Numbers are strings, as Bybit sends them.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tests.support.emulators._common import decimals_of, floor_to, fmt
from tests.support.emulators.bybit._bybit_engine import Engine, Params
from tests.support.emulators.bybit._bybit_models import Instrument, params_error

JSON = Any
INTERVALS_MS = {
    **{str(m): m * 60_000 for m in (1, 3, 5, 15, 30, 60, 120, 240, 360, 720)},
    "D": 86_400_000,
    "W": 604_800_000,
    "M": 2_592_000_000,
}
EMPTY_CATEGORIES = ("option",)
LAUNCH_MS = 1_585_526_400_000


def int_param(params: Params, name: str, default: int, low: int = 1, high: int = 1000) -> int:
    """An integer parameter inside [low, high] (10001 otherwise)."""
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(str(raw))
    except ValueError:
        raise params_error(f"params error: {name} invalid") from None
    if not low <= value <= high:
        raise params_error(f"params error: {name} out of range [{low}, {high}]")
    return value


def page(
    rows: list[JSON], params: Params, default: int, high: int, cap: int | None = None
) -> tuple[list[JSON], str]:
    """One page of ``rows`` and the next cursor ("" on the last page).

    ``cap`` (a steering knob) serves fewer rows than the ``limit`` asked, to make a
    client walk the cursor.
    """
    limit = min(int_param(params, "limit", default, 1, high), cap or high)
    cursor = str(params.get("cursor") or "")
    try:
        start = int(cursor.removeprefix("page_")) if cursor else 0
    except ValueError:
        raise params_error("params error: cursor invalid") from None
    chunk = rows[start : start + limit]
    more = start + limit < len(rows)
    return chunk, f"page_{start + limit}" if more else ""


class MarketApi:
    """The /v5/market/* handlers over one ``Engine``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.book = engine.book
        self.page_cap = 1000

    def time(self, params: Params) -> JSON:
        """GET /v5/market/time."""
        now = self.engine.now_ms()
        return {"timeSecond": str(now // 1000), "timeNano": str(now * 1_000_000)}

    # ------------------------------------------------------------------ instruments
    def _spot_info(self, inst: Instrument) -> JSON:
        m = inst.market
        return {
            "symbol": inst.symbol,
            "baseCoin": m.base,
            "quoteCoin": m.quote,
            "innovation": "0",
            "status": "Trading",
            "marginTrading": "utaOnly",
            "stTag": "0",
            "lotSizeFilter": {
                "basePrecision": fmt(m.spot_base_precision),
                "quotePrecision": "0.00000001",
                "minOrderQty": fmt(m.spot_base_precision),
                "maxOrderQty": fmt(m.max_qty * 100),
                "minOrderAmt": fmt(m.spot_min_amt),
                "maxOrderAmt": "8000000",
            },
            "priceFilter": {"tickSize": fmt(m.spot_tick_size)},
            "riskParameters": {"priceLimitRatioX": "0.05", "priceLimitRatioY": "0.1"},
        }

    def _linear_info(self, inst: Instrument) -> JSON:
        m = inst.market
        dated = bool(inst.delivery_ms)
        row = {
            "symbol": inst.symbol,
            "contractType": inst.contract_type,
            "status": "Trading",
            "baseCoin": m.base,
            "quoteCoin": m.quote,
            "launchTime": str(LAUNCH_MS),
            "deliveryTime": str(inst.delivery_ms),
            "deliveryFeeRate": "0.0005" if dated else "",
            "priceScale": str(decimals_of(m.tick_size)),
            "leverageFilter": {
                "minLeverage": "1",
                "maxLeverage": f"{m.max_leverage}.00",
                "leverageStep": "0.01",
            },
            "priceFilter": {
                "minPrice": fmt(m.tick_size),
                "maxPrice": "1999999.8",
                "tickSize": fmt(m.tick_size),
            },
            "lotSizeFilter": {
                "maxOrderQty": fmt(m.max_qty),
                "minOrderQty": fmt(m.min_qty),
                "qtyStep": fmt(m.qty_step),
                "postOnlyMaxOrderQty": fmt(m.max_qty),
                "maxMktOrderQty": fmt(m.max_qty),
                "minNotionalValue": fmt(m.min_notional),
            },
            "unifiedMarginTrade": True,
            "fundingInterval": 0 if dated else m.funding_interval_min,
            "settleCoin": m.quote,
            "copyTrading": "both",
            "upperFundingRate": "0.005",
            "lowerFundingRate": "-0.005",
            "isPreListing": False,
            "preListingInfo": None,
            "displayName": "",
        }
        return self._inverse_info(inst, row) if inst.inverse else row

    def _inverse_info(self, inst: Instrument, row: JSON) -> JSON:
        """An inverse perpetual (``BTCUSD``) as the linear row, but quoted in USD, settled
        in the base coin, lots in USD contracts (ccxt takes ``minOrderQty`` as the
        contract size: 1 USD) and no minimum order value."""
        step, least, most = inst.lot
        lots = {"maxOrderQty": fmt(most), "minOrderQty": fmt(least), "qtyStep": fmt(step)}
        lots.update({"postOnlyMaxOrderQty": fmt(most), "maxMktOrderQty": fmt(most)})
        row.update(
            quoteCoin="USD",
            settleCoin=inst.market.base,
            copyTrading="none",
            lotSizeFilter={**lots, "minNotionalValue": ""},
        )
        return row

    def instruments_info(self, params: Params) -> JSON:
        """GET /v5/market/instruments-info: spot in one answer, linear by cursor pages."""
        category = params.get("category")
        if category in EMPTY_CATEGORIES:
            return {"category": category, "list": [], "nextPageCursor": ""}
        cat = self.book.check_category(category)
        status = params.get("status")
        rows = [
            inst
            for inst in self.book.instruments[cat].values()
            if params.get("symbol") in (None, "", inst.symbol)
            and params.get("baseCoin") in (None, "", inst.market.base)
            and status in (None, "", "Trading")
        ]
        if cat == "spot":
            return {"category": "spot", "list": [self._spot_info(i) for i in rows]}
        chunk, cursor = page(rows, params, 500, 1000, self.page_cap)
        return {
            "category": cat,
            "list": [self._linear_info(i) for i in chunk],
            "nextPageCursor": cursor,
        }

    # ------------------------------------------------------------------ tickers
    def _ticker(self, inst: Instrument) -> JSON:
        m = inst.market
        q = self.book.quotes[m.base]
        history = [p for _, p in self.book.history[m.base]] or [q.last]
        prev = history[0]
        row: dict[str, JSON] = {
            "symbol": inst.symbol,
            "bid1Price": fmt(q.bid),
            "bid1Size": fmt(m.level_qty),
            "ask1Price": fmt(q.ask),
            "ask1Size": fmt(m.level_qty),
            "lastPrice": fmt(q.last),
            "prevPrice24h": fmt(prev),
            "price24hPcnt": fmt(((q.last - prev) / prev).quantize(Decimal("0.0001"))),
            "highPrice24h": fmt(max(history)),
            "lowPrice24h": fmt(min(history)),
            "turnover24h": "0",
            "volume24h": "0",
        }
        if inst.category == "spot":
            row["usdIndexPrice"] = fmt(q.index)
            return row
        dated = bool(inst.delivery_ms)
        row.update(
            {
                "indexPrice": fmt(q.index),
                "markPrice": fmt(q.mark),
                "prevPrice1h": fmt(prev),
                "openInterest": fmt(m.open_interest),
                "openInterestValue": fmt(
                    m.open_interest / q.mark if inst.inverse else m.open_interest * q.mark
                ),
                "fundingRate": "" if dated else fmt(self.book.funding_rates[m.base]),
                "nextFundingTime": "0" if dated else str(self.book.next_funding_ms(m)),
                "predictedDeliveryPrice": "",
                "basisRate": "",
                "basis": "",
                "deliveryFeeRate": "",
                "deliveryTime": str(inst.delivery_ms),
                "curPreListingPhase": "",
            }
        )
        return row

    def tickers(self, params: Params) -> JSON:
        """GET /v5/market/tickers (linear: with funding rate, mark and index)."""
        category = params.get("category")
        if category in EMPTY_CATEGORIES:
            return {"category": category, "list": []}
        cat = self.book.check_category(category)
        symbol = params.get("symbol")
        if symbol:
            rows = [self._ticker(self.book.instrument(cat, symbol, public=True))]
        else:
            base = params.get("baseCoin")
            rows = [
                self._ticker(i)
                for i in self.book.instruments[cat].values()
                if base in (None, "", i.market.base)
            ]
        return {"category": cat, "list": rows}

    def orderbook(self, params: Params) -> JSON:
        """GET /v5/market/orderbook (``b``/``a`` levels, ``ts``, ``u``)."""
        cat = self.book.check_category(params.get("category"))
        inst = self.book.instrument(cat, params.get("symbol"), public=True)
        limit = int_param(
            params, "limit", 1 if cat == "spot" else 25, 1, 200 if cat == "spot" else 500
        )
        bids, asks = self.book.book(inst.market.base, limit)
        if inst.inverse:  # an inverse book's sizes are USD contracts
            bids, asks = (
                [(p, floor_to(q * p, Decimal(1))) for p, q in side] for side in (bids, asks)
            )
        now = self.engine.now_ms()
        return {
            "s": inst.symbol,
            "b": [[fmt(p), fmt(q)] for p, q in bids],
            "a": [[fmt(p), fmt(q)] for p, q in asks],
            "ts": now,
            "u": now,
            "seq": now,
            "cts": now,
        }

    def _kline_rows(self, params: Params) -> tuple[str, Instrument, list[tuple[Any, ...]]]:
        category = params.get("category") or "linear"
        inst = self.book.instrument(category, params.get("symbol"), public=True)
        interval = str(params.get("interval") or "")
        if interval not in INTERVALS_MS:
            raise params_error("params error: interval invalid")
        limit = int_param(params, "limit", 200, 1, 1000)
        now = self.engine.now_ms()
        end = int_param(params, "end", now, 0, 1 << 62)
        start = int_param(params, "start", 0, 0, 1 << 62)
        rows = self.book.candles(inst.market.base, INTERVALS_MS[interval], start, end, limit)
        return category, inst, list(reversed(rows))

    def kline(self, params: Params) -> JSON:
        """GET /v5/market/kline: newest first; no volume (the emulated book trades none)."""
        category, inst, rows = self._kline_rows(params)
        return {
            "category": category,
            "symbol": inst.symbol,
            "list": [
                [str(t), fmt(o), fmt(h), fmt(lo), fmt(c), "0", "0"] for t, o, h, lo, c in rows
            ],
        }

    def price_kline(self, params: Params) -> JSON:
        """GET /v5/market/mark-price-kline and index-price-kline."""
        category, inst, rows = self._kline_rows(params)
        return {
            "category": category,
            "symbol": inst.symbol,
            "list": [[str(t), fmt(o), fmt(h), fmt(lo), fmt(c)] for t, o, h, lo, c in rows],
        }

    def funding_history(self, params: Params) -> JSON:
        """GET /v5/market/funding/history: settlements, newest first."""
        cat = self.book.check_category(params.get("category"))
        if cat == "spot":
            raise params_error("params error: category only support linear or inverse")
        inst = self.book.instrument(cat, params.get("symbol"), public=True)
        start = int_param(params, "startTime", 0, 0, 1 << 62)
        end = int_param(params, "endTime", 1 << 62, 0, 1 << 62)
        limit = int_param(params, "limit", 200, 1, 200)
        rows = [
            {
                "symbol": e.symbol,
                "fundingRate": fmt(e.rate),
                "fundingRateTimestamp": str(e.time_ms),
            }
            for e in reversed(self.book.funding_events)
            if e.symbol == inst.symbol and start <= e.time_ms <= end
        ]
        return {"category": cat, "list": rows[:limit]}

    def open_interest(self, params: Params) -> JSON:
        """GET /v5/market/open-interest: the configured open interest, one point."""
        inst = self.book.instrument(params.get("category"), params.get("symbol"), public=True)
        return {
            "symbol": inst.symbol,
            "category": inst.category,
            "list": [
                {
                    "openInterest": fmt(inst.market.open_interest),
                    "timestamp": str(self.engine.now_ms()),
                }
            ],
            "nextPageCursor": "",
        }
