"""Binance COIN-M REST endpoints of the emulator (``/dapi/v1``, ``/dapi/v2``).

As Binance documents them (derivatives, coin-margined futures): the market-data
endpoints answer a LIST even for one ``symbol`` (bookTicker, ticker/price, premiumIndex,
ticker/24hr), quantities are contracts, every balance and PnL figure is in the coin.
``WEIGHTS`` holds each endpoint's documented request weight (with a symbol, without);
the emulator reports their sum over the last minute in ``X-MBX-USED-WEIGHT-1M``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from tests.support.emulators.binance._binance_api import BinanceApi, futures_order_terms
from tests.support.emulators.binance._binance_coinm import (
    CoinmEngine,
    CoinmMarket,
    CoinmPositionView,
)
from tests.support.emulators.binance._binance_models import (
    ZERO,
    BinanceError,
    EmulatedOrder,
    decimals_of,
    fmt,
)
from tests.support.emulators.binance._binance_weights import listed_weight

Params = Mapping[str, str]
JSON = Any
D = "/dapi/v1"

#: Request weight per endpoint (with ``symbol``, without), as Binance documents them.
WEIGHTS: dict[tuple[str, str], tuple[int, int]] = {
    ("GET", f"{D}/exchangeInfo"): (1, 1),
    ("GET", f"{D}/depth"): (5, 5),
    ("GET", f"{D}/ticker/bookTicker"): (2, 5),
    ("GET", f"{D}/ticker/price"): (1, 2),
    ("GET", f"{D}/ticker/24hr"): (1, 40),
    ("GET", f"{D}/premiumIndex"): (10, 10),
    ("GET", f"{D}/fundingRate"): (1, 1),
    ("GET", f"{D}/openInterest"): (1, 1),
    ("GET", f"{D}/account"): (5, 5),
    ("GET", f"{D}/balance"): (1, 1),
    ("GET", f"{D}/positionRisk"): (1, 1),
    ("GET", "/dapi/v2/leverageBracket"): (1, 1),
    ("POST", f"{D}/order"): (0, 0),  # "0 on IP rate limit": counted as an order
    ("GET", f"{D}/order"): (1, 1),
    ("DELETE", f"{D}/order"): (1, 1),
    ("GET", f"{D}/openOrders"): (1, 40),
    ("GET", f"{D}/allOrders"): (20, 40),
    ("GET", f"{D}/userTrades"): (20, 40),
    ("GET", f"{D}/income"): (20, 20),
    ("POST", f"{D}/leverage"): (1, 1),
    ("POST", f"{D}/marginType"): (1, 1),
    ("GET", f"{D}/positionSide/dual"): (30, 30),
    ("POST", f"{D}/positionSide/dual"): (1, 1),
}


def weight(method: str, path: str, params: Params) -> int:
    """The documented weight of one /dapi request (1 where none is listed)."""
    return listed_weight(WEIGHTS, method, path, params)


class CoinmApi:
    """Handlers over one ``CoinmEngine``; ``routes`` maps (method, path) to (handler,
    signed, creates an order)."""

    def __init__(self, engine: CoinmEngine) -> None:
        self.engine = engine
        self.routes: dict[tuple[str, str], tuple[Callable[[Params], JSON], bool, bool]] = {
            ("GET", f"{D}/ping"): (lambda p: {}, False, False),
            ("GET", f"{D}/time"): (lambda p: {"serverTime": engine.main.now_ms()}, False, False),
            ("GET", f"{D}/exchangeInfo"): (self.exchange_info, False, False),
            ("GET", f"{D}/depth"): (self.depth, False, False),
            ("GET", f"{D}/ticker/bookTicker"): (self.book_ticker, False, False),
            ("GET", f"{D}/ticker/price"): (self.ticker_price, False, False),
            ("GET", f"{D}/ticker/24hr"): (self.ticker_24hr, False, False),
            ("GET", f"{D}/premiumIndex"): (self.premium_index, False, False),
            ("GET", f"{D}/fundingRate"): (self.funding_rate, False, False),
            ("GET", f"{D}/openInterest"): (self.open_interest, False, False),
            ("GET", f"{D}/account"): (self.account, True, False),
            ("GET", f"{D}/balance"): (self.balance, True, False),
            ("GET", f"{D}/positionRisk"): (self.position_risk, True, False),
            ("GET", "/dapi/v2/leverageBracket"): (self.leverage_bracket, True, False),
            ("POST", f"{D}/order"): (self.create, True, True),
            ("GET", f"{D}/order"): (self.get_order, True, False),
            ("DELETE", f"{D}/order"): (self.cancel, True, False),
            ("GET", f"{D}/openOrders"): (self.open_orders, True, False),
            ("GET", f"{D}/allOrders"): (self.all_orders, True, False),
            ("GET", f"{D}/userTrades"): (self.user_trades, True, False),
            ("GET", f"{D}/income"): (self.income, True, False),
            ("POST", f"{D}/leverage"): (self.set_leverage, True, False),
            ("POST", f"{D}/marginType"): (self.set_margin_type, True, False),
            ("GET", f"{D}/positionSide/dual"): (self.get_dual, True, False),
            ("POST", f"{D}/positionSide/dual"): (self.set_dual, True, False),
        }
        self.partial: Decimal | None = None  # the next order's fill fraction (a fault)
        self.last_order: EmulatedOrder | None = None

    # ------------------------------------------------------------------ helpers
    def _markets(self, params: Params) -> list[CoinmMarket]:
        if "symbol" in params:
            return [self.engine.market_for(params["symbol"])]
        pair = params.get("pair")
        return [m for m in self.engine.markets.values() if pair in (None, m.pair)]

    _int = staticmethod(BinanceApi._int)

    def _now(self) -> int:
        return self.engine.main.now_ms()

    # ------------------------------------------------------------------ market data
    def exchange_info(self, params: Params) -> JSON:
        """GET /dapi/v1/exchangeInfo: the perpetuals, ``contractSize`` in USD, margined in
        the coin (``marginAsset``); whole contracts (``quantityPrecision`` 0)."""
        symbols = [self._symbol_info(m) for m in self.engine.markets.values()]
        limits = [
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": 2400,
            },
            {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
        ]
        return {
            "timezone": "UTC",
            "serverTime": self._now(),
            "rateLimits": limits,
            "exchangeFilters": [],
            "symbols": symbols,
        }

    @staticmethod
    def _symbol_info(m: CoinmMarket) -> JSON:
        lot = {"minQty": fmt(m.min_qty), "maxQty": fmt(m.max_qty), "stepSize": fmt(m.step_size)}
        return {
            "symbol": m.symbol_id,
            "pair": m.pair,
            "contractType": "PERPETUAL",
            "deliveryDate": 4133404800000,
            "onboardDate": 1597042800000,
            "contractStatus": "TRADING",
            "contractSize": int(m.contract_size),
            "marginAsset": m.base,
            "maintMarginPercent": "2.5000",
            "requiredMarginPercent": "5.0000",
            "baseAsset": m.base,
            "quoteAsset": "USD",
            "pricePrecision": decimals_of(m.tick_size),
            "quantityPrecision": decimals_of(m.step_size),
            "baseAssetPrecision": 8,
            "quotePrecision": 8,
            "equalQtyPrecision": 4,
            "maxMoveOrderLimit": 10000,
            "triggerProtect": "0.0500",
            "underlyingType": "COIN",
            "underlyingSubType": [],
            "filters": [
                {
                    "filterType": "PRICE_FILTER",
                    "minPrice": fmt(m.tick_size),
                    "maxPrice": "4520958",
                    "tickSize": fmt(m.tick_size),
                },
                {"filterType": "LOT_SIZE", **lot},
                {"filterType": "MARKET_LOT_SIZE", **lot},
                {"filterType": "MAX_NUM_ORDERS", "limit": 200},
                {
                    "filterType": "PERCENT_PRICE",
                    "multiplierUp": "1.0500",
                    "multiplierDown": "0.9500",
                    "multiplierDecimal": 4,
                },
            ],
            "orderTypes": ["LIMIT", "MARKET"],
            "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
            "liquidationFee": "0.010000",
            "marketTakeBound": "0.05",
        }

    def depth(self, params: Params) -> JSON:
        """GET /dapi/v1/depth."""
        market = self.engine.market_for(params.get("symbol"))
        bids, asks = self.engine.book(market, self._int(params, "limit", 20) or 20)
        now = self._now()
        return {
            "lastUpdateId": now,
            "symbol": market.symbol_id,
            "pair": market.pair,
            "E": now,
            "T": now,
            "bids": [[fmt(p), fmt(q)] for p, q in bids],
            "asks": [[fmt(p), fmt(q)] for p, q in asks],
        }

    def book_ticker(self, params: Params) -> JSON:
        """GET /dapi/v1/ticker/bookTicker: a list, even for one symbol."""
        rows = []
        for m in self._markets(params):
            bid, ask = self.engine.top(m)
            rows.append(
                {
                    "lastUpdateId": self._now(),
                    "symbol": m.symbol_id,
                    "pair": m.pair,
                    "bidPrice": fmt(bid),
                    "bidQty": fmt(m.level_qty),
                    "askPrice": fmt(ask),
                    "askQty": fmt(m.level_qty),
                    "time": self._now(),
                }
            )
        return rows

    def ticker_price(self, params: Params) -> JSON:
        """GET /dapi/v1/ticker/price: a list."""
        return [
            {
                "symbol": m.symbol_id,
                "ps": m.pair,
                "price": fmt(self.engine.main.quotes[m.base].last),
                "time": self._now(),
            }
            for m in self._markets(params)
        ]

    def ticker_24hr(self, params: Params) -> JSON:
        """GET /dapi/v1/ticker/24hr: a list; the emulator trades no volume of others."""
        rows = []
        for m in self._markets(params):
            last = self.engine.main.quotes[m.base].last
            rows.append(
                {
                    "symbol": m.symbol_id,
                    "pair": m.pair,
                    "priceChange": "0",
                    "priceChangePercent": "0",
                    "weightedAvgPrice": fmt(last),
                    "lastPrice": fmt(last),
                    "lastQty": "1",
                    "openPrice": fmt(last),
                    "highPrice": fmt(last),
                    "lowPrice": fmt(last),
                    "volume": "1000000",
                    "baseVolume": fmt(Decimal(1_000_000) * m.contract_size / last),
                    "openTime": self._now() - 86_400_000,
                    "closeTime": self._now(),
                    "firstId": 1,
                    "lastId": 2,
                    "count": 2,
                }
            )
        return rows

    def premium_index(self, params: Params) -> JSON:
        """GET /dapi/v1/premiumIndex: mark, index, funding rate; a list."""
        rows = []
        for m in self._markets(params):
            quote = self.engine.main.quotes[m.base]
            rows.append(
                {
                    "symbol": m.symbol_id,
                    "pair": m.pair,
                    "markPrice": fmt(quote.mark),
                    "indexPrice": fmt(quote.index),
                    "estimatedSettlePrice": fmt(quote.index),
                    "lastFundingRate": fmt(self.engine.funding_rates[m.base]),
                    "interestRate": "0.00010000",
                    "nextFundingTime": self.engine.main.next_funding_ms(),
                    "time": self._now(),
                }
            )
        return rows

    def funding_rate(self, params: Params) -> JSON:
        """GET /dapi/v1/fundingRate (``symbol`` mandatory)."""
        market = self.engine.market_for(params.get("symbol"))
        start, end = self._int(params, "startTime"), self._int(params, "endTime")
        limit = self._int(params, "limit", 100) or 100
        rows = [
            {
                "symbol": e.symbol,
                "fundingTime": e.time_ms,
                "fundingRate": fmt(e.rate),
                "markPrice": fmt(e.mark_price),
            }
            for e in self.engine.funding_events
            if e.symbol == market.symbol_id
            and (start is None or e.time_ms >= start)
            and (end is None or e.time_ms <= end)
        ]
        return rows[-limit:] if start is None else rows[:limit]

    def open_interest(self, params: Params) -> JSON:
        """GET /dapi/v1/openInterest: contracts."""
        market = self.engine.market_for(params.get("symbol"))
        ours = abs(self.engine.true_position(market.symbol_id))
        return {
            "symbol": market.symbol_id,
            "pair": market.pair,
            "openInterest": fmt(Decimal(1_000_000) + ours),
            "contractType": "PERPETUAL",
            "time": self._now(),
        }

    # ------------------------------------------------------------------ account
    def account(self, params: Params) -> JSON:
        """GET /dapi/v1/account: each coin's wallet, and every symbol's leverage and
        margin type with its position (ccxt reads leverages from it)."""
        assets = []
        for asset in self.engine.assets():
            w = self.engine.wallet_view(asset)
            assets.append(
                {
                    "asset": asset,
                    "walletBalance": fmt(w.wallet),
                    "unrealizedProfit": fmt(w.unrealized),
                    "marginBalance": fmt(w.margin_balance),
                    "maintMargin": fmt(w.maint_margin),
                    "initialMargin": fmt(w.position_initial_margin + w.open_order_margin),
                    "positionInitialMargin": fmt(w.position_initial_margin),
                    "openOrderInitialMargin": fmt(w.open_order_margin),
                    "maxWithdrawAmount": fmt(w.available),
                    "crossWalletBalance": fmt(w.cross_wallet),
                    "crossUnPnl": fmt(w.cross_unrealized),
                    "availableBalance": fmt(w.available),
                    "updateTime": w.update_ms,
                }
            )
        held = {(v.market.symbol_id, v.side): v for v in self.engine.position_views()}
        positions = []
        for m in self.engine.markets.values():
            for side in self._sides():
                view = held.get((m.symbol_id, side))
                positions.append(self._account_position(m, side, view))
        return {
            "assets": assets,
            "positions": positions,
            "canDeposit": True,
            "canTrade": True,
            "canWithdraw": True,
            "feeTier": 0,
            "updateTime": 0,
        }

    def _sides(self) -> tuple[str, ...]:
        return ("LONG", "SHORT") if self.engine.dual_side else ("BOTH",)

    def _account_position(self, m: CoinmMarket, side: str, v: CoinmPositionView | None) -> JSON:
        eng = self.engine
        return {
            "symbol": m.symbol_id,
            "positionAmt": fmt(v.amount) if v else "0",
            "initialMargin": fmt(v.initial_margin) if v else "0",
            "maintMargin": fmt(v.maint_margin) if v else "0",
            "unrealizedProfit": fmt(v.unrealized) if v else "0",
            "positionInitialMargin": fmt(v.initial_margin) if v else "0",
            "openOrderInitialMargin": "0",
            "leverage": str(eng.leverage[m.symbol_id]),
            "isolated": eng.margin_type[m.symbol_id] == "ISOLATED",
            "positionSide": side,
            "entryPrice": fmt(v.entry) if v else "0.0",
            "breakEvenPrice": fmt(v.entry) if v else "0.0",
            "maxQty": "1000",
            "updateTime": v.update_ms if v else 0,
            "notionalValue": fmt(v.notional) if v else "0",
            "isolatedWallet": fmt(v.isolated_wallet) if v else "0",
        }

    def balance(self, params: Params) -> JSON:
        """GET /dapi/v1/balance."""
        rows = []
        for asset in self.engine.assets():
            w = self.engine.wallet_view(asset)
            rows.append(
                {
                    "accountAlias": "SgsR",
                    "asset": asset,
                    "balance": fmt(w.wallet),
                    "withdrawAvailable": fmt(w.available),
                    "crossWalletBalance": fmt(w.cross_wallet),
                    "crossUnPnl": fmt(w.cross_unrealized),
                    "availableBalance": fmt(w.available),
                    "updateTime": w.update_ms,
                }
            )
        return rows

    def position_risk(self, params: Params) -> JSON:
        """GET /dapi/v1/positionRisk (``marginAsset`` or ``pair``): a row per symbol and
        side, flat ones too."""
        asset, pair = params.get("marginAsset"), params.get("pair")
        held = {(v.market.symbol_id, v.side): v for v in self.engine.position_views()}
        rows = []
        for m in self.engine.markets.values():
            if asset not in (None, m.base) or pair not in (None, m.pair):
                continue
            for side in self._sides():
                rows.append(self._risk_row(m, side, held.get((m.symbol_id, side))))
        return rows

    def _risk_row(self, m: CoinmMarket, side: str, v: CoinmPositionView | None) -> JSON:
        eng = self.engine
        isolated = eng.margin_type[m.symbol_id] == "ISOLATED"
        wallet = v.isolated_wallet if v and isolated else ZERO
        return {
            "symbol": m.symbol_id,
            "positionAmt": fmt(v.amount) if v else "0",
            "entryPrice": fmt(v.entry) if v else "0.0",
            "breakEvenPrice": fmt(v.entry) if v else "0.0",
            "markPrice": fmt(eng.mark(m)),
            "unRealizedProfit": fmt(v.unrealized) if v else "0",
            "liquidationPrice": fmt(v.liquidation) if v else "0",
            "leverage": str(eng.leverage[m.symbol_id]),
            "maxQty": "1000",
            "marginType": "isolated" if isolated else "cross",
            "isolatedMargin": fmt(wallet + (v.unrealized if v and isolated else ZERO)),
            "isAutoAddMargin": "false",
            "positionSide": side,
            "notionalValue": fmt(v.notional) if v else "0",
            "isolatedWallet": fmt(wallet),
            "updateTime": v.update_ms if v else 0,
        }

    def leverage_bracket(self, params: Params) -> JSON:
        """GET /dapi/v2/leverageBracket: one bracket per symbol (coin notional)."""
        return [
            {
                "symbol": m.symbol_id,
                "notionalCoef": 1.0,
                "brackets": [
                    {
                        "bracket": 1,
                        "initialLeverage": m.max_leverage,
                        "qtyCap": 1000,
                        "qtyFloor": 0,
                        "maintMarginRatio": float(m.maint_margin_ratio),
                        "cum": 0.0,
                    }
                ],
            }
            for m in self._markets(params)
        ]

    # ------------------------------------------------------------------ orders
    def _order(self, o: EmulatedOrder, *, ack: bool = False) -> dict[str, JSON]:
        market = self.engine.by_id[o.symbol]
        executed = ZERO if ack else o.executed_qty
        base = ZERO if ack else sum((f.qty * market.contract_size / f.price for f in o.fills), ZERO)
        avg = executed * market.contract_size / base if base else ZERO  # contract-weighted harmonic
        return {
            "orderId": o.order_id,
            "symbol": o.symbol,
            "pair": market.pair,
            "status": "NEW" if ack else o.status,
            "clientOrderId": o.client_order_id,
            "price": fmt(o.price),
            "avgPrice": fmt(avg) if avg else "0.0",
            "origQty": fmt(o.orig_qty),
            "executedQty": fmt(executed),
            "cumQty": fmt(executed),
            "cumBase": fmt(base),
            **futures_order_terms(o, ack=ack),
        }

    def create(self, params: Params) -> JSON:
        """POST /dapi/v1/order: ACK unless ``newOrderRespType`` RESULT."""
        partial, self.partial = self.partial, None
        order = self.engine.place(params, partial)
        self.last_order = order
        body = self._order(order, ack=params.get("newOrderRespType", "ACK") != "RESULT")
        body.pop("time")
        return body

    def get_order(self, params: Params) -> JSON:
        """GET /dapi/v1/order by ``orderId`` or ``origClientOrderId`` (-2013)."""
        return self._order(self.engine.find_order(params.get("symbol"), params))

    def cancel(self, params: Params) -> JSON:
        """DELETE /dapi/v1/order (-2011 when not open)."""
        body = self._order(self.engine.cancel(params.get("symbol"), params))
        body.pop("time")
        return body

    def _orders(self, params: Params, open_only: bool) -> list[EmulatedOrder]:
        symbols = {m.symbol_id for m in self._markets(params)}
        found = [
            o
            for o in self.engine.main.orders.values()
            if o.venue == "coinm" and o.symbol in symbols and (o.is_open or not open_only)
        ]
        return sorted(found, key=lambda o: o.order_id)

    def open_orders(self, params: Params) -> JSON:
        """GET /dapi/v1/openOrders (``symbol`` or ``pair``, or every symbol)."""
        return [self._order(o) for o in self._orders(params, open_only=True)]

    def all_orders(self, params: Params) -> JSON:
        """GET /dapi/v1/allOrders (``symbol`` or ``pair`` mandatory)."""
        if "symbol" not in params and "pair" not in params:
            raise BinanceError(400, -1102, "Mandatory parameter 'symbol' or 'pair' was not sent.")
        limit = self._int(params, "limit", 50) or 50
        return [self._order(o) for o in self._orders(params, open_only=False)][-limit:]

    def user_trades(self, params: Params) -> JSON:
        """GET /dapi/v1/userTrades (``symbol`` or ``pair``; ``orderId`` narrows)."""
        if "symbol" not in params and "pair" not in params:
            raise BinanceError(400, -1102, "Mandatory parameter 'symbol' or 'pair' was not sent.")
        order_id = params.get("orderId")
        rows = []
        for o in self._orders(params, open_only=False):
            if order_id and str(o.order_id) != order_id:
                continue
            market = self.engine.by_id[o.symbol]
            for f in o.fills:
                rows.append(
                    {
                        "symbol": o.symbol,
                        "id": f.trade_id,
                        "orderId": o.order_id,
                        "pair": market.pair,
                        "side": o.side,
                        "price": fmt(f.price),
                        "qty": fmt(f.qty),
                        "realizedPnl": fmt(f.realized_pnl),
                        "marginAsset": market.base,
                        "baseQty": fmt(f.qty * market.contract_size / f.price),
                        "commission": fmt(f.commission),
                        "commissionAsset": f.commission_asset,
                        "time": f.time_ms,
                        "positionSide": o.position_side,
                        "buyer": o.side == "BUY",
                        "maker": f.maker,
                    }
                )
        return rows

    def income(self, params: Params) -> JSON:
        """GET /dapi/v1/income: FUNDING_FEE, COMMISSION, REALIZED_PNL, in the coin."""
        symbol, kind = params.get("symbol"), params.get("incomeType")
        start, end = self._int(params, "startTime"), self._int(params, "endTime")
        limit = self._int(params, "limit", 100) or 100
        return [
            {
                "symbol": e.symbol,
                "incomeType": e.income_type,
                "income": fmt(e.income),
                "asset": e.asset,
                "info": e.info,
                "time": e.time_ms,
                "tranId": str(e.tran_id),
                "tradeId": e.trade_id,
            }
            for e in self.engine.income
            if symbol in (None, e.symbol)
            and kind in (None, e.income_type)
            and (start is None or e.time_ms >= start)
            and (end is None or e.time_ms <= end)
        ][:limit]

    # ------------------------------------------------------------------ settings
    def set_leverage(self, params: Params) -> JSON:
        """POST /dapi/v1/leverage."""
        market, leverage = self.engine.set_leverage(params.get("symbol"), params.get("leverage"))
        return {"leverage": leverage, "maxQty": "1000", "symbol": market.symbol_id}

    def set_margin_type(self, params: Params) -> JSON:
        """POST /dapi/v1/marginType (-4046 "No need to change margin type.")."""
        self.engine.set_margin_type(params.get("symbol"), params.get("marginType"))
        return {"code": 200, "msg": "success"}

    def get_dual(self, params: Params) -> JSON:
        """GET /dapi/v1/positionSide/dual."""
        return {"dualSidePosition": self.engine.dual_side}

    def set_dual(self, params: Params) -> JSON:
        """POST /dapi/v1/positionSide/dual."""
        self.engine.set_dual_side(params.get("dualSidePosition", "").lower() == "true")
        return {"code": 200, "msg": "success"}
