"""The emulated OKX trading account: balances, positions, leverage, settings and bills.

One unified trading account (OKX's "trading account", ``18`` in transfers) holds the spot
coins and the margin of every contract; there is no separate futures wallet. Pure state,
no I/O: the engine calls in with fills, the HTTP layer reads the views.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from tests.support.emulators.okx._okx_models import (
    ZERO,
    Bill,
    EmulatedOrder,
    Fill,
    Instrument,
    OkxError,
    PositionState,
    param_error,
)

TAKER_FEE = Decimal("0.0005")
MAKER_FEE = Decimal("0.0002")
SPOT_FEE = Decimal("0.001")
DEFAULT_LEVER = 10
INV_DIGITS = Decimal("1e-18")
PosKey = tuple[str, str, str]  # instId, mgnMode, posSide


@dataclass
class Snapshot:
    """What the (possibly lagged) balance and position views show."""

    cash: dict[str, Decimal]
    positions: dict[PosKey, PositionState]
    u_time: int


@dataclass(frozen=True)
class PositionView:
    """A position with the figures the positions endpoint derives from mark and leverage,
    in its settle currency (USDT; the coin for an inverse swap). ``cash`` is that
    currency's cash balance, a cross position's collateral."""

    state: PositionState
    inst: Instrument
    mark: Decimal
    lever: int
    cash: Decimal

    @property
    def sign(self) -> int:
        """-1 for a short, 1 for a long."""
        return -1 if self.state.pos_side == "short" or self.state.pos < 0 else 1

    @property
    def signed_base(self) -> Decimal:
        """Signed position in base coins at the mark (short negative)."""
        return self.sign * self.inst.base_qty(abs(self.state.pos), self.mark)

    @property
    def notional(self) -> Decimal:
        """Absolute value at the mark in the settle currency."""
        return self.inst.value(abs(self.state.pos), self.mark)

    @property
    def notional_usd(self) -> Decimal:
        """notionalUsd: an inverse swap's face, a linear one's value at the mark."""
        if self.inst.inverse:
            return abs(self.state.pos) * self.inst.face
        return self.notional

    @property
    def upl(self) -> Decimal:
        """Unrealized PnL at the mark, in the settle currency."""
        return self.sign * self.inst.long_pnl(abs(self.state.pos), self.state.avg_px, self.mark)

    @property
    def opening(self) -> Decimal:
        """Initial margin at entry: value at the entry price over the leverage."""
        return self.inst.value(abs(self.state.pos), self.state.avg_px) / self.lever

    @property
    def margin(self) -> Decimal:
        """Isolated: initial margin at entry plus margin added; cross: 0."""
        if self.state.mgn_mode != "isolated":
            return ZERO
        return self.opening + self.state.added_margin

    @property
    def imr(self) -> Decimal:
        """Initial margin requirement (cross) at the mark."""
        return self.notional / self.lever

    @property
    def mmr(self) -> Decimal:
        """Maintenance margin requirement at the mark."""
        return self.notional * self.inst.market.mmr

    @property
    def collateral(self) -> Decimal:
        """What stands behind the position: its isolated margin, or the cross cash."""
        return self.margin if self.state.mgn_mode == "isolated" else self.cash

    @property
    def liq_px(self) -> Decimal:
        """Simplified one-position liquidation price (isolated margin, or the cash); 0
        when none (an inverse short whose coins cover its face is never liquidated)."""
        if self.state.pos == 0:
            return ZERO
        if self.inst.inverse:
            return self._inverse_liq_px()
        qty = self.signed_base
        denominator = qty - abs(qty) * self.inst.market.mmr
        if denominator == 0:
            return ZERO
        return max((qty * self.state.avg_px - self.collateral) / denominator, ZERO)

    def _inverse_liq_px(self) -> Decimal:
        """Where the collateral plus ``face x (1/entry - 1/P)`` meets the maintenance
        margin ``mmr x |face| / P``: ``P = (face + mmr x |face|) / (collateral + face /
        entry)`` with ``face`` signed (short negative); none (0) where that is not a
        positive price (a short whose collateral covers its face)."""
        face = self.sign * abs(self.state.pos) * self.inst.face
        # 1e-18 coins: an isolated 1x short's margin is its face at entry, to the digit.
        denominator = (self.collateral + face / self.state.avg_px).quantize(INV_DIGITS)
        if denominator == 0:
            return ZERO
        return max((face + abs(face) * self.inst.market.mmr) / denominator, ZERO)


class Account:
    """Balances (cashBal per currency), positions, leverage, account level and bills."""

    def __init__(
        self,
        clock: Callable[[], float],
        instruments: Mapping[str, Instrument],
        mark: Callable[[str], Decimal],
    ) -> None:
        self.clock = clock
        self.instruments = instruments
        self.mark = mark
        self.cash: dict[str, Decimal] = {}
        self.positions: dict[PosKey, PositionState] = {}
        self.leverage: dict[PosKey, int] = {}
        self.acct_lv = "2"
        self.pos_mode = "net_mode"
        self.bills: list[Bill] = []
        self.lag_s = 0.0
        self.u_time = 0
        self._history: list[tuple[float, Snapshot]] = []
        self._ids = itertools.count(600_000_000_000_000_001)

    def now_ms(self) -> int:
        """Current time in ms from the injected clock."""
        return int(self.clock() * 1000)

    def next_id(self) -> int:
        """A fresh bill/trade/position id."""
        return next(self._ids)

    # ------------------------------------------------------------------ lag
    def remember(self) -> None:
        """Keep the state before a change, for the lagged views."""
        if self.lag_s <= 0:
            return
        self._prune()
        snap = Snapshot(dict(self.cash), copy.deepcopy(self.positions), self.u_time)
        self._history.append((self.clock(), snap))

    def _prune(self) -> None:
        cutoff = self.clock() - self.lag_s
        self._history = [(t, s) for t, s in self._history if t > cutoff]

    def view(self, *, lagged: bool = True) -> Snapshot:
        """The oldest state inside the lag window, else the current one."""
        self._prune()
        if lagged and self.lag_s > 0 and self._history:
            return self._history[0][1]
        return Snapshot(self.cash, self.positions, self.u_time)

    # ------------------------------------------------------------------ balances
    def set_cash(self, ccy: str, amount: Decimal) -> None:
        """Set cashBal of ``ccy``, now and in every lagged snapshot."""
        self.cash[ccy] = amount
        self.u_time = self.now_ms()
        for _, snap in self._history:
            snap.cash[ccy] = amount

    def _credit(self, ccy: str, delta: Decimal) -> None:
        self.cash[ccy] = self.cash.get(ccy, ZERO) + delta
        self.u_time = self.now_ms()

    def add_bill(
        self, bill_type: str, sub_type: str, ccy: str, delta: Decimal, **kw: object
    ) -> Bill:
        """Append a bill after the balance moved by ``delta``."""
        fields: dict[str, object] = {"inst_id": "", "inst_type": "", "mgn_mode": "", **kw}
        bill = Bill(
            bill_id=self.next_id(),
            type=bill_type,
            sub_type=sub_type,
            ccy=ccy,
            bal_chg=delta,
            bal=self.cash.get(ccy, ZERO),
            time_ms=self.now_ms(),
            **fields,  # type: ignore[arg-type]
        )
        self.bills.append(bill)
        return bill

    # ------------------------------------------------------------------ leverage, settings
    def lever_key(self, inst_id: str, mgn_mode: str, pos_side: str) -> PosKey:
        """Cross leverage is one per instrument; isolated per side in long/short mode."""
        if mgn_mode == "cross" or self.pos_mode == "net_mode":
            return (inst_id, mgn_mode, "net")
        return (inst_id, mgn_mode, pos_side)

    def lever(self, inst_id: str, mgn_mode: str, pos_side: str = "net") -> int:
        """The leverage an order or position of this instrument uses."""
        key = self.lever_key(inst_id, mgn_mode, pos_side)
        default = min(DEFAULT_LEVER, self.instruments[inst_id].market.max_lever)
        return self.leverage.get(key, default)

    def set_lever(self, inst: Instrument, mgn_mode: str, pos_side: str, lever: int) -> None:
        """POST /account/set-leverage on one instrument."""
        if not 1 <= lever <= inst.market.max_lever:
            raise OkxError(
                "59102", "Leverage exceeds the maximum leverage. Please adjust the leverage."
            )
        sides = ["long", "short"] if mgn_mode == "cross" and self.pos_mode != "net_mode" else []
        self.leverage[self.lever_key(inst.inst_id, mgn_mode, pos_side)] = lever
        for side in sides:
            self.leverage[(inst.inst_id, mgn_mode, side)] = lever

    def has_positions(self) -> bool:
        """Whether any contract position is open."""
        return any(p.pos != 0 for p in self.positions.values())

    # ------------------------------------------------------------------ positions
    def position(self, inst_id: str, mgn_mode: str, pos_side: str) -> PositionState:
        """The position of this key, created empty when absent."""
        key = (inst_id, mgn_mode, pos_side)
        state = self.positions.get(key)
        if state is None:
            state = PositionState(inst_id, mgn_mode, pos_side, str(self.next_id()))
            self.positions[key] = state
        return state

    def views(self, snap: Snapshot) -> list[PositionView]:
        """Open positions of a snapshot, newest first, with their derived figures."""
        rows = [
            PositionView(
                state=p,
                inst=self.instruments[p.inst_id],
                mark=self.mark(p.inst_id),
                lever=self.lever(p.inst_id, p.mgn_mode, p.pos_side),
                cash=snap.cash.get(self.instruments[p.inst_id].settle_ccy, ZERO),
            )
            for p in snap.positions.values()
            if p.pos != 0
        ]
        return sorted(rows, key=lambda v: v.state.c_time, reverse=True)

    # ------------------------------------------------------------------ fills
    def fill_spot(self, order: EmulatedOrder, price: Decimal, size: Decimal, maker: bool) -> Fill:
        """Move coins for a spot fill; the fee is in what the order receives."""
        self.remember()
        market = order.inst.market
        value = price * size
        if order.side == "buy":
            fee = -size * SPOT_FEE
            fee_ccy = market.base
            self._credit(market.base, size + fee)
            self._credit(market.quote, -value)
        else:
            fee = -value * SPOT_FEE
            fee_ccy = market.quote
            self._credit(market.base, -size)
            self._credit(market.quote, value + fee)
        return self._record(order, price, size, maker, fee, fee_ccy, ZERO)

    def fill_contract(
        self, order: EmulatedOrder, price: Decimal, size: Decimal, maker: bool
    ) -> Fill:
        """Update the position for a contract fill; PnL and fee settle in the settle
        currency (USDT; the coin for an inverse swap)."""
        self.remember()
        inst = order.inst
        state = self.position(inst.inst_id, order.td_mode, order.pos_side)
        now = self.now_ms()
        signed = size if order.side == "buy" else -size
        if order.pos_side == "short":
            signed = -signed  # a short position counts up when selling
        realized = ZERO
        if state.pos == 0 or (state.pos > 0) == (signed > 0):
            state.avg_px = inst.average(abs(state.pos), state.avg_px, size, price)
            state.pos += signed
            state.c_time = state.c_time or now
        else:
            closed = min(size, abs(state.pos))
            direction = 1 if (state.pos > 0) != (order.pos_side == "short") else -1
            realized = inst.long_pnl(closed, state.avg_px, price) * direction
            before = abs(state.pos)
            state.pos += signed
            state.added_margin = state.added_margin * abs(state.pos) / before
            if state.pos == 0:
                state.avg_px, state.added_margin, state.c_time = ZERO, ZERO, 0
            elif (state.pos > 0) == (signed > 0):
                state.avg_px, state.added_margin, state.c_time = price, ZERO, now
        state.u_time = now
        fee = -inst.value(size, price) * (MAKER_FEE if maker else TAKER_FEE)
        state.realized_pnl += realized + fee
        state.fee += fee
        self._credit(inst.settle_ccy, realized + fee)
        fill = self._record(order, price, size, maker, fee, inst.settle_ccy, realized)
        # The position changes with the fill: its uTime is never before the fill's ts
        # (both are read from the clock, a millisecond apart at times).
        state.u_time = max(state.u_time, fill.time_ms)
        return fill

    def _record(
        self,
        order: EmulatedOrder,
        price: Decimal,
        size: Decimal,
        maker: bool,
        fee: Decimal,
        fee_ccy: str,
        pnl: Decimal,
    ) -> Fill:
        market = order.inst.market
        ccy = market.quote if order.side == "sell" else market.base
        if order.inst.is_contract:
            ccy = order.inst.settle_ccy
        if order.inst.is_contract:
            change = pnl + fee
        else:  # what the spot order received, net of the fee
            change = (size if order.side == "buy" else size * price) + fee
        bill = self.add_bill(
            "2",
            "1" if order.side == "buy" else "2",
            ccy,
            change,
            inst_id=order.inst.inst_id,
            inst_type=order.inst.inst_type,
            mgn_mode=order.td_mode,
            ord_id=order.ord_id,
            size=size,
            price=price,
            pnl=pnl,
            fee=fee,
        )
        fill = Fill(
            trade_id=self.next_id() % 1_000_000_000,
            bill_id=bill.bill_id,
            price=price,
            size=size,
            fee=fee,
            fee_ccy=fee_ccy,
            maker=maker,
            time_ms=self.now_ms(),
            pnl=pnl,
        )
        order.fills.append(fill)
        order.update_ms = fill.time_ms
        return fill

    # ------------------------------------------------------------------ funding, margin
    def settle_funding(self, rates: Mapping[str, Decimal]) -> None:
        """Pay or charge funding on every open perpetual position (bills type 8), in its
        settle currency: an inverse swap's in the coin, on its value at the mark."""
        for view in self.views(self.view(lagged=False)):
            rate = rates.get(view.inst.inst_id)
            if rate is None:
                continue
            self.remember()
            payment = -view.sign * view.notional * rate
            view.state.funding_fee += payment
            view.state.realized_pnl += payment
            self._credit(view.inst.settle_ccy, payment)
            self.add_bill(
                "8",
                "174" if payment > 0 else "173",
                view.inst.settle_ccy,
                payment,
                inst_id=view.inst.inst_id,
                inst_type=view.inst.inst_type,
                mgn_mode=view.state.mgn_mode,
                pnl=payment,
            )

    def move_margin(self, inst: Instrument, pos_side: str, kind: str, amount: Decimal) -> None:
        """POST /account/position/margin-balance: add to or reduce an isolated position."""
        if kind not in ("add", "reduce"):
            raise param_error("type")
        if amount <= 0:
            raise param_error("amt")
        state = self.positions.get((inst.inst_id, "isolated", pos_side))
        if state is None or state.pos == 0:
            raise OkxError("59300", "Margin call failed. Position does not exist.")
        if kind == "add" and amount > self.available(inst.settle_ccy, {}):
            raise OkxError("59200", "Insufficient account balance.")
        if kind == "reduce" and amount > state.added_margin:
            raise OkxError("59301", "Margin adjustment failed for exceeding the max limit.")
        self.remember()
        signed = amount if kind == "add" else -amount
        state.added_margin += signed
        state.u_time = self.u_time = self.now_ms()
        self.add_bill(
            "6",
            "160" if kind == "add" else "161",
            inst.settle_ccy,
            ZERO,
            inst_id=inst.inst_id,
            inst_type=inst.inst_type,
            mgn_mode="isolated",
            pos_bal_chg=signed,
        )

    # ------------------------------------------------------------------ balance figures
    def frozen(self, ccy: str, snap: Snapshot, ord_frozen: Mapping[str, Decimal]) -> Decimal:
        """Margin of positions settled in ``ccy`` plus what open orders hold."""
        held = sum(
            (v.margin if v.state.mgn_mode == "isolated" else v.imr)
            for v in self.views(snap)
            if v.inst.settle_ccy == ccy
        )
        return held + ord_frozen.get(ccy, ZERO)

    def upl(self, ccy: str, snap: Snapshot) -> Decimal:
        """Unrealized PnL of positions settled in ``ccy``."""
        return sum((v.upl for v in self.views(snap) if v.inst.settle_ccy == ccy), ZERO)

    def available(self, ccy: str, ord_frozen: Mapping[str, Decimal]) -> Decimal:
        """Equity free for new orders (availEq), unlagged."""
        snap = self.view(lagged=False)
        eq = snap.cash.get(ccy, ZERO) + self.upl(ccy, snap)
        return max(eq - self.frozen(ccy, snap, ord_frozen), ZERO)
