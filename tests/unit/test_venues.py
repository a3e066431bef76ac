"""The venue registry, the venue modules' error codes and the generic path's start-up
check, on a hand-written stand-in for a ccxt client."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import ccxt
import pytest
from ulid import ULID

from bot.exchange.ccxt_client import CcxtCalls
from bot.exchange.gateway import (
    DuplicateOrderError,
    FatalError,
    OrderRejectedError,
    RetryableError,
)
from bot.exchange.venues import (
    BinanceVenue,
    BybitVenue,
    GenericVenue,
    NotModified,
    OkxVenue,
    bybit,
    okx,
    venue_class,
)
from bot.exchange.venues.base import parse_rows, pick_rows
from bot.execution.executor import client_order_id

D = Decimal
PERP = "BTC/USDT:USDT"


class FakeClient:
    """What ``CcxtCalls`` and a venue touch on a ccxt client."""

    def __init__(self, exchange_id: str = "kraken", **has: bool) -> None:
        self.id = exchange_id
        self.rateLimit = 100
        self.enableRateLimit = True
        self.last_response_headers: dict[str, str] = {}
        self.has = {
            "createOrder": True,
            "fetchOrder": True,
            "cancelOrder": True,
            "fetchBalance": True,
            "fetchPositions": True,
            **has,
        }
        self.lookup_error: Exception | None = ccxt.OrderNotFound("kraken order not found")
        self.lookups: list[tuple[Any, ...]] = []

    async def fetch_order(self, order_id: Any, symbol: str, params: dict[str, Any]) -> Any:
        self.lookups.append((order_id, symbol, params))
        if self.lookup_error is not None:
            raise self.lookup_error
        return {"id": "1", "clientOrderId": "someone-else"}


def generic(client: FakeClient) -> GenericVenue:
    calls = CcxtCalls("main", client, translator=GenericVenue.translator())
    return GenericVenue(client, calls)


def scrub(text: str) -> str:
    return text


@pytest.mark.parametrize(
    ("exchange_id", "expected"),
    [
        ("binance", BinanceVenue),
        ("binanceusdm", BinanceVenue),
        ("bybit", BybitVenue),
        ("okx", OkxVenue),
        ("kraken", GenericVenue),
    ],
)
def test_the_registry_picks_the_venue_module_by_ccxt_id(
    exchange_id: str, expected: type[Any]
) -> None:
    assert venue_class(exchange_id) is expected


def test_binance_no_need_to_change_margin_type_is_done_not_an_error() -> None:
    exc = ccxt.OperationRejected('binance {"code":-4046,"msg":"No need to change margin type."}')
    assert isinstance(BinanceVenue.translate(exc, "set_margin_mode", False, scrub), NotModified)


def test_a_refused_timestamp_is_a_clock_to_fix_never_a_retry() -> None:
    exc = ccxt.InvalidNonce('binance {"code":-1021,"msg":"Timestamp outside recvWindow"}')
    read = BinanceVenue.translate(exc, "fetch_positions", False, scrub)
    order = BinanceVenue.translate(exc, "create_order", True, scrub)
    assert isinstance(read, FatalError)
    assert "clock" in str(read)
    assert isinstance(order, OrderRejectedError)
    assert "not placed" in str(order)
    # The generic path keeps ccxt's meaning (a network error: retried).
    assert isinstance(GenericVenue.translate(exc, "fetch_positions", False, scrub), RetryableError)


def test_codes_are_whole_numbers_of_the_message_not_pieces_of_a_timestamp() -> None:
    exc = ccxt.ExchangeError("binance error at 1700000000000: -40460 something")
    assert not isinstance(BinanceVenue.translate(exc, "x", False, scrub), NotModified)


def test_binance_leverage_must_be_whole() -> None:
    venue = BinanceVenue(FakeClient("binance"), CcxtCalls("main", FakeClient("binance")))
    assert venue.leverage_value(Decimal(3)) == 3
    with pytest.raises(FatalError, match="whole number"):
        venue.leverage_value(Decimal("2.5"))


async def test_the_generic_path_refuses_a_venue_without_the_calls_it_needs() -> None:
    venue = generic(FakeClient(fetchPositions=False))
    with pytest.raises(FatalError, match="fetchPositions") as refused:
        await venue.check_capabilities(PERP)
    assert "\n" not in str(refused.value)


async def test_the_generic_path_accepts_a_venue_that_finds_no_order_for_an_unused_client_id() -> (
    None
):
    client = FakeClient()
    await generic(client).check_capabilities(PERP)
    [(order_id, symbol, params)] = client.lookups
    assert (order_id, symbol) == (None, PERP)
    assert params["clientOrderId"].startswith("hb")


@pytest.mark.parametrize(
    "error",
    [ccxt.ArgumentsRequired("kraken fetchOrder() requires an id"), None],
    ids=["needs-the-venue-id", "ignores-the-client-id"],
)
async def test_the_generic_path_refuses_a_venue_that_cannot_look_up_by_client_id(
    error: Exception | None,
) -> None:
    client = FakeClient()
    client.lookup_error = error
    with pytest.raises(FatalError, match="client id") as refused:
        await generic(client).check_capabilities(PERP)
    assert "\n" not in str(refused.value)


def bybit_error(code: int, msg: str, cls: type[Exception] = ccxt.ExchangeError) -> Exception:
    return cls(f'bybit {{"retCode":{code},"retMsg":"{msg}","result":{{}},"time":1796151442985}}')


def test_bybit_not_modified_codes_are_done() -> None:
    for code in (110043, 110026, 110025):
        exc = bybit_error(code, "not modified", ccxt.BadRequest)
        assert isinstance(BybitVenue.translate(exc, "set_leverage", False, scrub), NotModified)


def test_bybit_refused_timestamp_is_a_clock_to_fix() -> None:
    exc = bybit_error(
        10002, "invalid request, please check your server timestamp", ccxt.InvalidNonce
    )
    assert isinstance(BybitVenue.translate(exc, "fetch_balance", False, scrub), FatalError)
    assert isinstance(BybitVenue.translate(exc, "create_order", True, scrub), OrderRejectedError)


def test_bybit_internal_error_on_an_order_leaves_its_outcome_unknown_not_rejected() -> None:
    exc = bybit_error(10016, "Internal system error.")
    assert isinstance(BybitVenue.translate(exc, "create_order", True, scrub), RetryableError)


def test_bybit_unified_wallet_total_is_the_wallet_and_equity_adds_the_unrealised_pnl() -> None:
    raw = {
        "total": {"USDT": 10000.0},
        "free": {"USDT": 7000.0},
        "info": {
            "result": {
                "list": [
                    {
                        "accountType": "UNIFIED",
                        "coin": [
                            {"coin": "USDT", "walletBalance": "10000", "equity": "9500"},
                        ],
                    }
                ]
            }
        },
    }
    usdt = bybit.margin_balances(raw)["USDT"]
    assert (usdt.total, usdt.equity, usdt.free) == (D(10000), D(9500), D(7000))


def test_okx_loads_its_own_market_types_never_binances_linear() -> None:
    venue = OkxVenue(FakeClient("okx"), CcxtCalls("main", FakeClient("okx")))
    assert venue.market_types([PERP, "BTC/USDT"]) == ["spot", "swap"]
    assert venue.market_types(["BTC/USDT:USDT-261225"]) == ["future"]


def test_okx_counts_a_coin_margined_swap_in_contracts_and_a_linear_one_in_coins() -> None:
    client = FakeClient("okx")
    sizes = {PERP: 0.01, "BTC/USD:BTC": 100}
    client.market = lambda symbol: {"contractSize": sizes[symbol]}  # type: ignore[attr-defined]
    venue = OkxVenue(client, CcxtCalls("main", client))
    assert venue.inverse_type == "swap"
    assert venue.coins_per_unit(PERP) == D("0.01")
    # 100 USD contracts stay contracts: bot.domain.inverse counts their face.
    assert venue.coins_per_unit("BTC/USD:BTC") == 1
    assert venue.market_types(["BTC/USD:BTC", "BTC/USDT"]) == ["spot", "swap"]


def test_okx_refused_timestamp_and_leverage_above_the_maximum_are_not_retried() -> None:
    nonce = ccxt.InvalidNonce('okx {"code":"50102","msg":"Timestamp request expired"}')
    assert isinstance(OkxVenue.translate(nonce, "fetch_positions", False, scrub), FatalError)
    too_high = ccxt.ExchangeError('okx {"code":"59102","msg":"Leverage exceeds the maximum"}')
    assert isinstance(OkxVenue.translate(too_high, "set_leverage", False, scrub), FatalError)


def test_okx_wallet_total_is_the_cash_balance_and_equity_adds_the_unrealised_pnl() -> None:
    raw = {
        "total": {"USDT": 9500.0},
        "info": {
            "data": [
                {
                    "details": [
                        {"ccy": "USDT", "cashBal": "10000", "eq": "9500", "availBal": "7000"},
                        {"ccy": "BTC", "cashBal": "0.5", "eq": "0.5", "availBal": "0.5"},
                    ]
                }
            ]
        },
    }
    balances = okx.account_balances(raw)
    assert (balances["USDT"].total, balances["USDT"].equity) == (D(10000), D(9500))
    assert balances["BTC"].total == D("0.5")


@pytest.mark.parametrize(
    ("avail_eq", "adj_eq", "expected"),
    [("57000", "58000", (D(57000), D(58000))), ("", "", None), ("", "58000", None)],
)
def test_okx_account_level_figures_are_read_only_where_okx_fills_them(
    avail_eq: str, adj_eq: str, expected: tuple[Decimal, Decimal] | None
) -> None:
    """Level 3 (multi-currency margin) fills the account's availEq and adjEq; level 2
    leaves them empty (and spot mode has no account-level availEq)."""
    info = {"data": [{"availEq": avail_eq, "adjEq": adj_eq, "details": []}]}
    assert okx.account_margin(info) == expected


@pytest.mark.parametrize(
    ("venue", "code"),
    [(BinanceVenue, "-4116"), (BybitVenue, "110072"), (BybitVenue, "170141"), (OkxVenue, "51016")],
)
def test_each_venues_used_client_id_code_is_a_duplicate_to_look_up(
    venue: type[Any], code: str
) -> None:
    exc = ccxt.InvalidOrder(f'{{"code":{code},"msg":"order id already used"}}')
    assert isinstance(venue.translate(exc, "create_order", True, scrub), DuplicateOrderError)


@pytest.mark.parametrize("venue", [BinanceVenue, BybitVenue, OkxVenue, GenericVenue])
def test_the_daemons_client_order_ids_fit_every_venues_rule(venue: type[Any]) -> None:
    client = FakeClient(next(iter(venue.exchange_ids), "kraken"))
    checker = venue(client, CcxtCalls("main", client))
    for _ in range(100):
        checker.check_client_order_id(client_order_id(str(ULID())))  # raises if not


def test_an_id_okx_would_refuse_is_not_sent() -> None:
    client = FakeClient("okx")
    venue = OkxVenue(client, CcxtCalls("main", client))
    with pytest.raises(OrderRejectedError, match="not sent"):
        venue.check_client_order_id("hb-with-hyphens")
    with pytest.raises(OrderRejectedError, match="not sent"):
        venue.check_client_order_id("hb" + "0" * 31)  # 33 characters


class _Listed:
    """A client whose loaded markets list BTC and ETH perpetuals (what parse_rows reads)."""

    markets: dict[str, dict[str, str]] = {  # noqa: RUF012
        "BTC/USDT:USDT": {"id": "BTCUSDT", "symbol": "BTC/USDT:USDT"},
        "ETH/USDT:USDT": {"id": "ETHUSDT", "symbol": "ETH/USDT:USDT"},
    }


def test_only_the_asked_rows_are_parsed_and_odd_rows_are_skipped() -> None:

    rows: list[Any] = [
        {"symbol": "C0001USDT", "bid": "1"},
        "not a row",
        {"symbol": "ETHUSDT", "bid": "2"},
        {"bid": "3"},
        {"symbol": "BTCUSDT", "bid": "4"},
        {"symbol": "ETHUSDT", "bid": "5"},  # the later row of an id stands, as before
    ]
    parsed: list[str] = []

    def parse(row: Any, market: Any) -> Any:
        parsed.append(row["bid"])
        return {"symbol": market["symbol"], "bid": row["bid"]}

    asked = ["ETH/USDT:USDT", "BTC/USDT:USDT", "NOPE/USDT:USDT"]
    result = parse_rows(_Listed(), rows, asked, parse)
    assert result == {
        "ETH/USDT:USDT": {"symbol": "ETH/USDT:USDT", "bid": "5"},
        "BTC/USDT:USDT": {"symbol": "BTC/USDT:USDT", "bid": "4"},
    }
    assert parsed == ["2", "4", "5"]  # no row of another symbol is parsed
    assert [r["bid"] for r in pick_rows(_Listed(), iter(rows), asked)] == ["2", "4", "5"]
    assert parse_rows(_Listed(), rows, ["NOPE/USDT:USDT"], parse) == {}
