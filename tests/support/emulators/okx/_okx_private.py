"""OKX v5 account endpoints of the emulator (signed): balance, positions, settings, bills.

The balance and positions views lag fills by ``Account.lag_s``; settings do not lag.
"""

from __future__ import annotations

from decimal import Decimal

from tests.support.emulators.okx._okx_account import PositionView, Snapshot
from tests.support.emulators.okx._okx_engine import Engine
from tests.support.emulators.okx._okx_models import (
    ZERO,
    OkxError,
    fmt,
    fmt_ratio,
    param_empty,
    param_error,
)
from tests.support.emulators.okx._okx_public import (
    JSON,
    Params,
    RequestContext,
    Route,
    inst_type_param,
    int_param,
)

UID = "448596032409866240"


def _blank(value: Decimal, show: bool) -> str:
    return fmt(value) if show else ""


#: /account/leverage-info answers up to 20 instrument ids a request.
LEVERAGE_INFO_IDS = 20


class AccountApi:
    """Handlers of ``/api/v5/account/*`` and ``/api/v5/asset/*`` over one ``Engine``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.account = engine.account
        a = "/api/v5/account"
        self.routes: dict[tuple[str, str], Route] = {
            ("GET", f"{a}/balance"): Route(self.balance, True, 10, scope="user"),
            ("GET", f"{a}/positions"): Route(self.positions, True, 10, scope="user"),
            ("GET", f"{a}/config"): Route(self.config, True, 5, scope="user"),
            ("POST", f"{a}/set-position-mode"): Route(
                self.set_position_mode, True, 5, scope="user"
            ),
            ("POST", f"{a}/set-account-level"): Route(
                self.set_account_level, True, 5, scope="user"
            ),
            ("POST", f"{a}/set-leverage"): Route(self.set_leverage, True, 20, scope="user"),
            ("GET", f"{a}/leverage-info"): Route(self.leverage_info, True, 20, scope="user"),
            ("POST", f"{a}/position/margin-balance"): Route(
                self.margin_balance, True, 20, scope="user"
            ),
            ("GET", f"{a}/bills"): Route(self.bills, True, 5, 1.0, scope="user"),
            ("GET", f"{a}/bills-archive"): Route(self.bills, True, 5, scope="user"),
            ("GET", "/api/v5/asset/currencies"): Route(self.currencies, True, 6, 1.0, "user"),
            ("GET", "/api/v5/asset/balances"): Route(lambda p, c: [], True, 6, 1.0, "user"),
        }

    # ------------------------------------------------------------------ balance
    def _usd(self, ccy: str) -> Decimal:
        market = self.engine.markets.get(ccy)
        return self.engine.quotes[market.base].last if market is not None else Decimal(1)

    def _detail(self, ccy: str, snap: Snapshot, frozen_orders: dict[str, Decimal]) -> JSON:
        acct = self.account
        cash = snap.cash.get(ccy, ZERO)
        views = [v for v in acct.views(snap) if v.inst.settle_ccy == ccy]
        upl = sum((v.upl for v in views), ZERO)
        iso = [v for v in views if v.state.mgn_mode == "isolated"]
        imr = sum((v.imr for v in views if v.state.mgn_mode == "cross"), ZERO)
        frozen = acct.frozen(ccy, snap, frozen_orders)
        eq = cash + upl
        margin = acct.acct_lv != "1"
        return {
            "accAvgPx": "",
            "availBal": fmt(max(cash - frozen, ZERO)),
            "availEq": _blank(max(eq - frozen, ZERO), margin),
            "borrowFroz": "",
            "cashBal": fmt(cash),
            "ccy": ccy,
            "crossLiab": "0",
            "disEq": fmt(eq * self._usd(ccy)),
            "eq": fmt(eq),
            "eqUsd": fmt(eq * self._usd(ccy)),
            "fixedBal": "0",
            "frozenBal": fmt(frozen),
            "imr": _blank(imr, margin),
            "interest": "0",
            "isoEq": fmt(sum((v.margin + v.upl for v in iso), ZERO)),
            "isoLiab": "0",
            "isoUpl": fmt(sum((v.upl for v in iso), ZERO)),
            "liab": "0",
            "maxLoan": "",
            "mgnRatio": "",
            "mmr": _blank(sum((v.mmr for v in views), ZERO), margin),
            "notionalLever": "",
            "ordFrozen": fmt(frozen_orders.get(ccy, ZERO)),
            "rewardBal": "0",
            "spotInUseAmt": "",
            "spotIsoBal": "0",
            "stgyEq": "0",
            "twap": "0",
            "uTime": str(snap.u_time),
            "upl": fmt(upl),
            "uplLiab": "0",
        }

    def balance(self, params: Params, ctx: RequestContext) -> JSON:
        """GET /account/balance[?ccy=BTC,USDT] (lagged): the trading account."""
        snap = self.account.view()
        wanted = [c for c in str(params.get("ccy") or "").split(",") if c]
        ccys = wanted or sorted(c for c, v in snap.cash.items() if v != 0 or c == "USDT")
        frozen = self.engine.ord_frozen()
        details = [self._detail(c, snap, frozen) for c in ccys if c in snap.cash or wanted]
        total = sum((Decimal(d["eqUsd"]) for d in details), ZERO)
        # adjEq, availEq, imr, mmr and mgnRatio are the account's at level 3 (multi-
        # currency margin, _okx_collateral); OKX leaves them empty at level 2.
        row = {
            "adjEq": "",
            "availEq": "",
            "borrowFroz": "",
            "details": details,
            "imr": "",
            "isoEq": fmt(sum((Decimal(d["isoEq"]) for d in details), ZERO)),
            "mgnRatio": "",
            "mmr": "",
            "notionalUsd": fmt(sum((v.notional_usd for v in self.account.views(snap)), ZERO)),
            "ordFroz": fmt(sum(frozen.values(), ZERO)),
            "totalEq": fmt(total),
            "uTime": str(snap.u_time),
            "upl": fmt(sum((Decimal(d["upl"]) for d in details), ZERO)),
        }
        if self.engine.multi.active:
            self.engine.multi.rewrite_balance(row, snap)
        return [row]

    # ------------------------------------------------------------------ positions
    def _position(self, v: PositionView) -> JSON:
        s = v.state
        iso = s.mgn_mode == "isolated"
        opening = v.opening
        liq_px = self.engine.multi.liq_px(v)  # the account's at level 3
        multi_ratio = self.engine.multi.margin_ratio(v)
        return {
            "adl": "1",
            "availPos": fmt(abs(s.pos)) if iso else "",
            "avgPx": fmt(s.avg_px),
            "bePx": fmt(s.avg_px),
            "cTime": str(s.c_time),
            "ccy": v.inst.settle_ccy,
            "closeOrderAlgo": [],
            "fee": fmt(s.fee),
            "fundingFee": fmt(s.funding_fee),
            "idxPx": fmt(v.mark),
            "imr": "" if iso else fmt(v.imr),
            "instId": s.inst_id,
            "instType": v.inst.inst_type,
            "interest": "",
            "last": fmt(self.engine.quotes[v.inst.market.base].last),
            "lever": str(v.lever),
            "liab": "",
            "liabCcy": "",
            "liqPenalty": "0",
            "liqPx": fmt_ratio(liq_px, 2) if liq_px > 0 else "",
            "margin": fmt(v.margin) if iso else "",
            "markPx": fmt(v.mark),
            "mgnMode": s.mgn_mode,
            "mgnRatio": multi_ratio
            if multi_ratio is not None
            else fmt_ratio((v.margin + v.upl if iso else v.cash + v.upl) / v.mmr)
            if v.mmr
            else "",
            "mmr": fmt(v.mmr),
            "notionalUsd": fmt(v.notional_usd),
            "pendingCloseOrdLiabVal": "",
            "pnl": fmt(s.realized_pnl - s.fee - s.funding_fee),
            "pos": fmt(s.pos),
            "posCcy": "",
            "posId": s.pos_id,
            "posSide": s.pos_side,
            "realizedPnl": fmt(s.realized_pnl),
            "settledPnl": "",
            "tradeId": "",
            "uTime": str(s.u_time),
            "upl": fmt(v.upl),
            "uplLastPx": fmt(v.upl),
            "uplRatio": fmt_ratio(v.upl / opening) if opening else "0",
            "usdPx": "",
        }

    def positions(self, params: Params, ctx: RequestContext) -> JSON:
        """GET /account/positions[?instType&instId=a,b&posId] (lagged): open ones only."""
        inst_type = inst_type_param(params, required=False)
        if inst_type in ("SPOT", "OPTION"):
            raise param_error("instType")
        ids = [i for i in str(params.get("instId") or "").split(",") if i]
        if len(ids) > 10:
            raise OkxError("51000", "Parameter instId error", 400)
        pos_id = params.get("posId")
        return [
            self._position(v)
            for v in self.account.views(self.account.view())
            if (not inst_type or v.inst.inst_type == inst_type)
            and (not ids or v.state.inst_id in ids)
            and (not pos_id or v.state.pos_id == pos_id)
        ]

    # ------------------------------------------------------------------ settings
    def config(self, params: Params, ctx: RequestContext) -> JSON:
        """GET /account/config: account level and position mode."""
        return [
            {
                "acctLv": self.account.acct_lv,
                "autoLoan": False,
                "ctIsoMode": "automatic",
                "enableSpotBorrow": False,
                "greeksType": "PA",
                "ip": "",
                "kycLv": "2",
                "label": "hedgebot",
                "level": "Lv1",
                "levelTmp": "",
                "liquidationGear": "-1",
                "mainUid": UID,
                "mgnIsoMode": "automatic",
                "opAuth": "0",
                "perm": "read_only,trade",
                "posMode": self.account.pos_mode,
                "roleType": "0",
                "spotBorrowAutoRepay": False,
                "spotOffsetType": "",
                "spotRoleType": "0",
                "spotTraderInsts": [],
                "traderInsts": [],
                "type": "0",
                "uid": UID,
            }
        ]

    def set_position_mode(self, params: Params, ctx: RequestContext) -> JSON:
        """POST /account/set-position-mode {posMode}: 59000 with positions or orders."""
        mode = params.get("posMode")
        if not mode:
            raise param_empty("posMode")
        self.engine.set_position_mode(str(mode), strict=True)
        return [{"posMode": mode}]

    def set_account_level(self, params: Params, ctx: RequestContext) -> JSON:
        """POST /account/set-account-level {acctLv}: 1 spot, 2 futures, 3-4 multi-currency."""
        level = str(params.get("acctLv") or "")
        if level not in ("1", "2", "3", "4"):
            raise param_error("acctLv")
        if self.account.has_positions():
            raise OkxError(
                "59000",
                "Settings failed. Close any open positions or orders before modifying settings.",
            )
        self.account.acct_lv = level
        return [{"acctLv": level}]

    def set_leverage(self, params: Params, ctx: RequestContext) -> JSON:
        """POST /account/set-leverage {instId, lever, mgnMode[, posSide]}."""
        inst = self.engine.inst(params.get("instId"))
        mgn_mode = params.get("mgnMode")
        if mgn_mode not in ("cross", "isolated"):
            raise param_error("mgnMode")
        pos_side = str(params.get("posSide") or "net")
        long_short = self.account.pos_mode == "long_short_mode"
        if mgn_mode == "isolated" and long_short and pos_side not in ("long", "short"):
            raise param_error("posSide")
        try:
            lever = int(Decimal(str(params.get("lever"))))
        except (ArithmeticError, ValueError):
            raise param_error("lever") from None
        self.account.set_lever(inst, str(mgn_mode), pos_side, lever)
        return [
            {"instId": inst.inst_id, "lever": str(lever), "mgnMode": mgn_mode, "posSide": pos_side}
        ]

    def leverage_info(self, params: Params, ctx: RequestContext) -> JSON:
        """GET /account/leverage-info?instId=a,b&mgnMode: up to 20 instruments."""
        mgn_mode = params.get("mgnMode")
        if mgn_mode not in ("cross", "isolated"):
            raise param_error("mgnMode") if mgn_mode else param_empty("mgnMode")
        ids = [i for i in str(params.get("instId") or "").split(",") if i]
        if not ids:
            raise param_empty("instId")
        if len(ids) > LEVERAGE_INFO_IDS:  # "no more than 20", comma-separated
            raise param_error("instId")
        sides = ["net"]
        if mgn_mode == "isolated" and self.account.pos_mode == "long_short_mode":
            sides = ["long", "short"]
        return [
            {
                "ccy": "",
                "instId": inst.inst_id,
                "lever": str(self.account.lever(inst.inst_id, str(mgn_mode), side)),
                "mgnMode": mgn_mode,
                "posSide": side,
            }
            for inst in (self.engine.inst(i) for i in ids)
            for side in sides
        ]

    def margin_balance(self, params: Params, ctx: RequestContext) -> JSON:
        """POST /account/position/margin-balance {instId, posSide, type, amt}."""
        inst = self.engine.inst(params.get("instId"))
        pos_side = str(params.get("posSide") or "net")
        try:
            amount = Decimal(str(params.get("amt")))
        except ArithmeticError:
            raise param_error("amt") from None
        self.account.move_margin(inst, pos_side, str(params.get("type")), amount)
        return [
            {
                "amt": fmt(amount),
                "ccy": inst.settle_ccy,
                "instId": inst.inst_id,
                "leverage": str(self.account.lever(inst.inst_id, "isolated", pos_side)),
                "posSide": pos_side,
                "type": params.get("type"),
            }
        ]

    # ------------------------------------------------------------------ bills, currencies
    def bills(self, params: Params, ctx: RequestContext) -> JSON:
        """GET /account/bills(-archive): newest first; filters type, subType, instType,
        instId, ccy, mgnMode, begin, end; ``limit`` up to 100."""
        for name in ("type", "subType"):
            if not str(params.get(name) or "0").isdigit():
                raise param_error(name)  # e.g. ccxt passing a unified subType "linear" on
        begin, end = int_param(params, "begin"), int_param(params, "end")
        limit = min(int_param(params, "limit", 100) or 100, 100)
        match = {
            k: params.get(p)
            for k, p in (
                ("type", "type"),
                ("sub_type", "subType"),
                ("inst_type", "instType"),
                ("inst_id", "instId"),
                ("ccy", "ccy"),
                ("mgn_mode", "mgnMode"),
            )
            if params.get(p)
        }
        rows = [
            {
                "bal": fmt(b.bal),
                "balChg": fmt(b.bal_chg),
                "billId": str(b.bill_id),
                "ccy": b.ccy,
                "clOrdId": "",
                "execType": "T" if b.type == "2" else "",
                "fee": fmt(b.fee),
                "fillTime": str(b.time_ms),
                "from": "",
                "instId": b.inst_id,
                "instType": b.inst_type,
                "interest": "0",
                "mgnMode": b.mgn_mode,
                "notes": "",
                "ordId": b.ord_id,
                "pnl": fmt(b.pnl),
                "posBal": "0",
                "posBalChg": fmt(b.pos_bal_chg),
                "px": fmt(b.price) if b.price else "",
                "subType": b.sub_type,
                "sz": fmt(b.size),
                "tag": "",
                "to": "",
                "tradeId": "",
                "ts": str(b.time_ms),
                "type": b.type,
            }
            for b in reversed(self.account.bills)
            if all(getattr(b, k) == v for k, v in match.items())
            and (begin is None or b.time_ms >= begin)
            and (end is None or b.time_ms <= end)
        ]
        return rows[:limit]

    def currencies(self, params: Params, ctx: RequestContext) -> JSON:
        """GET /asset/currencies: one chain per coin (ccxt calls it at load with keys)."""
        coins = sorted({m.base for m in self.engine.markets.values()} | {"USDT"})
        return [
            {
                "canDep": True,
                "canInternal": True,
                "canWd": True,
                "ccy": c,
                "chain": f"{c}-{c}" if c != "USDT" else "USDT-TRC20",
                "mainNet": True,
                "maxFee": "0.001",
                "maxWd": "1000000",
                "minFee": "0.0001",
                "minWd": "0.001",
                "name": c,
                "wdTickSz": "8",
            }
            for c in coins
        ]
