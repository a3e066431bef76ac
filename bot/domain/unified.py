"""A unified (cross-collateral) account's margin: the coins held count as collateral (pure).

On a unified or multi-asset margin account (Bybit's unified trading account, OKX's
multi-currency margin, Binance's multi-assets and portfolio margin) every asset the
account holds backs every position, each at the venue's *collateral ratio* (Bybit's
"collateral value ratio": BTC 0.95 means 1 BTC at 60,000 backs 57,000 of margin). So the
coins a hedge protects are also the short's margin, and a rally that loses the short
money raises the collateral's value by nearly as much.

The account, valued in its quote asset:

* margin balance ``B = sum(held x price x ratio) + unrealized PnL`` (a borrowed asset,
  negative held, counts at its full value: a debt has no haircut);
* maintenance ``MM = sum over positions of the tier margin of |qty| x mark``;
* initial ``IM = sum |qty| x mark / leverage``; available ``B - IM``;
* the venue liquidates the account when ``B <= MM`` (Bybit: account MM rate 100 %).

Liquidation price of one coin ``P``: every other price held where it is, ``B - MM`` is a
continuous, piecewise linear function of ``P`` (the coin held and the coin's positions
move with it; tiers change the slope), so the account's liquidation prices are its roots:
the nearest below and the nearest above the price now. For a spot-hedged short
(``held = q``, ``qty = -q``) the slope is ``q x (ratio - 1 - rate) < 0``: only a rally
can liquidate it, at ``(K + q x entry) / (q x (1 - ratio + rate))`` where ``K`` is the
rest of the account's margin balance less its other maintenance — for 1 BTC at 60,000
hedged 1x with a 0.95 ratio and a 0.5 % rate and nothing else, 1,090,909, a rally of
1,718 %. A coin's spot price and its contracts' mark are taken as one price (the basis
is ignored: a few tenths of a percent against distances of tens of percent).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from bot.domain.margin import MaintenanceTier, MaintenanceTiers
from bot.domain.models import ONE, ZERO


@dataclass(frozen=True, slots=True)
class Holding:
    """An asset the account holds (negative: borrowed), its price in the account's quote
    asset (1 for the quote itself) and its collateral ratio (0: not collateral)."""

    asset: str
    qty: Decimal
    price: Decimal
    ratio: Decimal

    @property
    def collateral(self) -> Decimal:
        """What the holding adds to the margin balance (a debt at its full value)."""
        value = self.qty * self.price
        return value * self.ratio if value > ZERO else value


@dataclass(frozen=True, slots=True)
class CrossPosition:
    """A perp position of the account: ``coin`` is its base, ``qty`` signed base."""

    symbol: str
    coin: str
    qty: Decimal
    entry_price: Decimal
    mark_price: Decimal
    leverage: Decimal
    tiers: MaintenanceTiers

    @property
    def unrealized(self) -> Decimal:
        return self.qty * (self.mark_price - self.entry_price)

    @property
    def maintenance(self) -> Decimal:
        return self.tiers.margin(abs(self.qty) * self.mark_price)

    @property
    def initial(self) -> Decimal:
        return abs(self.qty) * self.mark_price / self.leverage


@dataclass(frozen=True, slots=True)
class LiquidationPrices:
    """The coin's prices at which the account is liquidated (None: no such price), the
    nearest below and the nearest above its price now."""

    below: Decimal | None
    above: Decimal | None

    def distance(self, price: Decimal) -> Decimal | None:
        """The nearer of the two, as a fraction of ``price``; None when neither exists."""
        gaps = [abs(p - price) / price for p in (self.below, self.above) if p is not None]
        return min(gaps) if gaps else None

    def nearest(self, price: Decimal) -> Decimal | None:
        """The nearer liquidation price (None: neither exists)."""
        found = [p for p in (self.below, self.above) if p is not None]
        return min(found, key=lambda p: abs(p - price)) if found else None


@dataclass(frozen=True, slots=True)
class UnifiedAccount:
    """What the account holds and the positions it backs, valued in its quote asset."""

    holdings: tuple[Holding, ...]
    positions: tuple[CrossPosition, ...]

    @property
    def collateral(self) -> Decimal:
        return sum((h.collateral for h in self.holdings), ZERO)

    @property
    def unrealized(self) -> Decimal:
        return sum((p.unrealized for p in self.positions), ZERO)

    @property
    def margin_balance(self) -> Decimal:
        """Collateral at the ratios plus the positions' unrealized PnL."""
        return self.collateral + self.unrealized

    @property
    def maintenance(self) -> Decimal:
        return sum((p.maintenance for p in self.positions), ZERO)

    @property
    def initial(self) -> Decimal:
        return sum((p.initial for p in self.positions), ZERO)

    @property
    def available(self) -> Decimal:
        """Margin balance not taken by the positions' initial margin (may be negative)."""
        return self.margin_balance - self.initial

    @property
    def liquidated(self) -> bool:
        """The venue's condition: margin balance at or below the maintenance margin."""
        return bool(self.positions) and self.margin_balance <= self.maintenance

    def liquidation_prices(self, coin: str, price: Decimal) -> LiquidationPrices:
        """Where the price of ``coin`` (``price`` now) liquidates the account, every other
        price held still (see the module's docstring)."""
        line = _CoinLine.of(self, coin)
        return LiquidationPrices(line.root_below(price), line.root_above(price))

    def distance(self, coin: str, price: Decimal) -> Decimal | None:
        """How far the price of ``coin`` may move, as a fraction of ``price``, before the
        account is liquidated; None when no price of it can liquidate the account."""
        return self.liquidation_prices(coin, price).distance(price)


@dataclass(frozen=True, slots=True)
class _CoinLine:
    """``B - MM`` as a function of one coin's price ``P``: ``constant + held x P`` plus,
    for each of the coin's positions, ``qty x (P - entry) - tier margin(|qty| x P)``."""

    constant: Decimal  # the rest of the account: collateral + PnL - maintenance
    held: Decimal  # d(collateral)/dP of the coin's holding (qty x ratio, or qty if a debt)
    debt: bool  # the coin is borrowed: it counts at its full value
    positions: tuple[CrossPosition, ...]

    @classmethod
    def of(cls, account: UnifiedAccount, coin: str) -> _CoinLine:
        constant = ZERO
        held = ZERO
        debt = False
        for holding in account.holdings:
            if holding.asset == coin:
                debt = holding.qty < ZERO
                held += holding.qty if debt else holding.qty * holding.ratio
            else:
                constant += holding.collateral
        mine = tuple(p for p in account.positions if p.coin == coin)
        for position in account.positions:
            if position.coin != coin:
                constant += position.unrealized - position.maintenance
        return cls(constant, held, debt, mine)

    def value(self, price: Decimal) -> Decimal:
        total = self.constant + self.held * price
        for p in self.positions:
            total += p.qty * (price - p.entry_price) - p.tiers.margin(abs(p.qty) * price)
        return total

    def _breaks(self) -> list[Decimal]:
        """Prices where a position's tier changes (the slope changes there), ascending."""
        found: set[Decimal] = set()
        for p in self.positions:
            if p.qty != ZERO:
                found.update(t.floor / abs(p.qty) for t in p.tiers.tiers if t.floor > ZERO)
        return sorted(found)

    def _slope_and_intercept(self, lo: Decimal, hi: Decimal | None) -> tuple[Decimal, Decimal]:
        """``value(P) = intercept + slope x P`` for ``P`` in ``[lo, hi]`` (one tier each)."""
        probe = lo * 2 + ONE if hi is None else (lo + hi) / 2
        slope = self.held
        intercept = self.constant
        for p in self.positions:
            tier: MaintenanceTier = p.tiers.tier(abs(p.qty) * probe)
            slope += p.qty - abs(p.qty) * tier.rate
            intercept += -p.qty * p.entry_price + tier.amount
        return slope, intercept

    def _segments(self) -> list[tuple[Decimal, Decimal | None]]:
        bounds = [ZERO, *self._breaks()]
        return [(lo, bounds[i + 1] if i + 1 < len(bounds) else None) for i, lo in enumerate(bounds)]

    def root_above(self, price: Decimal) -> Decimal | None:
        """The lowest price above ``price`` where the value reaches 0, if any."""
        for lo, hi in self._segments():
            if hi is not None and hi <= price:
                continue
            start = max(lo, price)
            slope, intercept = self._slope_and_intercept(lo, hi)
            if slope >= ZERO:
                continue
            root = -intercept / slope
            if root > start and (hi is None or root <= hi):
                return root
        return None

    def root_below(self, price: Decimal) -> Decimal | None:
        """The highest price below ``price`` (and above 0) where the value reaches 0."""
        for lo, hi in reversed(self._segments()):
            if lo >= price:
                continue
            end = price if hi is None else min(hi, price)
            slope, intercept = self._slope_and_intercept(lo, hi)
            if slope <= ZERO:
                continue
            root = -intercept / slope
            if lo <= root < end and root > ZERO:
                return root
        return None


def collateral_ratio(ratios: dict[str, Decimal], asset: str, quote: str) -> Decimal:
    """The ratio of ``asset``: 1 for the quote asset, else the configured one (0: none)."""
    return ONE if asset == quote else ratios.get(asset, ZERO)


def holdings_of(
    balances: Iterable[tuple[str, Decimal]],
    prices: dict[str, Decimal],
    ratios: dict[str, Decimal],
    quote: str,
) -> tuple[Holding, ...]:
    """Holdings from ``(asset, qty)`` pairs; an asset without a price counts for nothing."""
    held: list[Holding] = []
    for asset, qty in balances:
        price = ONE if asset == quote else prices.get(asset)
        if price is None or qty == ZERO:
            continue
        held.append(Holding(asset, qty, price, collateral_ratio(ratios, asset, quote)))
    return tuple(held)
