"""ccxt's answers as domain values: pure functions from ccxt's dicts and lists.

Every number goes through ``Decimal(str(x))`` (the shortest repr of ccxt's float, so
nothing is rounded twice); every timestamp is milliseconds since the epoch, in UTC. No
ccxt dict travels past ``bot/exchange/``: the gateway hands these functions the raw
answers and returns what they build.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from bot.domain.models import (
    ONE,
    ZERO,
    Balance,
    BookLevel,
    Candle,
    Fill,
    FundingPayment,
    FundingRate,
    Market,
    MarketStats,
    OrderBook,
    OrderRequest,
    OrderResult,
    OrderStatus,
    Position,
    Side,
    Ticker,
)

_INTERVAL = re.compile(r"(\d+)([hm])")


def dec(value: Any) -> Decimal:
    """A ccxt number (float, int or str) as an exact Decimal of its shortest repr."""
    if value is None:
        raise ValueError("missing number")
    return Decimal(str(value))


def dec_or_none(value: Any) -> Decimal | None:
    """A ccxt number as a Decimal; None when absent or empty."""
    return None if value is None or value == "" else Decimal(str(value))


def interval_hours(value: Any) -> Decimal | None:
    """ccxt's funding ``interval`` ("8h", "4h", "60m") in hours; None when absent or odd."""
    match = _INTERVAL.fullmatch(str(value or ""))
    if match is None:
        return None
    amount = Decimal(match.group(1))
    hours = amount if match.group(2) == "h" else amount / 60
    return hours if hours > 0 else None


def ms_time(value: Any) -> datetime | None:
    """A ccxt timestamp (milliseconds since the epoch) as an aware UTC datetime."""
    return None if value is None else datetime.fromtimestamp(int(value) / 1000, tz=UTC)


def balances(raw: Mapping[str, Any]) -> dict[str, Balance]:
    """A ccxt balance answer: every asset with a total, ``free`` 0 when not reported."""
    totals = raw.get("total") or {}
    frees = raw.get("free") or {}
    return {
        asset: Balance(asset=asset, free=dec_or_none(frees.get(asset)) or ZERO, total=dec(total))
        for asset, total in totals.items()
        if total is not None
    }


def margin_balances(raw: Mapping[str, Any]) -> dict[str, Balance]:
    """A ccxt balance answer of the linear-contract wallet read as plain ccxt: its
    ``total`` stands for the wallet and the equity both. A venue whose ``total`` means
    something else reads its own raw rows (``bot.exchange.venues``)."""
    return {asset: replace(b, equity=b.total) for asset, b in balances(raw).items()}


def positions(
    raw_positions: Iterable[Any], wanted: Collection[str], hedge_mode: bool
) -> dict[str, Position]:
    """Signed base quantity per wanted symbol; flat ones are absent, and in hedge mode
    only the short side (our hedge) counts."""
    result: dict[str, Position] = {}
    for raw in raw_positions:
        symbol = raw.get("symbol")
        if symbol not in wanted:
            continue
        contracts = dec_or_none(raw.get("contracts")) or ZERO
        if contracts == ZERO:
            continue
        side = raw.get("side")
        if hedge_mode and side != "short":
            continue  # the long side of a hedge-mode account is not ours to steer
        size = contracts * (dec_or_none(raw.get("contractSize")) or ONE)
        result[symbol] = Position(
            symbol=symbol,
            qty=-size if side == "short" else size,
            entry_price=dec_or_none(raw.get("entryPrice")) or ZERO,
            mark_price=dec_or_none(raw.get("markPrice")) or ZERO,
            unrealized_pnl=dec_or_none(raw.get("unrealizedPnl")) or ZERO,
            leverage=dec_or_none(raw.get("leverage")) or ONE,
            liquidation_price=dec_or_none(raw.get("liquidationPrice")),
            margin=dec_or_none(raw.get("initialMargin") or raw.get("collateral")) or ZERO,
            # When the position last changed: ccxt's ``timestamp`` is its creation on
            # Bybit and OKX (``createdTime``, ``cTime``), its update on Binance.
            updated_at=ms_time(raw.get("lastUpdateTimestamp") or raw.get("timestamp")),
        )
    return result


def tickers(raw: Mapping[str, Any], wanted: Iterable[str], now: datetime) -> dict[str, Ticker]:
    """Bid, ask and last per wanted symbol (last = mid when absent). A symbol left out of
    the answer, or without a bid or an ask (delisted, suspended), is left out here too:
    the answer's other symbols stand, and the pair of the missing one reports it."""
    result: dict[str, Ticker] = {}
    for symbol in wanted:
        item = raw.get(symbol)
        if not item or item.get("bid") is None or item.get("ask") is None:
            continue
        bid, ask = dec(item["bid"]), dec(item["ask"])
        last = dec_or_none(item.get("last")) or (bid + ask) / 2
        result[symbol] = Ticker(
            symbol=symbol,
            bid=bid,
            ask=ask,
            last=last,
            timestamp=ms_time(item.get("timestamp")) or now,
        )
    return result


def candles(raw: Iterable[list[Any]] | None) -> list[Candle]:
    """ccxt ``fetch_ohlcv`` rows ``[ms, open, high, low, close, volume]`` as Candles."""
    result: list[Candle] = []
    for row in raw or []:
        opened_at = ms_time(row[0])
        if opened_at is None:
            continue
        result.append(
            Candle(
                opened_at=opened_at,
                open=dec(row[1]),
                high=dec(row[2]),
                low=dec(row[3]),
                close=dec(row[4]),
                volume=dec_or_none(row[5]) or ZERO,
            )
        )
    return result


def order_book(
    symbol: str, raw: Mapping[str, Any], depth: int, now: datetime, unit: Decimal = ONE
) -> OrderBook:
    """The top ``depth`` levels of each side of a ccxt order book; ``unit`` coins per
    ccxt amount unit (a contract's size where ccxt counts contracts)."""

    def levels(side: Any) -> tuple[BookLevel, ...]:
        return tuple(BookLevel(price=dec(p), amount=dec(a) * unit) for p, a, *_ in side[:depth])

    return OrderBook(
        symbol=symbol,
        bids=levels(raw.get("bids") or []),
        asks=levels(raw.get("asks") or []),
        timestamp=ms_time(raw.get("timestamp")) or now,
    )


def funding_rates(
    raw: Mapping[str, Any], wanted: Collection[str], now: datetime
) -> dict[str, FundingRate]:
    """A ccxt ``fetch_funding_rates`` answer, wanted symbols only."""
    return {
        symbol: FundingRate(
            symbol=symbol,
            rate=dec_or_none(item.get("fundingRate")) or ZERO,
            next_funding_at=ms_time(
                item.get("fundingTimestamp") or item.get("nextFundingTimestamp")
            ),
            timestamp=ms_time(item.get("timestamp")) or now,
            interval_hours=interval_hours(item.get("interval")),
        )
        for symbol, item in raw.items()
        if symbol in wanted
    }


def funding_history(
    raw: Iterable[Any],
    wanted: Collection[str],
    since: datetime,
    markets: Mapping[str, Market],
    sign: int = 1,
) -> tuple[list[FundingPayment], datetime]:
    """The wanted symbols' payments in a ccxt funding history (received positive: ``sign``
    -1 where ccxt's ``amount`` is what the position paid), and where the next look starts
    (1 ms after the newest payment of any symbol, else ``since``)."""
    payments: list[FundingPayment] = []
    for item in raw:
        paid_at = ms_time(item.get("timestamp"))
        symbol = item.get("symbol")
        if paid_at is None:
            continue
        since = max(since, paid_at + timedelta(milliseconds=1))
        if symbol not in wanted:
            continue
        market = markets.get(symbol)
        payments.append(
            FundingPayment(
                symbol=symbol,
                amount=dec(item.get("amount")) * sign,
                asset=_funding_asset(item, market),
                rate=None,  # the income history reports amounts only
                position_qty=None,
                mark_price=None,
                timestamp=paid_at,
            )
        )
    return payments, since


def _funding_asset(item: Mapping[str, Any], market: Market | None) -> str:
    """What a payment is in: an inverse contract's coin (ccxt's bybit says ``USD``), else
    ccxt's ``code``, else the quote."""
    if market is not None and market.inverse:
        return market.base
    return str(item.get("code") or (market.quote if market else "USDT"))


def market_stats(
    symbol: str,
    ticker: Mapping[str, Any],
    open_interest: Mapping[str, Any] | None,
    market: Market | None,
    now: datetime,
    quote_volume: Decimal | None,
) -> MarketStats:
    """24h quote volume (as the venue module reads it from the ticker), open interest (in
    the quote asset) from a ccxt open-interest answer when there is one."""
    return MarketStats(
        symbol=symbol,
        open_interest_value=None
        if open_interest is None
        else open_interest_value(open_interest, ticker, market),
        quote_volume_24h=quote_volume,
        timestamp=ms_time(ticker.get("timestamp")) or now,
    )


def open_interest_value(
    raw: Mapping[str, Any], ticker: Mapping[str, Any], market: Market | None
) -> Decimal | None:
    """Open interest in the quote asset; Binance reports the amount (in contracts) only,
    which is valued at the ticker's last price."""
    value = dec_or_none(raw.get("openInterestValue"))
    amount = dec_or_none(raw.get("openInterestAmount"))
    last = dec_or_none(ticker.get("last"))
    if value is None and amount is not None and last is not None:
        value = amount * (market.contract_size if market else ONE) * last
    return value


def _status(status: Any, filled: Decimal) -> OrderStatus:
    if status == "closed":
        return OrderStatus.FILLED
    if status in ("canceled", "expired"):
        return OrderStatus.CANCELED
    if status == "rejected":
        return OrderStatus.REJECTED
    return OrderStatus.PARTIALLY_FILLED if filled > ZERO else OrderStatus.ACCEPTED


def with_notes(request: OrderRequest, sent: Decimal | None, result: OrderResult) -> OrderResult:
    """The result, with a reason where the venue took (``sent``, in coins) or holds
    another amount than the request's."""
    if sent is not None and sent != request.amount:
        result = with_reason(result, f"the exchange took amount {sent}, not {request.amount}")
    if result.amount != request.amount and result.reason is None:
        result = with_reason(
            result, f"the exchange holds amount {result.amount} (asked {request.amount})"
        )
    return result


def is_final(raw: Mapping[str, Any], client_order_id: str) -> bool:
    """Whether an order's create answer is its end state: a closed, canceled, expired or
    rejected order of this client id, its filled amount and venue id given (Binance's
    ``newOrderRespType`` RESULT for an IOC or market order). An acknowledgement (status
    open or none, Bybit's and OKX's ids alone) is not."""
    return (
        raw.get("status") in ("closed", "canceled", "expired", "rejected")
        and raw.get("clientOrderId") == client_order_id
        and dec_or_none(raw.get("filled")) is not None
        and raw.get("id") is not None
    )


def order(
    raw: Mapping[str, Any],
    symbol: str,
    trades: Iterable[Mapping[str, Any]],
    now: datetime,
    unit: Decimal = ONE,
) -> OrderResult:
    """A ccxt order and its trades, amounts in coins (``unit`` coins per ccxt amount
    unit); the fee is the trades' sum, the average price theirs when the order reports
    none."""
    filled = (dec_or_none(raw.get("filled")) or ZERO) * unit
    amount = (dec_or_none(raw.get("amount")) or ZERO) * unit or filled
    fills = tuple(fill(t, symbol, now, unit) for t in trades)
    fee = sum((f.fee for f in fills), ZERO)
    fee_asset = fills[0].fee_asset if fills else None
    average = dec_or_none(raw.get("average"))
    if average is None and fills:
        total = sum((f.amount for f in fills), ZERO)
        average = sum((f.amount * f.price for f in fills), ZERO) / total if total else None
    return OrderResult(
        client_order_id=raw.get("clientOrderId") or "",
        exchange_order_id=None if raw.get("id") is None else str(raw["id"]),
        symbol=symbol,
        side=Side(raw.get("side") or "buy"),
        status=_status(raw.get("status"), filled),
        amount=amount,
        filled=filled,
        average_price=average if filled > ZERO else None,
        fee=fee,
        fee_asset=fee_asset,
        fills=fills,
    )


def fill(raw: Mapping[str, Any], symbol: str, now: datetime, unit: Decimal = ONE) -> Fill:
    """One ccxt trade, its amount in coins (``unit`` coins per ccxt amount unit)."""
    fee = raw.get("fee") or {}
    return Fill(
        trade_id=str(raw.get("id")),
        symbol=symbol,
        side=Side(raw.get("side") or "buy"),
        amount=dec(raw.get("amount")) * unit,
        price=dec(raw.get("price")),
        fee=dec_or_none(fee.get("cost")) or ZERO,
        fee_asset=fee.get("currency") or "",
        timestamp=ms_time(raw.get("timestamp")) or now,
    )


def with_reason(result: OrderResult, reason: str) -> OrderResult:
    """``result`` with ``reason`` added to the reasons it already has."""
    return replace(result, reason=reason if result.reason is None else f"{result.reason}; {reason}")
