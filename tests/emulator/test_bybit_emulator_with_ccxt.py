"""The real ccxt bybit client against the loopback Bybit v5 emulator (unified account).

Each test drives unmodified ``ccxt.async_support.bybit`` and records which ccxt
exception class each emulated Bybit error surfaces as, and which parameters ccxt
needs for what the daemon does (look an order up by client id, list positions).
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from decimal import Decimal
from typing import Any

import aiohttp
import ccxt.async_support as ccxt
import pytest

from tests.support.emulators.bybit import BybitEmulator, Fault
from tests.support.emulators.bybit._bybit_http import IpLimiter
from tests.support.emulators.bybit.bybit_emulator import ccxt_client as _ccxt_client

PERP = "BTC/USDT:USDT"
SPOT = "BTC/USDT"
DATED = "BTC/USDT:USDT-270326"


def ccxt_client(emulator: BybitEmulator, **extra: Any) -> Any:
    """Like the conftest ``bybit`` fixture: ccxt's limiter on, at 1 ms per cost unit."""
    return _ccxt_client(emulator, **{"rateLimit": 1, **extra})


def fund(emulator: BybitEmulator) -> None:
    emulator.set_balance("USDT", Decimal(10_000))
    emulator.set_balance("BTC", Decimal(1))


class OffsetClock:
    """Wall-clock epoch seconds shifted by ``offset`` (the venue's clock runs ahead)."""

    def __init__(self, offset: float) -> None:
        self.offset = offset

    def __call__(self) -> float:
        return time.time() + self.offset


# ---------------------------------------------------------------- markets


async def test_load_markets_parses_spot_perp_and_dated_future_categories(bybit: Any) -> None:
    perp, spot, dated = bybit.market(PERP), bybit.market(SPOT), bybit.market(DATED)
    assert (perp["swap"], perp["linear"], perp["settle"], perp["id"]) == (
        True,
        True,
        "USDT",
        "BTCUSDT",
    )
    assert perp["contractSize"] == 1
    assert perp["precision"] == {"amount": 0.001, "price": 0.1}
    assert perp["limits"]["amount"]["min"] == 0.001
    assert perp["limits"]["cost"]["min"] == 5
    assert perp["limits"]["leverage"]["max"] == 100
    assert spot["spot"]
    assert spot["precision"]["amount"] == 0.000001
    assert spot["limits"]["cost"]["min"] == 1
    assert dated["future"]
    assert dated["id"] == "BTCUSDT-26MAR27"
    assert dated["expiry"] == 1806048000000
    assert bybit.market("ETH/USDT:USDT")["precision"]["amount"] == 0.01


async def test_load_markets_asks_currencies_then_instruments_per_category(
    bybit_emulator: BybitEmulator, bybit: Any
) -> None:
    assert sorted(bybit_emulator.request_log) == [
        ("GET", "/v5/asset/coin/query-info"),
        ("GET", "/v5/market/instruments-info"),
        ("GET", "/v5/market/instruments-info"),
        ("GET", "/v5/market/instruments-info"),
    ]
    assert bybit.currencies["BTC"]["id"] == "BTC"


async def test_linear_instruments_are_paged_and_ccxt_walks_the_cursor(
    bybit_emulator: BybitEmulator,
) -> None:
    bybit_emulator.set_instruments_page_cap(1)
    async with ccxt_client(bybit_emulator) as client:
        await client.load_markets()
        assert {PERP, DATED, "ETH/USDT:USDT"} <= set(client.symbols)
    assert bybit_emulator.requests_to("/v5/market/instruments-info") == 5


async def test_default_ccxt_market_types_get_empty_inverse_and_option_lists(
    bybit_emulator: BybitEmulator,
) -> None:
    async with ccxt_client(bybit_emulator, options={"fetchMarkets": {}}) as client:
        await client.load_markets()
        assert len(client.symbols) == 5
    assert bybit_emulator.requests_to("/v5/market/instruments-info") == 11  # 1+2+2+6
    assert not bybit_emulator.unknown_requests


async def test_a_real_sized_market_list_loads() -> None:
    async with BybitEmulator(markets=600) as emu, ccxt_client(emu) as client:
        markets = await client.load_markets()
    spot = sum(1 for m in markets.values() if m["spot"])
    linear = sum(1 for m in markets.values() if m["linear"])
    assert 590 <= spot <= 610
    assert 590 <= linear <= 610


# ---------------------------------------------------------------- signing


async def test_wrong_secret_is_refused_with_authentication_error(
    bybit_emulator: BybitEmulator,
) -> None:
    async with ccxt_client(bybit_emulator, secret="wrong") as client:
        with pytest.raises(ccxt.AuthenticationError, match="10004"):
            await client.fetch_balance()


async def test_unknown_key_is_refused_with_authentication_error(
    bybit_emulator: BybitEmulator,
) -> None:
    async with ccxt_client(bybit_emulator, apiKey="nobody") as client:
        with pytest.raises(ccxt.AuthenticationError, match="10003"):
            await client.fetch_balance({"type": "unified"})


async def test_stale_timestamp_fails_even_load_markets_with_invalid_nonce_a_network_error() -> None:
    async with BybitEmulator(clock=OffsetClock(30)) as emu, ccxt_client(emu) as client:
        # With keys, load_markets asks the signed coin/query-info: the skew fails it.
        with pytest.raises(ccxt.InvalidNonce, match="10002") as caught:
            await client.load_markets()
        assert isinstance(caught.value, ccxt.NetworkError)
        client.options["recvWindow"] = 60_000
        await client.load_markets()
        assert (await client.fetch_balance())["info"]["retCode"] == 0


async def test_without_fetch_currencies_load_markets_is_public_only() -> None:
    async with (
        BybitEmulator(clock=OffsetClock(30)) as emu,
        ccxt_client(emu, has={"fetchCurrencies": False}) as client,
    ):
        await client.load_markets()
        assert emu.requests_to("/v5/asset/coin/query-info") == 0


async def test_a_timestamp_from_the_future_is_refused_too() -> None:
    async with BybitEmulator(clock=OffsetClock(-5)) as emu, ccxt_client(emu) as client:
        with pytest.raises(ccxt.InvalidNonce):
            await client.fetch_balance()


async def test_request_without_bapi_headers_is_refused_as_sign_params_error(
    bybit_emulator: BybitEmulator,
) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{bybit_emulator.url}/v5/account/wallet-balance?accountType=UNIFIED") as r,
    ):
        body = await r.json()
    assert r.status == 200
    assert body["retCode"] == 10001
    assert "openapi sign params error!" in body["retMsg"]


async def test_signature_covers_the_post_body_as_sent(bybit_emulator: BybitEmulator) -> None:
    fund(bybit_emulator)
    async with ccxt_client(bybit_emulator) as client:
        await client.set_leverage(5, PERP)
    async with aiohttp.ClientSession() as session:
        headers = {
            "X-BAPI-API-KEY": "k",
            "X-BAPI-TIMESTAMP": str(int(time.time() * 1000)),
            "X-BAPI-RECV-WINDOW": "5000",
            "X-BAPI-SIGN": "0" * 64,
        }
        body = '{"category":"linear","symbol":"BTCUSDT","buyLeverage":"6","sellLeverage":"6"}'
        url = f"{bybit_emulator.url}/v5/position/set-leverage"
        async with session.post(url, data=body, headers=headers) as r:
            answer = await r.json()
    assert answer["retCode"] == 10004
    assert body in answer["retMsg"]


# ---------------------------------------------------------------- account


async def test_fetch_balance_reads_the_unified_wallet(
    bybit_emulator: BybitEmulator, bybit: Any
) -> None:
    fund(bybit_emulator)
    balance = await bybit.fetch_balance()
    assert balance["USDT"]["total"] == 10_000
    assert balance["BTC"]["free"] == 1
    wallet = balance["info"]["result"]["list"][0]
    assert wallet["accountType"] == "UNIFIED"
    assert Decimal(wallet["totalEquity"]) == Decimal(70_000)
    assert bybit_emulator.requests_to("/v5/account/wallet-balance") == 1
    assert bybit_emulator.requests_to("/v5/user/query-api") == 1
    assert bybit_emulator.requests_to("/v5/account/info") == 1


async def test_wallet_shows_position_margin_as_used_and_unrealised_pnl(
    bybit_emulator: BybitEmulator, bybit: Any
) -> None:
    fund(bybit_emulator)
    await bybit.create_order(PERP, "market", "sell", 0.1, None, {"clientOrderId": "s-1"})
    bybit_emulator.set_price("BTC", Decimal(59_000))
    balance = await bybit.fetch_balance()
    usdt = next(c for c in balance["info"]["result"]["list"][0]["coin"] if c["coin"] == "USDT")
    assert Decimal(usdt["unrealisedPnl"]) == Decimal("99.4")  # entry at the bid, 59994
    assert Decimal(usdt["totalPositionIM"]) == Decimal("599.94")  # 10x
    assert balance["USDT"]["used"] == pytest.approx(599.94)


# ---------------------------------------------------------------- orders


async def test_create_order_sends_client_id_as_order_link_id_and_answers_ids_only(
    bybit_emulator: BybitEmulator, bybit: Any
) -> None:
    fund(bybit_emulator)
    order = await bybit.create_order(PERP, "market", "sell", 0.01, None, {"clientOrderId": "h-1"})
    assert order["clientOrderId"] == "h-1"
    assert order["id"]
    assert order["status"] is None
    assert order["filled"] is None
    stored = bybit_emulator.order("h-1")
    assert stored is not None
    assert stored.status == "Filled"
    assert bybit_emulator.position("BTCUSDT") == Decimal("-0.01")
    assert bybit_emulator.order_log[-1].order_link_id == "h-1"


async def test_duplicate_order_link_id_raises_invalid_order(
    bybit_emulator: BybitEmulator, bybit: Any
) -> None:
    fund(bybit_emulator)
    await bybit.create_order(PERP, "market", "sell", 0.01, None, {"clientOrderId": "dup"})
    with pytest.raises(ccxt.InvalidOrder, match="110072"):
        await bybit.create_order(PERP, "market", "sell", 0.01, None, {"clientOrderId": "dup"})
    assert [e.outcome for e in bybit_emulator.order_log] == ["accepted", "rejected:110072"]


async def test_order_found_by_client_id_open_then_recently_closed_via_fetch_open_orders(
    bybit_emulator: BybitEmulator, bybit: Any
) -> None:
    fund(bybit_emulator)
    await bybit.create_order(PERP, "limit", "buy", 0.01, 59_000, {"clientOrderId": "rest"})
    found = await bybit.fetch_open_orders(PERP, None, None, {"orderLinkId": "rest"})
    assert [(o["clientOrderId"], o["status"]) for o in found] == [("rest", "open")]
    await bybit.create_order(PERP, "market", "sell", 0.01, None, {"clientOrderId": "gone"})
    closed = await bybit.fetch_open_orders(PERP, None, None, {"orderLinkId": "gone"})
    assert [(o["clientOrderId"], o["status"], o["filled"]) for o in closed] == [
        ("gone", "closed", 0.01)
    ]
    listed = await bybit.fetch_open_orders(PERP)
    assert [o["clientOrderId"] for o in listed] == ["rest"]


async def test_after_a_venue_restart_only_the_history_finds_a_closed_order(
    bybit_emulator: BybitEmulator, bybit: Any
) -> None:
    fund(bybit_emulator)
    await bybit.create_order(PERP, "market", "sell", 0.01, None, {"clientOrderId": "old"})
    bybit_emulator.restart_order_cache()
    assert await bybit.fetch_open_orders(PERP, None, None, {"orderLinkId": "old"}) == []
    found = await bybit.fetch_canceled_and_closed_orders(PERP, None, None, {"orderLinkId": "old"})
    assert [(o["clientOrderId"], o["status"]) for o in found] == [("old", "closed")]


async def test_fetch_order_needs_acknowledged_and_the_venue_id_not_the_client_id(
    bybit_emulator: BybitEmulator, bybit: Any
) -> None:
    fund(bybit_emulator)
    created = await bybit.create_order(PERP, "market", "sell", 0.01, None, {"clientOrderId": "f"})
    with pytest.raises(ccxt.ArgumentsRequired, match="acknowledged"):
        await bybit.fetch_order(created["id"], PERP)
    order = await bybit.fetch_order(created["id"], PERP, {"acknowledged": True})
    assert (order["clientOrderId"], order["status"]) == ("f", "closed")
    # Without an id ccxt sends orderId=None, which Bybit looks up first: not found.
    with pytest.raises(ccxt.OrderNotFound):
        await bybit.fetch_order(None, PERP, {"orderLinkId": "f", "acknowledged": True})
    with pytest.raises(ccxt.OrderNotFound):
        await bybit.fetch_open_order(None, PERP, {"orderLinkId": "f"})


async def test_fetch_closed_orders_asks_filled_only_so_a_partly_filled_ioc_is_missing(
    bybit_emulator: BybitEmulator, bybit: Any
) -> None:
    fund(bybit_emulator)
    bybit_emulator.inject(Fault.PARTIAL_FILL, fraction="0.5")
    await bybit.create_order(PERP, "market", "sell", 0.02, None, {"clientOrderId": "half"})
    assert await bybit.fetch_closed_orders(PERP, None, None, {"orderLinkId": "half"}) == []
    both = await bybit.fetch_canceled_and_closed_orders(PERP, None, None, {"orderLinkId": "half"})
    assert [(o["status"], o["filled"], o["remaining"]) for o in both] == [("canceled", 0.01, 0.0)]


async def test_cancel_by_client_id_then_again_raises_order_not_found(
    bybit_emulator: BybitEmulator, bybit: Any
) -> None:
    fund(bybit_emulator)
    await bybit.create_order(PERP, "limit", "buy", 0.01, 59_000, {"clientOrderId": "c"})
    await bybit.create_order(SPOT, "limit", "buy", 0.01, 59_000, {"clientOrderId": "c"})
    assert bybit_emulator.balance("USDT") == 10_000
    await bybit.cancel_order(None, PERP, {"orderLinkId": "c"})
    with pytest.raises(ccxt.OrderNotFound, match="110001"):
        await bybit.cancel_order(None, PERP, {"orderLinkId": "c"})
    await bybit.cancel_order(None, SPOT, {"orderLinkId": "c"})
    with pytest.raises(ccxt.OrderNotFound, match="170213"):
        await bybit.cancel_order(None, SPOT, {"orderLinkId": "c"})
    linear, spot = bybit_emulator.order("c"), bybit_emulator.order("c", "spot")
    assert linear is not None
    assert spot is not None
    assert (linear.status, spot.status) == ("Cancelled", "Cancelled")


async def test_unknown_symbol_on_market_data_is_bad_symbol(bybit: Any) -> None:
    request = {"category": "linear", "symbol": "NOPEUSDT"}
    with pytest.raises(ccxt.BadSymbol):
        await bybit.publicGetV5MarketTickers(request)


async def test_reduce_only_without_a_position_or_the_wrong_way_raises_invalid_order(
    bybit_emulator: BybitEmulator, bybit: Any
) -> None:
    fund(bybit_emulator)
    with pytest.raises(ccxt.InvalidOrder, match="110017"):
        await bybit.create_order(PERP, "market", "buy", 0.01, None, {"reduceOnly": True})
    await bybit.create_order(PERP, "market", "sell", 0.01, None, {"clientOrderId": "short"})
    with pytest.raises(ccxt.InvalidOrder, match="Reduce-only rule not satisfied"):
        await bybit.create_order(PERP, "market", "sell", 0.01, None, {"reduceOnly": True})
    assert bybit_emulator.position("BTCUSDT") == Decimal("-0.01")


async def test_reduce_only_larger_than_the_position_is_trimmed_to_it(
    bybit_emulator: BybitEmulator, bybit: Any
) -> None:
    fund(bybit_emulator)
    await bybit.create_order(PERP, "market", "sell", 0.01, None, {"clientOrderId": "s"})
    await bybit.create_order(
        PERP, "market", "buy", 0.05, None, {"clientOrderId": "r", "reduceOnly": True}
    )
    order = bybit_emulator.order("r")
    assert order is not None
    assert (order.qty, order.status) == (Decimal("0.01"), "Filled")
    assert bybit_emulator.position("BTCUSDT") == 0


async def test_margin_the_wallet_cannot_carry_raises_insufficient_funds(
    bybit_emulator: BybitEmulator, bybit: Any
) -> None:
    bybit_emulator.set_balance("USDT", Decimal(100))
    with pytest.raises(ccxt.InsufficientFunds, match="110007"):
        await bybit.create_order(PERP, "market", "sell", 0.1, None)


async def test_notional_below_the_minimum_raises_invalid_order(
    bybit_emulator: BybitEmulator, bybit: Any
) -> None:
    fund(bybit_emulator)
    bybit_emulator.set_price("ETH", Decimal(100))
    with pytest.raises(ccxt.InvalidOrder, match="110094"):
        await bybit.create_order("ETH/USDT:USDT", "market", "sell", 0.01, None)


async def test_partial_fill_leaves_a_gtc_limit_remainder_open(
    bybit_emulator: BybitEmulator, bybit: Any
) -> None:
    fund(bybit_emulator)
    bybit_emulator.inject(Fault.PARTIAL_FILL, fraction="0.25")
    await bybit.create_order(PERP, "limit", "sell", 0.04, 59_000, {"clientOrderId": "p"})
    [order] = await bybit.fetch_open_orders(PERP, None, None, {"orderLinkId": "p"})
    assert (order["status"], order["filled"], order["remaining"]) == ("open", 0.01, 0.03)
    bybit_emulator.set_price("BTC", Decimal(58_000))  # the bid is now below 59 000
    bybit_emulator.set_price("BTC", Decimal(59_100))  # the bid crosses the rest
    [order] = await bybit.fetch_open_orders(PERP, None, None, {"orderLinkId": "p"})
    assert (order["status"], order["filled"]) == ("closed", 0.04)


async def test_spot_market_buy_by_cost_charges_the_fee_in_the_base_coin(
    bybit_emulator: BybitEmulator, bybit: Any
) -> None:
    fund(bybit_emulator)
    await bybit.create_order(SPOT, "market", "buy", 0.01, 60_006, {"clientOrderId": "sb"})
    order = bybit_emulator.order("sb", "spot")
    assert order is not None
    assert order.market_unit == "quoteCoin"
    assert bybit_emulator.balance("BTC") == Decimal(1) + order.cum_qty * Decimal("0.999")
    trades = await bybit.fetch_my_trades(SPOT)
    assert trades[0]["fee"]["currency"] == "BTC"


async def test_spot_sell_beyond_the_wallet_raises_insufficient_funds(
    bybit_emulator: BybitEmulator, bybit: Any
) -> None:
    fund(bybit_emulator)
    with pytest.raises(ccxt.InsufficientFunds, match="170131"):
        await bybit.create_order(SPOT, "market", "sell", 2, None)


async def test_partly_filled_spot_ioc_is_closed_in_ccxt_with_the_fill_short(
    bybit_emulator: BybitEmulator, bybit: Any
) -> None:
    fund(bybit_emulator)
    bybit_emulator.inject(Fault.PARTIAL_FILL, fraction="0.5")
    await bybit.create_order(SPOT, "market", "sell", 0.5, None, {"clientOrderId": "pfc"})
    [order] = await bybit.fetch_open_orders(SPOT, None, None, {"orderLinkId": "pfc"})
    assert order["info"]["orderStatus"] == "PartiallyFilledCanceled"
    # ccxt has no mapping for it and infers "closed" from leavesQty 0: check filled.
    assert (order["status"], order["filled"], order["amount"]) == ("closed", 0.25, 0.5)


async def test_fetch_my_trades_lists_executions_with_fee_and_order_link_id(
    bybit_emulator: BybitEmulator, bybit: Any
) -> None:
    fund(bybit_emulator)
    await bybit.create_order(PERP, "market", "buy", 0.01, None, {"clientOrderId": "t"})
    [trade] = await bybit.fetch_my_trades(PERP)
    assert (trade["side"], trade["amount"], trade["price"]) == ("buy", 0.01, 60_006)
    assert trade["fee"]["cost"] == pytest.approx(0.330033)
    assert trade["fee"]["currency"] == "USDT"
    assert trade["info"]["orderLinkId"] == "t"
    assert trade["takerOrMaker"] == "taker"


# ---------------------------------------------------------------- settings


async def test_set_leverage_twice_raises_bad_request_110043_leverage_not_modified(
    bybit: Any,
) -> None:
    await bybit.set_leverage(5, PERP)
    with pytest.raises(ccxt.BadRequest, match="110043") as caught:
        await bybit.set_leverage(5, PERP)
    assert type(caught.value) is ccxt.BadRequest
    assert (await bybit.fetch_leverage(PERP))["longLeverage"] == 5


async def test_positions_by_settle_coin_list_only_open_ones_with_their_leverage(
    bybit_emulator: BybitEmulator, bybit: Any
) -> None:
    # A flat symbol's leverage is listed only when asked by symbol (Bybit: "if symbol=null
    # and settleCoin specified, it returns position size greater than zero").
    fund(bybit_emulator)
    await bybit.set_leverage(3, PERP)
    await bybit.set_leverage(4, "ETH/USDT:USDT")
    await bybit.create_order(PERP, "market", "sell", 0.01)
    rows = await bybit.fetch_positions(None, {"settleCoin": "USDT", "paginate": True})
    assert [(r["symbol"], r["leverage"]) for r in rows] == [(PERP, 3)]
    [flat] = await bybit.fetch_positions(["ETH/USDT:USDT"])
    assert (flat["contracts"], flat["leverage"]) == (0, 4)


async def test_fetch_margin_mode_reads_the_account_wide_mode_once(
    bybit_emulator: BybitEmulator, bybit: Any
) -> None:
    before = len(bybit_emulator.request_log)
    assert (await bybit.fetch_margin_mode(PERP))["marginMode"] == "cross"
    assert bybit_emulator.request_log[before:] == [("GET", "/v5/account/info")]
    await bybit.set_margin_mode("isolated", PERP)
    assert (await bybit.fetch_margin_mode("ETH/USDT:USDT"))["marginMode"] == "isolated"


async def test_set_margin_mode_is_account_wide(bybit_emulator: BybitEmulator, bybit: Any) -> None:
    await bybit.set_margin_mode("isolated", PERP)
    assert bybit_emulator.margin_mode == "ISOLATED_MARGIN"
    assert (await bybit.fetch_margin_mode("ETH/USDT:USDT"))["marginMode"] == "isolated"
    assert bybit_emulator.requests_to("/v5/account/set-margin-mode") == 1
    await bybit.set_margin_mode("isolated", "ETH/USDT:USDT")  # unchanged: no error


async def test_portfolio_margin_needs_equity_and_raises_exchange_error(
    bybit_emulator: BybitEmulator, bybit: Any
) -> None:
    bybit_emulator.set_balance("USDT", Decimal(10))
    with pytest.raises(ccxt.ExchangeError, match="3400045") as caught:
        await bybit.set_margin_mode("portfolio")
    assert "1000 USDC" in str(caught.value)


async def test_hedge_mode_wants_a_position_idx_and_cannot_switch_twice(
    bybit_emulator: BybitEmulator, bybit: Any
) -> None:
    fund(bybit_emulator)
    await bybit.set_position_mode(True, PERP)
    with pytest.raises(ccxt.NoChange, match="110025"):
        await bybit.set_position_mode(True, PERP)
    with pytest.raises(ccxt.BadRequest, match="position idx not match position mode"):
        await bybit.create_order(PERP, "market", "sell", 0.01, None)
    await bybit.create_order(PERP, "market", "sell", 0.01, None, {"hedged": True})
    assert bybit_emulator.position("BTCUSDT", 2) == Decimal("-0.01")
    with pytest.raises(ccxt.BadRequest, match="110024"):
        await bybit.set_position_mode(False, PERP)


async def test_add_margin_works_only_in_isolated_mode_through_the_implicit_api(
    bybit_emulator: BybitEmulator, bybit: Any
) -> None:
    fund(bybit_emulator)
    await bybit.create_order(PERP, "market", "sell", 0.01, None, {"clientOrderId": "m"})
    request = {"category": "linear", "symbol": "BTCUSDT", "margin": "10", "positionIdx": 0}
    with pytest.raises(ccxt.BadRequest, match="110015"):
        await bybit.privatePostV5PositionAddMargin(request)
    await bybit.set_margin_mode("isolated")
    answer = await bybit.privatePostV5PositionAddMargin(request)
    assert Decimal(answer["result"]["positionBalance"]) == Decimal("69.994")


# ---------------------------------------------------------------- positions


async def test_fetch_positions_one_symbol_even_flat_and_refuses_two(
    bybit_emulator: BybitEmulator, bybit: Any
) -> None:
    fund(bybit_emulator)
    [flat] = await bybit.fetch_positions([PERP])
    assert flat["contracts"] == 0
    with pytest.raises(ccxt.ArgumentsRequired):
        await bybit.fetch_positions([PERP, "ETH/USDT:USDT"])


async def test_fetch_positions_without_symbols_lists_open_ones_by_settle_coin(
    bybit_emulator: BybitEmulator, bybit: Any
) -> None:
    fund(bybit_emulator)
    # USDT alone backs the short (the BTC held would, else: no liquidation price above)
    bybit_emulator.set_collateral("BTC", False)
    await bybit.create_order(PERP, "market", "sell", 0.01, None, {"clientOrderId": "a"})
    await bybit.create_order("ETH/USDT:USDT", "market", "buy", 0.1, None, {"clientOrderId": "b"})
    positions = await bybit.fetch_positions()
    by_symbol = {p["symbol"]: (p["side"], p["contracts"]) for p in positions}
    assert by_symbol == {PERP: ("short", 0.01), "ETH/USDT:USDT": ("long", 0.1)}
    [short] = [p for p in positions if p["symbol"] == PERP]
    assert short["entryPrice"] == 59_994
    assert short["leverage"] == 10
    assert short["liquidationPrice"] > 60_000


async def test_position_view_lag_shows_the_old_position_until_it_passes(
    bybit_emulator: BybitEmulator, bybit: Any
) -> None:
    fund(bybit_emulator)
    bybit_emulator.position_view_lag_s = 30
    await bybit.create_order(PERP, "market", "sell", 0.01, None, {"clientOrderId": "lag"})
    [row] = await bybit.fetch_positions([PERP])
    assert row["contracts"] == 0
    assert bybit_emulator.position("BTCUSDT") == Decimal("-0.01")
    bybit_emulator.position_view_lag_s = 0
    [row] = await bybit.fetch_positions([PERP])
    assert row["contracts"] == 0.01


async def test_wallet_view_lags_with_the_positions(
    bybit_emulator: BybitEmulator, bybit: Any
) -> None:
    fund(bybit_emulator)
    bybit_emulator.position_view_lag_s = 30
    await bybit.create_order(PERP, "market", "sell", 0.01, None, {"clientOrderId": "w"})
    balance = await bybit.fetch_balance()
    assert balance["USDT"]["total"] == 10_000  # the fee is not in the view yet
    assert bybit_emulator.balance("USDT") < 10_000


# ---------------------------------------------------------------- market data, funding


async def test_tickers_and_funding_rate_report_mark_index_and_rate(
    bybit_emulator: BybitEmulator, bybit: Any
) -> None:
    bybit_emulator.set_price("BTC", Decimal(61_000))
    bybit_emulator.set_funding_rate("BTC", Decimal("0.0003"))
    tickers = await bybit.fetch_tickers([PERP, "ETH/USDT:USDT"])
    assert tickers[PERP]["last"] == 61_000
    assert tickers[PERP]["markPrice"] == 61_000
    rate = await bybit.fetch_funding_rate(PERP)
    assert (rate["fundingRate"], rate["markPrice"], rate["interval"]) == (0.0003, 61_000, "8h")
    assert rate["fundingTimestamp"] > time.time() * 1000
    spot = await bybit.fetch_ticker(SPOT)
    assert spot["bid"] < spot["ask"]


async def test_order_book_and_ohlcv_are_served(bybit: Any) -> None:
    book = await bybit.fetch_order_book(PERP, 5)
    assert len(book["bids"]) == 5
    assert book["bids"][0][0] == 59_994
    assert book["asks"][0][0] == 60_006
    candles = await bybit.fetch_ohlcv(PERP, "1m", limit=3)
    assert len(candles) == 3
    assert candles[-1][4] == 60_000


async def test_settled_funding_shows_in_funding_history_and_rate_history(
    bybit_emulator: BybitEmulator, bybit: Any
) -> None:
    fund(bybit_emulator)
    await bybit.create_order(PERP, "market", "sell", 0.1, None, {"clientOrderId": "f"})
    before = bybit_emulator.balance("USDT")
    bybit_emulator.settle_funding()
    assert bybit_emulator.balance("USDT") - before == Decimal("0.6")  # a short receives
    [payment] = await bybit.fetch_funding_history(PERP)
    assert payment["amount"] == -0.6  # Bybit's execFee: what the account paid
    assert payment["rate"] == 0.0001
    [rate] = await bybit.fetch_funding_rate_history(PERP)
    assert rate["fundingRate"] == 0.0001
    ledger = await bybit.fetch_ledger("USDT")
    assert {e["type"] for e in ledger} >= {"trade"}


async def test_mark_price_candles_open_interest_and_fees_are_served(
    bybit_emulator: BybitEmulator, bybit: Any
) -> None:
    bybit_emulator.set_price("BTC", Decimal(62_000))
    candles = await bybit.fetch_ohlcv(PERP, "1h", limit=2, params={"price": "mark"})
    assert candles[-1][4] == 62_000
    interest = await bybit.fetch_open_interest(PERP)
    assert interest["openInterestAmount"] == 50_000
    fee = await bybit.fetch_trading_fee(PERP)
    assert (fee["maker"], fee["taker"]) == (0.0002, 0.00055)


async def test_transaction_log_has_trades_and_funding_settlements(
    bybit_emulator: BybitEmulator, bybit: Any
) -> None:
    fund(bybit_emulator)
    await bybit.create_order(PERP, "market", "buy", 0.1, None, {"clientOrderId": "l"})
    bybit_emulator.settle_funding()
    answer = await bybit.privateGetV5AccountTransactionLog({"accountType": "UNIFIED"})
    rows = answer["result"]["list"]
    assert [r["type"] for r in rows] == ["SETTLEMENT", "TRADE"]
    assert Decimal(rows[0]["funding"]) == Decimal("-0.6")  # a long pays, at the mark
    assert rows[1]["orderLinkId"] == "l"


async def test_cancel_all_cancels_the_symbols_open_orders(
    bybit_emulator: BybitEmulator, bybit: Any
) -> None:
    fund(bybit_emulator)
    for cid in ("a", "b"):
        await bybit.create_order(PERP, "limit", "buy", 0.01, 59_000, {"clientOrderId": cid})
    await bybit.cancel_all_orders(PERP)
    assert await bybit.fetch_open_orders(PERP) == []
    assert {o.status for o in bybit_emulator.orders()} == {"Cancelled"}


# ---------------------------------------------------------------- limits and faults


async def test_per_uid_limit_answers_10006_with_limit_headers_as_rate_limit_exceeded(
    bybit_emulator: BybitEmulator, bybit: Any
) -> None:
    bybit_emulator.uid_limiter.limits["/v5/order/realtime"] = 2
    bybit.enableRateLimit = False
    await bybit.fetch_open_orders(PERP)
    await bybit.fetch_open_orders(PERP)
    with pytest.raises(ccxt.RateLimitExceeded, match="10006"):
        await bybit.fetch_open_orders(PERP)
    assert bybit.last_response_headers["X-Bapi-Limit-Status"] == "0"
    assert bybit.last_response_headers["X-Bapi-Limit"] == "2"


async def test_injected_rate_limit_fault_raises_rate_limit_exceeded(
    bybit_emulator: BybitEmulator, bybit: Any
) -> None:
    bybit_emulator.inject(Fault.RATE_LIMIT, path="/v5/order/create")
    with pytest.raises(ccxt.RateLimitExceeded):
        await bybit.create_order(PERP, "market", "sell", 0.01, None)
    assert bybit_emulator.order_log[-1].outcome == "rejected:10006"


async def test_ip_limit_breach_answers_403_which_ccxt_maps_to_rate_limit_exceeded(
    bybit_emulator: BybitEmulator, bybit: Any
) -> None:
    bybit_emulator.ip_limiter = IpLimiter(limit=3, window_s=5, ban_s=600)
    bybit.enableRateLimit = False
    for _ in range(3):
        await bybit.fetch_time()
    with pytest.raises(ccxt.RateLimitExceeded, match="403"):
        await bybit.fetch_time()
    with pytest.raises(ccxt.RateLimitExceeded, match="access too frequent"):
        await bybit.fetch_time()  # banned: every request is refused
    bybit_emulator.ip_limiter.banned_until = 0
    assert await bybit.fetch_time() > 0
    bybit_emulator.ip_limiter = IpLimiter()  # Bybit's 600 per 5 s
    bybit_emulator.inject(Fault.IP_BAN, path="/v5/order/create")
    with pytest.raises(ccxt.RateLimitExceeded, match="403"):
        await bybit.create_order(PERP, "market", "sell", 0.01, None)
    assert bybit_emulator.order_log[-1].outcome == "rejected:http-403"


async def test_server_error_and_timeouts_surface_as_network_errors(
    bybit_emulator: BybitEmulator, bybit: Any
) -> None:
    fund(bybit_emulator)
    bybit_emulator.inject(Fault.SERVER_ERROR, status=503)
    with pytest.raises(ccxt.ExchangeNotAvailable):
        await bybit.fetch_balance()
    bybit_emulator.inject(Fault.DROP_AFTER_ACCEPT)
    with pytest.raises(ccxt.NetworkError):
        await bybit.create_order(PERP, "market", "sell", 0.01, None, {"clientOrderId": "cut"})
    assert bybit_emulator.order("cut") is not None
    bybit.timeout = 200
    bybit_emulator.inject(Fault.TIMEOUT, path="/v5/order/create", accept=True, delay_s=1)
    with pytest.raises(ccxt.RequestTimeout):
        await bybit.create_order(PERP, "market", "sell", 0.01, None, {"clientOrderId": "slow"})
    assert bybit_emulator.order("slow") is not None


async def test_system_frequency_protection_429_raises_rate_limit_exceeded(
    bybit_emulator: BybitEmulator, bybit: Any
) -> None:
    bybit_emulator.inject(Fault.SERVER_ERROR, path="/v5/market/tickers", status=429, body="")
    with pytest.raises(ccxt.RateLimitExceeded):
        await bybit.fetch_tickers([PERP])


async def test_a_lost_answer_is_resolved_by_looking_the_client_id_up(
    bybit_emulator: BybitEmulator, bybit: Any
) -> None:
    fund(bybit_emulator)
    bybit_emulator.inject(Fault.DROP_AFTER_ACCEPT)
    with pytest.raises(ccxt.NetworkError):
        await bybit.create_order(PERP, "market", "sell", 0.01, None, {"clientOrderId": "lost"})
    [order] = await bybit.fetch_open_orders(PERP, None, None, {"orderLinkId": "lost"})
    assert (order["status"], order["filled"]) == ("closed", 0.01)
    with pytest.raises(ccxt.InvalidOrder, match="110072"):  # a blind resend is refused
        await bybit.create_order(PERP, "market", "sell", 0.01, None, {"clientOrderId": "lost"})


async def test_a_request_timed_out_before_acceptance_leaves_no_order_to_find(
    bybit_emulator: BybitEmulator, bybit: Any
) -> None:
    fund(bybit_emulator)
    bybit_emulator.inject(Fault.TIMEOUT, path="/v5/order/create", delay_s=0)
    with pytest.raises(ccxt.ExchangeError, match="10016"):
        await bybit.create_order(PERP, "market", "sell", 0.01, None, {"clientOrderId": "t"})
    assert await bybit.fetch_open_orders(PERP, None, None, {"orderLinkId": "t"}) == []
    await bybit.create_order(PERP, "market", "sell", 0.01, None, {"clientOrderId": "t"})
    assert bybit_emulator.position("BTCUSDT") == Decimal("-0.01")


async def test_reject_fault_maps_by_ret_code(bybit_emulator: BybitEmulator, bybit: Any) -> None:
    bybit_emulator.inject(Fault.REJECT, path="/v5/order/create")
    with pytest.raises(ccxt.InsufficientFunds):
        await bybit.create_order(PERP, "market", "sell", 0.01, None)
    bybit_emulator.inject(
        Fault.SERVER_ERROR, path="/v5/position/list", code=10016, msg="Internal system error."
    )
    with pytest.raises(ccxt.ExchangeError, match="10016"):
        await bybit.fetch_positions([PERP])


# ---------------------------------------------------------------- environments


async def test_sandbox_mode_reaches_the_testnet_prefix_with_testnet_keys() -> None:
    keys = {"mainnet": {"k": "s"}, "testnet": {"tk": "ts"}, "demo": {"dk": "ds"}}
    async with BybitEmulator(credentials=keys) as emu:
        async with ccxt_client(emu, apiKey="tk", secret="ts") as client:
            client.set_sandbox_mode(True)
            await client.load_markets()
            await client.fetch_balance()
        assert set(emu.env_log) == {"testnet"}
        async with ccxt_client(emu) as client:
            client.set_sandbox_mode(True)
            with pytest.raises(ccxt.AuthenticationError, match="10003"):
                await client.load_markets()


async def test_demo_trading_skips_key_info_and_currencies() -> None:
    keys = {"mainnet": {"k": "s"}, "testnet": {"tk": "ts"}, "demo": {"dk": "ds"}}
    async with BybitEmulator(credentials=keys) as emu:
        emu.set_balance("USDT", Decimal(5))
        async with ccxt_client(emu, apiKey="dk", secret="ds") as client:
            client.enable_demo_trading(True)
            await client.load_markets()
            assert (await client.fetch_balance())["USDT"]["total"] == 5
        assert set(emu.env_log) == {"demo"}
        assert emu.requests_to("/v5/user/query-api") == 0
        assert emu.requests_to("/v5/asset/coin/query-info") == 0


async def test_unknown_path_answers_404_route_not_found(
    bybit_emulator: BybitEmulator, bybit: Any
) -> None:
    with pytest.raises(ccxt.BadRequest, match="10017"):
        await bybit.publicGetV5MarketRecentTrade({"category": "linear", "symbol": "BTCUSDT"})
    assert bybit_emulator.unknown_requests == [("GET", "/v5/market/recent-trade")]


async def test_module_runs_the_emulator_in_its_own_process_steered_over_http() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.support.emulators.bybit",
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        url = (await asyncio.wait_for(process.stdout.readline(), 20)).decode().strip()
        async with aiohttp.ClientSession() as session:
            for path, body in (("balance", {"coin": "USDT", "amount": "500"}), ("fault", {})):
                async with session.post(f"{url}/_control/{path}", json=body) as answer:
                    assert answer.status == (200 if path == "balance" else 400)
            async with session.get(f"{url}/_control/ccxt_config") as answer:
                config = await answer.json()
        client = ccxt.bybit({**config, "apiKey": "k", "secret": "s", "timeout_on_exit": 0})
        try:
            assert (await client.fetch_balance())["USDT"]["total"] == 500
        finally:
            await client.close()
    finally:
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 20) == 0
