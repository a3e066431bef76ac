"""The paper account margined as a whole: ``paper.account = "cross"`` or ``"unified"``.

On a cross account the quote asset backs every position; on a unified (cross-collateral)
account every asset held backs them too, at ``paper.collateral_ratios`` (the quote asset
at 1), as on Bybit's unified trading account. A cross account is a unified one whose
coins count for nothing; the arithmetic is ``bot.domain.unified``'s. What changes
against the isolated account:

* the quote asset's ``free`` is the account's *available* balance (margin balance less
  the positions' initial margin), so an order's margin comes from the coins too; a spot
  buy still needs the quote it pays (no borrowing);
* a position's liquidation price is the account's, for that position's coin (the other
  prices held still), the nearest one to the mark;
* the account is liquidated when its margin balance falls to its maintenance margin:
  every position is closed at its mark and the maintenance margin is charged as the
  venue's liquidation fee;
* losses and fees may take the quote balance below zero (a debt the coins back, as the
  venue's automatic borrowing does); it counts at its full value.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from bot.config import PaperConfig
from bot.domain.margin import MaintenanceTiers
from bot.domain.models import ZERO, Balance
from bot.domain.paper_account import PaperAccountState, PaperPosition
from bot.domain.symbols import Symbol
from bot.domain.unified import CrossPosition, UnifiedAccount, holdings_of
from bot.exchange.feeds import FeedError, FeedQuote

QuoteFn = Callable[[str, datetime], FeedQuote]


class UnifiedBooks:
    """The account-level figures of a cross or unified paper account, valued at the feed's
    prices."""

    def __init__(
        self,
        state: PaperAccountState,
        config: PaperConfig,
        quote: QuoteFn,
        spot: QuoteFn,
        maintenance: Callable[[str], MaintenanceTiers],
    ) -> None:
        self._state = state
        self._config = config
        self._quote = quote
        self._spot = spot
        self._maintenance = maintenance

    def account(self, now: datetime) -> UnifiedAccount:
        """The account now: its holdings at the spot prices, its positions at their marks."""
        quote_asset = self._config.quote_asset
        prices: dict[str, Decimal] = {}
        for asset in self._state.balances:
            if asset != quote_asset:
                price = self._price(f"{asset}/{quote_asset}", now)
                if price is not None:
                    prices[asset] = price
        ratios = dict(self._config.collateral_ratios) if self._config.account == "unified" else {}
        holdings = holdings_of(self._state.balances.items(), prices, ratios, quote_asset)
        positions = tuple(self._cross(p, now) for p in self._state.positions.values())
        return UnifiedAccount(holdings, positions)

    def _price(self, symbol: str, now: datetime) -> Decimal | None:
        try:
            return self._spot(symbol, now).price
        except (KeyError, FeedError):  # the feed does not price this coin: it backs nothing
            return None

    def _cross(self, position: PaperPosition, now: datetime) -> CrossPosition:
        return CrossPosition(
            symbol=position.symbol,
            coin=Symbol.parse(position.symbol).base,
            qty=position.qty,
            entry_price=position.entry_price,
            mark_price=self._quote(position.symbol, now).price,
            leverage=position.leverage,
            tiers=self._maintenance(position.symbol),
        )

    def available(self, now: datetime) -> Decimal:
        """Margin balance less the initial margin the positions hold (their ``margin``)."""
        return self._available(self.account(now))

    def _available(self, account: UnifiedAccount) -> Decimal:
        return account.margin_balance - sum(
            (p.margin for p in self._state.positions.values()), ZERO
        )

    def liquidation_price(self, position: PaperPosition, now: datetime) -> Decimal | None:
        """The account's liquidation price of the position's coin nearest to its mark."""
        mark = self._quote(position.symbol, now).price
        coin = Symbol.parse(position.symbol).base
        return self.account(now).liquidation_prices(coin, mark).nearest(mark)

    def margin_balances(self, balances: dict[str, Balance], now: datetime) -> dict[str, Balance]:
        """``balances`` (the wallet's) as a margin wallet: the quote asset's ``free`` is the
        account's available balance, its ``equity`` the account's margin balance."""
        quote_asset = self._config.quote_asset
        account = self.account(now)
        balances[quote_asset] = Balance(
            asset=quote_asset,
            free=max(self._available(account), ZERO),
            total=self._state.balances.get(quote_asset, ZERO),
            equity=account.margin_balance,
        )
        return balances

    def liquidated(self, now: datetime) -> tuple[bool, Decimal, Decimal]:
        """Whether the account is liquidated now, with its margin balance and maintenance."""
        account = self.account(now)
        return account.liquidated, account.margin_balance, account.maintenance
