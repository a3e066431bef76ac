"""Bybit v5, unified trading account (UTA), through ccxt's bybit.

One wallet holds the spot coins and the contracts' margin. What differs from plain ccxt
(ccxt 4.5.90; each point is proven against the emulator in
``tests/emulator/test_bybit_emulator_with_ccxt.py``):

* positions: ccxt refuses a list of more than one symbol; without one it lists the open
  positions by settle coin, so an account's positions are one request per settle coin
  (``settleCoin``, up to 200 rows), whatever the number of pairs.
* tickers: one /v5/market/tickers request per category (ccxt refuses a mixed list), which
  also carries the perpetuals' funding rates: a cycle's tickers and funding are one request,
  and only the pairs' rows of its answer (every symbol of the category) are parsed.
* an order by its client id (``orderLinkId``): ``fetch_order`` on a UTA needs the venue's
  own id, so /v5/order/realtime (open, or among the last 500 closed of a category) is asked
  by ``orderLinkId``, then /v5/order/history for an order gone from that cache. Its trades:
  /v5/execution/list by ``orderId``. A cancel names the ``orderLinkId``.
* set-up: 110043 (leverage not modified), 110026 (margin mode not modified) and 110025
  (position mode not modified) are done; the margin mode is account-wide
  (/v5/account/set-margin-mode: the pairs of one account must agree on it); add-margin
  is /v5/position/add-margin (ccxt has no ``add_margin`` for Bybit), isolated margin
  only; leverage may have decimals. Start-up reads the margin mode once
  (/v5/account/info) and the leverage of the open positions by settle coin; a flat
  symbol's leverage is listed only when asked by symbol, which costs what a set costs,
  so a flat symbol's leverage is set (10 a second, /v5/position/set-leverage's limit).
* hedge mode: a symbol's positions come as ``positionIdx`` 1 and 2; an order says
  ``hedged`` and ccxt picks the short side's index (2) for a sell and a reduce-only buy.
* the wallet: one answer serves the spot and the margin read of an observation; ccxt's
  ``total`` is ``walletBalance`` (no uPnL), the equity the coin's ``equity`` (wallet +
  uPnL).
* spot as collateral: on a cross (or portfolio) margin UTA every coin whose
  ``collateralSwitch`` is on backs the USDT/USDC contracts at its tiered collateral
  value ratio, so their margin is the account's: the same wallet answer's
  ``totalAvailableBalance`` is the free margin and ``totalMarginBalance`` the equity
  (ccxt keeps them only in ``info``); a cross position's ``liqPrice`` is Bybit's
  account-level estimate ("" when no price of its coin alone gets there: the coins
  held back the short). In isolated margin mode Bybit leaves the account-wide fields
  empty and the USDT row is read as before.
* positions: ccxt's ``timestamp`` is the position's ``createdTime``; its
  ``lastUpdateTimestamp`` (``updatedTime``) is when it last changed (``ccxt_parse``).
* funding: /v5/execution/list (``execType`` Funding) within 7 days of now; ccxt's
  ``amount`` is the ``execFee``, what the position paid (a short receiving is negative).
* errors: 10002 (timestamp outside ``recvWindow``, ccxt ``InvalidNonce``) is a clock to
  fix; 10016 (internal error or timeout) on an order leaves its outcome unknown: looked
  up, never a rejection.
* inverse perpetuals (``BTC/USD:BTC``, category ``inverse``, 1 USD contracts): margined
  by the coin in the same unified wallet, so the wallet is read once and its coin's
  ``equity`` (wallet balance + the inverse uPnL) is the coins hedged, counted once
  (``shared_wallet``); positions of an inverse contract are listed by its settle coin with
  ``subType`` inverse, its tickers and its Funding executions are one more request each
  (``category=inverse``), only when an inverse pair is traded; ccxt labels an inverse
  payment ``USD``: it is in the coin.
* testnet: ``auto`` is demo trading (api-demo.bybit.com, keys made in the demo account of
  the live site); ``sandbox`` is testnet.bybit.com with its own keys.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any, ClassVar

from bot.domain.models import ZERO, Balance, OrderRequest
from bot.exchange import ccxt_parse
from bot.exchange.ccxt_limits import Pool, RateLimits
from bot.exchange.ccxt_markets import is_contract
from bot.exchange.ccxt_parse import dec_or_none
from bot.exchange.gateway import ContractSetting, FatalError
from bot.exchange.venues.account_margin import with_account_margin
from bot.exchange.venues.base import CcxtVenue, Raw, by_market_type, perpetuals, pick_rows
from bot.exchange.venues.settings import Held

_ORDERS_BY_LINK = ("fetch_open_orders", "fetch_canceled_and_closed_orders")


class BybitVenue(CcxtVenue):
    """Bybit v5 unified trading account: spot, USDT/USDC linear and inverse contracts."""

    exchange_ids: ClassVar[frozenset[str]] = frozenset({"bybit"})
    label: ClassVar[str] = "Bybit"
    contract_type: ClassVar[str | None] = "linear"
    spot_type: ClassVar[str | None] = "spot"
    inverse_type: ClassVar[str | None] = "inverse"
    shared_wallet: ClassVar[bool] = True
    not_modified_codes: ClassVar[frozenset[str]] = frozenset({"110043", "110026", "110025"})
    duplicate_codes: ClassVar[frozenset[str]] = frozenset({"110072", "170141"})
    clock_codes: ClassVar[frozenset[str]] = frozenset({"10002"})
    unknown_outcome_codes: ClassVar[frozenset[str]] = frozenset({"10016", "10000"})
    client_id_length: ClassVar[int] = 36
    # Each endpoint per UID and rolling second, at ccxt's rate for it (set-leverage and
    # set-margin-mode: 10 a second, cost 5 of 50), a write at most 10 a second (the
    # default futures UID limit: ccxt's cost would let orders through at 20), and 600
    # requests per IP and 5 s.
    rate_limits: ClassVar[RateLimits] = RateLimits(
        Pool(600, 5.0, by_cost=False), per_endpoint=True, writes_per_s=Decimal(10)
    )
    # ccxt's funding amount is the Funding execution's execFee: what the position paid.
    funding_sign: ClassVar[int] = -1
    # /v5/execution/list: startTime at most 7 days before endTime (now, when not sent).
    funding_window: ClassVar[timedelta | None] = timedelta(days=7) - timedelta(minutes=5)

    def __init__(self, client: Any, calls: Any) -> None:
        super().__init__(client, calls)
        self._account_margin: tuple[str, str] | None = None  # (mode, the symbol that set it)

    async def set_margin_mode(self, symbol: str, margin_mode: str) -> None:
        """Bybit's margin mode is the whole unified account's: pairs on one account must
        agree on it, or the last would silently change the others'."""
        if self._account_margin is not None and self._account_margin[0] != margin_mode:
            mode, other = self._account_margin
            raise FatalError(
                f"{symbol}: margin_mode {margin_mode!r}, but {other} on the same Bybit account "
                f"asks for {mode!r}; Bybit sets the margin mode for the whole unified account: "
                "give its pairs one margin_mode"
            )
        await super().set_margin_mode(symbol, margin_mode)
        self._account_margin = (margin_mode, symbol)

    async def apply_settings(self, wanted: Mapping[str, ContractSetting]) -> None:
        """The pairs of one account must agree on its margin mode (Bybit's is the whole
        unified account's), or the last would silently change the others'."""
        modes = sorted({(s.margin_mode, symbol) for symbol, s in wanted.items()})
        if len({mode for mode, _ in modes}) > 1:
            (mode, symbol), (other_mode, other) = modes[0], modes[-1]
            raise FatalError(
                f"{other}: margin_mode {other_mode!r}, but {symbol} on the same Bybit account "
                f"asks for {mode!r}; Bybit sets the margin mode for the whole unified account: "
                "give its pairs one margin_mode"
            )
        await super().apply_settings(wanted)

    async def held_settings(self, wanted: Mapping[str, ContractSetting]) -> Mapping[str, Held]:
        """The account's margin mode (/v5/account/info, one request) and the leverage of
        every open position (/v5/position/list by settle coin, one request per 200). A
        flat symbol's leverage is listed only when asked by symbol, a request of the same
        cost as setting it: it is set, and "not modified" (110043) is done."""
        symbols = sorted(wanted)
        answer = await self.calls.call(
            "fetch_margin_mode", self.client.fetch_margin_mode, symbols[0]
        )
        mode = answer.get("marginMode")
        held = dict.fromkeys(symbols, Held(None if mode is None else str(mode)))
        for settle, sub_type in self._settle_groups(symbols):
            params = {"settleCoin": settle, "paginate": True}
            if sub_type == "inverse":
                params["subType"] = sub_type
            rows = await self.calls.call(
                f"fetch_positions({settle})", self.client.fetch_positions, None, params
            )
            for row in rows:
                short_side = str((row.get("info") or {}).get("positionIdx", "0")) in ("0", "2")
                if row.get("symbol") in held and short_side:
                    held[row["symbol"]] = replace(
                        held[row["symbol"]], leverage=dec_or_none(row.get("leverage"))
                    )
        return held

    async def set_margin_modes(self, modes: Mapping[str, str]) -> None:
        """One request: the margin mode is the account's."""
        symbol, mode = min(modes.items())
        await super().set_margin_mode(symbol, mode)

    async def _read_position_mode(self, symbol: str) -> bool:
        """Hedge mode shows a symbol's positions as ``positionIdx`` 1 and 2, even flat."""
        rows = await self.calls.call("fetch_positions", self.client.fetch_positions, [symbol])
        return any(str((row.get("info") or {}).get("positionIdx", "0")) != "0" for row in rows)

    async def spot_balances(self) -> Mapping[str, Balance]:
        """The unified wallet's coins."""
        return ccxt_parse.balances(await self.one_wallet(keep=True))

    async def margin_balances(self) -> Mapping[str, Balance]:
        """The unified wallet: ``total`` the wallet balance, ``equity`` with the uPnL."""
        return margin_balances(await self.one_wallet(keep=False))

    def _settle_groups(self, symbols: Sequence[str]) -> list[tuple[str, str]]:
        """(settle coin, ``linear`` or ``inverse``) of the contracts among ``symbols``."""
        groups = set()
        for symbol in symbols:
            if is_contract(symbol):
                market = self.client.market(symbol)
                groups.add((market["settle"], "inverse" if market.get("inverse") else "linear"))
        return sorted(groups)

    async def positions(self, symbols: Sequence[str]) -> list[Raw]:
        """Every open position, one request per settle coin of ``symbols`` (an inverse
        contract's: its coin, ``subType`` inverse)."""
        result: list[Raw] = []
        for settle, sub_type in self._settle_groups(symbols):
            rows = await self.calls.call(
                f"fetch_positions({settle})",
                self.client.fetch_positions,
                None,
                {"settleCoin": settle, "type": "swap", "subType": sub_type},
            )
            result.extend(rows)
        return result

    async def tickers(self, symbols: Sequence[str]) -> Raw:
        """Bid/ask per symbol, one request per market type."""
        return (await self._quotes(symbols, funding=False))[0]

    async def funding_rates(self, symbols: Sequence[str]) -> Raw:
        """The funding rates, from the linear tickers (one request)."""
        return (await self._quotes(symbols, tickers=False))[1]

    async def contract_quotes(
        self, symbols: Sequence[str], *, funding: bool = True
    ) -> tuple[Raw, Raw]:
        """Tickers and funding rates from one /v5/market/tickers answer per category (the
        rates come with it, so they are parsed whatever ``funding`` says)."""
        return await self._quotes(symbols)

    async def _quotes(
        self, symbols: Sequence[str], *, tickers: bool = True, funding: bool = True
    ) -> tuple[Raw, Raw]:
        """/v5/market/tickers once per category (``spot``, ``linear``, ``inverse``): its rows
        carry the bid/ask and, for a perpetual, ``fundingRate`` and ``nextFundingTime`` (what ccxt's
        ``fetch_funding_rates`` reads from the same endpoint), so one request serves both.
        Only the rows of ``symbols`` are parsed, by ccxt's ``parse_ticker`` and
        ``parse_funding_rate`` (the answer's ``time`` stamps the rate, as ccxt does)."""
        quotes: dict[str, Any] = {}
        rates: dict[str, Any] = {}
        for category, wanted in _by_category(self.client, symbols).items():
            request = {"category": category}
            if len(wanted) == 1:  # its row alone: the same request, a small answer
                request["symbol"] = self.client.market(wanted[0])["id"]
            answer = await self.calls.call(
                f"fetch_tickers({request['category']})",
                self.client.publicGetV5MarketTickers,
                request,
            )
            # One pass over the category's rows; both parses take the pairs' rows from it.
            rows = pick_rows(self.client, (answer.get("result") or {}).get("list") or [], wanted)
            if tickers:
                quotes.update(self.parse_rows(rows, wanted, self.client.parse_ticker))
            if funding:
                parse = _funding_parser(self.client, answer.get("time"))
                rates.update(self.parse_rows(rows, perpetuals(wanted), parse))
        return quotes, rates

    def funding_history_params(self, symbols: Iterable[str]) -> list[dict[str, Any]]:
        """The linear contracts' Funding executions, and the inverse ones' (one more
        request, only when an inverse contract is traded)."""
        sub_types = {sub for _, sub in self._settle_groups(list(symbols))} | {"linear"}
        return [{"type": "swap", "subType": sub} for sub in sorted(sub_types, reverse=True)]

    def order_params(self, request: OrderRequest, hedge_mode: bool) -> dict[str, Any]:
        """Hedge mode: ``hedged`` (ccxt sends the short side's ``positionIdx``)."""
        params = super().order_params(request, hedge_mode)
        if hedge_mode and is_contract(request.symbol):
            params["hedged"] = True
        return params

    async def find_order(self, symbol: str, client_order_id: str) -> Raw | None:
        """/v5/order/realtime by ``orderLinkId``, then /v5/order/history."""
        for what in _ORDERS_BY_LINK:
            found = await self.calls.call(
                what,
                getattr(self.client, what),
                symbol,
                None,
                None,
                {"orderLinkId": client_order_id},
            )
            mine = [o for o in found if o.get("clientOrderId") == client_order_id]
            if mine:
                return dict(mine[-1])
        return None

    async def cancel(self, symbol: str, client_order_id: str) -> None:
        """Cancel by ``orderLinkId``; an order the venue does not know is not an error."""
        await self._cancel_with(symbol, {"orderLinkId": client_order_id})

    async def add_margin(self, symbol: str, amount: Decimal, hedge_mode: bool) -> None:
        """/v5/position/add-margin to the short side; sent once, never retried."""
        request = {
            "category": "linear",
            "symbol": self.client.market(symbol)["id"],
            "margin": str(amount),
            "positionIdx": 2 if hedge_mode else 0,
        }
        await self._send_once("add_margin", self.client.privatePostV5PositionAddMargin, request)


def _by_category(client: Any, symbols: Sequence[str]) -> dict[str, list[str]]:
    """``symbols`` by Bybit category: ``spot``, ``linear``, ``inverse`` (a request each)."""
    grouped: dict[str, list[str]] = {}
    for kind, wanted in by_market_type(client, symbols).items():
        for symbol in wanted:
            category = "spot" if kind == "spot" else "linear"
            if category == "linear" and client.market(symbol).get("inverse"):
                category = "inverse"
            grouped.setdefault(category, []).append(symbol)
    return grouped


def _funding_parser(client: Any, time: Any) -> Callable[[Any, Any], Any]:
    """ccxt's ``parse_funding_rate`` of a tickers row stamped with the answer's ``time``
    (ccxt's ``fetch_funding_rates`` adds it to each row the same way)."""
    return lambda row, market: client.parse_funding_rate({**row, "timestamp": time}, market)


def margin_balances(raw: Mapping[str, Any]) -> dict[str, Balance]:
    """ccxt's answer of a unified wallet: ``total`` the coin's ``walletBalance`` (ccxt's
    ``total``), ``equity`` its ``equity`` (wallet + unrealised PnL). On a cross (or
    portfolio) margin account the USD-settled contracts' margin is the account's: the
    stable coins' ``free`` is ``totalAvailableBalance`` and their ``equity``
    ``totalMarginBalance`` (every collateral coin at its haircut, with the uPnL), as
    the paper unified account reports its quote asset (``account_margin``)."""
    rows = _coin_rows(raw.get("info"))
    result: dict[str, Balance] = {}
    for asset, balance in ccxt_parse.balances(raw).items():
        row = rows.get(asset, {})
        equity = dec_or_none(row.get("equity"))
        if equity is None:
            equity = balance.total + (dec_or_none(row.get("unrealisedPnl")) or ZERO)
        result[asset] = replace(balance, equity=equity)
    figures = account_margin(raw.get("info"))
    return result if figures is None else with_account_margin(result, *figures)


def account_margin(info: Any) -> tuple[Decimal, Decimal] | None:
    """``totalAvailableBalance`` and ``totalMarginBalance`` (USD) of a UTA answer; None
    where Bybit leaves the account-wide fields empty (isolated margin mode: each
    position margins from its own coin)."""
    for account in _accounts(info):
        available = dec_or_none(account.get("totalAvailableBalance"))
        margin_balance = dec_or_none(account.get("totalMarginBalance"))
        if account.get("accountMMRate") and available is not None and margin_balance is not None:
            return available, margin_balance
    return None


def _accounts(info: Any) -> list[Mapping[str, Any]]:
    """The accounts of /v5/account/wallet-balance's answer."""
    result = ((info or {}).get("result") or {}).get("list") if isinstance(info, Mapping) else []
    return [a for a in result or [] if isinstance(a, Mapping)]


def _coin_rows(info: Any) -> dict[str, Mapping[str, Any]]:
    """The ``coin`` rows of /v5/account/wallet-balance's accounts, by coin."""
    rows: dict[str, Mapping[str, Any]] = {}
    for account in _accounts(info):
        for coin in account.get("coin") or []:
            if isinstance(coin, Mapping) and "coin" in coin:
                rows[str(coin["coin"])] = coin
    return rows
