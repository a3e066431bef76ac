"""The real ccxt okx client against the loopback OKX v5 emulator.

Each test drives unmodified ``ccxt.async_support.okx`` and records what it sends, how
the emulated OKX answers, and which ccxt exception class each OKX code surfaces as.
The fixtures live here (not in the shared conftest) so other venues' emulators can grow
beside this one.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import ccxt.async_support as ccxt
import pytest
import pytest_asyncio

from tests.support.emulators.okx import Credentials, Fault, OkxEmulator
from tests.support.emulators.okx.__main__ import RecordingEmulator, control_routes
from tests.support.emulators.okx._okx_guard import sign
from tests.support.emulators.okx.okx_emulator import ccxt_client as _ccxt_client

SWAP = "BTC/USDT:USDT"
SWAP_ID = "BTC-USDT-SWAP"
SPOT = "BTC/USDT"


def ccxt_client(emulator: OkxEmulator, **extra: Any) -> Any:
    """ccxt's limiter on, paced at 5 ms per cost unit instead of OKX's 110 ms."""
    return _ccxt_client(emulator, **{"rateLimit": 5, **extra})


@pytest_asyncio.fixture
async def okx_emulator() -> AsyncIterator[OkxEmulator]:
    """A started OKX emulator (BTC and ETH), funded with 10 000 USDT."""
    async with OkxEmulator() as emulator:
        emulator.set_balance("USDT", Decimal(10_000))
        yield emulator


@pytest_asyncio.fixture
async def okx(okx_emulator: OkxEmulator) -> AsyncIterator[Any]:
    """``ccxt.async_support.okx`` on the emulator, markets loaded, closed after."""
    async with ccxt_client(okx_emulator) as client:
        await client.load_markets()
        yield client


class ShiftedClock:
    """Wall-clock epoch seconds plus an offset the test moves (signatures stay valid)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


async def sell(okx: Any, amount: float, cl_id: str, **params: Any) -> Any:
    return await okx.create_order(
        SWAP, "market", "sell", amount, None, {"clOrdId": cl_id, **params}
    )


def inst_types(emulator: OkxEmulator) -> list[str]:
    return [
        q.get("instType", "")
        for (_, path), q in zip(emulator.request_log, emulator.request_queries, strict=True)
        if path == "/api/v5/public/instruments"
    ]


# ---------------------------------------------------------------- markets


async def test_load_markets_counts_swap_amounts_in_contracts_of_0_01_btc(okx: Any) -> None:
    swap = okx.market(SWAP)
    assert swap["id"] == SWAP_ID
    assert swap["swap"]
    assert swap["linear"]
    assert swap["contractSize"] == 0.01
    assert swap["precision"]["amount"] == 0.01  # lotSz: contracts
    assert swap["limits"]["amount"]["min"] == 0.01
    assert swap["limits"]["leverage"]["max"] == 100
    assert okx.market("ETH/USDT:USDT")["contractSize"] == 0.1
    assert okx.market(SPOT)["contractSize"] is None
    assert okx.market(SPOT)["precision"]["amount"] == 1e-08
    assert okx.market("BTC/USDT:USDT-261225")["future"]


async def test_load_markets_asks_currencies_then_each_instrument_type(
    okx_emulator: OkxEmulator, okx: Any
) -> None:
    # With keys, ccxt's load_markets makes a signed call (asset/currencies) first.
    assert okx_emulator.request_log[0] == ("GET", "/api/v5/asset/currencies")
    assert sorted(inst_types(okx_emulator)) == ["FUTURES", "OPTION", "OPTION", "SPOT", "SWAP"]


async def test_load_markets_without_keys_makes_no_signed_call(okx_emulator: OkxEmulator) -> None:
    async with ccxt_client(okx_emulator, apiKey=None, secret=None, password=None) as client:
        await client.load_markets()
    assert okx_emulator.requests_to("/api/v5/asset/currencies") == 0


async def test_binance_market_type_linear_makes_okx_answer_51000_instType_error(
    okx_emulator: OkxEmulator,
) -> None:
    # bot/exchange/ccxt_markets.load_only_types sets fetchMarkets types to Binance's words;
    # okx sends instType=linear as is (options['exchangeType'] has no 'linear').
    async with ccxt_client(
        okx_emulator, options={"fetchMarkets": {"types": ["linear", "spot"]}}
    ) as c:
        with pytest.raises(ccxt.BadRequest, match=r'"code":"51000".*Parameter instType error'):
            await c.load_markets()
    assert "linear" in inst_types(okx_emulator)


async def test_okx_market_types_swap_and_spot_load_without_error(okx_emulator: OkxEmulator) -> None:
    async with ccxt_client(
        okx_emulator, options={"fetchMarkets": {"types": ["swap", "spot"]}}
    ) as c:
        markets = await c.load_markets()
    assert sorted(inst_types(okx_emulator)) == ["SPOT", "SWAP"]
    assert SWAP in markets
    assert "BTC/USDT:USDT-261225" not in markets


async def test_instruments_without_inst_type_answers_50014(okx: Any) -> None:
    with pytest.raises(ccxt.BadRequest, match="50014"):
        await okx.publicGetPublicInstruments({})


async def test_fetch_mark_price_sends_no_inst_type_which_okx_documents_as_required(
    okx: Any,
) -> None:
    with pytest.raises(ccxt.BadRequest, match="Parameter instType can not be empty"):
        await okx.fetch_mark_price(SWAP)


async def test_suspended_instrument_is_inactive_and_refuses_orders(
    okx_emulator: OkxEmulator,
) -> None:
    okx_emulator.set_market("BTC", state="suspend")
    async with ccxt_client(okx_emulator) as client:
        await client.load_markets()
        assert client.market(SWAP)["active"] is False
        with pytest.raises(ccxt.ContractUnavailable, match="51022"):
            await client.create_order(SWAP, "market", "sell", 1, None, {"clOrdId": "s1"})


async def test_real_sized_market_list_loads_600_spot_and_600_swaps() -> None:
    async with OkxEmulator(markets=600) as emulator:
        async with ccxt_client(
            emulator, options={"fetchMarkets": {"types": ["spot", "swap"]}}
        ) as c:
            markets = await c.load_markets()
    kinds = [m["type"] for m in markets.values()]
    assert kinds.count("spot") == 600
    assert kinds.count("swap") == 600


# ---------------------------------------------------------------- signing


async def _raw(
    emulator: OkxEmulator, method: str, path_qs: str, body: str = "", **headers: str
) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as session:
        async with session.request(
            method, emulator.url + path_qs, data=body or None, headers=headers
        ) as response:
            return response.status, json.loads(await response.text())


def _headers(
    creds: Credentials, method: str, path_qs: str, body: str = "", stamp: str | None = None
) -> dict[str, str]:
    stamp = stamp or time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    return {
        "OK-ACCESS-KEY": creds.api_key,
        "OK-ACCESS-SIGN": sign(creds.secret, stamp + method + path_qs + body),
        "OK-ACCESS-TIMESTAMP": stamp,
        "OK-ACCESS-PASSPHRASE": creds.passphrase,
        "Content-Type": "application/json",
    }


async def test_signature_covers_timestamp_method_path_query_and_body(
    okx_emulator: OkxEmulator,
) -> None:
    creds = okx_emulator.credentials
    path = "/api/v5/account/balance?ccy=USDT"
    status, answer = await _raw(okx_emulator, "GET", path, **_headers(creds, "GET", path))
    assert (status, answer["code"]) == (200, "0")
    signed_other = _headers(creds, "GET", "/api/v5/account/balance?ccy=BTC")
    status, answer = await _raw(okx_emulator, "GET", path, **signed_other)
    assert (status, answer["code"], answer["msg"]) == (401, "50113", "Invalid Sign")
    body = '{"posMode":"net_mode"}'
    post = "/api/v5/account/set-position-mode"
    tampered = _headers(creds, "POST", post, '{"posMode":"long_short_mode"}')
    status, answer = await _raw(okx_emulator, "POST", post, body, **tampered)
    assert (status, answer["code"]) == (401, "50113")


async def test_timestamp_must_be_iso_8601_with_milliseconds(okx_emulator: OkxEmulator) -> None:
    path = "/api/v5/account/config"
    stamp = str(int(time.time()))
    headers = _headers(okx_emulator.credentials, "GET", path, stamp=stamp)
    status, answer = await _raw(okx_emulator, "GET", path, **headers)
    assert (status, answer["code"]) == (401, "50112")


async def test_missing_passphrase_header_answers_50104(okx_emulator: OkxEmulator) -> None:
    path = "/api/v5/account/config"
    headers = _headers(okx_emulator.credentials, "GET", path)
    del headers["OK-ACCESS-PASSPHRASE"]
    status, answer = await _raw(okx_emulator, "GET", path, **headers)
    assert (status, answer["code"]) == (401, "50104")


@pytest.mark.parametrize(
    ("override", "code"),
    [
        ({"secret": "wrong"}, "50113"),
        ({"password": "wrong"}, "50105"),
        ({"apiKey": "wrong"}, "50111"),
    ],
)
async def test_bad_credentials_raise_authentication_error(
    okx_emulator: OkxEmulator, okx: Any, override: dict[str, str], code: str
) -> None:
    async with ccxt_client(okx_emulator, **override) as client:
        client.markets, client.markets_by_id = okx.markets, okx.markets_by_id
        client.currencies, client.symbols = okx.currencies, okx.symbols
        with pytest.raises(ccxt.AuthenticationError, match=code):
            await client.fetch_balance()


async def test_bad_credentials_already_fail_load_markets(okx_emulator: OkxEmulator) -> None:
    async with ccxt_client(okx_emulator, password="wrong") as client:
        with pytest.raises(ccxt.AuthenticationError, match="50105"):
            await client.load_markets()


async def test_stale_timestamp_raises_invalid_nonce_a_network_error() -> None:
    clock = ShiftedClock()
    async with OkxEmulator(clock=clock) as emulator, ccxt_client(emulator) as client:
        await client.load_markets()
        clock.offset = 31.0  # the server's clock runs 31 s ahead of ccxt's
        with pytest.raises(ccxt.InvalidNonce, match="50102") as caught:
            await client.fetch_balance()
    assert isinstance(caught.value, ccxt.NetworkError)  # ccxt files it as retryable


async def test_demo_key_needs_ccxt_sandbox_mode_header() -> None:
    async with OkxEmulator(demo=True) as emulator:
        async with ccxt_client(emulator, sandbox=True) as demo:
            assert demo.headers["x-simulated-trading"] == "1"
            await demo.load_markets()
            await demo.fetch_balance()
        async with ccxt_client(emulator) as live:
            with pytest.raises(ccxt.AuthenticationError, match="50101"):
                await live.load_markets()


async def test_live_key_is_refused_in_sandbox_mode(okx_emulator: OkxEmulator) -> None:
    async with ccxt_client(okx_emulator, sandbox=True) as demo:
        await demo.load_markets()  # sandbox: ccxt skips asset/currencies
        with pytest.raises(ccxt.AuthenticationError, match="50101"):
            await demo.fetch_balance()


# ---------------------------------------------------------------- account


async def test_fetch_balance_reads_the_trading_account(okx_emulator: OkxEmulator, okx: Any) -> None:
    okx_emulator.set_balance("BTC", Decimal("0.5"))
    balance = await okx.fetch_balance()
    assert balance["USDT"] == {"free": 10_000, "used": 0, "total": 10_000}
    assert balance["BTC"]["total"] == 0.5
    assert balance["info"]["data"][0]["totalEq"] == "40000"  # 10 000 + 0.5 x 60 000
    swap = await okx.fetch_balance({"type": "swap", "subType": "linear"})
    assert swap["USDT"]["total"] == 10_000  # one account: the same answer
    assert okx_emulator.requests_to("/api/v5/account/balance") == 2


async def test_balance_shows_position_margin_as_used_and_upl_in_total(
    okx_emulator: OkxEmulator, okx: Any
) -> None:
    await sell(okx, 10, "m1")  # 0.1 BTC at the bid 59 994, fee 0.05 %
    okx_emulator.set_price("BTC", Decimal(59_000))
    usdt = (await okx.fetch_balance())["USDT"]
    assert usdt["used"] == pytest.approx(590.0)  # imr: 0.1 x 59 000 / 10x
    assert usdt["total"] == pytest.approx(10_000 - 2.9997 + 99.4)


async def test_account_level_1_cannot_trade_swaps(okx_emulator: OkxEmulator, okx: Any) -> None:
    okx_emulator.set_account_level("1")
    with pytest.raises(ccxt.AccountNotEnabled, match="51010"):
        await sell(okx, 1, "lv1")
    accounts = await okx.fetch_accounts()
    assert accounts[0]["type"] == "1"


async def test_set_leverage_per_instrument_and_margin_mode(okx: Any) -> None:
    await okx.set_leverage(5, SWAP)
    await okx.set_leverage(3, SWAP, {"marginMode": "isolated"})
    cross = await okx.fetch_leverage(SWAP)
    isolated = await okx.fetch_leverage(SWAP, {"marginMode": "isolated"})
    assert (cross["marginMode"], cross["longLeverage"]) == ("cross", 5)
    assert (isolated["marginMode"], isolated["shortLeverage"]) == ("isolated", 3)
    assert (await okx.fetch_leverage("ETH/USDT:USDT"))["longLeverage"] == 10  # default


async def test_leverage_above_the_instrument_maximum_answers_59102(okx: Any) -> None:
    with pytest.raises(ccxt.ExchangeError, match="59102"):
        await okx.set_leverage(101, SWAP)
    with pytest.raises(ccxt.BadRequest, match="between 1 and 125"):
        await okx.set_leverage(126, SWAP)  # refused by ccxt before sending


async def test_isolated_leverage_in_long_short_mode_needs_a_pos_side(
    okx_emulator: OkxEmulator, okx: Any
) -> None:
    okx_emulator.set_position_mode("long_short_mode")
    with pytest.raises(ccxt.BadRequest, match="Parameter posSide error"):
        await okx.set_leverage(3, SWAP, {"marginMode": "isolated"})  # ccxt sends posSide net
    await okx.set_leverage(3, SWAP, {"marginMode": "isolated", "posSide": "short"})
    leverage = await okx.fetch_leverage(SWAP, {"marginMode": "isolated"})
    assert (leverage["longLeverage"], leverage["shortLeverage"]) == (10, 3)


async def test_set_margin_mode_is_only_set_leverage_with_a_margin_mode(
    okx_emulator: OkxEmulator, okx: Any
) -> None:
    # OKX has no margin-mode setting: tdMode is chosen per order.
    await okx.set_margin_mode("isolated", SWAP, {"lever": 4})
    assert okx_emulator.request_log[-1] == ("POST", "/api/v5/account/set-leverage")
    assert (await okx.fetch_leverage(SWAP, {"marginMode": "isolated"}))["longLeverage"] == 4


async def test_set_position_mode_then_fetch_position_mode(okx: Any) -> None:
    assert (await okx.fetch_position_mode(SWAP))["hedged"] is False
    await okx.set_position_mode(True)
    assert (await okx.fetch_position_mode(SWAP))["info"]["posMode"] == "long_short_mode"


async def test_position_mode_change_with_an_open_position_answers_59000(
    okx_emulator: OkxEmulator, okx: Any
) -> None:
    await sell(okx, 1, "p1")
    with pytest.raises(ccxt.ExchangeError, match="59000"):
        await okx.set_position_mode(True)
    assert (await okx.fetch_position_mode())["hedged"] is False


async def test_isolated_margin_add_works_through_the_implicit_api_only(
    okx_emulator: OkxEmulator, okx: Any
) -> None:
    await sell(okx, 10, "iso", marginMode="isolated")
    answer = await okx.privatePostAccountPositionMarginBalance(
        {"instId": SWAP_ID, "posSide": "net", "type": "add", "amt": "25"}
    )
    assert answer["code"] == "0"
    position = (await okx.fetch_positions([SWAP]))[0]
    assert position["marginMode"] == "isolated"
    assert position["collateral"] == pytest.approx(599.94 + 25 - 0.6)  # margin + upl
    # ccxt 4.5.90's parse_margin_modification indexes a str ('add'['type']).
    with pytest.raises(TypeError):
        await okx.add_margin(SWAP, 5)
    assert okx_emulator.requests_to("/api/v5/account/position/margin-balance") == 2


async def test_reducing_more_isolated_margin_than_added_answers_59301(okx: Any) -> None:
    await sell(okx, 10, "iso", marginMode="isolated")
    with pytest.raises(ccxt.ExchangeError, match="59301"):
        await okx.privatePostAccountPositionMarginBalance(
            {"instId": SWAP_ID, "posSide": "net", "type": "reduce", "amt": "1"}
        )


# ---------------------------------------------------------------- orders, client ids


async def test_create_order_sends_one_batch_and_stores_the_client_order_id(
    okx_emulator: OkxEmulator, okx: Any
) -> None:
    ack = await sell(okx, 1, "hedge0001")
    assert okx_emulator.requests_to("/api/v5/trade/batch-orders", "POST") == 1
    assert ack["clientOrderId"] == "hedge0001"
    assert ack["status"] is None  # the ack carries no state and no fills
    assert ack["filled"] is None
    stored = okx_emulator.order("hedge0001")
    assert stored is not None
    assert stored.td_mode == "cross"
    assert stored.state == "filled"
    assert okx_emulator.position(SWAP_ID) == Decimal(-1)  # contracts, not coins


async def test_fetch_order_by_client_id_needs_the_symbol_and_client_order_id(
    okx_emulator: OkxEmulator, okx: Any
) -> None:
    await sell(okx, 2, "look1")
    order = await okx.fetch_order(None, SWAP, {"clientOrderId": "look1"})
    assert okx_emulator.request_queries[-1] == {"instId": SWAP_ID, "clOrdId": "look1"}
    assert order["status"] == "closed"
    assert order["amount"] == 2  # contracts
    assert order["filled"] == 2
    assert order["average"] == 59_994
    assert order["fee"] == {"cost": pytest.approx(0.59994), "currency": "USDT"}  # 0.05 %
    with pytest.raises(ccxt.ArgumentsRequired):
        await okx.fetch_order(None, None, {"clientOrderId": "look1"})


async def test_fetch_order_for_an_unknown_client_id_raises_order_not_found(okx: Any) -> None:
    with pytest.raises(ccxt.OrderNotFound, match="51603"):
        await okx.fetch_order(None, SWAP, {"clientOrderId": "nosuchorder"})


async def test_ccxt_generates_a_32_character_client_id_with_its_broker_tag(
    okx_emulator: OkxEmulator, okx: Any
) -> None:
    await okx.create_order(SWAP, "market", "sell", 1)
    order = okx_emulator.orders()[-1]
    assert len(order.cl_ord_id) == 32
    assert order.tag == okx.options["brokerId"]
    assert order.cl_ord_id.startswith(order.tag)


@pytest.mark.parametrize("cl_id", ["a" * 33, "hedge-1", "hedge_1", "h.1"])
async def test_client_id_over_32_or_not_alphanumeric_is_refused(
    okx_emulator: OkxEmulator, okx: Any, cl_id: str
) -> None:
    with pytest.raises(ccxt.BadRequest, match="Parameter clOrdId error"):
        await sell(okx, 1, cl_id)
    assert okx_emulator.orders() == []
    assert okx_emulator.order_log[-1].outcome == "rejected"


async def test_client_id_is_unique_among_live_orders_only(
    okx_emulator: OkxEmulator, okx: Any
) -> None:
    await okx.create_order(SWAP, "limit", "buy", 1, 50_000, {"clOrdId": "rest1"})
    with pytest.raises(ccxt.InvalidOrder, match="51016"):
        await okx.create_order(SWAP, "limit", "buy", 1, 50_000, {"clOrdId": "rest1"})
    await okx.cancel_order(None, SWAP, {"clientOrderId": "rest1"})
    await sell(okx, 1, "rest1")  # reused once no live order holds it
    assert (await okx.fetch_order(None, SWAP, {"clientOrderId": "rest1"}))["side"] == "sell"
    okx_emulator.client_order_id_scope = "all"
    with pytest.raises(ccxt.InvalidOrder, match="51016"):
        await sell(okx, 1, "rest1")


async def test_ccxt_truncates_to_the_lot_and_a_raw_odd_size_answers_51121(
    okx_emulator: OkxEmulator, okx: Any
) -> None:
    await sell(okx, 1.239, "lot1")
    assert okx_emulator.order_log[-1].size == Decimal("1.23")
    order = {"instId": SWAP_ID, "tdMode": "cross", "side": "sell", "ordType": "market"}
    with pytest.raises(ccxt.InvalidOrder, match="51121"):
        await okx.privatePostTradeOrder({**order, "sz": "1.005", "clOrdId": "lot2"})


async def test_spot_order_below_min_size_answers_51020(okx: Any) -> None:
    with pytest.raises(ccxt.InvalidOrder, match="51020"):
        await okx.create_order(SPOT, "market", "buy", 0.000005, None, {"clOrdId": "tiny"})


async def test_spot_market_buy_moves_coins_and_charges_the_fee_in_btc(
    okx_emulator: OkxEmulator, okx: Any
) -> None:
    await okx.create_order(SPOT, "market", "buy", 0.01, None, {"clOrdId": "spot1"})
    stored = okx_emulator.order("spot1")
    assert stored is not None
    assert stored.td_mode == "cash"
    assert okx_emulator.balance("BTC") == Decimal("0.00999")
    assert okx_emulator.balance("USDT") == Decimal(10_000) - Decimal("600.06")


async def test_insufficient_margin_answers_51008_insufficient_funds(okx: Any) -> None:
    with pytest.raises(ccxt.InsufficientFunds, match="51008"):
        await sell(okx, 2000, "big")  # 20 BTC ≈ 1.2 M USDT of notional, 120 k margin


# ---------------------------------------------------------------- tdMode, posSide


async def test_net_mode_refuses_a_long_or_short_pos_side(okx: Any) -> None:
    with pytest.raises(ccxt.BadRequest, match="Parameter posSide error"):
        await sell(okx, 1, "ps1", posSide="short")


async def test_swap_order_with_td_mode_cash_is_refused(okx: Any) -> None:
    with pytest.raises(ccxt.BadRequest, match="Parameter tdMode error"):
        await sell(okx, 1, "cash1", tdMode="cash")


async def test_long_short_mode_needs_pos_side_which_ccxt_sets_from_hedged(
    okx_emulator: OkxEmulator, okx: Any
) -> None:
    okx_emulator.set_position_mode("long_short_mode")
    with pytest.raises(ccxt.BadRequest, match="Parameter posSide error"):
        await sell(okx, 1, "ls1")
    await sell(okx, 3, "ls2", hedged=True)
    assert okx_emulator.order_log[-1].pos_side == "short"
    assert okx_emulator.position(SWAP_ID, "short") == 3
    await okx.create_order(SWAP, "market", "buy", 1, None, {"clOrdId": "ls3", "posSide": "short"})
    assert okx_emulator.position(SWAP_ID, "short") == 2
    positions = await okx.fetch_positions([SWAP])
    assert [(p["side"], p["contracts"], p["hedged"]) for p in positions] == [("short", 2, True)]


async def test_closing_side_without_a_position_answers_51169_in_long_short_mode(
    okx_emulator: OkxEmulator, okx: Any
) -> None:
    okx_emulator.set_position_mode("long_short_mode")
    with pytest.raises(ccxt.ExchangeError, match="51169") as caught:
        await okx.create_order(
            SWAP, "market", "buy", 1, None, {"clOrdId": "c1", "posSide": "short"}
        )
    assert type(caught.value) is ccxt.ExchangeError  # 51169 is not in ccxt's table


async def test_reduce_only_without_a_position_answers_51169_a_plain_exchange_error(
    okx_emulator: OkxEmulator, okx: Any
) -> None:
    with pytest.raises(ccxt.ExchangeError, match="51169") as caught:
        await okx.create_order(
            SWAP, "market", "buy", 1, None, {"clOrdId": "r1", "reduceOnly": True}
        )
    assert type(caught.value) is ccxt.ExchangeError
    assert okx_emulator.order_log[-1].reduce_only
    assert okx_emulator.orders() == []


async def test_reduce_only_fills_at_most_the_position_and_cancels_the_rest(
    okx_emulator: OkxEmulator, okx: Any
) -> None:
    await sell(okx, 2, "o1")
    await okx.create_order(SWAP, "market", "buy", 5, None, {"clOrdId": "r2", "reduceOnly": True})
    order = await okx.fetch_order(None, SWAP, {"clientOrderId": "r2"})
    assert (order["status"], order["filled"], order["reduceOnly"]) == ("canceled", 2, True)
    assert okx_emulator.position(SWAP_ID) == 0


async def test_reduce_only_limit_rests_until_the_price_reaches_it(
    okx_emulator: OkxEmulator, okx: Any
) -> None:
    await sell(okx, 2, "o2")
    params = {"clOrdId": "r3", "reduceOnly": True}
    await okx.create_order(SWAP, "limit", "buy", 2, 59_000, params)
    assert (await okx.fetch_order(None, SWAP, {"clientOrderId": "r3"}))["status"] == "open"
    okx_emulator.set_price("BTC", Decimal(58_900))
    assert (await okx.fetch_order(None, SWAP, {"clientOrderId": "r3"}))["status"] == "closed"
    assert okx_emulator.position(SWAP_ID) == 0


# ---------------------------------------------------------------- positions, fills, funding


async def test_fetch_positions_reports_contracts_size_entry_and_leverage(
    okx_emulator: OkxEmulator, okx: Any
) -> None:
    await okx.set_leverage(4, SWAP)
    await sell(okx, 10, "pos1")
    okx_emulator.set_price("BTC", Decimal(58_000))
    position = (await okx.fetch_positions([SWAP]))[0]
    assert position["side"] == "short"
    assert position["contracts"] == 10
    assert position["contractSize"] == 0.01
    assert position["entryPrice"] == 59_994
    assert position["leverage"] == 4
    assert position["unrealizedPnl"] == pytest.approx(199.4)
    assert position["notional"] == 5800
    assert position["liquidationPrice"] > 58_000
    assert okx_emulator.request_queries[-1] == {"instId": SWAP_ID}


async def test_position_view_lag_hides_a_fill_until_it_has_passed() -> None:
    clock = ShiftedClock()
    async with OkxEmulator(clock=clock) as emulator, ccxt_client(emulator) as client:
        emulator.set_balance("USDT", Decimal(10_000))
        emulator.position_view_lag_s = 5
        await client.load_markets()
        await client.create_order(SWAP, "market", "sell", 1, None, {"clOrdId": "lag1"})
        assert await client.fetch_positions([SWAP]) == []
        assert (await client.fetch_order(None, SWAP, {"clientOrderId": "lag1"}))["filled"] == 1
        clock.offset = 6
        emulator.set_price("BTC", Decimal(60_000))  # ccxt signs with its own clock: keep < 30 s
        assert [p["contracts"] for p in await client.fetch_positions([SWAP])] == [1]


async def test_fills_and_open_and_closed_orders_are_listed(okx: Any) -> None:
    await sell(okx, 1, "f1")
    await okx.create_order(SWAP, "limit", "buy", 1, 50_000, {"clOrdId": "f2"})
    trades = await okx.fetch_my_trades(SWAP)
    assert [(t["side"], t["amount"], t["price"]) for t in trades] == [("sell", 1, 59_994)]
    assert [o["clientOrderId"] for o in await okx.fetch_open_orders(SWAP)] == ["f2"]
    closed = await okx.fetch_closed_orders(SWAP)
    assert [o["clientOrderId"] for o in closed] == ["f1"]


async def test_canceled_unfilled_orders_leave_orders_history_after_two_hours() -> None:
    clock = ShiftedClock()
    async with OkxEmulator(clock=clock) as emulator, ccxt_client(emulator) as client:
        emulator.set_balance("USDT", Decimal(10_000))
        await client.load_markets()
        await client.create_order(SWAP, "limit", "buy", 1, 50_000, {"clOrdId": "old1"})
        await client.cancel_order(None, SWAP, {"clientOrderId": "old1"})
        listed = await client.privateGetTradeOrdersHistory({"instType": "SWAP"})
        assert [o["state"] for o in listed["data"]] == ["canceled"]
        clock.offset = 7201.0
        client.options["timeDifference"] = -7_201_000  # ccxt signs with the server's time
        assert (await client.privateGetTradeOrdersHistory({"instType": "SWAP"}))["data"] == []
        order = await client.fetch_order(None, SWAP, {"clientOrderId": "old1"})
        assert (order["status"], order["filled"]) == ("canceled", 0)


async def test_resting_limit_fills_when_the_price_crosses_it(
    okx_emulator: OkxEmulator, okx: Any
) -> None:
    await okx.create_order(SWAP, "limit", "sell", 1, 61_000, {"clOrdId": "lim1"})
    assert (await okx.fetch_order(None, SWAP, {"clientOrderId": "lim1"}))["status"] == "open"
    okx_emulator.set_price("BTC", Decimal(61_500))
    order = await okx.fetch_order(None, SWAP, {"clientOrderId": "lim1"})
    assert (order["status"], order["average"]) == ("closed", 61_000)


async def test_funding_history_comes_from_bills_of_type_8(
    okx_emulator: OkxEmulator, okx: Any
) -> None:
    await sell(okx, 10, "fund1")
    okx_emulator.set_funding_rate(SWAP_ID, Decimal("0.0001"))
    okx_emulator.settle_funding()
    history = await okx.fetch_funding_history(SWAP)
    assert [h["amount"] for h in history] == [pytest.approx(0.6)]  # 0.1 BTC x 60 000 x 1 bp
    assert okx_emulator.request_queries[-1]["type"] == "8"
    assert okx_emulator.request_log[-1] == ("GET", "/api/v5/account/bills-archive")
    rate = await okx.fetch_funding_rate(SWAP)
    assert rate["fundingRate"] == 0.0001
    assert len(await okx.fetch_funding_rate_history(SWAP)) == 1


# ---------------------------------------------------------------- market data


async def test_market_data_tickers_books_candles_mark_and_time(
    okx_emulator: OkxEmulator, okx: Any
) -> None:
    ticker = await okx.fetch_ticker(SWAP)
    assert (ticker["bid"], ticker["ask"], ticker["last"]) == (59_994, 60_006, 60_000)
    tickers = await okx.fetch_tickers([SWAP, "ETH/USDT:USDT"])
    assert sorted(tickers) == ["BTC/USDT:USDT", "ETH/USDT:USDT"]
    book = await okx.fetch_order_book(SWAP, 5)
    assert book["bids"][0][:2] == [59_994, 500]  # 5 BTC a level = 500 contracts
    assert len(book["asks"]) == 5
    candles = await okx.fetch_ohlcv(SWAP, "1h", limit=3)
    assert len(candles) == 3
    assert candles[-1][4] == 60_000
    assert (await okx.fetch_mark_price(SWAP, {"instType": "SWAP"}))["markPrice"] == 60_000
    assert abs(await okx.fetch_time() - time.time() * 1000) < 5000
    assert okx_emulator.unknown_requests == []


async def test_fetch_tickers_of_spot_and_swap_asks_only_the_first_symbols_type(
    okx_emulator: OkxEmulator, okx: Any
) -> None:
    tickers = await okx.fetch_tickers([SPOT, SWAP])
    assert sorted(tickers) == [SPOT]  # the perpetual is silently missing
    assert okx_emulator.request_queries[-1] == {"instType": "SPOT"}
    assert okx.has.get("fetchBidsAsks") is None


async def test_fetch_funding_rates_asks_every_perpetual_with_inst_id_any(
    okx_emulator: OkxEmulator, okx: Any
) -> None:
    rates = await okx.fetch_funding_rates([SWAP, "ETH/USDT:USDT"])
    assert sorted(rates) == [SWAP, "ETH/USDT:USDT"]
    assert okx_emulator.request_queries[-1] == {"instId": "ANY"}


async def test_funding_history_with_the_gateways_linear_sub_type_is_refused(okx: Any) -> None:
    # ccxt forwards the unified subType into the query, where OKX's bills take a number.
    with pytest.raises(ccxt.BadRequest, match="Parameter subType error"):
        await okx.fetch_funding_history(None, None, None, {"type": "swap", "subType": "linear"})


# ---------------------------------------------------------------- limits and faults


async def test_order_rate_limit_is_per_instrument_and_raises_rate_limit_exceeded(
    okx_emulator: OkxEmulator, okx: Any
) -> None:
    okx_emulator.set_rate_limit("/api/v5/trade/batch-orders", 2, 60.0)
    await sell(okx, 1, "rl1")
    await sell(okx, 1, "rl2")
    with pytest.raises(ccxt.RateLimitExceeded, match="50011"):
        await sell(okx, 1, "rl3")
    await okx.create_order("ETH/USDT:USDT", "market", "sell", 1, None, {"clOrdId": "rl4"})
    assert [e.outcome for e in okx_emulator.order_log] == [
        "accepted",
        "accepted",
        "rejected:50011",
        "accepted",
    ]


async def test_default_limit_of_balance_is_10_per_2_seconds() -> None:
    start = time.time()
    async with OkxEmulator(clock=lambda: start) as emulator, ccxt_client(emulator) as client:
        await client.load_markets()
        for _ in range(10):
            await client.fetch_balance()
        with pytest.raises(ccxt.RateLimitExceeded):
            await client.fetch_balance()


async def test_rate_limit_fault_is_http_429_yet_ccxt_reads_the_body_first(
    okx_emulator: OkxEmulator, okx: Any
) -> None:
    okx_emulator.inject(Fault.RATE_LIMIT, path="/api/v5/account/positions")
    with pytest.raises(ccxt.RateLimitExceeded):  # not httpExceptions' 429 ExchangeNotAvailable
        await okx.fetch_positions()


async def test_server_error_and_timeout_faults(okx_emulator: OkxEmulator, okx: Any) -> None:
    okx_emulator.inject(Fault.SERVER_ERROR, path="/api/v5/account/balance")
    with pytest.raises(ccxt.ExchangeNotAvailable):
        await okx.fetch_balance()
    okx_emulator.inject(Fault.SERVER_ERROR, path="/api/v5/account/balance", code="50013")
    with pytest.raises(ccxt.ExchangeNotAvailable, match="50013"):
        await okx.fetch_balance()
    okx_emulator.inject(Fault.TIMEOUT, delay_s=0.05, path="/api/v5/trade/batch-orders")
    with pytest.raises(ccxt.RequestTimeout, match="50004"):
        await sell(okx, 1, "to1")
    assert okx_emulator.orders() == []


async def test_timeout_with_accept_places_the_order_the_client_gave_up_on(
    okx_emulator: OkxEmulator,
) -> None:
    async with ccxt_client(okx_emulator, timeout=300) as client:
        await client.load_markets()
        okx_emulator.inject(Fault.TIMEOUT, accept=True, delay_s=1.0)
        with pytest.raises(ccxt.RequestTimeout):
            await client.create_order(SWAP, "market", "sell", 1, None, {"clOrdId": "acc1"})
    assert okx_emulator.position(SWAP_ID) == -1


async def test_drop_after_accept_raises_network_error_yet_lookup_finds_the_order(
    okx_emulator: OkxEmulator, okx: Any
) -> None:
    okx_emulator.inject(Fault.DROP_AFTER_ACCEPT)
    with pytest.raises(ccxt.NetworkError):
        await sell(okx, 1, "drop1")
    order = await okx.fetch_order(None, SWAP, {"clientOrderId": "drop1"})
    assert order["status"] == "closed"


async def test_partial_fill_of_a_market_order_is_canceled_with_its_fills(
    okx_emulator: OkxEmulator, okx: Any
) -> None:
    okx_emulator.inject(Fault.PARTIAL_FILL, fraction=Decimal("0.5"))
    await sell(okx, 4, "part1")
    order = await okx.fetch_order(None, SWAP, {"clientOrderId": "part1"})
    assert (order["status"], order["filled"], order["amount"]) == ("canceled", 2, 4)
    assert okx_emulator.position(SWAP_ID) == -2


async def test_partial_fill_of_a_limit_order_leaves_the_rest_open(
    okx_emulator: OkxEmulator, okx: Any
) -> None:
    okx_emulator.inject(Fault.PARTIAL_FILL, fraction=Decimal("0.5"))
    await okx.create_order(SWAP, "limit", "sell", 4, 59_000, {"clOrdId": "part2"})
    order = await okx.fetch_order(None, SWAP, {"clientOrderId": "part2"})
    assert (order["status"], order["filled"]) == ("open", 2)
    assert order["info"]["state"] == "partially_filled"


async def test_reject_fault_answers_scode_inside_data(okx_emulator: OkxEmulator, okx: Any) -> None:
    okx_emulator.inject(Fault.REJECT)
    with pytest.raises(ccxt.InsufficientFunds, match='"sCode":"51008"'):
        await sell(okx, 1, "rej1")
    okx_emulator.inject(Fault.REJECT, code="51022", msg="Instrument suspended.")
    with pytest.raises(ccxt.ContractUnavailable):
        await sell(okx, 1, "rej2")
    assert okx_emulator.orders() == []


async def test_batch_with_one_bad_order_is_partly_placed_with_code_2(
    okx_emulator: OkxEmulator, okx: Any
) -> None:
    good = {"instId": SWAP_ID, "tdMode": "cross", "side": "sell", "ordType": "market", "sz": "1"}
    answer = await okx.privatePostTradeBatchOrders(
        [{**good, "clOrdId": "b1"}, {**good, "clOrdId": "b2", "sz": "0.001"}]
    )
    assert answer["code"] == "2"
    assert [row["sCode"] for row in answer["data"]] == ["0", "51121"]
    assert [e.outcome for e in okx_emulator.order_log] == ["accepted", "rejected"]


async def test_unknown_path_answers_404_and_is_logged(okx_emulator: OkxEmulator) -> None:
    status, answer = await _raw(okx_emulator, "GET", "/api/v5/rubik/stat/contracts")
    assert status == 404
    assert answer["code"] == "50000"
    assert okx_emulator.unknown_requests == [("GET", "/api/v5/rubik/stat/contracts")]


async def test_post_with_an_empty_or_broken_body_answers_50000_or_50002(
    okx_emulator: OkxEmulator,
) -> None:
    path = "/api/v5/trade/order"
    status, answer = await _raw(okx_emulator, "POST", path)
    assert (status, answer["code"]) == (400, "50000")
    headers = _headers(okx_emulator.credentials, "POST", path, "{")
    status, answer = await _raw(okx_emulator, "POST", path, "{", **headers)
    assert (status, answer["code"]) == (400, "50002")


# ---------------------------------------------------------------- own process, control API


async def test_control_api_steers_and_inspects_the_emulator_over_http() -> None:
    emulator = RecordingEmulator(demo=True)
    emulator.add_routes(control_routes(emulator))
    async with emulator, aiohttp.ClientSession() as session:

        async def call(method: str, path: str, body: Any = None) -> tuple[int, Any]:
            url = f"{emulator.url}/_control/{path}"
            async with session.request(method, url, json=body) as answer:
                return answer.status, await answer.json()

        assert await call("POST", "price", {"base": "BTC", "price": "61000"}) == (200, {"ok": True})
        await call("POST", "balance", {"ccy": "USDT", "amount": "5000"})
        await call("POST", "account", {"acctLv": "2", "posMode": "long_short_mode"})
        await call("POST", "fault", {"fault": "reject", "count": 2})
        await call("POST", "clear_faults")
        assert (await call("GET", "balance?ccy=USDT"))[1] == {"ccy": "USDT", "amount": "5000"}
        config = (await call("GET", "ccxt_config"))[1]
        async with ccxt_client(emulator, sandbox=True, **config) as client:
            await client.load_markets()
            await client.create_order(SWAP, "market", "sell", 1, None, {"hedged": True})
        assert (await call("GET", f"position?instId={SWAP_ID}"))[1]["position"] == "-1"
        assert [o["pos_side"] for o in (await call("GET", "orders"))[1]["orders"]] == ["short"]
        assert (await call("GET", "order_log"))[1]["entries"][0]["outcome"] == "accepted"
        paths = [r["path"] for r in (await call("GET", "requests"))[1]["requests"]]
        assert "/api/v5/trade/batch-orders" in paths
        assert (await call("POST", "account", {"posMode": "hedge"}))[0] == 400
        assert (await call("POST", "fault", {"fault": "nope"}))[0] == 400


def test_module_runs_the_emulator_in_its_own_process() -> None:
    command = [
        sys.executable,
        "-m",
        "tests.support.emulators.okx",
        "--port",
        "0",
        "--markets",
        "50",
    ]
    root = Path(__file__).resolve().parents[2]
    process = subprocess.Popen(command, cwd=root, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        query = f"{url}/api/v5/public/instruments?instType=SWAP"
        with urllib.request.urlopen(query, timeout=30) as answer:  # noqa: S310 - loopback
            assert len(json.loads(answer.read())["data"]) == 50
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{url}/api/v5/public/instruments?instType=linear", timeout=30)  # noqa: S310
        assert json.loads(refused.value.read())["code"] == "51000"
        refused.value.close()
    finally:
        process.terminate()
        process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()
    assert process.returncode == 0


async def test_leverage_info_answers_up_to_20_instruments_a_request() -> None:
    async with OkxEmulator(markets=22) as emulator, ccxt_client(emulator) as client:
        await client.load_markets()
        ids = sorted(m["id"] for m in client.markets.values() if m["swap"])
        emulator.set_leverage(ids[0], 3, "isolated")
        answer = await client.privateGetAccountLeverageInfo(
            {"instId": ",".join(ids[:20]), "mgnMode": "isolated"}
        )
        rows = {row["instId"]: row for row in answer["data"]}
        assert len(rows) == 20
        assert (rows[ids[0]]["lever"], rows[ids[0]]["posSide"]) == ("3", "net")
        assert rows[ids[1]]["lever"] == "10"  # the default
        with pytest.raises(ccxt.BadRequest, match=r'"code":"51000".*Parameter instId error'):
            await client.privateGetAccountLeverageInfo(
                {"instId": ",".join(ids[:21]), "mgnMode": "isolated"}
            )
