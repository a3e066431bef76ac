"""Spot as collateral on the emulated unified account (cross margin mode).

Bybit's UTA in cross (REGULAR_MARGIN) or portfolio margin mode values every coin whose
``collateralSwitch`` is on at its tiered collateral value ratio
(GET /v5/spot-margin-trade/collateral: a ratio per range of coin quantity, each range's
coins at its own ratio) and USDT at 1, in USD:

* ``totalEquity``: every coin's equity at its full USD value (no ratio);
* ``totalWalletBalance``: the wallets at their collateral value (a debt, a negative
  balance, at its full value);
* ``totalMarginBalance``: the wallet balance plus the contracts' unrealised PnL;
* ``totalInitialMargin``/``totalMaintenanceMargin``: the positions' (and resting
  orders') margins in USD; ``totalAvailableBalance`` = margin balance - initial margin;
* ``accountIMRate``/``accountMMRate``: initial and maintenance margin over the margin
  balance; at an MM rate of 100 % the venue liquidates (every position closed at its
  mark, ``BustTrade`` executions).

A linear cross position's ``liqPrice`` is the account's: the price of its coin (every
other price held) at which the margin balance meets the maintenance margin; both are
linear in that price, so it is one root, "" when no price gets there. In ISOLATED_MARGIN
mode none of this applies: the account-wide fields are "" and a USDT contract margins
from USDT alone. An independent model of the venue: it shares nothing with ``bot/``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tests.support.emulators._common import fmt
from tests.support.emulators.bybit._bybit_account import PositionView
from tests.support.emulators.bybit._bybit_models import CONTRACTS, ZERO, Category, Execution

if TYPE_CHECKING:
    from tests.support.emulators.bybit._bybit_engine import Engine

#: (from this many coins, the collateral value ratio of the coins from there), lowest first
Tiers = tuple[tuple[Decimal, Decimal], ...]
STABLE = frozenset({"USDT", "USDC"})
JSON = Any
Params = Mapping[str, Any]


def collateral_qty(qty: Decimal, tiers: Tiers) -> Decimal:
    """The coins ``qty`` counts as, each tier's range at its ratio; a debt at full value."""
    if qty <= 0:
        return qty
    counted = ZERO
    for n, (start, ratio) in enumerate(tiers):
        end = tiers[n + 1][0] if n + 1 < len(tiers) else None
        if qty <= start:
            break
        counted += ((qty if end is None else min(qty, end)) - start) * ratio
    return counted


@dataclass(frozen=True)
class AccountFigures:
    """The account-wide figures of /v5/account/wallet-balance, in USD."""

    equity: Decimal
    wallet: Decimal
    upl: Decimal
    initial: Decimal
    maintenance: Decimal

    @property
    def margin_balance(self) -> Decimal:
        """totalMarginBalance: the wallets at their collateral value plus the uPnL."""
        return self.wallet + self.upl

    @property
    def available(self) -> Decimal:
        """totalAvailableBalance: the margin balance less the initial margin."""
        return max(self.margin_balance - self.initial, ZERO)

    def rate(self, margin: Decimal) -> Decimal:
        """``margin`` over the margin balance (1 once nothing is left to back it)."""
        if self.margin_balance <= 0:
            return Decimal(1) if margin > 0 else ZERO
        return margin / self.margin_balance

    @property
    def liquidated(self) -> bool:
        """accountMMRate at 100 %: the venue liquidates the account."""
        return self.maintenance > 0 and self.margin_balance <= self.maintenance


class UnifiedMargin:
    """The account-level margin of the engine's unified account."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.collateral_off: set[str] = set()  # coins whose collateralSwitch is off
        self.liquidations: list[tuple[int, Decimal, Decimal]] = []  # (ms, MB, MM)

    @property
    def cross(self) -> bool:
        """Whether the account margins as a whole (not ISOLATED_MARGIN)."""
        return self.engine.account.margin_mode != "ISOLATED_MARGIN"

    def usd(self, coin: str) -> Decimal:
        """A coin's USD price: 1 for a stable coin, its last price, else 0."""
        if coin in STABLE:
            return Decimal(1)
        quote = self.engine.book.quotes.get(coin)
        return quote.last if quote is not None else ZERO

    def tiers(self, coin: str) -> Tiers:
        """The coin's collateral value ratio tiers (none: it backs nothing)."""
        if coin in STABLE:
            return ((ZERO, Decimal(1)),)
        market = self.engine.book.markets.get(coin)
        if market is None or coin in self.collateral_off:
            return ()
        return market.collateral_tiers

    def counts(self, coin: str) -> bool:
        """collateralSwitch: whether the coin backs the account's margin."""
        return bool(self.tiers(coin))

    def figures(self, *, lagged: bool = True) -> AccountFigures:
        """The account's figures now (as the lagged views show them, unless said)."""
        wallet = self.engine.account.view(lagged=lagged).wallet
        views = self.engine.account.views(self.engine.marks(), lagged=lagged)
        return AccountFigures(
            equity=sum((self._equity(c, q, views) for c, q in wallet.items()), ZERO),
            wallet=sum(
                (collateral_qty(q, self.tiers(c)) * self.usd(c) for c, q in wallet.items()), ZERO
            ),
            upl=sum((v.unrealised * self.usd(v.coin) for v in views), ZERO),
            initial=sum((v.balance * self.usd(v.coin) for v in views), ZERO)
            + self.engine.order_margin(),
            maintenance=sum((v.maint_margin * self.usd(v.coin) for v in views), ZERO),
        )

    def _equity(self, coin: str, qty: Decimal, views: Sequence[PositionView]) -> Decimal:
        upl = sum((v.unrealised for v in views if v.coin == coin), ZERO)
        return (qty + upl) * self.usd(coin)

    def liquidation_price(self, view: PositionView, *, lagged: bool = True) -> Decimal | None:
        """The account's liquidation price of a linear cross position: where the margin
        balance meets the maintenance margin as its coin's price moves alone (its
        contracts' marks and the coin's collateral with it); None when no price does."""
        coin = self.engine.book.instruments["linear"][view.symbol].market.base
        price = self.engine.book.quotes[coin].mark
        figures = self.figures(lagged=lagged)
        wallet = self.engine.account.view(lagged=lagged).wallet
        mine = [
            v
            for v in self.engine.account.views(self.engine.marks(), lagged=lagged)
            if self._coin_of(v) == coin
        ]
        # d(margin balance)/d(price) and d(maintenance)/d(price), in coins
        slope = collateral_qty(wallet.get(coin, ZERO), self.tiers(coin))
        slope += sum((v.size / v.state.entry if v.inverse else v.size for v in mine), ZERO)
        maint = sum((ZERO if v.inverse else abs(v.size) * v.mmr for v in mine), ZERO)
        if slope == maint:
            return None
        root = price + (figures.maintenance - figures.margin_balance) / (slope - maint)
        return root if root > 0 else None

    def _coin_of(self, view: PositionView) -> str:
        category: Category = "inverse" if view.inverse else "linear"
        return self.engine.book.instruments[category][view.symbol].market.base

    def liquidate_if_due(self) -> bool:
        """At an account MM rate of 100 % close every position at its mark (cross mode)."""
        if not self.cross:
            return False
        figures = self.figures(lagged=False)
        if not figures.liquidated:
            return False
        self.liquidations.append(
            (self.engine.now_ms(), figures.margin_balance, figures.maintenance)
        )
        self.close_all_at_mark()
        return True

    def close_all_at_mark(self) -> None:
        """The venue's liquidation: every position closed at its mark, its PnL settled,
        each close a ``BustTrade`` execution."""
        engine = self.engine
        for (symbol, idx), state in list(engine.account.live.positions.items()):
            if state.size == 0:
                continue
            inst = next(i for c in CONTRACTS if (i := engine.book.instruments[c].get(symbol)))
            mark = engine.book.quotes[inst.market.base].mark
            size = state.size
            engine.account.snapshot()
            realised = engine.account.apply_fill(symbol, idx, -size, mark, inst.inverse)
            engine.account.credit(inst.settle, realised)
            engine.executions.append(
                Execution(
                    exec_id=str(uuid.uuid4()),
                    category=inst.category,
                    symbol=symbol,
                    exec_type="BustTrade",
                    side="Buy" if size < 0 else "Sell",
                    price=mark,
                    qty=abs(size),
                    fee=ZERO,
                    fee_rate=ZERO,
                    fee_coin=inst.settle,
                    is_maker=False,
                    time_ms=engine.now_ms(),
                    closed_size=abs(size),
                    mark_price=mark,
                )
            )


class CollateralApi:
    """GET /v5/account/collateral-info and /v5/spot-margin-trade/collateral."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collateral_info(self, params: Params) -> JSON:
        """GET /v5/account/collateral-info: each coin, whether it may back margin
        (``marginCollateral``) and whether the user lets it (``collateralSwitch``)."""
        margin = self.engine.margin
        coins = sorted({*STABLE, *self.engine.book.markets})
        wanted = params.get("currency")
        return {
            "list": [
                {
                    "currency": coin,
                    "hourlyBorrowRate": "0.0000015",
                    "maxBorrowingAmount": "1000000",
                    "freeBorrowingLimit": "0",
                    "freeBorrowAmount": "0",
                    "borrowAmount": "0",
                    "otherBorrowAmount": "0",
                    "availableToBorrow": "1000000",
                    "borrowable": True,
                    "borrowUsageRate": "0",
                    "marginCollateral": bool(margin.tiers(coin) or coin in STABLE),
                    "collateralSwitch": margin.counts(coin),
                    "freeBorrowingAmount": "",
                    "collateralRatio": fmt(margin.tiers(coin)[0][1])
                    if margin.counts(coin)
                    else "0",
                }
                for coin in coins
                if wanted in (None, "", coin)
            ]
        }

    def tiered_collateral(self, params: Params) -> JSON:
        """GET /v5/spot-margin-trade/collateral (public): each coin's collateral value
        ratio by range of coin quantity (``maxQty`` "" is unbounded)."""
        wanted = params.get("currency")
        rows = []
        for coin, market in sorted(self.engine.book.markets.items()):
            if wanted not in (None, "", coin):
                continue
            tiers = market.collateral_tiers
            ranges = [
                {
                    "minQty": fmt(start),
                    "maxQty": fmt(tiers[n + 1][0]) if n + 1 < len(tiers) else "",
                    "collateralRatio": fmt(ratio),
                }
                for n, (start, ratio) in enumerate(tiers)
            ]
            rows.append({"currency": coin, "collateralRatioList": ranges})
        return {"list": rows}
