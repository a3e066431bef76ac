"""OKX v5 public endpoints of the emulator: instruments and market data.

Each handler takes the query parameters and returns the ``data`` list of OKX's answer
(``{"code": "0", "msg": "", "data": [...]}``), or raises ``OkxError``. Numbers are
strings and times are millisecond strings, as OKX sends them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tests.support.emulators.okx._okx_engine import Engine
from tests.support.emulators.okx._okx_models import (
    INST_TYPES,
    ZERO,
    EmulatedOrder,
    Instrument,
    OkxError,
    fmt,
    param_empty,
    param_error,
)

Params = Mapping[str, Any]
JSON = Any
DAY_MS = 86_400_000
BAR_MS = {
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1H": 3_600_000,
    "2H": 7_200_000,
    "4H": 14_400_000,
    "6H": 21_600_000,
    "12H": 43_200_000,
    "1D": DAY_MS,
    "2D": 2 * DAY_MS,
    "3D": 3 * DAY_MS,
    "1W": 7 * DAY_MS,
    "1M": 30 * DAY_MS,
    "3M": 90 * DAY_MS,
}
BAR_MS.update({f"{k}utc": v for k, v in BAR_MS.items() if k[-1] in "HDWM" and k != "1H"})


@dataclass
class RequestContext:
    """Per-request flags set by injected faults, and the orders a request created."""

    partial: Decimal | None = None
    orders: list[EmulatedOrder | None] = field(default_factory=list)
    body: Any = None


@dataclass(frozen=True)
class Route:
    """One emulated endpoint and OKX's rate limit of it: ``limit`` requests per
    ``window_s`` per ``scope`` (``ip``, ``user`` or ``inst``: user and instrument)."""

    handler: Callable[[Params, RequestContext], JSON]
    signed: bool
    limit: int = 20
    window_s: float = 2.0
    scope: str = "ip"
    creates_order: bool = False


def int_param(params: Params, name: str, default: int | None = None) -> int | None:
    """An integer query parameter, 51000 when malformed."""
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise param_error(name) from None


def inst_type_param(params: Params, *, required: bool = True) -> str | None:
    """``instType``: 50014 when absent (if required), 51000 when not one of OKX's."""
    raw = params.get("instType")
    if not raw:
        if required:
            raise param_empty("instType")
        return None
    if raw not in INST_TYPES:
        raise param_error("instType")
    return str(raw)


class PublicApi:
    """Handlers of the public (unsigned) endpoints over one ``Engine``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        p, m = "/api/v5/public", "/api/v5/market"
        self.routes: dict[tuple[str, str], Route] = {
            ("GET", f"{p}/time"): Route(self.time, signed=False, limit=10),
            ("GET", f"{p}/instruments"): Route(self.instruments, signed=False),
            ("GET", f"{p}/funding-rate"): Route(self.funding_rate, signed=False),
            ("GET", f"{p}/funding-rate-history"): Route(
                self.funding_rate_history, signed=False, limit=10
            ),
            ("GET", f"{p}/mark-price"): Route(self.mark_price, signed=False, limit=10),
            ("GET", f"{p}/open-interest"): Route(self.open_interest, signed=False),
            ("GET", f"{m}/tickers"): Route(self.tickers, signed=False),
            ("GET", f"{m}/ticker"): Route(self.ticker, signed=False),
            ("GET", f"{m}/books"): Route(self.books, signed=False, limit=40),
            ("GET", f"{m}/candles"): Route(self.candles, signed=False, limit=40),
            ("GET", f"{m}/history-candles"): Route(self.candles, signed=False),
            ("GET", "/api/v5/system/status"): Route(lambda p, c: [], signed=False, limit=1),
        }

    def _of_type(self, inst_type: str) -> list[Instrument]:
        return [i for i in self.engine.instruments.values() if i.inst_type == inst_type]

    def time(self, params: Params, ctx: RequestContext) -> JSON:
        """GET /public/time."""
        return [{"ts": str(self.engine.now_ms())}]

    # ------------------------------------------------------------------ instruments
    def instruments(self, params: Params, ctx: RequestContext) -> JSON:
        """GET /public/instruments: SPOT, SWAP, FUTURES (OPTION and MARGIN are empty)."""
        inst_type = inst_type_param(params)
        if inst_type == "OPTION" and not (params.get("uly") or params.get("instFamily")):
            raise OkxError("50015", "Either parameter uly or instFamily is required.", 400)
        rows = [self._instrument(i) for i in self._of_type(str(inst_type))]
        inst_id, family = params.get("instId"), params.get("instFamily") or params.get("uly")
        return [
            r
            for r in rows
            if (not inst_id or r["instId"] == inst_id)
            and (not family or r["instFamily"] in ("", family))
        ]

    def _instrument(self, inst: Instrument) -> dict[str, JSON]:
        m = inst.market
        contract = inst.is_contract
        family = f"{m.base}-{'USD' if inst.inverse else m.quote}" if contract else ""
        return {
            "alias": "quarter" if inst.inst_type == "FUTURES" else "",
            "auctionEndTime": "",
            "baseCcy": "" if contract else m.base,
            "category": "1",
            "contTdSwTime": "",
            "ctMult": fmt(m.ct_mult) if contract else "",
            "ctType": ("inverse" if inst.inverse else "linear") if contract else "",
            "ctVal": fmt(inst.face if inst.inverse else m.ct_val) if contract else "",
            "ctValCcy": ("USD" if inst.inverse else m.base) if contract else "",
            "expTime": str(inst.expiry_ms) if inst.expiry_ms else "",
            "futureSettlement": False,
            "instFamily": family,
            "instId": inst.inst_id,
            "instType": inst.inst_type,
            "lever": str(m.max_lever) if contract else "10",
            "listTime": "1606468572000",
            "lotSz": fmt(inst.lot),
            "maxIcebergSz": "999999999",
            "maxLmtAmt": "20000000",
            "maxLmtSz": "999999999",
            "maxMktAmt": "" if contract else "1000000",
            "maxMktSz": "5000" if contract else "1000000",
            "maxStopSz": "5000",
            "maxTriggerSz": "999999999",
            "maxTwapSz": "999999999",
            "minSz": fmt(inst.min_size),
            "openType": "",
            "optType": "",
            "quoteCcy": "" if contract else m.quote,
            "ruleType": "normal",
            "settleCcy": inst.settle_ccy if contract else "",
            "state": m.state,
            "stk": "",
            "tickSz": fmt(m.tick_sz),
            "tradeQuoteCcyList": [] if contract else [m.quote],
            "uly": family,
        }

    # ------------------------------------------------------------------ tickers, books
    def _ticker(self, inst: Instrument) -> dict[str, JSON]:
        eng = self.engine
        base = inst.market.base
        quote = eng.quotes[base]
        now = eng.now_ms()
        history = eng.price_history[base]
        before = [p for t, p in history if t < now - DAY_MS]
        window = [p for t, p in history if t >= now - DAY_MS]
        open_price = before[-1] if before else (window[0] if window else quote.last)
        prices = [open_price, *window]
        size = fmt(self.engine.book(inst, 1)[1][0][1])
        return {
            "instType": inst.inst_type,
            "instId": inst.inst_id,
            "last": fmt(quote.last),
            "lastSz": "0",
            "askPx": fmt(quote.ask),
            "askSz": size,
            "bidPx": fmt(quote.bid),
            "bidSz": size,
            "open24h": fmt(open_price),
            "high24h": fmt(max(prices)),
            "low24h": fmt(min(prices)),
            "volCcy24h": "0",
            "vol24h": "0",
            "ts": str(now),
            "sodUtc0": fmt(open_price),
            "sodUtc8": fmt(open_price),
        }

    def tickers(self, params: Params, ctx: RequestContext) -> JSON:
        """GET /market/tickers?instType=..."""
        inst_type = str(inst_type_param(params))
        return [self._ticker(i) for i in self._of_type(inst_type)]

    def ticker(self, params: Params, ctx: RequestContext) -> JSON:
        """GET /market/ticker?instId=..."""
        return [self._ticker(self.engine.inst(params.get("instId")))]

    def books(self, params: Params, ctx: RequestContext) -> JSON:
        """GET /market/books?instId&sz (sizes in contracts for SWAP/FUTURES)."""
        inst = self.engine.inst(params.get("instId"))
        depth = min(int_param(params, "sz", 1) or 1, 400)
        bids, asks = self.engine.book(inst, depth)
        return [
            {
                "asks": [[fmt(p), fmt(q), "0", "1"] for p, q in asks],
                "bids": [[fmt(p), fmt(q), "0", "1"] for p, q in bids],
                "ts": str(self.engine.now_ms()),
            }
        ]

    # ------------------------------------------------------------------ candles
    def candles(self, params: Params, ctx: RequestContext) -> JSON:
        """GET /market/candles: newest first; ``after`` pages back, ``before`` forward."""
        inst = self.engine.inst(params.get("instId"))
        bar = str(params.get("bar") or "1m")
        if bar not in BAR_MS:
            raise param_error("bar")
        step = BAR_MS[bar]
        limit = min(int_param(params, "limit", 100) or 100, 300)
        now = self.engine.now_ms()
        after = int_param(params, "after")
        before = int_param(params, "before")
        # No bar opens in the future, whatever ``after`` says (ccxt's since + limit bars).
        newest = min((after - 1) if after is not None else now, now) // step * step
        history = self.engine.price_history[inst.market.base]
        rows: list[JSON] = []
        start = newest
        while len(rows) < limit and (before is None or start > before):
            rows.append(self._candle(history, start, step, now))
            start -= step
        return rows

    @staticmethod
    def _candle(history: list[tuple[int, Decimal]], start: int, step: int, now: int) -> JSON:
        earlier = [p for t, p in history if t < start]
        inside = [p for t, p in history if start <= t < start + step]
        first = earlier[-1] if earlier else (inside[0] if inside else ZERO)
        prices = [first, *inside]
        confirm = "1" if start + step <= now else "0"
        o, h, lo, c = fmt(prices[0]), fmt(max(prices)), fmt(min(prices)), fmt(prices[-1])
        return [str(start), o, h, lo, c, "0", "0", "0", confirm]

    # ------------------------------------------------------------------ funding, mark
    def _swap(self, params: Params) -> Instrument:
        inst = self.engine.inst(params.get("instId"))
        if inst.inst_type != "SWAP":
            raise param_error("instId")
        return inst

    def funding_rate(self, params: Params, ctx: RequestContext) -> JSON:
        """GET /public/funding-rate?instId (perpetuals only; ``ANY``: every perpetual)."""
        if params.get("instId") == "ANY":
            return [self._funding_row(i) for i in self._of_type("SWAP")]
        return [self._funding_row(self._swap(params))]

    def _funding_row(self, inst: Instrument) -> JSON:
        eng = self.engine
        rate = eng.funding_rates[inst.inst_id]
        settled = [e for e in eng.funding_events if e.inst_id == inst.inst_id]
        next_ms = eng.next_funding_ms()
        return {
            "formulaType": "withRate",
            "fundingRate": fmt(rate),
            "fundingTime": str(next_ms),
            "impactValue": "20000",
            "instId": inst.inst_id,
            "instType": "SWAP",
            "interestRate": "0.0001",
            "maxFundingRate": "0.0375",
            "method": "current_period",
            "minFundingRate": "-0.0375",
            "nextFundingRate": "",
            "nextFundingTime": str(next_ms + 8 * 3_600_000),
            "premium": "0",
            "settFundingRate": fmt(settled[-1].rate) if settled else fmt(rate),
            "settState": "settled",
            "sign": "",
            "ts": str(eng.now_ms()),
        }

    def funding_rate_history(self, params: Params, ctx: RequestContext) -> JSON:
        """GET /public/funding-rate-history: settlements of ``settle_funding``, newest first."""
        inst = self._swap(params)
        before, after = int_param(params, "before"), int_param(params, "after")
        limit = min(int_param(params, "limit", 100) or 100, 400)
        rows = [
            {
                "fundingRate": fmt(e.rate),
                "fundingTime": str(e.time_ms),
                "instId": e.inst_id,
                "instType": "SWAP",
                "method": "current_period",
                "realizedRate": fmt(e.rate),
            }
            for e in reversed(self.engine.funding_events)
            if e.inst_id == inst.inst_id
            and (before is None or e.time_ms > before)
            and (after is None or e.time_ms < after)
        ]
        return rows[:limit]

    def mark_price(self, params: Params, ctx: RequestContext) -> JSON:
        """GET /public/mark-price?instType[&instId] (MARGIN, SWAP, FUTURES, OPTION)."""
        inst_type = inst_type_param(params)
        if inst_type == "SPOT":
            raise param_error("instType")
        inst_id = params.get("instId")
        return [
            {
                "instType": i.inst_type,
                "instId": i.inst_id,
                "markPx": fmt(self.engine.mark_of(i.inst_id)),
                "ts": str(self.engine.now_ms()),
            }
            for i in self._of_type(str(inst_type))
            if not inst_id or i.inst_id == inst_id
        ]

    def open_interest(self, params: Params, ctx: RequestContext) -> JSON:
        """GET /public/open-interest?instType[&instId]: the market's, plus our positions."""
        inst_type = inst_type_param(params)
        if inst_type == "SPOT":
            raise param_error("instType")
        inst_id = params.get("instId")
        rows = []
        for i in self._of_type(str(inst_type)):
            if inst_id and i.inst_id != inst_id:
                continue
            oi = sum(
                (
                    abs(p.pos)
                    for p in self.engine.account.positions.values()
                    if p.inst_id == i.inst_id
                ),
                ZERO,
            )
            mark = self.engine.mark_of(i.inst_id)
            oi += i.contracts(i.market.open_interest, mark)
            coins = i.base_qty(oi, mark)
            rows.append(
                {
                    "instType": i.inst_type,
                    "instId": i.inst_id,
                    "oi": fmt(oi),
                    "oiCcy": fmt(coins),
                    "oiUsd": fmt(coins * mark),
                    "ts": str(self.engine.now_ms()),
                }
            )
        return rows
