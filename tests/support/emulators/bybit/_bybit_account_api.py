"""Bybit v5 account endpoints of the emulator: wallet, positions, account settings.

A unified account: one wallet (``accountType=UNIFIED``) holds spot coins, the USDT that
linear contracts margin from, and the coins inverse contracts margin from (their PnL
and uPnL in that coin's row); the margin mode is set once for the account
(/v5/account/set-margin-mode); leverage and position mode are per symbol.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tests.support.emulators._common import fmt
from tests.support.emulators.bybit._bybit_account import HEDGE, MARGIN_MODES, ONE_WAY, PositionView
from tests.support.emulators.bybit._bybit_collateral import STABLE
from tests.support.emulators.bybit._bybit_engine import (
    LINEAR_MAKER_FEE,
    LINEAR_TAKER_FEE,
    SETTLE,
    SPOT_FEE,
    Engine,
    Params,
    decimal_param,
)
from tests.support.emulators.bybit._bybit_market_api import int_param, page
from tests.support.emulators.bybit._bybit_models import (
    ZERO,
    BybitError,
    Category,
    PositionState,
    params_error,
)

JSON = Any
PORTFOLIO_MIN_EQUITY = Decimal(1000)
WEEK_MS = 7 * 86_400_000


class AccountApi:
    """The /v5/account, /v5/position, /v5/user and /v5/asset handlers."""

    def __init__(self, engine: Engine, api_key: str) -> None:
        self.engine = engine
        self.account = engine.account
        self.api_key = api_key

    # ------------------------------------------------------------------ identity
    def query_api(self, params: Params) -> JSON:
        """GET /v5/user/query-api: the key's permissions; ``uta: 1`` (unified account)."""
        return {
            "id": "13770661",
            "note": "hedgebot",
            "apiKey": self.api_key,
            "readOnly": 0,
            "secret": "",
            "permissions": {
                "ContractTrade": ["Order", "Position"],
                "Spot": ["SpotTrade"],
                "Wallet": ["AccountTransfer"],
                "Options": [],
                "Derivatives": [],
                "Exchange": [],
                "Earn": [],
                "NFT": [],
                "BlockTrade": [],
                "Affiliate": [],
                "CopyTrading": [],
            },
            "ips": ["*"],
            "type": 1,
            "deadlineDay": 83,
            "expiredAt": "2027-05-15T03:21:05Z",
            "createdAt": "2026-10-16T02:24:40Z",
            "unified": 0,
            "uta": 1,
            "userID": 24600000,
            "inviterID": 0,
            "vipLevel": "No VIP",
            "mktMakerLevel": "0",
            "affiliateID": 0,
            "rsaPublicKey": "",
            "isMaster": True,
            "parentUid": "0",
            "kycLevel": "LEVEL_DEFAULT",
            "kycRegion": "",
        }

    def account_info(self, params: Params) -> JSON:
        """GET /v5/account/info: UTA 2.0 Pro (status 6) and the account-wide margin mode."""
        return {
            "marginMode": self.account.margin_mode,
            "updatedTime": str(self.account.updated_ms),
            "unifiedMarginStatus": 6,
            "dcpStatus": "OFF",
            "timeWindow": 10,
            "smpGroup": 0,
            "isMasterTrader": False,
            "spotHedgingStatus": "OFF",
        }

    def coin_info(self, params: Params) -> JSON:
        """GET /v5/asset/coin/query-info: each coin with one chain."""
        coins = sorted({SETTLE, *(m.base for m in self.engine.book.markets.values())})
        wanted = params.get("coin")
        return {
            "rows": [
                {
                    "name": coin,
                    "coin": coin,
                    "remainAmount": "1000000",
                    "chains": [
                        {
                            "chainType": coin,
                            "confirmation": "6",
                            "withdrawFee": "0.0005",
                            "depositMin": "0",
                            "withdrawMin": "0.001",
                            "chain": "ETH" if coin == SETTLE else coin,
                            "chainDeposit": "1",
                            "chainWithdraw": "1",
                            "minAccuracy": "8",
                            "withdrawPercentageFee": "0",
                        }
                    ],
                }
                for coin in coins
                if wanted in (None, "", coin)
            ]
        }

    def fee_rate(self, params: Params) -> JSON:
        """GET /v5/account/fee-rate."""
        cat = self.engine.book.check_category(params.get("category"))
        taker, maker = (
            (SPOT_FEE, SPOT_FEE) if cat == "spot" else (LINEAR_TAKER_FEE, LINEAR_MAKER_FEE)
        )
        return {
            "list": [
                {
                    "symbol": s,
                    "baseCoin": "",
                    "takerFeeRate": fmt(taker),
                    "makerFeeRate": fmt(maker),
                }
                for s in self.engine.book.instruments[cat]
                if params.get("symbol") in (None, "", s)
            ]
        }

    # ------------------------------------------------------------------ wallet
    def _usd(self, coin: str) -> Decimal:
        return self.engine.margin.usd(coin)

    def _coin_row(self, coin: str, views: list[PositionView]) -> JSON:
        """A coin of the wallet, with the contracts settled in it (USDT: the linear ones;
        a coin: its inverse ones, whose margin and PnL are in that coin)."""
        holdings = self.account.view()
        wallet = holdings.wallet.get(coin, ZERO)
        settles = coin == SETTLE
        mine = [v for v in views if v.coin == coin]
        upl = sum((v.unrealised for v in mine), ZERO)
        position_im = sum((v.balance for v in mine), ZERO)
        position_mm = sum((v.maint_margin for v in mine), ZERO)
        order_im = self.engine.order_margin() if settles else ZERO
        equity = wallet + upl
        return {
            "coin": coin,
            "equity": fmt(equity),
            "usdValue": fmt(equity * self._usd(coin)),
            "walletBalance": fmt(wallet),
            "locked": fmt(holdings.locked.get(coin, ZERO)),
            "spotHedgingQty": "0",
            "borrowAmount": "0",
            "availableToBorrow": "",
            "availableToWithdraw": "",
            "accruedInterest": "0",
            "totalOrderIM": fmt(order_im),
            "totalPositionIM": fmt(position_im),
            "totalPositionMM": fmt(position_mm),
            "unrealisedPnl": fmt(upl),
            "cumRealisedPnl": fmt(sum((v.state.cum_realised for v in mine), ZERO)),
            "bonus": "0",
            "marginCollateral": bool(self.engine.margin.tiers(coin) or coin in STABLE),
            "collateralSwitch": self.engine.margin.counts(coin),
        }

    def wallet_balance(self, params: Params) -> JSON:
        """GET /v5/account/wallet-balance?accountType=UNIFIED (lagged like positions). The
        account-wide figures count every collateral coin at its ratio
        (``_bybit_collateral``); in isolated margin mode they are ""."""
        if params.get("accountType") != "UNIFIED":
            raise params_error("accountType only support UNIFIED.")
        views = self.account.views(self.engine.marks())
        wanted = {c for c in str(params.get("coin") or "").split(",") if c}
        coins = [c for c in sorted(self.account.view().wallet) if not wanted or c in wanted]
        rows = [self._coin_row(c, views) for c in coins]
        return {"list": [{"accountType": "UNIFIED", **self._account_row(), "coin": rows}]}

    def _account_row(self) -> JSON:
        figures = self.engine.margin.figures()
        row = {
            "accountLTV": "0",
            "accountIMRate": fmt(figures.rate(figures.initial)),
            "accountMMRate": fmt(figures.rate(figures.maintenance)),
            "totalEquity": fmt(figures.equity),
            "totalWalletBalance": fmt(figures.wallet),
            "totalMarginBalance": fmt(figures.margin_balance),
            "totalAvailableBalance": fmt(figures.available),
            "totalPerpUPL": fmt(figures.upl),
            "totalInitialMargin": fmt(figures.initial),
            "totalMaintenanceMargin": fmt(figures.maintenance),
        }
        if not self.engine.margin.cross:  # account-wide fields: not for isolated margin
            return {k: "" if k != "totalEquity" else v for k, v in row.items()}
        return row

    # ------------------------------------------------------------------ positions
    def _position_row(
        self, symbol: str, idx: int, view: PositionView | None, cat: Category = "linear"
    ) -> JSON:
        inst = self.engine.book.instruments[cat][symbol]
        mark = self.engine.book.quotes[inst.market.base].mark
        lev = self.account.leverage_of(symbol, inst.market.max_leverage)
        state = view.state if view else PositionState()
        size = state.size
        liq: Decimal | None = ZERO
        if view is not None and not inst.inverse and self.engine.margin.cross:
            liq = self.engine.margin.liquidation_price(view)  # the account's
            liq = None if liq is None else liq.quantize(inst.market.tick_size)
        elif view is not None:
            cross = self.engine.available(inst.settle, lagged=True)
            if inst.inverse:  # its own margin and coins, without the PnL the formula adds
                cross += view.balance - view.unrealised
            liq = view.liquidation(cross).quantize(inst.market.tick_size)
        return {
            "positionIdx": idx,
            "riskId": 1,
            "riskLimitValue": "2000000",
            "symbol": symbol,
            "side": "" if size == 0 else ("Buy" if size > 0 else "Sell"),
            "size": fmt(abs(size)),
            "avgPrice": fmt(state.entry),
            "positionValue": fmt(view.value) if view else "0",
            "tradeMode": 0,
            "autoAddMargin": 0,
            "positionStatus": "Normal",
            "leverage": fmt(lev),
            "markPrice": fmt(mark),
            "liqPrice": fmt(liq) if view and liq is not None else "",
            "bustPrice": "",
            "positionIM": fmt(view.initial_margin) if view else "0",
            "positionMM": fmt(view.maint_margin) if view else "0",
            "positionBalance": fmt(view.balance) if view else "0",
            "takeProfit": "0",
            "stopLoss": "0",
            "trailingStop": "0",
            "sessionAvgPrice": "",
            "unrealisedPnl": fmt(view.unrealised) if view else "0",
            "curRealisedPnl": fmt(state.cum_realised),
            "cumRealisedPnl": fmt(state.cum_realised),
            "adlRankIndicator": 2 if size else 0,
            "createdTime": str(state.created_ms),
            "updatedTime": str(state.updated_ms),
            "seq": state.updated_ms,
            "isReduceOnly": False,
            "mmrSysUpdatedTime": "",
            "leverageSysUpdatedTime": "",
        }

    def position_list(self, params: Params) -> JSON:
        """GET /v5/position/list: a symbol's rows even when flat; by settleCoin, open ones."""
        book = self.engine.book
        cat = book.check_category(params.get("category"))
        if cat == "spot":
            raise params_error("params error: category only support linear, inverse, option")
        symbol, settle, base = (params.get(k) for k in ("symbol", "settleCoin", "baseCoin"))
        if not (symbol or settle or base):
            raise params_error(
                "Missing some parameters that must be filled in, symbol or settleCoin or baseCoin"
            )
        views = {(v.symbol, v.idx): v for v in self.account.views(self.engine.marks())}
        if symbol:
            book.instrument(cat, symbol)
            idxs = (1, 2) if self.account.hedged(str(symbol)) else (0,)
            rows = [
                self._position_row(str(symbol), i, views.get((str(symbol), i)), cat) for i in idxs
            ]
        else:
            table = book.instruments[cat]
            rows = [
                self._position_row(s, i, v, cat)
                for (s, i), v in views.items()
                if s in table
                and (not settle or table[s].settle == settle)
                and (not base or table[s].market.base == base)
            ]
        chunk, cursor = page(rows, params, 20, 200)
        return {"category": cat, "list": chunk, "nextPageCursor": cursor}

    # ------------------------------------------------------------------ settings
    def set_leverage(self, params: Params) -> JSON:
        """POST /v5/position/set-leverage: 110043 "leverage not modified" when unchanged."""
        inst = self.engine.book.instrument(params.get("category"), params.get("symbol"))
        if inst.category == "spot":
            raise params_error("params error: category only support linear, inverse")
        buy = decimal_param(params, "buyLeverage", required=True)
        sell = decimal_param(params, "sellLeverage", required=True)
        if buy != sell and not self.account.hedged(inst.symbol):
            raise params_error("buy leverage not equal sell leverage")
        if buy is None or not 1 <= buy <= inst.market.max_leverage:
            raise BybitError(10001, f"leverage invalid, range [1, {inst.market.max_leverage}]")
        if self.account.leverage_of(inst.symbol, inst.market.max_leverage) == buy:
            raise BybitError(110043, "leverage not modified")
        self.account.leverage[inst.symbol] = buy
        return {}

    def set_margin_mode(self, params: Params) -> JSON:
        """POST /v5/account/set-margin-mode: account-wide; portfolio needs 1000 USDC equity."""
        mode = params.get("setMarginMode")
        if mode not in MARGIN_MODES:
            raise params_error("params error: setMarginMode invalid")
        if mode == "PORTFOLIO_MARGIN":
            equity = self.account.live.wallet.get(SETTLE, ZERO)
            if equity < PORTFOLIO_MIN_EQUITY:
                reason = "Equity needs to be equal to or greater than 1000 USDC"
                reasons = [{"reasonCode": "3400000", "reasonMsg": reason}]
                raise BybitError(3400045, "Set margin mode failed", result={"reasons": reasons})
        self.account.margin_mode = str(mode)
        self.account.updated_ms = self.engine.now_ms()
        return {"reasons": []}

    def switch_mode(self, params: Params) -> JSON:
        """POST /v5/position/switch-mode: 0 one-way, 3 hedge, by symbol or by settle coin."""
        book = self.engine.book
        if book.check_category(params.get("category")) != "linear":
            raise params_error("params error: category only support linear, inverse")
        mode = int_param(params, "mode", -1, -1, 3)
        if mode not in (ONE_WAY, HEDGE):
            raise params_error("params error: mode invalid")
        symbol, coin = params.get("symbol"), params.get("coin")
        if symbol:
            symbols = [book.instrument("linear", symbol).symbol]
        elif coin:
            symbols = [s for s, i in book.instruments["linear"].items() if i.market.quote == coin]
        else:
            raise params_error("params error: symbol or coin is required")
        if all(self.account.position_mode.get(s, ONE_WAY) == mode for s in symbols):
            raise BybitError(110025, "Position mode is not modified")
        if any(self.account.has_position(s) for s in symbols):
            raise BybitError(
                110024, "You have an existing position, so position mode cannot be switched"
            )
        if any(o.is_open and o.symbol in symbols for o in self.engine.orders.values()):
            raise BybitError(110028, "Open orders exist, so you cannot change position mode")
        for s in symbols:
            self.account.position_mode[s] = mode
        return {}

    def add_margin(self, params: Params) -> JSON:
        """POST /v5/position/add-margin: isolated margin only; negative ``margin`` reduces."""
        inst = self.engine.book.instrument(params.get("category"), params.get("symbol"))
        try:
            margin = Decimal(str(params.get("margin")))
        except ArithmeticError:
            raise params_error("params error: margin invalid") from None
        idx = int_param(params, "positionIdx", 0, 0, 2)
        if self.account.margin_mode != "ISOLATED_MARGIN":
            raise BybitError(110015, "the position is in cross_margin")
        state = self.account.live.positions.get((inst.symbol, idx))
        if state is None or state.size == 0:
            raise BybitError(110033, "Margin cannot be set without open position")
        if margin > self.engine.available(SETTLE) or state.added_margin + margin < 0:
            raise BybitError(110014, "Available balance not enough to add margin")
        self.account.snapshot()
        state.added_margin += margin
        state.updated_ms = self.engine.now_ms()
        view = {(v.symbol, v.idx): v for v in self.account.views(self.engine.marks(), lagged=False)}
        row = self._position_row(inst.symbol, idx, view.get((inst.symbol, idx)))
        return {"category": "linear", **row}

    # ------------------------------------------------------------------ ledger
    def transaction_log(self, params: Params) -> JSON:
        """GET /v5/account/transaction-log: TRADE and SETTLEMENT (funding) rows, newest first."""
        now = self.engine.now_ms()
        end = int_param(params, "endTime", now, 0, 1 << 62)
        start = int_param(params, "startTime", end - WEEK_MS, 0, 1 << 62)
        if end - start > WEEK_MS:
            raise params_error("params error: startTime and endTime must be within 7 days")
        kind, cat = params.get("type"), params.get("category")
        rows = [
            {
                "id": e.entry_id,
                "symbol": e.symbol,
                "category": e.category,
                "side": e.side,
                "transactionTime": str(e.time_ms),
                "type": e.kind,
                "qty": fmt(e.qty),
                "size": "0",
                "currency": e.coin,
                "tradePrice": fmt(e.price),
                "funding": fmt(e.funding),
                "fee": fmt(e.fee),
                "cashFlow": fmt(e.cash_flow),
                "change": fmt(e.change),
                "cashBalance": fmt(e.cash_balance),
                "feeRate": "",
                "bonusChange": "",
                "tradeId": e.trade_id,
                "orderId": e.order_id,
                "orderLinkId": e.order_link_id,
            }
            for e in reversed(self.engine.ledger)
            if start <= e.time_ms <= end
            and kind in (None, "", e.kind)
            and cat in (None, "", e.category)
        ]
        chunk, cursor = page(rows, params, 20, 50)
        return {"list": chunk, "nextPageCursor": cursor}
