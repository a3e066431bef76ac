"""OKX v5, trading account (one wallet, account level 2 or higher), through ccxt's okx.

What differs from plain ccxt (ccxt 4.5.90; each point is proven against the emulator in
``tests/emulator/test_okx_emulator_with_ccxt.py``):

* markets: OKX's types are ``spot``, ``swap`` (perpetuals) and ``future`` (dated); a
  Binance-style ``linear`` answers 51000 "Parameter instType error".
* quantities: ccxt counts a contract's amounts in contracts (one ``BTC-USDT-SWAP``
  contract is 0.01 BTC, its ``contractSize``); the gateway converts to coins at the
  boundary with ``coins_per_unit``, so nothing past ``bot/exchange/`` sees a contract.
* margin mode: OKX has no such setting; each order names it (``tdMode``, ccxt
  ``marginMode``), and leverage is set and read per margin mode. ``set_margin_mode``
  therefore records the pair's mode for its orders and leverage calls. Start-up reads the
  leverages by /account/leverage-info, 20 instruments a request, and sets those that
  differ (/account/set-leverage: 20 per 2 s).
* an order by its client id: ``fetch_order(None, symbol, {"clientOrderId": id})``
  (51603 "order does not exist" when none); its trades /trade/fills by ``ordId`` (the
  last 3 days, 60 per 2 s; ccxt's ``fetch_my_trades`` asks /trade/fills-history, 10 per
  2 s, which is read only for an order whose fills are older).
  Client ids are 1 to 32 letters and digits. OKX refuses a used id (51016) only while
  its order is live, so an id is looked up before it is sent (``before_send``).
* the 24h quote volume of a contract: ccxt leaves it out; ``volCcy24h`` (base coins
  there) times the last price.
* reads: positions of the whole account in one request (no instrument named); tickers
  once per instrument type (ccxt asks the first symbol's type only and silently drops the
  rest) and funding rates of every perpetual in one (``instId=ANY``), of which only the
  pairs' rows are parsed; the funding history without the unified ``subType`` (its bills
  take a number).
* the wallet: ccxt's ``total`` is ``eq`` (cash plus unrealised PnL); the wallet is
  ``cashBal``, the equity ``eq``.
* add-margin: ``/account/position/margin-balance`` directly (ccxt 4.5.90's
  ``add_margin`` raises TypeError after OKX accepted the change).
* hedge (long/short) mode: an order says ``hedged`` (ccxt sends ``posSide``), isolated
  leverage and margin name the ``short`` side.
* errors: 50102 (timestamp expired, ccxt ``InvalidNonce``) is a clock to fix; 59102
  (leverage above the instrument's maximum) and 59000 (settings refused while positions
  are open) cannot be cured by a retry.
* coin-margined (inverse) swaps (``BTC/USD:BTC``, OKX ``BTC-USD-SWAP``, instType SWAP,
  ``uly`` ``BTC-USD``, ``ctType`` inverse, ``settleCcy`` BTC): ccxt's ``contractSize`` is
  ``ctVal``, 100 USD a contract (ETH 10), so an order's size stays in contracts (no coins
  per unit: ``bot.domain.inverse`` counts their face); their margin, PnL, fees and
  funding are in the coin, in the same trading account as the spot coins, so the wallet
  is read once and the coin's ``eq`` (``cashBal`` + the swap's ``upl``) is the coins
  hedged, counted once (``shared_wallet``). No request is added: the positions read has
  no instrument type, the SWAP tickers and ``instId=ANY`` funding rates list the inverse
  swaps with the linear ones, and the funding bills (type 8) carry them, ``ccy`` the coin.
  Orders name ``tdMode`` cross or isolated as for a linear swap; leverage is set per
  instrument and margin mode (``tests/emulator/test_okx_inverse_with_ccxt.py``).
* multi-currency margin (account level 3; 4, portfolio margin, alike): every coin backs
  the cross contracts at its tiered discount rate, so the USDT/USDC swaps' margin is the
  account's: the same balance answer's account-level ``availEq`` is their free margin and
  ``adjEq`` their equity (USD; ccxt keeps both only in ``info``), and a cross position's
  ``liqPx`` is OKX's account-level estimate ("" when no price of its coin alone gets
  there). At level 2 OKX leaves those fields empty and the USDT row is read as before
  (``tests/emulator/test_okx_multi_currency_with_ccxt.py``,
  ``tests/integration/test_daemon_okx_unified.py``).
* testnet: OKX's demo trading is ccxt's sandbox (header ``x-simulated-trading: 1``),
  with a demo key made in the live site's demo-trading mode.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar

from bot.domain.margin_transfers import MarginChange
from bot.domain.models import ONE, ZERO, Balance, OrderRequest
from bot.exchange.ccxt_limits import RateLimits
from bot.exchange.ccxt_markets import is_contract
from bot.exchange.ccxt_parse import dec_or_none, ms_time
from bot.exchange.gateway import ContractSetting, DuplicateOrderError, FatalError, parse_symbol
from bot.exchange.venues.account_margin import with_account_margin
from bot.exchange.venues.base import CcxtVenue, Raw, by_market_type, known_market
from bot.exchange.venues.settings import Held

DEFAULT_MARGIN_MODE = "cross"
#: /account/leverage-info takes up to 20 instrument ids, comma-separated.
LEVERAGE_INFO_IDS = 20


class OkxVenue(CcxtVenue):
    """OKX v5 trading account: spot, USDT perpetuals, dated futures and coin-margined
    swaps."""

    exchange_ids: ClassVar[frozenset[str]] = frozenset({"okx", "myokx", "okxus"})
    label: ClassVar[str] = "OKX"
    spot_type: ClassVar[str | None] = "spot"
    inverse_type: ClassVar[str | None] = "swap"
    shared_wallet: ClassVar[bool] = True
    duplicate_codes: ClassVar[frozenset[str]] = frozenset({"51016"})
    clock_codes: ClassVar[frozenset[str]] = frozenset({"50102"})
    fatal_codes: ClassVar[frozenset[str]] = frozenset({"59102", "59000"})
    client_id_length: ClassVar[int] = 32
    # Each endpoint on its own at ccxt's rate for it (/account/set-leverage: 20 per 2 s
    # per user, ccxt 9 a second); no account-wide limit beside the order endpoints'.
    rate_limits: ClassVar[RateLimits] = RateLimits(per_endpoint=True)
    client_id_pattern: ClassVar[re.Pattern[str]] = re.compile(r"[A-Za-z0-9]+")
    trades_order_param: ClassVar[str] = "ordId"  # /trade/fills by the venue's order id
    margin_history_window: ClassVar[timedelta | None] = timedelta(days=89)  # ccxt: 3 months

    def __init__(self, client: Any, calls: Any) -> None:
        super().__init__(client, calls)
        self._margin_modes: dict[str, str] = {}

    def market_types(self, symbols: Iterable[str]) -> list[str]:
        """``swap`` for perpetuals, ``future`` for dated contracts, ``spot``."""
        types = set()
        for symbol in symbols:
            parsed = parse_symbol(symbol)
            if not parsed.is_contract:
                types.add("spot")
            else:
                types.add("swap" if parsed.is_perpetual else "future")
        return sorted(types)

    def coins_per_unit(self, symbol: str) -> Decimal:
        """A contract's size for swaps and futures (ccxt counts contracts); 1 for spot and
        for a coin-margined swap, whose amounts stay contracts of ``contractSize`` USD."""
        if not is_contract(symbol) or parse_symbol(symbol).inverse:
            return ONE
        return dec_or_none(self.client.market(symbol).get("contractSize")) or ONE

    async def spot_balances(self) -> Mapping[str, Balance]:
        """The trading account's coins (cash balances)."""
        return account_balances(await self.one_wallet(keep=True))

    async def margin_balances(self) -> Mapping[str, Balance]:
        """The trading account: ``total`` the cash balance, ``equity`` with the uPnL; at
        account level 3 the USD-settled contracts' free margin and equity are the
        account's ``availEq`` and ``adjEq`` (the coins at their discount rates)."""
        raw = await self.one_wallet(keep=False)
        balances = account_balances(raw)
        figures = account_margin(raw.get("info"))
        return balances if figures is None else with_account_margin(balances, *figures)

    async def positions(self, symbols: Sequence[str]) -> list[Raw]:
        """Every open position of the account in one request."""
        return list(await self.calls.call("fetch_positions", self.client.fetch_positions, None))

    async def tickers(self, symbols: Sequence[str]) -> Raw:
        """Bid/ask per symbol: /market/tickers once per instrument type (``SPOT``, ``SWAP``,
        ``FUTURES``), the rows of ``symbols`` only parsed by ccxt's ``parse_ticker``."""
        result: dict[str, Any] = {}
        for kind, wanted in by_market_type(self.client, symbols).items():
            inst_type = self.client.convert_to_instrument_type(kind)
            answer = await self.calls.call(
                f"fetch_tickers({kind})",
                self.client.publicGetMarketTickers,
                {"instType": inst_type},
            )
            rows = answer.get("data") or []
            result.update(self.parse_rows(rows, wanted, self.client.parse_ticker, "instId"))
        return result

    async def funding_rates(self, symbols: Sequence[str]) -> Raw:
        """/public/funding-rate?instId=ANY (every perpetual, one request, as ccxt asks it; the
        instrument's id for one symbol);
        the rows of ``symbols`` only parsed by ccxt's ``parse_funding_rate``. OKX keeps the
        rate per instrument (no rate in its tickers), so this is the observation's second
        market-data request."""
        # One symbol: its row alone (the same request, a small answer).
        market = known_market(self.client, symbols[0]) if len(symbols) == 1 else None
        inst_id = "ANY" if market is None else market["id"]
        answer = await self.calls.call(
            "fetch_funding_rates", self.client.publicGetPublicFundingRate, {"instId": inst_id}
        )
        rows = answer.get("data") or []
        return self.parse_rows(rows, symbols, self.client.parse_funding_rate, "instId")

    def quote_volume_24h(self, symbol: str, ticker: Raw) -> Decimal | None:
        """ccxt leaves a contract's quote volume out: OKX's ``volCcy24h`` is its volume
        in base coins there, valued at the last price."""
        if not is_contract(symbol):
            return super().quote_volume_24h(symbol, ticker)
        coins = dec_or_none((ticker.get("info") or {}).get("volCcy24h"))
        last = dec_or_none(ticker.get("last"))
        return None if coins is None or last is None else coins * last

    def funding_history_params(self, symbols: Iterable[str]) -> list[dict[str, Any]]:
        """Bills of type 8 (ccxt's), nothing unified forwarded into OKX's query."""
        return [{}]

    def open_orders_requests(self, symbols: Iterable[str]) -> list[dict[str, Any]]:
        """/trade/orders-pending without an instrument type: every pending order."""
        return [{}]

    async def before_send(self, request: OrderRequest) -> None:
        """OKX refuses a used ``clOrdId`` (51016) only while its order is live: a done
        order's id would be taken again. So the id is looked up first, and an order
        already at the venue is never sent twice (one more request per order)."""
        if await self.find_order(request.symbol, request.client_order_id) is not None:
            raise DuplicateOrderError(
                f"create_order: client order id {request.client_order_id} is already at OKX "
                "(it accepts a used id once its order is done): not sent again; look it up"
            )

    async def order_trades(self, symbol: str, order: Raw) -> list[Raw]:
        """The order's trades from /trade/fills (its last 3 days: 60 requests per 2 s),
        parsed by ccxt; from /trade/fills-history (3 months, 10 per 2 s: ccxt's
        ``fetch_my_trades``) when they do not add up to what the order filled."""
        market = self.client.market(symbol)
        answer = await self.calls.call(
            "fetch_order_trades",
            self.client.privateGetTradeFills,
            {
                "instType": self.client.convert_to_instrument_type(market["type"]),
                "instId": market["id"],
                "ordId": order["id"],
            },
        )
        trades = list(self.client.parse_trades(answer.get("data") or [], market))
        got = sum((dec_or_none(t.get("amount")) or ZERO for t in trades), ZERO)
        if got >= (dec_or_none(order.get("filled")) or ZERO):
            return trades
        return await super().order_trades(symbol, order)

    def order_params(self, request: OrderRequest, hedge_mode: bool) -> dict[str, Any]:
        """The pair's margin mode as ``tdMode`` (contracts); hedge mode says ``hedged``."""
        params = super().order_params(request, hedge_mode)
        if is_contract(request.symbol):
            params["marginMode"] = self._mode(request.symbol)
            if hedge_mode:
                params["hedged"] = True
        return params

    async def set_margin_mode(self, symbol: str, margin_mode: str) -> None:
        """OKX names the margin mode per order: remember it for the symbol's orders and
        leverage (nothing is sent)."""
        if margin_mode not in ("cross", "isolated"):
            raise FatalError(f"{symbol}: OKX has no margin mode {margin_mode!r}")
        self._margin_modes[symbol] = margin_mode

    async def held_settings(self, wanted: Mapping[str, ContractSetting]) -> Mapping[str, Held]:
        """The margin modes are recorded (OKX names one per order: nothing to set); the
        leverages are read by /account/leverage-info per margin mode, up to 20
        instruments a request (OKX's limit)."""
        for symbol, setting in wanted.items():
            await self.set_margin_mode(symbol, setting.margin_mode)
        by_id = {self.client.market(s)["id"]: s for s in wanted}
        held = {s: Held(setting.margin_mode) for s, setting in wanted.items()}
        for mode in sorted({s.margin_mode for s in wanted.values()}):
            ids = sorted(i for i, s in by_id.items() if wanted[s].margin_mode == mode)
            for start in range(0, len(ids), LEVERAGE_INFO_IDS):
                answer = await self.calls.call(
                    "fetch_leverages",
                    self.client.privateGetAccountLeverageInfo,
                    {"instId": ",".join(ids[start : start + LEVERAGE_INFO_IDS]), "mgnMode": mode},
                )
                for inst_id, lever in self._levers(answer.get("data") or []).items():
                    held[by_id[inst_id]] = Held(mode, lever)
        return held

    def _levers(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, Decimal]:
        """Per instrument, the leverage of our side: ``short`` in long/short mode, else
        ``net`` (the side the set names, ``_leverage_params``)."""
        side = "short" if self.hedge_mode else "net"
        levers: dict[str, Decimal] = {}
        for row in rows:
            lever = dec_or_none(row.get("lever"))
            inst_id = str(row.get("instId"))
            if lever is not None and (row.get("posSide") == side or inst_id not in levers):
                levers[inst_id] = lever
        return levers

    async def set_leverage(self, symbol: str, leverage: Decimal) -> None:
        """/account/set-leverage for the symbol's margin mode (the short side when
        isolated in long/short mode)."""
        await self.calls.call(
            "set_leverage",
            self.client.set_leverage,
            self.leverage_value(leverage),
            symbol,
            self._leverage_params(symbol),
        )

    def leverage_value(self, leverage: Decimal) -> float | int:
        """OKX takes up to two decimals; a whole number is sent as one."""
        return int(leverage) if leverage == leverage.to_integral_value() else float(leverage)

    async def add_margin(self, symbol: str, amount: Decimal, hedge_mode: bool) -> None:
        """/account/position/margin-balance to the short side; sent once, never retried."""
        request = {
            "instId": self.client.market(symbol)["id"],
            "posSide": "short" if hedge_mode else "net",
            "type": "add",
            "amt": str(amount),
        }
        await self._send_once(
            "add_margin", self.client.privatePostAccountPositionMarginBalance, request
        )

    @property
    def has_margin_history(self) -> bool:
        """Read from the account's bills (below), not through ccxt's unified call."""
        return True

    async def margin_history(self, symbol: str, since: datetime) -> list[MarginChange]:
        """Margin added to ``symbol``'s isolated position since ``since``: the account's
        bills of type 6, subType 160 (ccxt 4.5.90's unified call breaks parsing them)."""
        market = self.client.market(symbol)
        answer = await self.calls.call(
            "fetch_margin_history",
            self.client.privateGetAccountBillsArchive,
            {
                "instType": "SWAP" if market.get("swap") else "FUTURES",
                "instId": market["id"],
                "type": "6",
                "subType": "160",
                "begin": str(int(since.timestamp() * 1000)),
            },
        )
        changes = []
        for row in reversed(answer.get("data") or []):  # newest first on the wire
            at = ms_time(row.get("ts"))
            amount = dec_or_none(row.get("posBalChg")) or dec_or_none(row.get("balChg"))
            if at is None or amount is None or at < since:
                continue
            changes.append(MarginChange(symbol, abs(amount), str(row.get("ccy")), True, at))
        return changes

    def enable_testnet(self, choice: str) -> None:
        """OKX's demo trading is ccxt's sandbox mode, whatever it is called."""
        self.client.set_sandbox_mode(True)

    def _mode(self, symbol: str) -> str:
        return self._margin_modes.get(symbol, DEFAULT_MARGIN_MODE)

    def _leverage_params(self, symbol: str) -> dict[str, Any]:
        params: dict[str, Any] = {"marginMode": self._mode(symbol)}
        if params["marginMode"] == "isolated":
            # ccxt sends posSide "net", which long/short mode refuses; our side is short.
            params["posSide"] = "short" if self.hedge_mode else "net"
        return params


def account_balances(raw: Mapping[str, Any]) -> dict[str, Balance]:
    """ccxt's answer of /account/balance: per currency ``total`` the cash balance
    (``cashBal``), ``equity`` with the unrealised PnL (``eq``), ``free`` the available."""
    result: dict[str, Balance] = {}
    for row in _detail_rows(raw.get("info")):
        asset = str(row.get("ccy") or "")
        cash = dec_or_none(row.get("cashBal"))
        if not asset or cash is None:
            continue
        free = dec_or_none(row.get("availBal")) or dec_or_none(row.get("availEq")) or ZERO
        equity = dec_or_none(row.get("eq"))
        result[asset] = Balance(
            asset=asset, free=free, total=cash, equity=cash if equity is None else equity
        )
    return result


def account_margin(info: Any) -> tuple[Decimal, Decimal] | None:
    """The account-level ``availEq`` and ``adjEq`` (USD) of /account/balance's answer at
    level 3 (multi-currency margin; 4, portfolio margin, alike); None where OKX leaves
    them empty (level 2: each currency margins the contracts it settles)."""
    data = info.get("data") if isinstance(info, Mapping) else None
    for account in data or []:
        available = dec_or_none(account.get("availEq"))
        adjusted = dec_or_none(account.get("adjEq"))
        if available is not None and adjusted is not None:
            return available, adjusted
    return None


def _detail_rows(info: Any) -> list[Mapping[str, Any]]:
    data = info.get("data") if isinstance(info, Mapping) else None
    rows: list[Mapping[str, Any]] = []
    for account in data or []:
        rows.extend(d for d in account.get("details") or [] if isinstance(d, Mapping))
    return rows
