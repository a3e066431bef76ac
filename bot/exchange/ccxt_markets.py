"""Markets through ccxt: which market types to load, and ccxt's market dicts as Markets.

Spot, linear contracts and inverse (coin-margined) contracts are parsed; precision comes
as a tick size or a number of decimal places (significant digits are refused). An inverse
market's amounts are contracts and its ``contract_size`` the face value in the quote (USD)
from ccxt's ``contractSize``; it is traded only where the venue module says its coin-margin
wallet is read (``inverse_ok``), as the hedged coins are counted there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

from ccxt.base.decimal_to_precision import DECIMAL_PLACES, SIGNIFICANT_DIGITS

from bot.domain.models import ONE, ZERO, Market, OrderRequest
from bot.exchange.ccxt_parse import dec, dec_or_none, ms_time
from bot.exchange.gateway import FatalError, OrderRejectedError, parse_symbol


def is_contract(symbol: str) -> bool:
    """Whether ``symbol`` names a contract (perpetual or dated), not spot."""
    return parse_symbol(symbol).is_contract


def load_only_types(client: Any, types: Iterable[str] | None) -> None:
    """Tell ``client`` to load only these market types (``fetchMarkets.types``, the
    venue's names for them); None leaves ccxt's own choice."""
    if types is None:
        return
    options = client.options.setdefault("fetchMarkets", {})
    if isinstance(options, dict):
        options["types"] = list(types)


def _coins(symbol: str) -> Decimal:
    return ONE


def markets(
    client: Any,
    symbols: Iterable[str],
    coins_per_unit: Callable[[str], Decimal] = _coins,
    reduce_only_below_min_notional: bool = False,
    inverse_ok: bool = False,
) -> dict[str, Market]:
    """The loaded markets of ``symbols``, quantities in coins (``coins_per_unit``: coins
    per ccxt amount unit); a symbol the exchange does not list (delisted) is absent, so
    the caller drops it and only its pair errors. ``reduce_only_below_min_notional``: the
    venue's futures take a reduce-only order under the min notional (its venue module says
    so). An inverse contract is a FatalError unless ``inverse_ok`` (the venue module reads
    its coin-margin wallet)."""
    result: dict[str, Market] = {}
    for symbol in symbols:
        raw = (client.markets or {}).get(symbol)
        if raw is None:
            continue
        inverse = bool(raw.get("inverse"))
        if inverse and not inverse_ok:
            raise inverse_refused(symbol, client.id)
        # An inverse contract's amounts are contracts on every venue: no coins per unit.
        unit = ONE if inverse else coins_per_unit(symbol)
        result[symbol] = market(
            raw, client.precisionMode, client.id, unit, reduce_only_below_min_notional
        )
    return result


def inverse_refused(symbol: str, exchange: str) -> FatalError:
    """The one line that refuses an inverse contract where the venue module does not read
    the wallet that margins it."""
    return FatalError(
        f"{symbol} is an inverse (coin-margined) contract, which hedgebot trades on the "
        f"paper venue, Bybit, OKX and Binance so far, not on {exchange}; use a linear contract"
    )


def refuse_inverse(symbols: Iterable[str], exchange: str) -> None:
    """Refuse, before any market is loaded, a symbol of an inverse contract (``X/USD:X``)
    on a venue whose module does not trade them (its markets would not even be loaded)."""
    for symbol in symbols:
        if parse_symbol(symbol).inverse:
            raise inverse_refused(symbol, exchange)


def step(value: Any, precision_mode: Any, exchange: str) -> Decimal:
    """A ccxt precision as a step: decimal places become 10^-n, a tick size stays."""
    if value is None:
        return ZERO
    if precision_mode == DECIMAL_PLACES:
        return ONE.scaleb(-int(value))
    if precision_mode == SIGNIFICANT_DIGITS:
        raise FatalError(f"{exchange} uses significant-digit precision; not supported")
    return dec(value)  # TICK_SIZE: the step itself


def market(
    raw: Mapping[str, Any],
    precision_mode: Any,
    exchange: str,
    unit: Decimal = ONE,
    reduce_only_below_min_notional: bool = False,
) -> Market:
    """One ccxt market dict as a Market; ``unit`` coins per ccxt amount unit (1 where
    ccxt counts coins, the contract's size where it counts contracts);
    ``reduce_only_below_min_notional`` applies to contracts only."""
    precision = raw.get("precision") or {}
    limits = raw.get("limits") or {}
    amount_limits = limits.get("amount") or {}
    cost_limits = limits.get("cost") or {}
    is_perp = bool(raw.get("swap") or raw.get("future"))
    max_amount = dec_or_none(amount_limits.get("max"))
    return Market(
        symbol=raw["symbol"],
        base=raw["base"],
        quote=raw["quote"],
        amount_step=step(precision.get("amount"), precision_mode, exchange) * unit,
        price_step=step(precision.get("price"), precision_mode, exchange),
        min_amount=(dec_or_none(amount_limits.get("min")) or ZERO) * unit,
        max_amount=None if max_amount is None else max_amount * unit,
        min_notional=dec_or_none(cost_limits.get("min")) or ZERO,
        contract_size=(dec_or_none(raw.get("contractSize")) or ONE) / unit,
        is_perp=is_perp,
        # Dated futures (type "future") carry their delivery time; "linear" loads them
        # with the perpetuals on Binance USDⓈ-M (contractType CURRENT_QUARTER...).
        expiry=ms_time(raw.get("expiry")) if raw.get("future") else None,
        taker_fee=dec_or_none(raw.get("taker")),
        reduce_only_below_min_notional=is_perp and reduce_only_below_min_notional,
        suspended=suspension(raw),
        inverse=is_perp and bool(raw.get("inverse")),
    )


def suspension(raw: Mapping[str, Any]) -> str | None:
    """Why ccxt calls the market inactive (the venue's status word), None when it trades."""
    if raw.get("active") is not False:
        return None
    info = raw.get("info") or {}
    return str(info.get("status") or info.get("contractStatus") or "inactive")


def order_on_grid(client: Any, request: OrderRequest, unit: Decimal) -> tuple[str, str | None]:
    """The order's amount (in the venue's units, ``unit`` coins each) and price as ccxt
    sends them; ccxt truncates silently to the step, so an amount or price off the grid is
    refused instead of sending something else."""
    units = request.amount / unit
    amount = client.amount_to_precision(request.symbol, f"{units:f}")
    if Decimal(amount) != units:
        raise OrderRejectedError(
            f"amount {request.amount} of {request.symbol} is not on the exchange's step; "
            f"ccxt would send {Decimal(amount) * unit}: not sent"
        )
    price = None
    if request.price is not None:
        price = client.price_to_precision(request.symbol, str(request.price))
        if Decimal(price) != request.price:
            raise OrderRejectedError(
                f"price {request.price} of {request.symbol} is not on the exchange's tick; "
                f"ccxt would send {price}: not sent"
            )
    return amount, price
