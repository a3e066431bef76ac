"""What a venue module is: the ccxt calls whose meaning differs from one exchange to the
next, behind one interface the generic gateway (``bot.exchange.ccxt_gateway``) calls.

``CcxtVenue`` is that interface and its plain-ccxt behaviour (ccxt's unified calls, as
documented); a venue module (``binance``, ``bybit``, ``okx``) subclasses it where the
exchange needs something else, and ``generic`` is the path for any other ccxt exchange,
with a start-up check that refuses what it cannot do safely. The gateway never asks which
exchange it talks to: everything it would ask is a method here.

What a venue decides:

* markets: the market types to load (ccxt's ``fetchMarkets.types``) and the quantity unit
  (coins per ccxt amount unit: 1, or a contract's size where ccxt counts contracts);
* orders: the parameters of an order (client id, reduce-only, hedge-mode side, margin
  mode), the look-up of an order by its client id, the trades of an order, the cancel;
* reads: balances (what ``total`` means in the margin wallet), positions, tickers and
  funding rates, funding history and open orders, each in as few requests per account as
  the venue allows, and ccxt's parse of the rows the pairs use only (``parse_rows``);
* set-up: leverage and margin mode (at start every contract's are read in as few
  requests as the venue allows and only what differs is set, ``apply_settings``), adding
  isolated margin, testnet (sandbox or demo);
* errors: which of the venue's codes mean "already as asked", "the clock is off", "the
  outcome is unknown", before ccxt's class decides (``ccxt_translate``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any, ClassVar

from ccxt.base import errors as ccxt_errors

from bot.domain.margin_transfers import MarginChange
from bot.domain.models import ONE, Balance, OrderRequest
from bot.exchange import ccxt_margin, ccxt_parse
from bot.exchange.ccxt_client import CcxtCalls
from bot.exchange.ccxt_limits import RateLimits
from bot.exchange.ccxt_markets import is_contract
from bot.exchange.ccxt_translate import order_not_found, translate
from bot.exchange.gateway import (
    ContractSetting,
    DuplicateOrderError,
    FatalError,
    GatewayError,
    OrderRejectedError,
    RetryableError,
    parse_symbol,
)
from bot.exchange.venues.settings import (
    UNKNOWN,
    Held,
    concurrently,
    held_from_leverages,
)

Raw = Mapping[str, Any]

#: How long a one-wallet venue's balance answer serves the margin read after the spot read.
WALLET_REUSE_S = 1.0

_CODE = re.compile(r"(?<![\d.])-?\d{3,6}(?![\d.])")


class NotModified(GatewayError):
    """The venue says the setting is already as asked: done, nothing to retry."""


def venue_codes(exc: Exception) -> set[str]:
    """The numbers in a ccxt exception's message: the venue's error code is one of them
    (ccxt puts the venue's answer body in the message)."""
    return set(_CODE.findall(str(exc)))


class CcxtVenue:
    """One exchange's dialect of ccxt; this base speaks ccxt's unified calls as documented."""

    #: ccxt ids this class serves (the registry's key).
    exchange_ids: ClassVar[frozenset[str]] = frozenset()
    #: What the README and the one-line errors call it.
    label: ClassVar[str] = "generic ccxt"
    #: ccxt ``fetchMarkets.types`` per kind of symbol; None: ccxt's defaults.
    contract_type: ClassVar[str | None] = None
    spot_type: ClassVar[str | None] = None
    #: ccxt type of its inverse contracts, where their coin wallet is read; None: refused.
    inverse_type: ClassVar[str | None] = None
    #: The spot and the margin reads are one wallet (unified account): coins counted once.
    shared_wallet: ClassVar[bool] = False
    #: The venue's codes for a client order id used before (the earlier order exists).
    duplicate_codes: ClassVar[frozenset[str]] = frozenset()
    #: The venue's codes for "already as asked" (margin mode, leverage, position mode).
    not_modified_codes: ClassVar[frozenset[str]] = frozenset()
    #: The venue's codes for a request refused for its timestamp (ccxt ``InvalidNonce``):
    #: the clock is off, which a retry does not cure. Empty: ccxt's class decides.
    clock_codes: ClassVar[frozenset[str]] = frozenset()
    #: Codes of an order answer whose outcome is unknown (the venue may have executed
    #: it): looked up, never taken as a rejection.
    unknown_outcome_codes: ClassVar[frozenset[str]] = frozenset()
    #: Codes that no retry or wait can fix (bad parameters, leverage out of range).
    fatal_codes: ClassVar[frozenset[str]] = frozenset()
    #: 1 where ccxt's funding history ``amount`` is income (received positive), -1 where
    #: it is what the position paid.
    funding_sign: ClassVar[int] = 1
    #: How far back the funding history can be asked (None: as far as the bot wants).
    funding_window: ClassVar[timedelta | None] = None
    #: How far back the margin history can be asked (None: as far as the bot wants).
    margin_history_window: ClassVar[timedelta | None] = None
    #: Whether the venue's futures take a reduce-only order under the min notional (so a
    #: residual position below it can still be closed).
    reduce_only_below_min_notional: ClassVar[bool] = False
    #: How the venue limits an account's requests (``bot.exchange.ccxt_limits``); the
    #: default is ccxt's own rate, one bucket a second.
    rate_limits: ClassVar[RateLimits] = RateLimits()
    #: The longest client order id the venue takes, and which characters.
    client_id_length: ClassVar[int] = 36
    client_id_pattern: ClassVar[re.Pattern[str]] = re.compile(r"[A-Za-z0-9_-]+")

    def __init__(self, client: Any, calls: CcxtCalls) -> None:
        self.client = client
        self.calls = calls
        self.hedge_mode = False  # as ``position_mode`` last found it
        self._kept_wallet: tuple[float, Raw] | None = None

    # -- errors ----------------------------------------------------------------------------

    @classmethod
    def translator(
        cls,
    ) -> Callable[[Exception, str, bool, Callable[[str], str], float | None], GatewayError]:
        """The function ``CcxtCalls`` translates this venue's ccxt exceptions with."""
        return cls.translate

    @classmethod
    def translate(
        cls,
        exc: Exception,
        what: str,
        for_order: bool,
        scrub: Callable[[str], str],
        retry_after_s: float | None = None,
    ) -> GatewayError:
        """The venue's own codes first, then ccxt's class (``ccxt_translate``)."""
        codes = venue_codes(exc)
        message = f"{what}: {type(exc).__name__}: {scrub(str(exc))}"
        if codes & cls.not_modified_codes:
            return NotModified(message)
        if for_order and codes & cls.duplicate_codes:
            return DuplicateOrderError(message)
        clock = cls.clock_codes and isinstance(exc, ccxt_errors.InvalidNonce)
        if clock or codes & cls.clock_codes:
            return _clock_error(cls.label, what, for_order, message)
        if for_order and codes & cls.unknown_outcome_codes:
            return RetryableError(message)
        if codes & cls.fatal_codes:
            return FatalError(message)
        return translate(exc, what, for_order, scrub, retry_after_s)

    # -- start-up --------------------------------------------------------------------------

    def market_types(self, symbols: Iterable[str]) -> list[str] | None:
        """ccxt market types (``fetchMarkets.types``) the symbols need; None: ccxt's own."""
        types = {market_type_of(self, symbol) for symbol in symbols}
        if None in types:
            return None
        return sorted(t for t in types if t is not None)

    async def check_capabilities(self, contract: str | None) -> None:
        """Refuse, with a one-line FatalError, to trade where this venue cannot be traded
        safely; ``contract`` is a perp the account trades (None: spot only)."""
        missing = [
            call
            for call in ("createOrder", "fetchOrder", "cancelOrder", "fetchBalance")
            if not self.client.has.get(call)
        ]
        if contract is not None and not self.client.has.get("fetchPositions"):
            missing.append("fetchPositions")
        if missing:
            raise FatalError(
                f"exchange {self.client.id!r}: ccxt offers no {', '.join(missing)} there, "
                "which hedgebot needs to trade safely; choose another exchange"
            )

    def check_client_order_id(self, client_order_id: str) -> None:
        """Refuse, before sending, a client order id the venue would refuse (the daemon's
        ``hb`` + ULID, 28 letters and digits, fits every venue module's rule)."""
        if len(client_order_id) > self.client_id_length or not self.client_id_pattern.fullmatch(
            client_order_id
        ):
            raise OrderRejectedError(
                f"client order id {client_order_id!r} does not fit {self.label}'s rule "
                f"(at most {self.client_id_length} of {self.client_id_pattern.pattern}): not sent"
            )

    async def position_mode(self, symbol: str) -> bool:
        """Whether the account holds separate long and short positions (hedge mode)."""
        self.hedge_mode = await self._read_position_mode(symbol)
        return self.hedge_mode

    async def _read_position_mode(self, symbol: str) -> bool:
        if not self.client.has.get("fetchPositionMode"):
            return False
        answer = await self.calls.call(
            "fetch_position_mode", self.client.fetch_position_mode, symbol
        )
        return bool(answer.get("hedged"))

    # -- quantities ------------------------------------------------------------------------

    def coins_per_unit(self, symbol: str) -> Decimal:
        """How many coins one unit of ccxt's ``amount`` is on ``symbol`` (1: ccxt counts
        coins; a contract's size where it counts contracts)."""
        return ONE

    # -- reads -----------------------------------------------------------------------------

    async def spot_balances(self) -> Mapping[str, Balance]:
        """The spot wallet by asset."""
        raw = await self.calls.call(
            "fetch_balance(spot)", self.client.fetch_balance, {"type": "spot"}
        )
        return ccxt_parse.balances(raw)

    async def margin_balances(self) -> Mapping[str, Balance]:
        """The linear-contract wallet: ``total`` the wallet, ``equity`` with uPnL.
        Plain ccxt: its ``total`` stands for both (no venue meaning checked)."""
        raw = await self.calls.call(
            "fetch_balance(swap)",
            self.client.fetch_balance,
            {"type": "swap", "subType": "linear"},
        )
        return ccxt_parse.margin_balances(raw)

    async def one_wallet(self, keep: bool) -> Raw:
        """The balance answer of a venue whose one wallet holds the spot coins and the
        contracts' margin. The spot read (``keep``) leaves it for the margin read that
        follows it in the same observation, which takes it instead of asking again: the
        answer is the same, and venues limit the balance endpoint tightly (OKX: 10 per
        2 s)."""
        kept, self._kept_wallet = self._kept_wallet, None
        if not keep and kept is not None and time.monotonic() - kept[0] < WALLET_REUSE_S:
            return kept[1]
        raw: Raw = await self.calls.call("fetch_balance", self.client.fetch_balance)
        if keep:
            self._kept_wallet = (time.monotonic(), raw)
        return raw

    async def positions(self, symbols: Sequence[str]) -> list[Raw]:
        """ccxt positions of ``symbols`` (more may come back: the caller filters)."""
        return list(
            await self.calls.call("fetch_positions", self.client.fetch_positions, list(symbols))
        )

    async def tickers(self, symbols: Sequence[str]) -> Raw:
        """ccxt tickers (bid/ask) by symbol; bookTicker where ccxt has ``fetchBidsAsks``."""
        if self.client.has.get("fetchBidsAsks"):
            return dict(
                await self.calls.call("fetch_bids_asks", self.client.fetch_bids_asks, list(symbols))
            )
        return dict(
            await self.calls.call("fetch_tickers", self.client.fetch_tickers, list(symbols))
        )

    async def funding_rates(self, symbols: Sequence[str]) -> Raw:
        """ccxt funding rates by symbol of the perpetuals ``symbols``."""
        return dict(
            await self.calls.call(
                "fetch_funding_rates", self.client.fetch_funding_rates, list(symbols)
            )
        )

    async def contract_quotes(
        self, symbols: Sequence[str], *, funding: bool = True
    ) -> tuple[Raw, Raw]:
        """ccxt tickers of ``symbols`` and (``funding``) funding rates of its perpetuals,
        for one observation: here two requests (one without ``funding``); a venue whose
        tickers carry the funding rate answers both from one, whatever ``funding`` says."""
        perpetual = perpetuals(symbols) if funding else []
        tickers = await self.tickers(symbols)
        return tickers, (await self.funding_rates(perpetual) if perpetual else {})

    def parse_rows(
        self,
        rows: Iterable[Any],
        symbols: Iterable[str],
        parse: Callable[[Any, Any], Any],
        id_key: str = "symbol",
    ) -> dict[str, Any]:
        """ccxt's ``parse`` of the rows of ``symbols`` only (:func:`parse_rows`)."""
        with self.calls.translated("parsing an answer", for_order=False):
            return parse_rows(self.client, rows, symbols, parse, id_key)

    def quote_volume_24h(self, symbol: str, ticker: Raw) -> Decimal | None:
        """The 24h traded volume in the quote asset of a ccxt ticker."""
        return ccxt_parse.dec_or_none(ticker.get("quoteVolume"))

    def funding_history_params(self, symbols: Iterable[str]) -> list[dict[str, Any]]:
        """``params`` of each ``fetch_funding_history`` request: every linear contract."""
        return [{"type": "swap", "subType": "linear"}]

    def open_orders_requests(self, symbols: Iterable[str]) -> list[dict[str, Any]]:
        """``params`` of each ``fetch_open_orders`` request (without a symbol) for the
        contracts ``symbols``: one, of every linear contract."""
        return [{"type": "swap", "subType": "linear"}]

    # -- orders ----------------------------------------------------------------------------

    async def before_send(self, request: OrderRequest) -> None:
        """Last check before an order is sent (the venue's own duplicate guard suffices)."""

    def order_params(self, request: OrderRequest, hedge_mode: bool) -> dict[str, Any]:
        """``params`` of ``create_order``: client id, reduce-only, IOC for a limit."""
        params: dict[str, Any] = {"clientOrderId": request.client_order_id}
        if request.reduce_only:
            params["reduceOnly"] = True
        if request.order_type == "limit":
            params["timeInForce"] = "IOC"
        return params

    async def find_order(self, symbol: str, client_order_id: str) -> Raw | None:
        """The ccxt order with this client id; None when the venue has none."""
        try:
            found = await self.calls.call(
                "fetch_order",
                self.client.fetch_order,
                None,
                symbol,
                {"clientOrderId": client_order_id},
            )
        except OrderRejectedError as exc:
            if order_not_found(exc):
                return None
            raise
        return dict(found)

    #: The ``fetch_my_trades`` parameter naming the venue's order id.
    trades_order_param: ClassVar[str] = "orderId"

    async def order_trades(self, symbol: str, order: Raw) -> list[Raw]:
        """The trades of a (partly) filled order."""
        return list(
            await self.calls.call(
                "fetch_my_trades",
                self.client.fetch_my_trades,
                symbol,
                None,
                None,
                {self.trades_order_param: order["id"]},
            )
        )

    async def cancel(self, symbol: str, client_order_id: str) -> None:
        """Cancel by client id, once; an order the venue does not know is not an error."""
        await self._cancel_with(symbol, {"clientOrderId": client_order_id})

    async def _cancel_with(self, symbol: str, params: dict[str, Any]) -> None:
        try:
            await self._send_once("cancel_order", self.client.cancel_order, None, symbol, params)
        except OrderRejectedError as exc:
            if not order_not_found(exc):
                raise

    # -- set-up ----------------------------------------------------------------------------

    async def apply_settings(self, wanted: Mapping[str, ContractSetting]) -> None:
        """Read what the venue holds (``held_settings``), then set the margin modes and
        the leverages that differ, each set once (its answer is the proof)."""
        held = await self.held_settings(wanted)
        modes = {
            symbol: setting.margin_mode
            for symbol, setting in wanted.items()
            if held.get(symbol, UNKNOWN).margin_mode != setting.margin_mode
        }
        if modes:
            await self.set_margin_modes(modes)
        levers = {
            symbol: setting.leverage
            for symbol, setting in wanted.items()
            if held.get(symbol, UNKNOWN).leverage != setting.leverage
        }
        await concurrently(
            partial(self.set_leverage, s, lever) for s, lever in sorted(levers.items())
        )

    async def held_settings(self, wanted: Mapping[str, ContractSetting]) -> Mapping[str, Held]:
        """The margin mode and leverage the venue holds for the contracts, in one request
        where ccxt reads every symbol's at once (``fetchLeverages``: Binance's
        /fapi/v1/symbolConfig); else nothing is known and everything is set."""
        if not self.client.has.get("fetchLeverages"):
            return {}
        raw = await self.calls.call("fetch_leverages", self.client.fetch_leverages, sorted(wanted))
        return held_from_leverages(raw)

    async def set_margin_modes(self, modes: Mapping[str, str]) -> None:
        """Set each symbol's margin mode (a few at once)."""
        await concurrently(
            partial(self.set_margin_mode, symbol, mode) for symbol, mode in sorted(modes.items())
        )

    async def set_leverage(self, symbol: str, leverage: Decimal) -> None:
        """Set the symbol's leverage; "already so" is done."""
        try:
            await self.calls.call(
                "set_leverage", self.client.set_leverage, self.leverage_value(leverage), symbol
            )
        except NotModified:
            return

    def leverage_value(self, leverage: Decimal) -> float | int:
        """The leverage as the venue takes it."""
        return float(leverage)

    async def set_margin_mode(self, symbol: str, margin_mode: str) -> None:
        """Set isolated/cross margin for the symbol; "already so" is done."""
        try:
            await self.calls.call(
                "set_margin_mode", self.client.set_margin_mode, margin_mode, symbol
            )
        except NotModified:
            return
        except OrderRejectedError as exc:
            raise FatalError(f"{symbol}: cannot set margin mode {margin_mode}: {exc}") from exc

    async def add_margin(self, symbol: str, amount: Decimal, hedge_mode: bool) -> None:
        """Move ``amount`` into the isolated position; sent once, never retried."""
        await self._send_once(
            "add_margin",
            self.client.add_margin,
            symbol,
            float(amount),
            self.add_margin_params(hedge_mode),
        )

    # Spot and futures apart, with transfers between them (``ccxt_wallets``): Binance.
    separate_wallets: ClassVar[bool] = False

    async def _send_once(self, what: str, fn: Callable[..., Any], *args: Any) -> Any:
        """A write a repeat would do twice: never retried, an unknown failure a refusal."""
        return await self.calls.call(what, fn, *args, retry=False, for_order=True)

    @property
    def has_margin_history(self) -> bool:
        """Whether ccxt can read the venue's margin history here."""
        return bool(self.client.has.get("fetchMarginAdjustmentHistory"))

    async def margin_history(self, symbol: str, since: datetime) -> list[MarginChange]:
        """The symbol's isolated-margin changes since ``since`` (ccxt's unified call)."""
        return await ccxt_margin.margin_history(self.calls, self.client, symbol, since)

    def add_margin_params(self, hedge_mode: bool) -> dict[str, Any]:
        """``params`` of ``add_margin``."""
        return {}

    def enable_testnet(self, choice: str) -> None:
        """Point the client at the venue's test environment: ``demo`` (demo trading on the
        live site) or ``sandbox`` (a separate testnet); ``auto`` picks demo where ccxt has
        it. FatalError when ccxt offers neither."""
        has_demo = callable(getattr(self.client, "enable_demo_trading", None)) and bool(
            self.client.urls.get("demo") or self.client.urls.get("demotrading")
        )
        has_sandbox = bool(self.client.urls.get("test"))
        if choice == "auto":
            choice = "demo" if has_demo else "sandbox" if has_sandbox else "sandbox or demo"
        if choice == "demo" and has_demo:
            self.client.enable_demo_trading(True)
        elif choice == "sandbox" and has_sandbox:
            self.client.set_sandbox_mode(True)
        else:
            raise FatalError(
                f"exchange {self.client.id!r} offers no {choice} trading in ccxt, so testnet "
                "mode cannot use it; choose another exchange, or set testnet = "
                "'sandbox'/'demo'"
            )


def parse_rows(
    client: Any,
    rows: Iterable[Any],
    symbols: Iterable[str],
    parse: Callable[[Any, Any], Any],
    id_key: str = "symbol",
) -> dict[str, Any]:
    """ccxt's ``parse`` (``parse_ticker``, ``parse_funding_rate``) of the rows of
    ``symbols`` only, by symbol: a whole-market answer (600 rows on a real-sized venue)
    is decoded once, and only the rows the pairs use are parsed. ccxt stays the parser;
    the rows are matched by the venue's market id (``id_key``), so ``rows`` must be of
    one market type (ids repeat across types). A symbol ccxt does not list is absent."""
    markets = _markets_by_id(client, symbols)
    return {
        markets[row[id_key]]["symbol"]: parse(row, markets[row[id_key]])
        for row in _rows_of(rows, markets, id_key)
    }


def pick_rows(
    client: Any, rows: Iterable[Any], symbols: Iterable[str], id_key: str = "symbol"
) -> list[Any]:
    """The rows of ``symbols`` (by the venue's market id, ``id_key``), in the answer's
    order: one pass over a whole-market answer that several parses then share."""
    return _rows_of(rows, _markets_by_id(client, symbols), id_key)


def _markets_by_id(client: Any, symbols: Iterable[str]) -> dict[Any, Any]:
    markets = {}
    for symbol in symbols:
        market = known_market(client, symbol)
        if market is not None:
            markets[market["id"]] = market
    return markets


def _rows_of(rows: Iterable[Any], markets: Mapping[Any, Any], id_key: str) -> list[Any]:
    if not markets:
        return []
    rows = rows if isinstance(rows, list) else list(rows)
    try:
        # JSON rows are dicts: one comprehension picks the pairs' rows out of 600 (a loop
        # with a type check per row cost several times as much).
        return [row for row in rows if row.get(id_key) in markets]
    except AttributeError:  # a row that is not a dict is no pair's
        return [row for row in rows if isinstance(row, dict) and row.get(id_key) in markets]


def perpetuals(symbols: Iterable[str]) -> list[str]:
    """The perpetuals among ``symbols`` (dated futures and spot pay no funding)."""
    return [s for s in symbols if parse_symbol(s).is_perpetual]


def market_type_of(venue: CcxtVenue, symbol: str) -> str | None:
    """The ccxt market type ``venue`` loads ``symbol`` with (None: ccxt's defaults)."""
    if venue.inverse_type is not None and parse_symbol(symbol).inverse:
        return venue.inverse_type
    return venue.contract_type if is_contract(symbol) else venue.spot_type


def by_market_type(client: Any, symbols: Iterable[str]) -> dict[str, list[str]]:
    """``symbols`` grouped by ccxt market type (``spot``, ``swap``, ``future``), in order:
    venues whose tickers endpoint answers one type a request are asked once per type. A
    symbol ccxt does not list is left out (absent from the answer: its pair reports it)."""
    grouped: dict[str, list[str]] = {}
    for symbol in symbols:
        market = known_market(client, symbol)
        if market is not None:
            grouped.setdefault(str(market["type"]), []).append(symbol)
    return dict(sorted(grouped.items()))


def known_market(client: Any, symbol: str) -> Any:
    """ccxt's market of ``symbol``; None when its loaded markets do not list it."""
    return (client.markets or {}).get(symbol)


def _clock_error(label: str, what: str, for_order: bool, message: str) -> GatewayError:
    advice = (
        f"{label} refused the request's timestamp: this machine's clock is off (or the "
        "request took too long); sync the clock (NTP)"
    )
    if for_order:
        # Refused at the gate: the order was not placed.
        return OrderRejectedError(f"{what}: {advice}; the order was not placed ({message})")
    return FatalError(f"{what}: {advice} ({message})")
