"""Binance (spot, USDⓈ-M and COIN-M futures, three wallets of one account) through ccxt's
binance.

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
* COIN-M perpetuals (``BTC/USD:BTC`` is ``BTCUSD_PERP``: 100 USD contracts, ETH 10; ccxt
  counts contracts) live under /dapi, with a wallet of their own per coin, apart from
  spot and USDⓈ-M: the coins margining the short must be moved there (spot ->
  COIN-M, ``MAIN_CMFUTURE``), and the daemon refuses to start while the coins sit in
  spot only. The COIN-M wallet's coin row (``walletBalance`` + ``unrealizedProfit``,
  the margin and PnL included) is read with the USDⓈ-M one and stands for the coin in
  the margin wallet; positions (/dapi/v1/positionRisk), bid/ask, mark and funding, the
  funding income, open orders and the held leverages are one more request each, only
  when an inverse pair is traded. Its answers are lists even for one symbol, and a
  COIN-M position without ``notionalValue`` takes its side from ``positionAmt``.
  COIN-M counts its request weight apart from USDⓈ-M; our one pool counts both (stricter).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Any, ClassVar

from bot.domain.models import ZERO, Balance, OrderRequest
from bot.domain.symbols import Symbol
from bot.exchange import ccxt_parse
from bot.exchange.ccxt_limits import OrderCount, Pool, RateLimits
from bot.exchange.ccxt_markets import is_contract
from bot.exchange.ccxt_parse import dec_or_none
from bot.exchange.gateway import ContractSetting, FatalError
from bot.exchange.venues.base import CcxtVenue, Raw, known_market
from bot.exchange.venues.settings import Held, held_from_leverages

#: ccxt's params of a COIN-M read (``fetch_balance``, ``fetch_positions``, ...).
COINM: dict[str, Any] = {"type": "swap", "subType": "inverse"}


class BinanceVenue(CcxtVenue):
    """Binance spot + USDⓈ-M futures."""

    exchange_ids: ClassVar[frozenset[str]] = frozenset({"binance", "binanceusdm"})
    # -4164 "Order's notional must be no smaller than 5 (unless you choose reduce only)".
    reduce_only_below_min_notional: ClassVar[bool] = True
    label: ClassVar[str] = "Binance"
    contract_type: ClassVar[str | None] = "linear"
    spot_type: ClassVar[str | None] = "spot"
    inverse_type: ClassVar[str | None] = "inverse"
    not_modified_codes: ClassVar[frozenset[str]] = frozenset({"-4046"})
    duplicate_codes: ClassVar[frozenset[str]] = frozenset({"-4116"})
    clock_codes: ClassVar[frozenset[str]] = frozenset({"-1021"})
    # USDⓈ-M futures: 2,400 request weight per IP and minute (/fapi/v1/exchangeInfo's
    # REQUEST_WEIGHT), ccxt's cost being the weight there (spot's costs are a fifth of
    # its weight, counted in the same pool: stricter than spot's own 6,000). A new
    # futures order is "0 on IP rate limit" and counts in the account's order windows
    # (ORDERS: 300 per 10 s, 1,200 a minute), where ccxt's table costs it 4 weight.
    # COIN-M's new orders count in the same windows (it has 1,200 a minute of its own:
    # stricter, as its weight is in the same pool).
    rate_limits: ClassVar[RateLimits] = RateLimits(
        Pool(2400, 60.0),
        orders=OrderCount(
            frozenset({"fapiPrivate POST order", "dapiPrivate POST order"}),
            (Pool(300, 10.0), Pool(1200, 60.0)),
        ),
    )

    def __init__(self, client: Any, calls: Any) -> None:
        super().__init__(client, calls)
        # The account's contracts, as the last market load named them.
        self._linear: list[str] = []
        self._inverse: list[str] = []

    def market_types(self, symbols: Iterable[str]) -> list[str] | None:
        """The types to load; the account's linear and inverse contracts are kept, as the
        wallet reads (which name no symbol) ask COIN-M only when an inverse one is traded."""
        wanted = list(symbols)
        self._inverse = [s for s in wanted if Symbol.parse(s).inverse]
        self._linear = [s for s in wanted if is_contract(s) and s not in self._inverse]
        return super().market_types(wanted)

    async def margin_balances(self) -> Mapping[str, Balance]:
        """The USDⓈ-M wallet: the wallet balance and the equity per asset; the coins of
        the inverse contracts traded from the COIN-M wallet (one more request), whose row
        is that coin's margin wallet (its balance, margin and PnL in the coin)."""
        result: dict[str, Balance] = {}
        if self._linear or not self._inverse:
            raw = await self.calls.call(
                "fetch_balance(swap)",
                self.client.fetch_balance,
                {"type": "swap", "subType": "linear"},
            )
            result.update(margin_balances(raw))
        if self._inverse:
            raw = await self.calls.call(
                "fetch_balance(inverse)", self.client.fetch_balance, dict(COINM)
            )
            coins = {Symbol.parse(s).base for s in self._inverse}
            result.update({a: b for a, b in margin_balances(raw).items() if a in coins})
        return result

    async def positions(self, symbols: Sequence[str]) -> list[Raw]:
        """USDⓈ-M positions (/fapi/v3/positionRisk), and COIN-M ones (/dapi/v1/positionRisk,
        one more request) when an inverse contract is among ``symbols``."""
        inverse = [s for s in symbols if Symbol.parse(s).inverse]
        linear = [s for s in symbols if s not in inverse]
        result = list(await super().positions(linear)) if linear else []
        if inverse:
            rows = await self.calls.call(
                "fetch_positions(inverse)", self.client.fetch_positions, inverse, dict(COINM)
            )
            result.extend(_with_side(row) for row in rows)
        return result

    async def tickers(self, symbols: Sequence[str]) -> Raw:
        """Bid/ask per symbol: USDⓈ-M contracts from /fapi/v1/ticker/bookTicker (one request
        whatever the number of pairs; COIN-M ones from /dapi's, one more), of which ccxt's
        ``parse_ticker`` parses the pairs' rows only; spot from ccxt's ``fetch_bids_asks``,
        which names the symbols (Binance's spot bookTicker answers only those)."""
        inverse = [s for s in symbols if Symbol.parse(s).inverse]
        contracts = [s for s in symbols if is_contract(s) and s not in inverse]
        spots = [s for s in symbols if not is_contract(s)]
        result: dict[str, Any] = {}
        if spots:
            result.update(await super().tickers(spots))
        for what, endpoint, wanted in (
            ("fetch_bids_asks(linear)", self.client.fapiPublicGetTickerBookTicker, contracts),
            ("fetch_bids_asks(inverse)", self.client.dapiPublicGetTickerBookTicker, inverse),
        ):
            if wanted:
                rows = await self._every_or_one(what, endpoint, wanted)
                result.update(self.parse_rows(rows, wanted, self.client.parse_ticker))
        return result

    async def funding_rates(self, symbols: Sequence[str]) -> Raw:
        """/fapi/v1/premiumIndex (every contract's mark price and funding, one request; COIN-M
        ones from /dapi's, one more), the pairs' rows only parsed by ccxt's
        ``parse_funding_rate``."""
        inverse = [s for s in symbols if Symbol.parse(s).inverse]
        linear = [s for s in symbols if s not in inverse]
        result: dict[str, Any] = {}
        for what, endpoint, wanted in (
            ("fetch_funding_rates", self.client.fapiPublicGetPremiumIndex, linear),
            ("fetch_funding_rates(inverse)", self.client.dapiPublicGetPremiumIndex, inverse),
        ):
            if wanted:
                rows = await self._every_or_one(what, endpoint, wanted)
                result.update(self.parse_rows(rows, wanted, self.client.parse_funding_rate))
        return result

    async def _every_or_one(
        self, what: str, endpoint: Callable[..., Any], symbols: Sequence[str]
    ) -> list[Any]:
        """The rows of a futures market-data endpoint: for one symbol, its row alone (weight
        1 or 2 and a small answer); for more, every contract's in one request (weight 5
        for bookTicker, 10 for premiumIndex: still less than one per pair beyond a few).
        COIN-M answers a list even for one symbol, USDⓈ-M its row."""
        market = known_market(self.client, symbols[0]) if len(symbols) == 1 else None
        if market is not None:
            answer = await self.calls.call(what, endpoint, {"symbol": market["id"]})
            return list(answer) if isinstance(answer, list) else [answer]
        return list(await self.calls.call(what, endpoint))

    def funding_history_params(self, symbols: Iterable[str]) -> list[dict[str, Any]]:
        """The USDⓈ-M income, and the COIN-M one (one more request, only when an inverse
        contract is traded): FUNDING_FEE in the coin."""
        wanted = list(symbols)
        return _and_coinm(super().funding_history_params(wanted), wanted)

    def open_orders_requests(self, symbols: Iterable[str]) -> list[dict[str, Any]]:
        """USDⓈ-M's open orders, and COIN-M's when an inverse contract is traded."""
        wanted = list(symbols)
        return _and_coinm(super().open_orders_requests(wanted), wanted)

    async def held_settings(self, wanted: Mapping[str, ContractSetting]) -> Mapping[str, Held]:
        """Every USDⓈ-M contract's leverage and margin type (/fapi/v1/symbolConfig), and
        every COIN-M one's (/dapi/v1/account, one more request) when inverse ones are set."""
        inverse = {s: v for s, v in wanted.items() if Symbol.parse(s).inverse}
        linear = {s: v for s, v in wanted.items() if s not in inverse}
        held = dict(await super().held_settings(linear)) if linear else {}
        if inverse:
            raw = await self.calls.call(
                "fetch_leverages(inverse)",
                self.client.fetch_leverages,
                sorted(inverse),
                dict(COINM),
            )
            held.update(held_from_leverages(raw))
        return held

    async def _read_position_mode(self, symbol: str) -> bool:
        """USDⓈ-M and COIN-M each have their position mode: where both are traded, they
        must agree (the account's orders name one side for both)."""
        modes = {}
        for contracts in (self._linear, self._inverse):
            if contracts:
                modes[contracts[0]] = await super()._read_position_mode(contracts[0])
        if not modes:
            return await super()._read_position_mode(symbol)
        if len(set(modes.values())) > 1:
            hedged = [s for s, mode in modes.items() if mode]
            raise FatalError(
                f"Binance holds {hedged[0]}'s futures in hedge mode and the others' in "
                "one-way mode; set USDⓈ-M and COIN-M to the same position mode"
            )
        return next(iter(modes.values()))

    def order_params(self, request: OrderRequest, hedge_mode: bool) -> dict[str, Any]:
        """Hedge mode names the short side instead of sending ``reduceOnly``; a futures
        order asks for its RESULT, whose answer to an IOC or market order is its end
        state (FILLED or EXPIRED, what filled and at what average), so no look-up follows
        it (the default ACK answers NEW, before matching)."""
        params = super().order_params(request, hedge_mode)
        if is_contract(request.symbol):
            params["newOrderRespType"] = "RESULT"
            if hedge_mode:
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


def _and_coinm(params: list[dict[str, Any]], symbols: Iterable[str]) -> list[dict[str, Any]]:
    """USDⓈ-M's ``params`` when a linear contract is among ``symbols`` (or none is
    inverse), and a COIN-M request's when an inverse one is."""
    inverse = [Symbol.parse(s).inverse for s in symbols]
    linear = params if not all(inverse) or not inverse else []
    return [*linear, dict(COINM)] if any(inverse) else linear


def _with_side(row: Raw) -> Raw:
    """A COIN-M position with ccxt's ``side``: ccxt reads it from ``notionalValue``'s
    sign, which some answers leave out; ``positionAmt``'s sign says it too."""
    if row.get("side") is not None:
        return row
    amount = dec_or_none((row.get("info") or {}).get("positionAmt")) or ZERO
    side = "short" if amount < ZERO else "long" if amount > ZERO else None
    return {**row, "side": side}


def margin_balances(raw: Mapping[str, Any]) -> dict[str, Balance]:
    """ccxt's Binance answer of the USDⓈ-M (or COIN-M) wallet: ``total`` the wallet balance,
    ``equity`` the wallet with its open positions' unrealized PnL (ccxt's own ``total``)."""
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
