"""The paper account's coin-margined (inverse) books, as Binance COIN-M keeps them.

* **Wallet**: a coin-margin wallet apart from the spot wallet (``state.coin_margin``,
  started from ``PaperConfig.coin_margin_balances``); each coin's balance includes the
  margin locked in its positions.
* **Positions** are isolated, one-way, in ``state.inverse_positions``: ``qty`` is the
  signed face value in USD (contracts x contract size), ``margin`` the coins locked
  (``face / price / leverage`` when opened). The entry price averages harmonically.
* **Fills**: the fee is ``taker_fee_rate`` x the face value / price, in the coin; a
  reduction realizes ``face x (1/entry - 1/price)`` coins and frees margin pro rata.
* **Funding** at the ledger's funding times: ``-face / mark x rate`` coins.
* **Liquidation** at Binance COIN-M's isolated liquidation price (``bot.domain.inverse``)
  with the flat ``maintenance_margin_rate``: closed there, the whole margin lost,
  recorded as an order ``liquidation-<n>`` like a linear one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from bot.config import PaperConfig
from bot.domain.inverse import average_entry, coin_funding, coin_pnl, initial_margin
from bot.domain.inverse import liquidation_price as inverse_liquidation_price
from bot.domain.margin import MaintenanceTiers
from bot.domain.models import ZERO, Balance, FundingPayment, Market, OrderRequest, Position
from bot.domain.models import Side as OrderSide
from bot.domain.paper_account import PaperAccountState, PaperPosition
from bot.exchange.feeds import FeedQuote
from bot.exchange.gateway import OrderRejectedError
from bot.exchange.paper.rules import settle_asset


@dataclass(frozen=True, slots=True)
class InverseTrade:
    """An inverse order against the position, in face value (USD) and coins; not applied."""

    face: Decimal  # the position before, signed USD
    new_face: Decimal
    closing: Decimal  # face closed (absolute)
    opening: Decimal  # face opened (absolute)
    realized: Decimal  # coins
    released: Decimal  # coins of margin freed
    added: Decimal  # coins of margin locked
    fee: Decimal  # coins


class InverseBooks:
    """The coin-margin wallet and inverse positions of one paper account (in ``state``)."""

    def __init__(
        self,
        state: PaperAccountState,
        config: PaperConfig,
        *,
        quote: Callable[[str, datetime], FeedQuote],
        market: Callable[[str], Market],
        leverage: Callable[[str], Decimal],
    ) -> None:
        self.state = state
        self._config = config
        self._quote = quote
        self._market = market
        self._leverage = leverage
        self._tiers = MaintenanceTiers.flat(config.maintenance_margin_rate)

    # -- wallet and positions --------------------------------------------------------------

    def locked(self, coin: str) -> Decimal:
        positions = self.state.inverse_positions.values()
        return sum((p.margin for p in positions if settle_asset(p.symbol) == coin), ZERO)

    def free(self, coin: str) -> Decimal:
        return self.state.coin_margin.get(coin, ZERO) - self.locked(coin)

    def unrealized(self, coin: str, now: datetime) -> Decimal:
        """Coins the open positions settled in ``coin`` gain (or lose) at the mark."""
        return sum(
            (
                self._pnl(p, now)
                for p in self.state.inverse_positions.values()
                if settle_asset(p.symbol) == coin
            ),
            ZERO,
        )

    def _pnl(self, position: PaperPosition, now: datetime) -> Decimal:
        return coin_pnl(position.qty, position.entry_price, self._quote(position.symbol, now).price)

    def wallets(self, now: datetime) -> dict[str, Balance]:
        """The coin-margin wallet: free excludes locked margin, equity adds the PnL."""
        return {
            coin: Balance(coin, self.free(coin), total, total + self.unrealized(coin, now))
            for coin, total in self.state.coin_margin.items()
        }

    def liquidation_price(self, position: PaperPosition) -> Decimal | None:
        return inverse_liquidation_price(
            position.qty, position.entry_price, position.margin, self._tiers
        )

    def positions(self, symbols: set[str], now: datetime) -> dict[str, Position]:
        """Open inverse positions among ``symbols``; ``qty`` is the signed face (USD)."""
        return {
            symbol: Position(
                symbol=symbol,
                qty=p.qty,
                entry_price=p.entry_price,
                mark_price=self._quote(symbol, now).price,
                unrealized_pnl=self._pnl(p, now),
                leverage=p.leverage,
                liquidation_price=self.liquidation_price(p),
                margin=p.margin,
            )
            for symbol, p in self.state.inverse_positions.items()
            if symbol in symbols
        }

    def triggers(self) -> list[tuple[str, Decimal, bool]]:
        """Per open position (symbol, liquidation price, short?), for the settle horizon."""
        found = []
        for position in self.state.inverse_positions.values():
            price = self.liquidation_price(position)
            if price is not None:
                found.append((position.symbol, price, position.qty < ZERO))
        return found

    # -- fills -----------------------------------------------------------------------------

    def trade(self, request: OrderRequest, market: Market, price: Decimal) -> InverseTrade:
        """What ``request`` filled at ``price`` does (pure); OrderRejectedError when the
        coin-margin wallet cannot pay for the part that adds exposure."""
        position = self.state.inverse_positions.get(request.symbol)
        face = position.qty if position else ZERO
        size = request.amount * market.contract_size
        signed = size if request.side is OrderSide.BUY else -size
        closing = min(size, abs(face)) if face * signed < ZERO else ZERO
        opening = size - closing
        realized = released = ZERO
        if position is not None and closing > ZERO:
            part = closing if face > ZERO else -closing
            realized = coin_pnl(part, position.entry_price, price)
            released = position.margin * closing / abs(face)
        leverage = self._leverage(request.symbol)
        added = initial_margin(opening, price, leverage) if opening > ZERO else ZERO
        fee = size / price * self._config.taker_fee_rate
        trade = InverseTrade(face, face + signed, closing, opening, realized, released, added, fee)
        coin = settle_asset(request.symbol)
        free = self.free(coin)
        if opening > ZERO and free + released + realized - fee - added < ZERO:
            raise OrderRejectedError(
                f"insufficient {coin} in the coin-margin wallet: {request.symbol} "
                f"{request.side.value} {request.amount:f} needs fee {fee:f} + margin "
                f"{added:f}, {free:f} free"
            )
        return trade

    def apply(self, symbol: str, trade: InverseTrade, price: Decimal) -> None:
        """Book ``trade`` filled at ``price``: wallet, realized PnL, the position."""
        coin = settle_asset(symbol)
        self.credit(coin, trade.realized - trade.fee)
        positions = self.state.inverse_positions
        position = positions.get(symbol)
        if trade.new_face == ZERO:
            positions.pop(symbol, None)
        elif position is None or trade.face * trade.new_face < ZERO:
            leverage = self._leverage(symbol)
            margin = initial_margin(trade.new_face, price, leverage)
            positions[symbol] = PaperPosition(symbol, trade.new_face, price, leverage, margin)
        elif trade.opening > ZERO:
            position.entry_price = average_entry(
                position.qty, position.entry_price, trade.opening, price
            )
            position.qty = trade.new_face
            position.margin += trade.added
        else:
            position.qty = trade.new_face
            position.margin -= trade.released

    def credit(self, coin: str, amount: Decimal) -> None:
        self.state.coin_margin[coin] = self.state.coin_margin.get(coin, ZERO) + amount

    # -- what time does --------------------------------------------------------------------

    def pay_funding(self, at: datetime) -> list[FundingPayment]:
        """Funding of every open position at the funding time ``at``, in coins."""
        paid = []
        for position in self.state.inverse_positions.values():
            quote = self._quote(position.symbol, at)
            amount = coin_funding(position.qty, quote.price, quote.funding_rate)
            if amount == ZERO:
                continue
            coin = settle_asset(position.symbol)
            self.credit(coin, amount)
            paid.append(
                FundingPayment(
                    position.symbol,
                    amount,
                    coin,
                    quote.funding_rate,
                    position.qty,
                    quote.price,
                    at,
                )
            )
        return paid

    def liquidate_crossed(self, at: datetime) -> list[tuple[PaperPosition, Decimal, str]]:
        """Close every position the mark has liquidated at ``at``: the whole margin is
        lost. Each closed position (its ``qty`` in contracts), its price and the reason."""
        closed = []
        for position in list(self.state.inverse_positions.values()):
            price = self.liquidation_price(position)
            if price is None:
                continue
            mark = self._quote(position.symbol, at).price
            if (mark < price) if position.qty < ZERO else (mark > price):
                continue
            coin = settle_asset(position.symbol)
            self.credit(coin, -position.margin)
            del self.state.inverse_positions[position.symbol]
            contracts = position.qty / self._market(position.symbol).contract_size
            reason = (
                f"liquidated: mark {mark:f} crossed liquidation price {price:f} of face "
                f"{position.qty:f} USD at entry {position.entry_price:f}; margin "
                f"{position.margin:f} {coin} lost"
            )
            closed.append((replace(position, qty=contracts), price, reason))
        return closed
