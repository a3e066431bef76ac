"""Binance (spot and USDⓈ-M futures, two wallets of one account) through ccxt's binance.

What differs from plain ccxt:

* markets: ``linear`` loads the USDⓈ-M perpetuals and dated contracts, ``spot`` the spot
  market; ccxt counts coins.
* the USDⓈ-M wallet: ccxt's ``total`` is the raw ``marginBalance`` (wallet + uPnL), so
  the wallet and the equity come from the raw asset rows ccxt keeps in ``info``
  (``/fapi/v2|v3/account`` ``assets``, or ``/fapi/v2/balance``'s list).
* hedge mode (dual side position): our hedge is the ``SHORT`` side, which an order and a
  margin change name with ``positionSide`` (and then send no ``reduceOnly``).
* errors: -4046 "No need to change margin type" is done; -1021 (timestamp outside
  ``recvWindow``, ccxt ``InvalidNonce``) is a clock to fix, not a retry.
* leverage is a whole number; every symbol's leverage and margin type are read at once
  (ccxt ``fetch_leverages``: /fapi/v1/symbolConfig, weight 5), so start-up sets only the
  contracts whose setting differs (/fapi/v1/marginType, /fapi/v1/leverage: weight 1 each).
* reads: the contracts' bid/ask (bookTicker) and funding (premiumIndex) are asked for every
  contract at once (or the one symbol's row, when there is one), one request each per
  observation whatever the number of pairs, and ccxt parses the pairs' rows only.
  Binance's tickers carry no funding rate, and its premiumIndex no bid/ask, so these are
  two requests.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Any, ClassVar

from bot.domain.models import ZERO, Balance, OrderRequest
from bot.exchange import ccxt_parse
from bot.exchange.ccxt_limits import Pool, RateLimits
from bot.exchange.ccxt_markets import is_contract
from bot.exchange.ccxt_parse import dec_or_none
from bot.exchange.gateway import FatalError
from bot.exchange.venues.base import CcxtVenue, Raw, known_market


class BinanceVenue(CcxtVenue):
    """Binance spot + USDⓈ-M futures."""

    exchange_ids: ClassVar[frozenset[str]] = frozenset({"binance", "binanceusdm"})
    # -4164 "Order's notional must be no smaller than 5 (unless you choose reduce only)".
    reduce_only_below_min_notional: ClassVar[bool] = True
    label: ClassVar[str] = "Binance"
    contract_type: ClassVar[str | None] = "linear"
    spot_type: ClassVar[str | None] = "spot"
    not_modified_codes: ClassVar[frozenset[str]] = frozenset({"-4046"})
    duplicate_codes: ClassVar[frozenset[str]] = frozenset({"-4116"})
    clock_codes: ClassVar[frozenset[str]] = frozenset({"-1021"})
    # USDⓈ-M futures: 2,400 request weight per IP and minute (/fapi/v1/exchangeInfo's
    # REQUEST_WEIGHT), ccxt's cost being the weight there (spot's costs are a fifth of
    # its weight, counted in the same pool: stricter than spot's own 6,000).
    rate_limits: ClassVar[RateLimits] = RateLimits(Pool(2400, 60.0))

    async def margin_balances(self) -> Mapping[str, Balance]:
        """The USDⓈ-M wallet: the wallet balance and the equity per asset."""
        raw = await self.calls.call(
            "fetch_balance(swap)",
            self.client.fetch_balance,
            {"type": "swap", "subType": "linear"},
        )
        return margin_balances(raw)

    async def tickers(self, symbols: Sequence[str]) -> Raw:
        """Bid/ask per symbol: USDⓈ-M contracts from /fapi/v1/ticker/bookTicker (one request
        whatever the number of pairs), of which ccxt's ``parse_ticker`` parses the pairs'
        rows only; spot from ccxt's ``fetch_bids_asks``, which names the symbols (Binance's
        spot bookTicker answers only those)."""
        contracts = [s for s in symbols if is_contract(s)]
        spots = [s for s in symbols if not is_contract(s)]
        result: dict[str, Any] = {}
        if spots:
            result.update(await super().tickers(spots))
        if contracts:
            rows = await self._every_or_one(
                "fetch_bids_asks(linear)", self.client.fapiPublicGetTickerBookTicker, contracts
            )
            result.update(self.parse_rows(rows, contracts, self.client.parse_ticker))
        return result

    async def funding_rates(self, symbols: Sequence[str]) -> Raw:
        """/fapi/v1/premiumIndex (every contract's mark price and funding, one request), the
        pairs' rows only parsed by ccxt's ``parse_funding_rate``."""
        rows = await self._every_or_one(
            "fetch_funding_rates", self.client.fapiPublicGetPremiumIndex, symbols
        )
        return self.parse_rows(rows, symbols, self.client.parse_funding_rate)

    async def _every_or_one(
        self, what: str, endpoint: Callable[..., Any], symbols: Sequence[str]
    ) -> list[Any]:
        """The rows of a USDⓈ-M market-data endpoint: for one symbol, its row alone (weight
        1 or 2 and a small answer); for more, every contract's in one request (weight 5
        for bookTicker, 10 for premiumIndex: still less than one per pair beyond a few)."""
        market = known_market(self.client, symbols[0]) if len(symbols) == 1 else None
        if market is not None:
            return [await self.calls.call(what, endpoint, {"symbol": market["id"]})]
        return list(await self.calls.call(what, endpoint))

    def order_params(self, request: OrderRequest, hedge_mode: bool) -> dict[str, Any]:
        """Hedge mode names the short side instead of sending ``reduceOnly``."""
        params = super().order_params(request, hedge_mode)
        if hedge_mode and is_contract(request.symbol):
            params.pop("reduceOnly", None)
            params["positionSide"] = "SHORT"  # our hedge is the short side
        return params

    separate_wallets: ClassVar[bool] = True  # a classic account: spot and USDⓈ-M apart

    def add_margin_params(self, hedge_mode: bool) -> dict[str, Any]:
        """Hedge mode: the margin goes to the short side."""
        return {"positionSide": "SHORT"} if hedge_mode else {}

    def leverage_value(self, leverage: Decimal) -> float | int:
        """Binance takes whole numbers only."""
        if leverage != leverage.to_integral_value():
            raise FatalError(f"leverage {leverage} must be a whole number on Binance")
        return int(leverage)


def margin_balances(raw: Mapping[str, Any]) -> dict[str, Balance]:
    """ccxt's Binance answer of the USDⓈ-M wallet: ``total`` the wallet balance, ``equity``
    the wallet with its open positions' unrealized PnL (ccxt's own ``total``)."""
    rows = _asset_rows(raw.get("info"))
    result: dict[str, Balance] = {}
    for asset, balance in ccxt_parse.balances(raw).items():
        row = rows.get(asset)
        if row is None:
            result[asset] = replace(balance, equity=balance.total)
            continue
        wallet = dec_or_none(row.get("walletBalance")) or dec_or_none(row.get("balance"))
        if wallet is None:
            wallet = balance.total
        unrealized = dec_or_none(row.get("unrealizedProfit")) or dec_or_none(row.get("crossUnPnl"))
        equity = dec_or_none(row.get("marginBalance")) or wallet + (unrealized or ZERO)
        result[asset] = replace(balance, total=wallet, equity=equity)
    return result


def _asset_rows(info: Any) -> dict[str, Mapping[str, Any]]:
    """The raw per-asset rows: ``assets`` of /fapi/v2|v3/account, or /balance's list."""
    rows = info.get("assets") if isinstance(info, Mapping) else info
    if not isinstance(rows, list):
        return {}
    return {row["asset"]: row for row in rows if isinstance(row, Mapping) and "asset" in row}
