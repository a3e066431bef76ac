"""Multi-currency margin (account level 3) on the emulated OKX trading account.

At ``acctLv`` 3 (OKX's multi-currency margin mode; 4, portfolio margin, is modelled the
same way here) every coin of the trading account backs the cross positions at its
discount rate, tiered by the coin's quantity (GET /public/discount-rate-interest-free-
quota: ``details`` of ``minAmt``/``maxAmt`` in the coin, each range at its
``discountRate``), and every figure is the account's, in USD:

* per currency ``disEq``: the coin's cross equity (``eq`` less its isolated positions'
  equity) at its tiered discount rate, in USD (a negative equity, a liability, at its full
  value); ``availEq``: what of the coin the account's available equity can still use;
* ``adjEq``: the sum of ``disEq``; ``imr``/``mmr``: the cross positions' (and cross
  orders') initial and maintenance margin in USD; ``availEq`` = ``adjEq`` - ``imr``;
* ``mgnRatio`` = ``adjEq`` / (``mmr`` + the taker fee of closing every cross position):
  at 100 % the venue liquidates (every cross position closed at its mark, bills of type 5);
* a linear cross position's ``liqPx`` is the account's: the price of its coin (every other
  price held) at which ``adjEq`` meets ``mmr`` + fees; both are linear in that price, so
  it is one root, "" when no price gets there (the coins back their own short);
* a cross order needs its margin and fee within the account's ``availEq`` (51008
  otherwise); an isolated one, within its settle currency's own, as at level 2.

The discount rates are illustrative (OKX's docs show the format; the live rates move):
BTC 0.95 up to 1,000 coins, 0.9 up to 5,000, 0.5 up to 10,000, 0 beyond; ETH alike at
ten times those amounts; stable coins 1; any other coin 0.8 up to 100,000. Not emulated:
borrowing, the collateralised-borrow restriction, inverse positions' account-level
liquidation price (their one-position formula stays). An independent model of the
venue: it shares nothing with ``bot/``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tests.support.emulators.bybit._bybit_collateral import collateral_qty
from tests.support.emulators.okx._okx_account import TAKER_FEE, PositionView, Snapshot
from tests.support.emulators.okx._okx_models import ZERO, fmt, fmt_ratio

if TYPE_CHECKING:
    from tests.support.emulators.okx._okx_engine import Engine

D = Decimal
#: (from this many coins, the discount rate of the coins from there), lowest first
Tiers = tuple[tuple[Decimal, Decimal], ...]
STABLE_TIERS: Tiers = ((ZERO, D(1)),)
DISCOUNT_TIERS: dict[str, Tiers] = {
    "USDT": STABLE_TIERS,
    "USDC": STABLE_TIERS,
    "BTC": ((ZERO, D("0.95")), (D(1000), D("0.9")), (D(5000), D("0.5")), (D(10000), ZERO)),
    "ETH": ((ZERO, D("0.95")), (D(10000), D("0.9")), (D(50000), D("0.5")), (D(100000), ZERO)),
}
OTHER_TIERS: Tiers = ((ZERO, D("0.8")), (D(100000), ZERO))
MULTI_CURRENCY_LEVELS = frozenset({"3", "4"})


@dataclass(frozen=True)
class MultiFigures:
    """The account-level figures of /account/balance at level 3, in USD."""

    adj_eq: Decimal
    imr: Decimal
    mmr: Decimal
    fees: Decimal  # the taker fee of closing every cross position at its mark

    @property
    def avail_eq(self) -> Decimal:
        """availEq: the adjusted equity less the initial margin."""
        return max(self.adj_eq - self.imr, ZERO)

    @property
    def ratio(self) -> Decimal | None:
        """mgnRatio: adjEq / (mmr + fees); None without a cross position."""
        return self.adj_eq / (self.mmr + self.fees) if self.mmr > 0 else None

    @property
    def liquidated(self) -> bool:
        """mgnRatio at or below 100 %: the venue liquidates."""
        return self.mmr > 0 and self.adj_eq <= self.mmr + self.fees


class MultiCurrencyMargin:
    """The account-level margin of the engine's trading account at level 3."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.tier_overrides: dict[str, Tiers] = {}
        self.liquidations: list[tuple[int, Decimal, Decimal]] = []  # (ms, adjEq, mmr+fees)

    @property
    def active(self) -> bool:
        """Whether the account is in multi-currency (or portfolio) margin mode."""
        return self.engine.account.acct_lv in MULTI_CURRENCY_LEVELS

    def tiers(self, ccy: str) -> Tiers:
        """The coin's discount-rate tiers."""
        if ccy in self.tier_overrides:
            return self.tier_overrides[ccy]
        return DISCOUNT_TIERS.get(ccy, OTHER_TIERS)

    def usd(self, ccy: str) -> Decimal:
        """A coin's USD price: its last price, 1 for a coin without a market (USDT)."""
        market = self.engine.markets.get(ccy)
        return self.engine.quotes[market.base].last if market is not None else D(1)

    def _cross(self, snap: Snapshot) -> list[PositionView]:
        return [v for v in self.engine.account.views(snap) if v.state.mgn_mode == "cross"]

    def cross_eq(self, ccy: str, snap: Snapshot) -> Decimal:
        """The coin's equity less its isolated positions' margin and PnL."""
        views = [v for v in self.engine.account.views(snap) if v.inst.settle_ccy == ccy]
        iso = sum((v.margin + v.upl for v in views if v.state.mgn_mode == "isolated"), ZERO)
        return snap.cash.get(ccy, ZERO) + sum((v.upl for v in views), ZERO) - iso

    def dis_eq(self, ccy: str, snap: Snapshot) -> Decimal:
        """disEq: the cross equity at its tiered discount rate, in USD."""
        return collateral_qty(self.cross_eq(ccy, snap), self.tiers(ccy)) * self.usd(ccy)

    def _orders_imr(self) -> Decimal:
        """Initial margin of the open cross contract orders, in USD."""
        held = ZERO
        for o in self.engine.orders.values():
            if o.is_open and o.inst.is_contract and o.td_mode == "cross":
                lever = self.engine.account.lever(o.inst.inst_id, o.td_mode, o.pos_side)
                held += o.inst.value(o.remaining, o.price) / lever * self.usd(o.inst.settle_ccy)
        return held

    def figures(self, *, lagged: bool = True) -> MultiFigures:
        """The account's figures now (as the lagged views show them, unless said)."""
        snap = self.engine.account.view(lagged=lagged)
        cross = self._cross(snap)
        usd = [self.usd(v.inst.settle_ccy) for v in cross]
        return MultiFigures(
            adj_eq=sum((self.dis_eq(c, snap) for c in snap.cash), ZERO),
            imr=sum((v.imr * u for v, u in zip(cross, usd, strict=True)), ZERO)
            + self._orders_imr(),
            mmr=sum((v.mmr * u for v, u in zip(cross, usd, strict=True)), ZERO),
            fees=sum((v.notional * u for v, u in zip(cross, usd, strict=True)), ZERO) * TAKER_FEE,
        )

    def available(self, ccy: str, td_mode: str, frozen: Mapping[str, Decimal]) -> Decimal:
        """What an order may margin with, in ``ccy`` (unlagged): a cross order at level 3
        the account's available equity, else the currency's own (level 2)."""
        if not self.active or td_mode != "cross":
            return self.engine.account.available(ccy, frozen)
        return self.figures(lagged=False).avail_eq / self.usd(ccy)

    # ------------------------------------------------------------------ positions
    def liq_px(self, view: PositionView) -> Decimal:
        """A position's liqPx: the account's for a linear cross one at level 3 (0: none),
        else the one-position estimate."""
        if not self.active or view.state.mgn_mode != "cross" or view.inst.inverse:
            return view.liq_px
        coin = view.inst.market.base
        snap = self.engine.account.view()
        mine = [v for v in self._cross(snap) if v.inst.market.base == coin and not v.inst.inverse]
        # d(adjEq)/d(price) and d(mmr + fees)/d(price), in coins
        slope = collateral_qty(self.cross_eq(coin, snap), self.tiers(coin))
        slope += sum((v.signed_base for v in mine), ZERO)
        needed = sum((abs(v.signed_base) * (v.inst.market.mmr + TAKER_FEE) for v in mine), ZERO)
        if slope == needed:
            return ZERO
        figures = self.figures()
        price = self.engine.quotes[coin].mark
        root = price + (figures.mmr + figures.fees - figures.adj_eq) / (slope - needed)
        return max(root, ZERO)

    def margin_ratio(self, view: PositionView) -> str | None:
        """A cross position's mgnRatio at level 3 (the account's); None: as at level 2."""
        if not self.active or view.state.mgn_mode != "cross":
            return None
        ratio = self.figures().ratio
        return fmt_ratio(ratio) if ratio is not None else ""

    # ------------------------------------------------------------------ balance
    def rewrite_balance(self, row: dict[str, Any], snap: Snapshot) -> None:
        """Fill /account/balance's account-level and per-currency figures at level 3."""
        figures = self.figures()
        ratio = figures.ratio
        row.update(
            adjEq=fmt(figures.adj_eq),
            availEq=fmt(figures.avail_eq),
            imr=fmt(figures.imr),
            mmr=fmt(figures.mmr),
            mgnRatio=fmt_ratio(ratio) if ratio is not None else "",
        )
        frozen = self.engine.ord_frozen()
        for detail in row["details"]:
            ccy = detail["ccy"]
            eq = self.cross_eq(ccy, snap)
            own = eq - frozen.get(ccy, ZERO)
            usable = min(own, figures.avail_eq / self.usd(ccy))
            detail.update(
                availEq=fmt(max(usable, ZERO)),
                disEq=fmt(self.dis_eq(ccy, snap)),
                crossLiab=fmt(max(-eq, ZERO)),
                liab=fmt(max(-eq, ZERO)),
                imr="",
                mmr="",
                mgnRatio="",
            )

    # ------------------------------------------------------------------ liquidation
    def liquidate_if_due(self) -> bool:
        """At a margin ratio of 100 % or less close every cross position at its mark."""
        if not self.active:
            return False
        figures = self.figures(lagged=False)
        if not figures.liquidated:
            return False
        self.liquidations.append((self.engine.now_ms(), figures.adj_eq, figures.mmr + figures.fees))
        account = self.engine.account
        for view in self._cross(account.view(lagged=False)):
            account.remember()
            state = view.state
            fee = -view.notional * TAKER_FEE
            realised = view.upl
            short = state.pos < 0 or state.pos_side == "short"
            state.realized_pnl += realised + fee
            state.fee += fee
            state.pos, state.avg_px, state.added_margin, state.c_time = ZERO, ZERO, ZERO, 0
            state.u_time = account.now_ms()
            ccy = view.inst.settle_ccy
            account.cash[ccy] = account.cash.get(ccy, ZERO) + realised + fee
            account.u_time = state.u_time
            account.add_bill(
                "5",  # liquidation; subType 104/105: liquidation of a long/short
                "105" if short else "104",
                view.inst.settle_ccy,
                realised + fee,
                inst_id=view.inst.inst_id,
                inst_type=view.inst.inst_type,
                mgn_mode="cross",
                pnl=realised,
                fee=fee,
            )
        return True


class DiscountApi:
    """GET /api/v5/public/discount-rate-interest-free-quota."""

    def __init__(self, margin: MultiCurrencyMargin) -> None:
        self.margin = margin

    def discount_rates(self, params: Mapping[str, Any], ctx: Any) -> list[dict[str, Any]]:
        """Each coin's discount-rate tiers (``maxAmt`` "" is unbounded) and, of the
        first tier, ``discountLv``'s successor ``minDiscountRate``."""
        wanted = params.get("ccy")
        coins = sorted({"USDT", *self.margin.engine.markets})
        rows = []
        for coin in coins:
            if wanted not in (None, "", coin):
                continue
            tiers = self.margin.tiers(coin)
            rows.append(
                {
                    "amt": "0",
                    "ccy": coin,
                    "collateralRestrict": False,
                    "details": [
                        {
                            "discountRate": fmt(rate),
                            "liqPenaltyRate": "0.02",
                            "maxAmt": fmt(tiers[n + 1][0]) if n + 1 < len(tiers) else "",
                            "minAmt": fmt(start),
                            "tier": str(n + 1),
                            "disCcyEq": fmt(collateral_qty(tiers[n + 1][0], tiers))
                            if n + 1 < len(tiers)
                            else "",
                        }
                        for n, (start, rate) in enumerate(tiers)
                    ],
                    "discountLv": "",
                    "minDiscountRate": fmt(min(rate for _, rate in tiers)),
                }
            )
        return rows
