"""Binance REST endpoints of the emulator: request parameters in, Binance-shaped JSON out.

Each handler takes the merged query/body parameters and returns a JSON-able value
or raises ``BinanceError``. Numbers are rendered as strings, as Binance does.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tests.support.emulators.binance._binance_engine import (
    FUTURES_MAKER_FEE,
    FUTURES_TAKER_FEE,
    Engine,
    PositionView,
    parse_decimal,
)
from tests.support.emulators.binance._binance_models import (
    ZERO,
    BinanceError,
    EmulatedMarket,
    EmulatedOrder,
    Fill,
    Venue,
    decimals_of,
    fmt,
    fmt_fixed,
)

Params = Mapping[str, str]
JSON = Any

INTERVAL_MS = {
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
    "3d": 259_200_000,
    "1w": 604_800_000,
    "1M": 2_592_000_000,
}
DAY_MS = 86_400_000


@dataclass
class RequestContext:
    """Per-request flags set by injected faults, and the order a request created."""

    partial: Decimal | None = None
    order: EmulatedOrder | None = None


@dataclass(frozen=True)
class Route:
    """One emulated endpoint."""

    handler: Callable[[Params, RequestContext], JSON]
    signed: bool
    creates_order: Venue | None = None


def futures_order_terms(o: EmulatedOrder, *, ack: bool) -> dict[str, JSON]:
    """The fields a USDⓈ-M and a COIN-M order answer share, after the quantities."""
    return {
        "timeInForce": o.time_in_force,
        "type": o.type,
        "reduceOnly": o.reduce_only,
        "closePosition": False,
        "side": o.side,
        "positionSide": o.position_side,
        "stopPrice": "0",
        "workingType": "CONTRACT_PRICE",
        "priceProtect": False,
        "origType": o.type,
        "priceMatch": "NONE",
        "selfTradePreventionMode": "EXPIRE_MAKER",
        "time": o.time_ms,
        "updateTime": o.time_ms if ack else o.update_ms,
    }


class BinanceApi:
    """The route table and handlers over one ``Engine``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        s, f = "/api/v3", "/fapi"
        self.routes: dict[tuple[str, str], Route] = {
            # spot, public
            ("GET", f"{s}/ping"): Route(lambda p, c: {}, signed=False),
            ("GET", f"{s}/time"): Route(self.time, signed=False),
            ("GET", f"{s}/exchangeInfo"): Route(self.spot_exchange_info, signed=False),
            ("GET", f"{s}/ticker/bookTicker"): Route(self.spot_book_ticker, signed=False),
            ("GET", f"{s}/ticker/24hr"): Route(self.spot_ticker_24hr, signed=False),
            ("GET", f"{s}/ticker/price"): Route(self.spot_ticker_price, signed=False),
            ("GET", f"{s}/depth"): Route(self.spot_depth, signed=False),
            ("GET", f"{s}/klines"): Route(self.spot_klines, signed=False),
            # spot, signed
            ("GET", f"{s}/account"): Route(self.spot_account, signed=True),
            ("POST", f"{s}/order"): Route(self.spot_create, signed=True, creates_order="spot"),
            ("GET", f"{s}/order"): Route(self.spot_get_order, signed=True),
            ("DELETE", f"{s}/order"): Route(self.spot_cancel, signed=True),
            ("GET", f"{s}/openOrders"): Route(self.spot_open_orders, signed=True),
            ("DELETE", f"{s}/openOrders"): Route(self.spot_cancel_all, signed=True),
            ("GET", f"{s}/allOrders"): Route(self.spot_all_orders, signed=True),
            ("GET", f"{s}/myTrades"): Route(self.spot_my_trades, signed=True),
            # futures, public
            ("GET", f"{f}/v1/ping"): Route(lambda p, c: {}, signed=False),
            ("GET", f"{f}/v1/time"): Route(self.time, signed=False),
            ("GET", f"{f}/v1/exchangeInfo"): Route(self.fut_exchange_info, signed=False),
            ("GET", f"{f}/v1/ticker/bookTicker"): Route(self.fut_book_ticker, signed=False),
            ("GET", f"{f}/v1/ticker/24hr"): Route(self.fut_ticker_24hr, signed=False),
            ("GET", f"{f}/v1/ticker/price"): Route(self.fut_ticker_price, signed=False),
            ("GET", f"{f}/v2/ticker/price"): Route(self.fut_ticker_price, signed=False),
            ("GET", f"{f}/v1/depth"): Route(self.fut_depth, signed=False),
            ("GET", f"{f}/v1/premiumIndex"): Route(self.fut_premium_index, signed=False),
            ("GET", f"{f}/v1/fundingRate"): Route(self.fut_funding_rate, signed=False),
            ("GET", f"{f}/v1/openInterest"): Route(self.fut_open_interest, signed=False),
            ("GET", f"{f}/v1/klines"): Route(self.fut_klines, signed=False),
            # futures, signed
            ("GET", f"{f}/v2/account"): Route(self.fut_account_v2, signed=True),
            ("GET", f"{f}/v3/account"): Route(self.fut_account_v3, signed=True),
            ("GET", f"{f}/v2/balance"): Route(self.fut_balance, signed=True),
            ("GET", f"{f}/v3/balance"): Route(self.fut_balance, signed=True),
            ("GET", f"{f}/v2/positionRisk"): Route(self.fut_position_risk_v2, signed=True),
            ("GET", f"{f}/v3/positionRisk"): Route(self.fut_position_risk_v3, signed=True),
            ("GET", f"{f}/v1/leverageBracket"): Route(self.fut_leverage_bracket, signed=True),
            ("GET", f"{f}/v1/symbolConfig"): Route(self.fut_symbol_config, signed=True),
            ("GET", f"{f}/v1/commissionRate"): Route(self.fut_commission_rate, signed=True),
            ("POST", f"{f}/v1/leverage"): Route(self.fut_set_leverage, signed=True),
            ("POST", f"{f}/v1/marginType"): Route(self.fut_set_margin_type, signed=True),
            ("POST", f"{f}/v1/positionMargin"): Route(self.fut_position_margin, signed=True),
            ("GET", f"{f}/v1/positionMargin/history"): Route(
                self.fut_position_margin_history, signed=True
            ),
            ("GET", f"{f}/v1/positionSide/dual"): Route(self.fut_get_dual, signed=True),
            # wallets: transfers between spot (MAIN) and USDⓈ-M futures (UMFUTURE)
            ("POST", "/sapi/v1/asset/transfer"): Route(self.wallet_transfer, signed=True),
            ("GET", "/sapi/v1/asset/transfer"): Route(self.wallet_transfers, signed=True),
            ("POST", f"{f}/v1/positionSide/dual"): Route(self.fut_set_dual, signed=True),
            ("POST", f"{f}/v1/order"): Route(self.fut_create, signed=True, creates_order="futures"),
            ("GET", f"{f}/v1/order"): Route(self.fut_get_order, signed=True),
            ("DELETE", f"{f}/v1/order"): Route(self.fut_cancel, signed=True),
            ("GET", f"{f}/v1/openOrders"): Route(self.fut_open_orders, signed=True),
            ("GET", f"{f}/v1/openOrder"): Route(self.fut_open_order, signed=True),
            ("DELETE", f"{f}/v1/allOpenOrders"): Route(self.fut_cancel_all, signed=True),
            ("GET", f"{f}/v1/allOrders"): Route(self.fut_all_orders, signed=True),
            ("GET", f"{f}/v1/userTrades"): Route(self.fut_user_trades, signed=True),
            ("GET", f"{f}/v1/income"): Route(self.fut_income, signed=True),
        }

    # ------------------------------------------------------------------ helpers
    def _markets(self, venue: Venue, params: Params) -> list[EmulatedMarket]:
        """Markets named by ``symbol``/``symbols`` (all of the venue when absent)."""
        eng = self.engine
        if "symbol" in params:
            return [eng.market_for(params["symbol"], venue)]
        if "symbols" in params:
            try:
                names = json.loads(params["symbols"])
            except ValueError:
                raise BinanceError(
                    400, -1100, "Illegal characters found in parameter 'symbols'."
                ) from None
            return [eng.market_for(str(n), venue) for n in names]
        return [
            m
            for m in eng.markets.values()
            if (m.spot if venue == "spot" else m.perp) and eng.listed(venue, m)
        ]

    def _one_or_many(
        self, venue: Venue, params: Params, render: Callable[[EmulatedMarket], JSON]
    ) -> JSON:
        """One row for ``symbol``, else a row per market; a suspended market has no quote
        (left out of a listing, -1121 when named, as Binance's tickers do)."""
        markets = self._markets(venue, params)
        trading = [m for m in markets if self.engine.quoted(venue, m)]
        if "symbol" in params and not trading:
            raise BinanceError(400, -1121, "Invalid symbol.")
        rows = [render(m) for m in trading]
        return rows[0] if "symbol" in params else rows

    @staticmethod
    def _int(params: Params, name: str, default: int | None = None) -> int | None:
        raw = params.get(name)
        if raw is None or raw == "":
            return default
        try:
            return int(raw)
        except ValueError:
            raise BinanceError(
                400, -1100, f"Illegal characters found in parameter '{name}'."
            ) from None

    def time(self, params: Params, ctx: RequestContext) -> JSON:
        """GET /api/v3/time, /fapi/v1/time."""
        return {"serverTime": self.engine.now_ms()}

    # ------------------------------------------------------------------ market data
    def _depth(self, venue: Venue, params: Params) -> JSON:
        market = self.engine.market_for(params.get("symbol"), venue)
        limit = self._int(params, "limit", market.depth_levels) or market.depth_levels
        bids, asks = self.engine.book(market.base, limit)
        now = self.engine.now_ms()
        body: dict[str, JSON] = {"lastUpdateId": now}
        if venue == "futures":
            body.update({"E": now, "T": now})
        body["bids"] = [[fmt(p), fmt(q)] for p, q in bids]
        body["asks"] = [[fmt(p), fmt(q)] for p, q in asks]
        return body

    def spot_depth(self, params: Params, ctx: RequestContext) -> JSON:
        """GET /api/v3/depth."""
        return self._depth("spot", params)

    def fut_depth(self, params: Params, ctx: RequestContext) -> JSON:
        """GET /fapi/v1/depth."""
        return self._depth("futures", params)

    def _book_row(self, market: EmulatedMarket, venue: Venue) -> JSON:
        quote = self.engine.quotes[market.base]
        row: dict[str, JSON] = {
            "symbol": market.symbol_id,
            "bidPrice": fmt(quote.bid),
            "bidQty": fmt(market.level_qty),
            "askPrice": fmt(quote.ask),
            "askQty": fmt(market.level_qty),
        }
        if venue == "futures":
            now = self.engine.now_ms()
            row.update({"time": now, "lastUpdateId": now})
        return row

    def spot_book_ticker(self, params: Params, ctx: RequestContext) -> JSON:
        """GET /api/v3/ticker/bookTicker."""
        return self._one_or_many("spot", params, lambda m: self._book_row(m, "spot"))

    def fut_book_ticker(self, params: Params, ctx: RequestContext) -> JSON:
        """GET /fapi/v1/ticker/bookTicker."""
        return self._one_or_many("futures", params, lambda m: self._book_row(m, "futures"))

    def _price_row(self, market: EmulatedMarket) -> JSON:
        return {
            "symbol": market.symbol_id,
            "price": fmt(self.engine.quotes[market.base].last),
            "time": self.engine.now_ms(),
        }

    def spot_ticker_price(self, params: Params, ctx: RequestContext) -> JSON:
        """GET /api/v3/ticker/price."""
        return self._one_or_many("spot", params, self._price_row)

    def fut_ticker_price(self, params: Params, ctx: RequestContext) -> JSON:
        """GET /fapi/v1|v2/ticker/price."""
        return self._one_or_many("futures", params, self._price_row)

    def _volume(self, venue: Venue, symbol: str, since_ms: int) -> tuple[Decimal, Decimal, int]:
        qty = value = ZERO
        count = 0
        for order in self.engine.orders.values():
            if order.venue != venue or order.symbol != symbol:
                continue
            for fill in order.fills:
                if fill.time_ms >= since_ms:
                    qty += fill.qty
                    value += fill.qty * fill.price
                    count += 1
        return qty, value, count

    def _ticker_24hr(self, market: EmulatedMarket, venue: Venue) -> JSON:
        eng = self.engine
        now = eng.now_ms()
        since = now - DAY_MS
        history = eng.price_history[market.base]
        window = [p for t, p in history if t >= since]
        before = [p for t, p in history if t < since]
        open_price = before[-1] if before else (window[0] if window else ZERO)
        prices = [open_price, *window]
        last = eng.quotes[market.base].last
        qty, value, count = self._volume(venue, market.symbol_id, since)
        change = last - open_price
        row: dict[str, JSON] = {
            "symbol": market.symbol_id,
            "priceChange": fmt(change),
            "priceChangePercent": fmt_fixed(change * 100 / open_price, 3) if open_price else "0",
            "weightedAvgPrice": fmt(value / qty) if qty else fmt(last),
        }
        if venue == "spot":
            quote = eng.quotes[market.base]
            row.update(
                {
                    "prevClosePrice": fmt(open_price),
                    "lastPrice": fmt(last),
                    "lastQty": "0",
                    "bidPrice": fmt(quote.bid),
                    "bidQty": fmt(market.level_qty),
                    "askPrice": fmt(quote.ask),
                    "askQty": fmt(market.level_qty),
                }
            )
        else:
            row.update({"lastPrice": fmt(last), "lastQty": "0"})
        row.update(
            {
                "openPrice": fmt(open_price),
                "highPrice": fmt(max(prices)),
                "lowPrice": fmt(min(prices)),
                "volume": fmt(qty),
                "quoteVolume": fmt(value),
                "openTime": since,
                "closeTime": now,
                "firstId": 0,
                "lastId": count,
                "count": count,
            }
        )
        return row

    def spot_ticker_24hr(self, params: Params, ctx: RequestContext) -> JSON:
        """GET /api/v3/ticker/24hr."""
        return self._one_or_many("spot", params, lambda m: self._ticker_24hr(m, "spot"))

    def fut_ticker_24hr(self, params: Params, ctx: RequestContext) -> JSON:
        """GET /fapi/v1/ticker/24hr (no bid/ask, as on Binance)."""
        return self._one_or_many("futures", params, lambda m: self._ticker_24hr(m, "futures"))

    def _klines(self, venue: Venue, params: Params) -> JSON:
        eng = self.engine
        market = eng.market_for(params.get("symbol"), venue)
        interval = params.get("interval", "")
        if interval not in INTERVAL_MS:
            raise BinanceError(400, -1120, "Invalid interval.")
        step = INTERVAL_MS[interval]
        limit = min(self._int(params, "limit", 500) or 500, 1500)
        end = self._int(params, "endTime") or eng.now_ms()
        start = self._int(params, "startTime")
        first = (start // step) * step if start is not None else (end // step - limit + 1) * step
        history = eng.price_history[market.base]
        candles: list[JSON] = []
        prev = history[0][1] if history else ZERO
        index = 0
        open_time = first
        while open_time <= end and len(candles) < limit:
            close_time = open_time + step - 1
            while index < len(history) and history[index][0] < open_time:
                prev = history[index][1]
                index += 1
            inside: list[Decimal] = []
            while index < len(history) and history[index][0] <= close_time:
                inside.append(history[index][1])
                index += 1
            prices = [prev, *inside]
            qty, value, count = self._volume(venue, market.symbol_id, open_time)
            later_qty, later_value, later_count = self._volume(
                venue, market.symbol_id, close_time + 1
            )
            candles.append(
                [
                    open_time,
                    fmt(prices[0]),
                    fmt(max(prices)),
                    fmt(min(prices)),
                    fmt(prices[-1]),
                    fmt(qty - later_qty),
                    close_time,
                    fmt(value - later_value),
                    count - later_count,
                    "0",
                    "0",
                    "0",
                ]
            )
            prev = prices[-1]
            open_time += step
        return candles

    def spot_klines(self, params: Params, ctx: RequestContext) -> JSON:
        """GET /api/v3/klines."""
        return self._klines("spot", params)

    def fut_klines(self, params: Params, ctx: RequestContext) -> JSON:
        """GET /fapi/v1/klines."""
        return self._klines("futures", params)

    def fut_premium_index(self, params: Params, ctx: RequestContext) -> JSON:
        """GET /fapi/v1/premiumIndex: mark, index, last funding rate, next funding time."""
        eng = self.engine

        def row(market: EmulatedMarket) -> JSON:
            quote = eng.quotes[market.base]
            return {
                "symbol": market.symbol_id,
                "markPrice": fmt(quote.mark),
                "indexPrice": fmt(quote.index),
                "estimatedSettlePrice": fmt(quote.index),
                "lastFundingRate": fmt(eng.funding_rates[market.base]),
                "interestRate": "0.00010000",
                "nextFundingTime": eng.next_funding_ms(),
                "time": eng.now_ms(),
            }

        return self._one_or_many("futures", params, row)

    def fut_funding_rate(self, params: Params, ctx: RequestContext) -> JSON:
        """GET /fapi/v1/fundingRate: settlements recorded by ``settle_funding``."""
        symbol = params.get("symbol")
        if symbol is not None:
            self.engine.market_for(symbol, "futures")
        start = self._int(params, "startTime")
        end = self._int(params, "endTime")
        limit = self._int(params, "limit", 100) or 100
        rows = [
            {
                "symbol": e.symbol,
                "fundingRate": fmt(e.rate),
                "fundingTime": e.time_ms,
                "markPrice": fmt(e.mark_price),
            }
            for e in self.engine.funding_events
            if (symbol is None or e.symbol == symbol)
            and (start is None or e.time_ms >= start)
            and (end is None or e.time_ms <= end)
        ]
        return rows[-limit:] if start is None else rows[:limit]

    def fut_open_interest(self, params: Params, ctx: RequestContext) -> JSON:
        """GET /fapi/v1/openInterest."""
        market = self.engine.market_for(params.get("symbol"), "futures")
        ours = abs(self.engine.true_position(market.base))
        return {
            "openInterest": fmt(market.open_interest + ours),
            "symbol": market.symbol_id,
            "time": self.engine.now_ms(),
        }

    # ------------------------------------------------------------------ exchange info
    def spot_exchange_info(self, params: Params, ctx: RequestContext) -> JSON:
        """GET /api/v3/exchangeInfo."""
        symbols = []
        for m in self._markets("spot", params):
            symbols.append(
                {
                    "symbol": m.symbol_id,
                    "status": self.engine.symbol_status("spot", m),
                    "baseAsset": m.base,
                    "baseAssetPrecision": 8,
                    "quoteAsset": m.quote,
                    "quotePrecision": 8,
                    "quoteAssetPrecision": 8,
                    "baseCommissionPrecision": 8,
                    "quoteCommissionPrecision": 8,
                    "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET"],
                    "icebergAllowed": False,
                    "ocoAllowed": False,
                    "otoAllowed": False,
                    "quoteOrderQtyMarketAllowed": True,
                    "allowTrailingStop": False,
                    "cancelReplaceAllowed": False,
                    "isSpotTradingAllowed": True,
                    "isMarginTradingAllowed": False,
                    "filters": [
                        {
                            "filterType": "PRICE_FILTER",
                            "minPrice": fmt_fixed(m.tick_size),
                            "maxPrice": "1000000.00000000",
                            "tickSize": fmt_fixed(m.tick_size),
                        },
                        {
                            "filterType": "LOT_SIZE",
                            "minQty": fmt_fixed(m.min_qty),
                            "maxQty": fmt_fixed(m.max_qty),
                            "stepSize": fmt_fixed(m.step_size),
                        },
                        {
                            "filterType": "MARKET_LOT_SIZE",
                            "minQty": "0.00000000",
                            "maxQty": fmt_fixed(m.max_qty),
                            "stepSize": "0.00000000",
                        },
                        {
                            "filterType": "NOTIONAL",
                            "minNotional": fmt_fixed(m.spot_min_notional),
                            "applyMinToMarket": True,
                            "maxNotional": "9000000.00000000",
                            "applyMaxToMarket": False,
                            "avgPriceMins": 5,
                        },
                    ],
                    "permissions": [],
                    "permissionSets": [["SPOT"]],
                    "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
                    "allowedSelfTradePreventionModes": [
                        "EXPIRE_TAKER",
                        "EXPIRE_MAKER",
                        "EXPIRE_BOTH",
                    ],
                }
            )
        return {
            "timezone": "UTC",
            "serverTime": self.engine.now_ms(),
            "rateLimits": [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": 6000,
                },
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
            ],
            "exchangeFilters": [],
            "symbols": symbols,
        }

    def fut_exchange_info(self, params: Params, ctx: RequestContext) -> JSON:
        """GET /fapi/v1/exchangeInfo."""
        symbols: list[dict[str, Any]] = []
        for m in self._markets("futures", params):
            symbols.append(
                {
                    "symbol": m.symbol_id,
                    "pair": m.symbol_id,
                    "contractType": "PERPETUAL",
                    "deliveryDate": 4133404800000,
                    "onboardDate": 1569398400000,
                    "status": self.engine.symbol_status("futures", m),
                    "maintMarginPercent": "2.5000",
                    "requiredMarginPercent": "5.0000",
                    "baseAsset": m.base,
                    "quoteAsset": m.quote,
                    "marginAsset": m.quote,
                    "pricePrecision": decimals_of(m.tick_size) + 1,
                    "quantityPrecision": decimals_of(m.step_size),
                    "baseAssetPrecision": 8,
                    "quotePrecision": 8,
                    "underlyingType": "COIN",
                    "underlyingSubType": [],
                    "triggerProtect": "0.0500",
                    "liquidationFee": "0.012500",
                    "marketTakeBound": "0.05",
                    "maxMoveOrderLimit": 10000,
                    "filters": [
                        {
                            "filterType": "PRICE_FILTER",
                            "minPrice": fmt(m.tick_size),
                            "maxPrice": "4529764",
                            "tickSize": fmt(m.tick_size),
                        },
                        {
                            "filterType": "LOT_SIZE",
                            "minQty": fmt(m.min_qty),
                            "maxQty": fmt(m.max_qty),
                            "stepSize": fmt(m.step_size),
                        },
                        {
                            "filterType": "MARKET_LOT_SIZE",
                            "minQty": fmt(m.min_qty),
                            "maxQty": fmt(m.max_qty),
                            "stepSize": fmt(m.step_size),
                        },
                        {"filterType": "MAX_NUM_ORDERS", "limit": 200},
                        {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
                        {"filterType": "MIN_NOTIONAL", "notional": fmt(m.min_notional)},
                        {
                            "filterType": "PERCENT_PRICE",
                            "multiplierUp": "1.0500",
                            "multiplierDown": "0.9500",
                            "multiplierDecimal": "4",
                        },
                    ],
                    "orderTypes": ["LIMIT", "MARKET"],
                    "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
                }
            )
            if m.quarterly_delivery is not None:
                # Listed only (markets load, nothing trades): a quarterly is BTCUSDT_261225.
                delivery = m.quarterly_delivery
                symbols.append(
                    {
                        **symbols[-1],
                        "symbol": f"{m.symbol_id}_{delivery:%y%m%d}",
                        "contractType": "CURRENT_QUARTER",
                        "deliveryDate": int(delivery.timestamp() * 1000),
                    }
                )
        return {
            "timezone": "UTC",
            "serverTime": self.engine.now_ms(),
            "futuresType": "U_MARGINED",
            "rateLimits": [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": 2400,
                },
                {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300},
            ],
            "exchangeFilters": [],
            "assets": [
                {
                    "asset": self.engine.quote_asset,
                    "marginAvailable": True,
                    "autoAssetExchange": "-10000",
                }
            ],
            "symbols": symbols,
        }

    # ------------------------------------------------------------------ spot account
    def spot_account(self, params: Params, ctx: RequestContext) -> JSON:
        """GET /api/v3/account (balances, lagged by ``position_view_lag_s``)."""
        view = self.engine.spot_view()
        free, locked = view.free, view.locked
        assets = sorted(set(free) | set(locked))
        return {
            "makerCommission": 10,
            "takerCommission": 10,
            "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": {
                "maker": "0.00100000",
                "taker": "0.00100000",
                "buyer": "0.00000000",
                "seller": "0.00000000",
            },
            "canTrade": True,
            "canWithdraw": True,
            "canDeposit": True,
            "brokered": False,
            "requireSelfTradePrevention": False,
            "preventSor": False,
            "updateTime": view.update_ms,
            "accountType": "SPOT",
            "balances": [
                {
                    "asset": a,
                    "free": fmt_fixed(free.get(a, ZERO)),
                    "locked": fmt_fixed(locked.get(a, ZERO)),
                }
                for a in assets
            ],
            "permissions": ["SPOT"],
            "uid": 354937868,
        }

    # ------------------------------------------------------------------ spot orders
    def _spot_order(self, o: EmulatedOrder) -> dict[str, JSON]:
        return {
            "symbol": o.symbol,
            "orderId": o.order_id,
            "orderListId": -1,
            "clientOrderId": o.client_order_id,
            "price": fmt_fixed(o.price),
            "origQty": fmt_fixed(o.orig_qty),
            "executedQty": fmt_fixed(o.executed_qty),
            "cummulativeQuoteQty": fmt_fixed(o.cum_quote),
            "status": o.status,
            "timeInForce": o.time_in_force,
            "type": o.type,
            "side": o.side,
            "stopPrice": "0.00000000",
            "icebergQty": "0.00000000",
            "time": o.time_ms,
            "updateTime": o.update_ms,
            "isWorking": True,
            "workingTime": o.time_ms,
            "origQuoteOrderQty": "0.00000000",
            "selfTradePreventionMode": "EXPIRE_MAKER",
        }

    def spot_create(self, params: Params, ctx: RequestContext) -> JSON:
        """POST /api/v3/order (newOrderRespType ACK, RESULT or FULL, the default)."""
        order = self.engine.place_spot(params, ctx.partial)
        ctx.order = order
        kind = params.get("newOrderRespType", "FULL")
        head: dict[str, JSON] = {
            "symbol": order.symbol,
            "orderId": order.order_id,
            "orderListId": -1,
            "clientOrderId": order.client_order_id,
            "transactTime": order.time_ms,
        }
        if kind == "ACK":
            return head
        body = self._spot_order(order)
        for key in ("stopPrice", "icebergQty", "time", "updateTime", "isWorking"):
            body.pop(key)
        result = {**body, **head}
        if kind == "FULL":
            result["fills"] = [
                {
                    "price": fmt_fixed(f.price),
                    "qty": fmt_fixed(f.qty),
                    "commission": fmt_fixed(f.commission),
                    "commissionAsset": f.commission_asset,
                    "tradeId": f.trade_id,
                }
                for f in order.fills
            ]
        return result

    def spot_get_order(self, params: Params, ctx: RequestContext) -> JSON:
        """GET /api/v3/order."""
        return self._spot_order(self.engine.find_order("spot", params.get("symbol"), params))

    def spot_cancel(self, params: Params, ctx: RequestContext) -> JSON:
        """DELETE /api/v3/order."""
        order = self.engine.cancel("spot", params.get("symbol"), params)
        body = self._spot_order(order)
        body["origClientOrderId"] = order.client_order_id
        body["transactTime"] = order.update_ms
        return body

    def _open(self, venue: Venue, params: Params) -> list[EmulatedOrder]:
        symbol = params.get("symbol")
        if symbol is not None:
            self.engine.market_for(symbol, venue)
        return [
            o
            for o in self.engine.orders.values()
            if o.venue == venue and o.is_open and (symbol is None or o.symbol == symbol)
        ]

    def spot_open_orders(self, params: Params, ctx: RequestContext) -> JSON:
        """GET /api/v3/openOrders."""
        return [self._spot_order(o) for o in self._open("spot", params)]

    def spot_cancel_all(self, params: Params, ctx: RequestContext) -> JSON:
        """DELETE /api/v3/openOrders."""
        rows = []
        for o in self._open("spot", params):
            self.engine.cancel("spot", o.symbol, {"orderId": str(o.order_id)})
            rows.append(self._spot_order(o))
        return rows

    def _all(self, venue: Venue, params: Params) -> list[EmulatedOrder]:
        symbol = params.get("symbol")
        self.engine.market_for(symbol, venue)
        start = self._int(params, "startTime")
        limit = self._int(params, "limit", 500) or 500
        rows = [
            o
            for o in self.engine.orders.values()
            if o.venue == venue and o.symbol == symbol and (start is None or o.time_ms >= start)
        ]
        return rows[-limit:]

    def spot_all_orders(self, params: Params, ctx: RequestContext) -> JSON:
        """GET /api/v3/allOrders."""
        return [self._spot_order(o) for o in self._all("spot", params)]

    def _trades(self, venue: Venue, params: Params) -> list[tuple[EmulatedOrder, Fill]]:
        symbol = params.get("symbol")
        self.engine.market_for(symbol, venue)
        order_id = self._int(params, "orderId")
        start = self._int(params, "startTime")
        end = self._int(params, "endTime")
        from_id = self._int(params, "fromId")
        limit = self._int(params, "limit", 500) or 500
        rows = [
            (o, f)
            for o in self.engine.orders.values()
            if o.venue == venue
            and o.symbol == symbol
            and (order_id is None or o.order_id == order_id)
            for f in o.fills
            if (start is None or f.time_ms >= start)
            and (end is None or f.time_ms <= end)
            and (from_id is None or f.trade_id >= from_id)
        ]
        rows.sort(key=lambda row: row[1].trade_id)
        return rows[:limit] if (start is not None or from_id is not None) else rows[-limit:]

    def spot_my_trades(self, params: Params, ctx: RequestContext) -> JSON:
        """GET /api/v3/myTrades."""
        return [
            {
                "symbol": o.symbol,
                "id": f.trade_id,
                "orderId": o.order_id,
                "orderListId": -1,
                "price": fmt_fixed(f.price),
                "qty": fmt_fixed(f.qty),
                "quoteQty": fmt_fixed(f.price * f.qty),
                "commission": fmt_fixed(f.commission),
                "commissionAsset": f.commission_asset,
                "time": f.time_ms,
                "isBuyer": o.side == "BUY",
                "isMaker": f.maker,
                "isBestMatch": True,
            }
            for o, f in self._trades("spot", params)
        ]

    # ------------------------------------------------------------------ futures account
    def _fut_assets(self, *, v2: bool) -> list[dict[str, JSON]]:
        eng = self.engine
        view = eng.futures_view()
        rows = []
        for asset in sorted(set(view.wallet) | {eng.quote_asset}):
            wallet = view.wallet.get(asset, ZERO)
            is_quote = asset == eng.quote_asset
            upnl = view.unrealized if is_quote else ZERO
            available = view.available if is_quote else wallet
            row: dict[str, JSON] = {
                "asset": asset,
                "walletBalance": fmt(wallet),
                "unrealizedProfit": fmt(upnl),
                "marginBalance": fmt(wallet + upnl),
                "maintMargin": fmt(view.maint_margin if is_quote else ZERO),
                "initialMargin": fmt(
                    view.position_initial_margin + view.open_order_margin if is_quote else ZERO
                ),
                "positionInitialMargin": fmt(view.position_initial_margin if is_quote else ZERO),
                "openOrderInitialMargin": fmt(view.open_order_margin if is_quote else ZERO),
                "crossWalletBalance": fmt(view.cross_wallet if is_quote else wallet),
                "crossUnPnl": fmt(view.cross_unrealized if is_quote else ZERO),
                "availableBalance": fmt(available),
                "maxWithdrawAmount": fmt(available),
                "updateTime": view.wallet_update_ms.get(asset, 0),
            }
            if v2:
                row["marginAvailable"] = True
            rows.append(row)
        return rows

    def _fut_totals(self) -> dict[str, JSON]:
        view = self.engine.futures_view()
        return {
            "totalInitialMargin": fmt(view.position_initial_margin + view.open_order_margin),
            "totalMaintMargin": fmt(view.maint_margin),
            "totalWalletBalance": fmt(view.wallet_balance),
            "totalUnrealizedProfit": fmt(view.unrealized),
            "totalMarginBalance": fmt(view.wallet_balance + view.unrealized),
            "totalPositionInitialMargin": fmt(view.position_initial_margin),
            "totalOpenOrderInitialMargin": fmt(view.open_order_margin),
            "totalCrossWalletBalance": fmt(view.cross_wallet),
            "totalCrossUnPnl": fmt(view.cross_unrealized),
            "availableBalance": fmt(view.available),
            "maxWithdrawAmount": fmt(view.available),
        }

    def fut_account_v3(self, params: Params, ctx: RequestContext) -> JSON:
        """GET /fapi/v3/account (lagged): assets and non-zero positions."""
        positions = [
            {
                "symbol": p.symbol,
                "positionSide": p.position_side,
                "positionAmt": fmt(p.amount),
                "unrealizedProfit": fmt(p.unrealized),
                "isolatedMargin": fmt(p.isolated_wallet + p.unrealized if p.isolated else ZERO),
                "notional": fmt(p.notional),
                "isolatedWallet": fmt(p.isolated_wallet),
                "initialMargin": fmt(p.initial_margin),
                "maintMargin": fmt(p.maint_margin),
                "updateTime": p.update_ms,
            }
            for p in self.engine.futures_view().positions
        ]
        return {**self._fut_totals(), "assets": self._fut_assets(v2=False), "positions": positions}

    def fut_account_v2(self, params: Params, ctx: RequestContext) -> JSON:
        """GET /fapi/v2/account (lagged): assets and one position row per symbol."""
        rows = []
        for p in self._all_position_rows():
            rows.append(
                {
                    "symbol": p.symbol,
                    "initialMargin": fmt(p.initial_margin),
                    "maintMargin": fmt(p.maint_margin),
                    "unrealizedProfit": fmt(p.unrealized),
                    "positionInitialMargin": fmt(p.initial_margin),
                    "openOrderInitialMargin": "0",
                    "leverage": str(p.leverage),
                    "isolated": p.isolated,
                    "entryPrice": fmt(p.entry),
                    "breakEvenPrice": fmt(p.entry),
                    "maxNotional": "1000000",
                    "bidNotional": "0",
                    "askNotional": "0",
                    "positionSide": p.position_side,
                    "positionAmt": fmt(p.amount),
                    "updateTime": p.update_ms,
                }
            )
        return {
            "feeTier": 0,
            "canTrade": True,
            "canDeposit": True,
            "canWithdraw": True,
            "feeBurn": False,
            "tradeGroupId": -1,
            "updateTime": 0,
            "multiAssetsMargin": False,
            **self._fut_totals(),
            "assets": self._fut_assets(v2=True),
            "positions": rows,
        }

    def fut_balance(self, params: Params, ctx: RequestContext) -> JSON:
        """GET /fapi/v2|v3/balance (lagged)."""
        return [
            {
                "accountAlias": "SgsR",
                "asset": row["asset"],
                "balance": row["walletBalance"],
                "crossWalletBalance": row["crossWalletBalance"],
                "crossUnPnl": row["crossUnPnl"],
                "availableBalance": row["availableBalance"],
                "maxWithdrawAmount": row["maxWithdrawAmount"],
                "marginAvailable": True,
                "updateTime": row["updateTime"],
            }
            for row in self._fut_assets(v2=False)
        ]

    def _all_position_rows(self, symbol: str | None = None) -> list[PositionView]:
        """Every (symbol, side) row as v2 shows them, zero positions included."""
        eng = self.engine
        held = {(p.symbol, p.position_side): p for p in eng.futures_view().positions}
        sides = ("LONG", "SHORT") if eng.dual_side else ("BOTH",)
        rows = []
        for market in eng.markets.values():
            if not market.perp or (symbol is not None and market.symbol_id != symbol):
                continue
            for side in sides:
                row = held.get((market.symbol_id, side))
                if row is None:
                    row = PositionView(
                        symbol=market.symbol_id,
                        position_side=side,
                        amount=ZERO,
                        entry=ZERO,
                        mark=eng.quotes[market.base].mark,
                        leverage=eng.leverage[market.symbol_id],
                        isolated=eng.margin_type[market.symbol_id] == "ISOLATED",
                        isolated_wallet=ZERO,
                        maint_ratio=market.maint_margin_ratio,
                        liquidation=ZERO,
                        update_ms=0,
                    )
                rows.append(row)
        return rows

    def fut_position_risk_v2(self, params: Params, ctx: RequestContext) -> JSON:
        """GET /fapi/v2/positionRisk (lagged): every symbol, with leverage and margin type."""
        symbol = params.get("symbol")
        if symbol is not None:
            self.engine.market_for(symbol, "futures")
        return [
            {
                "symbol": p.symbol,
                "positionAmt": fmt(p.amount),
                "entryPrice": fmt(p.entry),
                "breakEvenPrice": fmt(p.entry),
                "markPrice": fmt(p.mark),
                "unRealizedProfit": fmt(p.unrealized),
                "liquidationPrice": fmt(p.liquidation),
                "leverage": str(p.leverage),
                "maxNotionalValue": "1000000",
                "marginType": "isolated" if p.isolated else "cross",
                "isolatedMargin": fmt(p.isolated_wallet + p.unrealized if p.isolated else ZERO),
                "isAutoAddMargin": "false",
                "positionSide": p.position_side,
                "notional": fmt(p.notional),
                "isolatedWallet": fmt(p.isolated_wallet),
                "updateTime": p.update_ms,
            }
            for p in self._all_position_rows(symbol)
        ]

    def fut_position_risk_v3(self, params: Params, ctx: RequestContext) -> JSON:
        """GET /fapi/v3/positionRisk (lagged): non-zero positions only, no leverage field."""
        symbol = params.get("symbol")
        if symbol is not None:
            self.engine.market_for(symbol, "futures")
        return [
            {
                "symbol": p.symbol,
                "positionSide": p.position_side,
                "positionAmt": fmt(p.amount),
                "entryPrice": fmt(p.entry),
                "breakEvenPrice": fmt(p.entry),
                "markPrice": fmt(p.mark),
                "unRealizedProfit": fmt(p.unrealized),
                "liquidationPrice": fmt(p.liquidation),
                "isolatedMargin": fmt(p.isolated_wallet + p.unrealized if p.isolated else ZERO),
                "notional": fmt(p.notional),
                "marginAsset": self.engine.quote_asset,
                "isolatedWallet": fmt(p.isolated_wallet),
                "initialMargin": fmt(p.initial_margin),
                "maintMargin": fmt(p.maint_margin),
                "positionInitialMargin": fmt(p.initial_margin),
                "openOrderInitialMargin": "0",
                "adl": 1,
                "bidNotional": "0",
                "askNotional": "0",
                "updateTime": p.update_ms,
            }
            for p in self.engine.futures_view().positions
            if symbol is None or p.symbol == symbol
        ]

    def fut_leverage_bracket(self, params: Params, ctx: RequestContext) -> JSON:
        """GET /fapi/v1/leverageBracket: one bracket per symbol."""
        return self._one_or_many(
            "futures",
            params,
            lambda m: {
                "symbol": m.symbol_id,
                "brackets": [
                    {
                        "bracket": 1,
                        "initialLeverage": m.max_leverage,
                        "notionalCap": 1000000,
                        "notionalFloor": 0,
                        "maintMarginRatio": float(m.maint_margin_ratio),
                        "cum": 0.0,
                    }
                ],
            },
        )

    def fut_symbol_config(self, params: Params, ctx: RequestContext) -> JSON:
        """GET /fapi/v1/symbolConfig: leverage and margin type per symbol."""
        eng = self.engine
        return [
            {
                "symbol": m.symbol_id,
                "marginType": eng.margin_type[m.symbol_id],
                "isAutoAddMargin": "false",
                "leverage": eng.leverage[m.symbol_id],
                "maxNotionalValue": "1000000",
            }
            for m in self._markets("futures", params)
        ]

    def fut_commission_rate(self, params: Params, ctx: RequestContext) -> JSON:
        """GET /fapi/v1/commissionRate."""
        market = self.engine.market_for(params.get("symbol"), "futures")
        return {
            "symbol": market.symbol_id,
            "makerCommissionRate": fmt(FUTURES_MAKER_FEE),
            "takerCommissionRate": fmt(FUTURES_TAKER_FEE),
        }

    def fut_set_leverage(self, params: Params, ctx: RequestContext) -> JSON:
        """POST /fapi/v1/leverage."""
        market, leverage = self.engine.set_leverage(params.get("symbol"), params.get("leverage"))
        return {"leverage": leverage, "maxNotionalValue": "1000000", "symbol": market.symbol_id}

    def fut_set_margin_type(self, params: Params, ctx: RequestContext) -> JSON:
        """POST /fapi/v1/marginType (-4046 when unchanged, as Binance)."""
        self.engine.set_margin_type(params.get("symbol"), params.get("marginType"))
        return {"code": 200, "msg": "success"}

    def fut_position_margin(self, params: Params, ctx: RequestContext) -> JSON:
        """POST /fapi/v1/positionMargin (type 1 adds, type 2 reduces)."""
        amount = parse_decimal(params, "amount", required=True)
        kind = params.get("type")
        if kind not in ("1", "2") or amount is None:
            raise BinanceError(400, -1102, "Mandatory parameter 'type' must be 1 or 2.")
        side = params.get("positionSide") or "BOTH"
        if kind == "1":
            self.engine.add_position_margin(params.get("symbol"), side, amount)
        else:
            self.engine.reduce_position_margin(params.get("symbol"), side, amount)
        return {
            "amount": float(amount),
            "code": 200,
            "msg": "Successfully modify position margin.",
            "type": int(kind),
        }

    def fut_position_margin_history(self, params: Params, ctx: RequestContext) -> JSON:
        """GET /fapi/v1/positionMargin/history: one symbol's margin changes, oldest first
        (``type``, ``startTime``, ``endTime`` default now, ``limit`` default 500)."""
        market = self.engine.market_for(params.get("symbol"), "futures")
        kind = self._int(params, "type")
        start = self._int(params, "startTime")
        end = self._int(params, "endTime", self.engine.now_ms())
        limit = self._int(params, "limit", 500) or 500
        rows = [
            {
                "symbol": c.symbol,
                "type": c.type,
                "deltaType": c.delta_type,
                "amount": fmt(c.amount),
                "asset": c.asset,
                "time": c.time_ms,
                "positionSide": c.position_side,
            }
            for c in self.engine.margin_history
            if c.symbol == market.symbol_id
            and (kind is None or c.type == kind)
            and (start is None or c.time_ms >= start)
            and (end is None or c.time_ms <= end)
        ]
        return rows[:limit]

    def wallet_transfer(self, params: Params, ctx: RequestContext) -> JSON:
        """POST /sapi/v1/asset/transfer (``type``, ``asset``, ``amount``): ``{"tranId"}``."""
        amount = parse_decimal(params, "amount", required=True)
        tran_id = self.engine.wallet_transfer(
            params.get("asset"), amount or Decimal(0), params.get("type")
        )
        return {"tranId": tran_id}

    def wallet_transfers(self, params: Params, ctx: RequestContext) -> JSON:
        """GET /sapi/v1/asset/transfer: one ``type``'s transfers, newest first (``startTime``
        and ``endTime``, default the last 7 days; ``current`` page from 1, ``size`` default
        10, at most 100), as ``{"total", "rows"}``."""
        kind = params.get("type")
        if not kind:
            raise BinanceError(400, -1102, "Mandatory parameter 'type' was not sent.")
        end = self._int(params, "endTime", self.engine.now_ms()) or self.engine.now_ms()
        start = self._int(params, "startTime", end - 7 * 86_400_000)
        size = min(self._int(params, "size", 10) or 10, 100)
        page = max(self._int(params, "current", 1) or 1, 1)
        found = [
            t
            for t in reversed(self.engine.wallet_transfers)
            if t.type == kind and (start is None or t.time_ms >= start) and t.time_ms <= end
        ]
        rows = [
            {
                "asset": t.asset,
                "amount": fmt(t.amount),
                "type": t.type,
                "status": t.status,
                "tranId": t.tran_id,
                "timestamp": t.time_ms,
            }
            for t in found[(page - 1) * size : page * size]
        ]
        return {"total": len(found), "rows": rows}

    def fut_get_dual(self, params: Params, ctx: RequestContext) -> JSON:
        """GET /fapi/v1/positionSide/dual."""
        return {"dualSidePosition": self.engine.dual_side}

    def fut_set_dual(self, params: Params, ctx: RequestContext) -> JSON:
        """POST /fapi/v1/positionSide/dual."""
        raw = params.get("dualSidePosition", "").lower()
        if raw not in ("true", "false"):
            raise BinanceError(
                400,
                -1102,
                "Mandatory parameter 'dualSidePosition' was not sent, "
                "was empty/null, or malformed.",
            )
        self.engine.set_dual_side(raw == "true", strict=True)
        return {"code": 200, "msg": "success"}

    # ------------------------------------------------------------------ futures orders
    def _fut_order(self, o: EmulatedOrder, *, ack: bool = False) -> dict[str, JSON]:
        executed = ZERO if ack else o.executed_qty
        cum = ZERO if ack else o.cum_quote
        avg = ZERO if ack else o.avg_price
        tick = self.engine.by_id[o.symbol].tick_size
        return {
            "orderId": o.order_id,
            "symbol": o.symbol,
            "status": "NEW" if ack else o.status,
            "clientOrderId": o.client_order_id,
            "price": fmt(o.price),
            "avgPrice": fmt_fixed(avg, decimals_of(tick) + 3) if avg else "0.00",
            "origQty": fmt(o.orig_qty),
            "executedQty": fmt(executed),
            "cumQty": fmt(executed),
            "cumQuote": fmt(cum),
            **futures_order_terms(o, ack=ack),
            "goodTillDate": 0,
        }

    def fut_create(self, params: Params, ctx: RequestContext) -> JSON:
        """POST /fapi/v1/order: ACK (status NEW, nothing filled) unless RESULT is asked."""
        order = self.engine.place_futures(params, ctx.partial)
        ctx.order = order
        body = self._fut_order(order, ack=params.get("newOrderRespType", "ACK") != "RESULT")
        body.pop("time")
        return body

    def fut_get_order(self, params: Params, ctx: RequestContext) -> JSON:
        """GET /fapi/v1/order (shows fills at once, whatever the lag)."""
        return self._fut_order(self.engine.find_order("futures", params.get("symbol"), params))

    def fut_cancel(self, params: Params, ctx: RequestContext) -> JSON:
        """DELETE /fapi/v1/order."""
        body = self._fut_order(self.engine.cancel("futures", params.get("symbol"), params))
        body.pop("time")
        return body

    def fut_open_orders(self, params: Params, ctx: RequestContext) -> JSON:
        """GET /fapi/v1/openOrders."""
        return [self._fut_order(o) for o in self._open("futures", params)]

    def fut_open_order(self, params: Params, ctx: RequestContext) -> JSON:
        """GET /fapi/v1/openOrder: one open order, -2013 when not open."""
        order = self.engine.find_order("futures", params.get("symbol"), params)
        if not order.is_open:
            raise BinanceError(400, -2013, "Order does not exist.")
        return self._fut_order(order)

    def fut_cancel_all(self, params: Params, ctx: RequestContext) -> JSON:
        """DELETE /fapi/v1/allOpenOrders."""
        if "symbol" not in params:
            raise BinanceError(
                400,
                -1102,
                "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.",
            )
        for o in self._open("futures", params):
            self.engine.cancel("futures", o.symbol, {"orderId": str(o.order_id)})
        return {"code": 200, "msg": "The operation of cancel all open order is done."}

    def fut_all_orders(self, params: Params, ctx: RequestContext) -> JSON:
        """GET /fapi/v1/allOrders."""
        return [self._fut_order(o) for o in self._all("futures", params)]

    def fut_user_trades(self, params: Params, ctx: RequestContext) -> JSON:
        """GET /fapi/v1/userTrades."""
        return [
            {
                "buyer": o.side == "BUY",
                "commission": fmt(f.commission),
                "commissionAsset": f.commission_asset,
                "id": f.trade_id,
                "maker": f.maker,
                "orderId": o.order_id,
                "price": fmt(f.price),
                "qty": fmt(f.qty),
                "quoteQty": fmt(f.price * f.qty),
                "realizedPnl": fmt(f.realized_pnl),
                "side": o.side,
                "positionSide": o.position_side,
                "symbol": o.symbol,
                "time": f.time_ms,
            }
            for o, f in self._trades("futures", params)
        ]

    def fut_income(self, params: Params, ctx: RequestContext) -> JSON:
        """GET /fapi/v1/income (FUNDING_FEE, COMMISSION, REALIZED_PNL)."""
        symbol = params.get("symbol")
        kind = params.get("incomeType")
        start = self._int(params, "startTime")
        end = self._int(params, "endTime")
        limit = self._int(params, "limit", 100) or 100
        rows = [
            {
                "symbol": e.symbol,
                "incomeType": e.income_type,
                "income": fmt(e.income),
                "asset": e.asset,
                "info": e.info,
                "time": e.time_ms,
                "tranId": e.tran_id,
                "tradeId": e.trade_id,
            }
            for e in self.engine.income
            if (symbol is None or e.symbol == symbol)
            and (kind is None or e.income_type == kind)
            and (start is None or e.time_ms >= start)
            and (end is None or e.time_ms <= end)
        ]
        return rows[:limit]
