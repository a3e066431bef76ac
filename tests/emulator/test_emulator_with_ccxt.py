"""The real ccxt binance client against the loopback Binance emulator.

Each test drives unmodified ``ccxt.async_support.binance`` and records which
ccxt exception class each emulated Binance error surfaces as.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import aiohttp
import ccxt.async_support as ccxt
import pytest

from tests.support.emulators.binance import BinanceEmulator, EmulatedMarket, Fault
from tests.support.emulators.binance.binance_emulator import ccxt_client as _ccxt_client

PERP = "BTC/USDT:USDT"
SPOT = "BTC/USDT"


def ccxt_client(emulator: BinanceEmulator, **extra: Any) -> Any:
    """Like the conftest ``binance`` fixture: ccxt's limiter on, paced at 5 ms per cost unit."""
    return _ccxt_client(emulator, **{"rateLimit": 5, **extra})


class ManualClock:
    """Epoch seconds that only move when the test says so."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def fund(emulator: BinanceEmulator) -> None:
    emulator.set_futures_balance("USDT", Decimal(10_000))
    emulator.set_spot_balance("USDT", Decimal(10_000))
    emulator.set_spot_balance("BTC", Decimal(1))


# ---------------------------------------------------------------- markets, account


async def test_load_markets_finds_spot_and_perp_with_emulator_precision_and_limits(
    binance: Any,
) -> None:
    perp = binance.market(PERP)
    spot = binance.market(SPOT)
    assert perp["swap"]
    assert perp["linear"]
    assert perp["settle"] == "USDT"
    assert spot["spot"]
    assert perp["precision"]["amount"] == 0.001
    assert perp["precision"]["price"] == 0.1
    assert perp["limits"]["amount"]["min"] == 0.001
    assert perp["limits"]["cost"]["min"] == 100
    assert spot["limits"]["cost"]["min"] == 5
    assert binance.market("ETH/USDT:USDT")["limits"]["cost"]["min"] == 20


async def test_load_markets_calls_only_the_two_exchange_info_endpoints(
    emulator: BinanceEmulator, binance: Any
) -> None:
    assert emulator.request_log == [
        ("GET", "/api/v3/exchangeInfo"),
        ("GET", "/fapi/v1/exchangeInfo"),
    ]


async def test_fetch_balance_spot_and_future_show_the_set_balances(
    emulator: BinanceEmulator, binance: Any
) -> None:
    fund(emulator)
    spot = await binance.fetch_balance()
    future = await binance.fetch_balance({"type": "future"})
    swap = await binance.fetch_balance({"type": "swap"})
    assert spot["BTC"]["free"] == 1
    assert spot["USDT"]["total"] == 10_000
    assert future["USDT"]["total"] == 10_000
    assert swap["USDT"]["free"] == 10_000
    assert emulator.requests_to("/api/v3/account") == 1
    assert emulator.requests_to("/fapi/v3/account") == 2


async def test_set_leverage_is_reported_by_fetch_leverage(binance: Any) -> None:
    answer = await binance.set_leverage(7, PERP)
    leverage = await binance.fetch_leverage(PERP)
    assert answer["leverage"] == 7
    assert leverage["longLeverage"] == 7
    assert leverage["marginMode"] == "cross"


async def test_fetch_leverages_reads_every_symbols_leverage_and_margin_type_at_once(
    emulator: BinanceEmulator, binance: Any
) -> None:
    await binance.set_leverage(7, PERP)
    await binance.set_margin_mode("isolated", PERP)
    await binance.fetch_leverages(None, {"subType": "linear"})  # ccxt loads the brackets once
    before = len(emulator.request_log)
    answer = await binance.fetch_leverages(None, {"subType": "linear"})
    assert [p for _, p in emulator.request_log[before:]] == ["/fapi/v1/symbolConfig"]
    btc, eth = answer[PERP], answer["ETH/USDT:USDT"]
    assert (btc["marginMode"], btc["shortLeverage"]) == ("isolated", 7)
    assert (eth["marginMode"], eth["shortLeverage"]) == ("cross", 20)  # the defaults


async def test_leverage_above_market_maximum_is_rejected(binance: Any) -> None:
    with pytest.raises(ccxt.BadRequest):
        await binance.set_leverage(101, "ETH/USDT:USDT")


async def test_set_margin_mode_isolated_then_repeat_raises_margin_mode_already_set(
    binance: Any,
) -> None:
    assert (await binance.set_margin_mode("isolated", PERP))["msg"] == "success"
    assert (await binance.fetch_margin_mode(PERP))["marginMode"] == "isolated"
    with pytest.raises(ccxt.MarginModeAlreadySet):
        await binance.set_margin_mode("isolated", PERP)


async def test_fetch_position_mode_follows_set_position_mode(
    emulator: BinanceEmulator, binance: Any
) -> None:
    assert (await binance.fetch_position_mode(PERP))["hedged"] is False
    await binance.set_position_mode(True, PERP)
    assert (await binance.fetch_position_mode(PERP))["hedged"] is True
    emulator.set_dual_side_position(False)
    assert (await binance.fetch_position_mode(PERP))["hedged"] is False


# ---------------------------------------------------------------- orders


async def test_market_order_ack_then_fetch_order_by_client_id_shows_the_fill(
    emulator: BinanceEmulator, binance: Any
) -> None:
    fund(emulator)
    ack = await binance.create_order(
        PERP, "market", "sell", 0.01, None, {"clientOrderId": "h-1", "newOrderRespType": "ACK"}
    )
    assert ack["status"] == "open"
    assert ack["filled"] == 0
    assert ack["clientOrderId"] == "h-1"
    order = await binance.fetch_order(None, PERP, {"clientOrderId": "h-1"})
    assert order["status"] == "closed"
    assert order["filled"] == 0.01
    assert order["average"] == 59994.0  # the bid: 60000 less 1 bp
    assert emulator.position(PERP) == Decimal("-0.01")


async def test_ccxt_asks_for_result_so_a_market_order_comes_back_filled(
    emulator: BinanceEmulator, binance: Any
) -> None:
    fund(emulator)
    order = await binance.create_order(PERP, "market", "buy", 0.01, None, {"clientOrderId": "r-1"})
    assert order["status"] == "closed"
    assert order["filled"] == 0.01
    assert order["average"] == 60006.0  # the ask


async def test_ccxt_truncates_amount_to_the_step_before_sending(
    emulator: BinanceEmulator, binance: Any
) -> None:
    fund(emulator)
    await binance.create_order(PERP, "market", "sell", 0.0129, None, {"clientOrderId": "t-1"})
    assert emulator.order_log[-1].qty == Decimal("0.012")
    assert emulator.position(PERP) == Decimal("-0.012")


async def test_duplicate_client_order_id_raises_invalid_order_on_futures(
    emulator: BinanceEmulator, binance: Any
) -> None:
    fund(emulator)
    await binance.create_order(PERP, "market", "sell", 0.01, None, {"clientOrderId": "dup"})
    with pytest.raises(ccxt.InvalidOrder, match="-4116") as caught:
        await binance.create_order(PERP, "market", "sell", 0.01, None, {"clientOrderId": "dup"})
    assert not isinstance(caught.value, ccxt.DuplicateOrderId)
    assert emulator.position(PERP) == Decimal("-0.01")
    assert [e.outcome for e in emulator.order_log] == ["accepted", "rejected:-4116"]


async def test_duplicate_client_order_id_raises_invalid_order_on_spot(
    emulator: BinanceEmulator, binance: Any
) -> None:
    fund(emulator)
    await binance.create_order(SPOT, "market", "buy", 0.01, None, {"clientOrderId": "dup"})
    with pytest.raises(ccxt.InvalidOrder, match="Duplicate order sent"):
        await binance.create_order(SPOT, "market", "buy", 0.01, None, {"clientOrderId": "dup"})


async def test_open_scope_lets_a_closed_orders_client_id_be_reused(
    emulator: BinanceEmulator, binance: Any
) -> None:
    fund(emulator)
    emulator.client_order_id_scope = "open"
    await binance.create_order(PERP, "market", "sell", 0.01, None, {"clientOrderId": "again"})
    await binance.create_order(PERP, "market", "sell", 0.01, None, {"clientOrderId": "again"})
    assert emulator.position(PERP) == Decimal("-0.02")


async def test_reduce_only_that_would_flip_the_position_raises_invalid_order(
    emulator: BinanceEmulator, binance: Any
) -> None:
    fund(emulator)
    await binance.create_order(PERP, "market", "sell", 0.01, None, {"clientOrderId": "open"})
    with pytest.raises(ccxt.InvalidOrder, match="-2022"):
        await binance.create_order(
            PERP, "market", "buy", 0.02, None, {"clientOrderId": "flip", "reduceOnly": True}
        )
    await binance.create_order(
        PERP, "market", "buy", 0.01, None, {"clientOrderId": "close", "reduceOnly": True}
    )
    assert emulator.position(PERP) == 0


async def test_reduce_only_without_a_position_raises_invalid_order(
    emulator: BinanceEmulator, binance: Any
) -> None:
    fund(emulator)
    with pytest.raises(ccxt.InvalidOrder, match="ReduceOnly"):
        await binance.create_order(PERP, "market", "sell", 0.01, None, {"reduceOnly": True})


async def test_notional_below_minimum_raises_invalid_order(
    emulator: BinanceEmulator, binance: Any
) -> None:
    fund(emulator)
    with pytest.raises(ccxt.InvalidOrder, match="-4164"):
        await binance.create_order(PERP, "market", "sell", 0.001, None)  # 60 USDT < 100


async def test_amount_below_min_qty_raises_invalid_order() -> None:
    market = EmulatedMarket(
        base="SOL", step_size=Decimal("0.01"), min_qty=Decimal(1), price=Decimal(150)
    )
    async with BinanceEmulator(markets=[market]) as emu, ccxt_client(emu) as client:
        emu.set_futures_balance("USDT", Decimal(10_000))
        with pytest.raises(ccxt.InvalidOrder, match="LOT_SIZE"):
            await client.create_order("SOL/USDT:USDT", "market", "sell", 0.5, None)


async def test_amount_below_one_step_is_refused_by_ccxt_before_sending(
    emulator: BinanceEmulator, binance: Any
) -> None:
    with pytest.raises(ccxt.InvalidOrder, match="minimum amount precision"):
        await binance.create_order(PERP, "market", "sell", 0.0004, None)
    assert emulator.order_log == []


async def test_quantity_finer_than_the_step_sent_raw_is_rejected_for_precision(
    emulator: BinanceEmulator, binance: Any
) -> None:
    fund(emulator)
    with pytest.raises(ccxt.BadRequest, match="-1111"):
        await binance.fapiPrivatePostOrder(
            {"symbol": "BTCUSDT", "side": "SELL", "type": "MARKET", "quantity": "0.0105"}
        )


async def test_limit_price_off_the_tick_sent_raw_is_rejected(
    emulator: BinanceEmulator, binance: Any
) -> None:
    fund(emulator)
    with pytest.raises(ccxt.BadRequest, match="-4014"):
        await binance.fapiPrivatePostOrder(
            {
                "symbol": "ETHUSDT",
                "side": "SELL",
                "type": "LIMIT",
                "timeInForce": "GTC",
                "quantity": "0.1",
                "price": "3100.005",
            }
        )


async def test_margin_check_rejects_an_order_the_wallet_cannot_carry(
    emulator: BinanceEmulator, binance: Any
) -> None:
    emulator.set_futures_balance("USDT", Decimal(100))
    with pytest.raises(ccxt.InsufficientFunds, match="-2019"):
        await binance.create_order(PERP, "market", "sell", 0.1, None)  # 6000 at 20x needs 300
    assert emulator.order_log[-1].outcome == "rejected:-2019"


async def test_spot_buy_beyond_the_balance_raises_insufficient_funds(
    emulator: BinanceEmulator, binance: Any
) -> None:
    emulator.set_spot_balance("USDT", Decimal(100))
    with pytest.raises(ccxt.InsufficientFunds):
        await binance.create_order(SPOT, "market", "buy", 0.01, None)


async def test_spot_notional_below_minimum_raises_bad_request_not_invalid_order(
    emulator: BinanceEmulator, binance: Any
) -> None:
    fund(emulator)
    # -1013 "Filter failure: NOTIONAL": ccxt only special-cases LOT_SIZE/PRICE_FILTER bodies
    with pytest.raises(ccxt.BadRequest, match="NOTIONAL"):
        await binance.create_order("ETH/USDT", "market", "buy", 0.001, None)  # 3 USDT < 5


async def test_spot_market_order_moves_balances_and_charges_fee_in_usdt(
    emulator: BinanceEmulator, binance: Any
) -> None:
    fund(emulator)
    order = await binance.create_order(SPOT, "market", "sell", 0.1, None)
    assert order["status"] == "closed"
    assert order["fee"] == {"currency": "USDT", "cost": pytest.approx(5.9994)}
    assert emulator.spot_balance("BTC") == Decimal("0.9")
    assert emulator.spot_balance("USDT") == Decimal(10_000) + Decimal("5999.4") - Decimal("5.9994")


async def test_hedge_mode_order_without_position_side_is_rejected(
    emulator: BinanceEmulator, binance: Any
) -> None:
    fund(emulator)
    emulator.set_dual_side_position(True)
    with pytest.raises(ccxt.OperationRejected, match="-4061"):
        await binance.create_order(PERP, "market", "sell", 0.01, None)
    await binance.create_order(PERP, "market", "sell", 0.01, None, {"positionSide": "SHORT"})
    assert emulator.position(PERP, "SHORT") == Decimal("-0.01")


async def test_hedge_mode_rejects_reduce_only_param_but_ccxt_hedged_flag_drops_it(
    emulator: BinanceEmulator, binance: Any
) -> None:
    fund(emulator)
    emulator.set_dual_side_position(True)
    await binance.create_order(PERP, "market", "sell", 0.02, None, {"positionSide": "SHORT"})
    with pytest.raises(ccxt.BadRequest, match="-1106"):
        await binance.create_order(
            PERP, "market", "buy", 0.01, None, {"positionSide": "SHORT", "reduceOnly": True}
        )
    await binance.create_order(
        PERP, "market", "buy", 0.01, None, {"hedged": True, "reduceOnly": True}
    )
    assert emulator.position(PERP, "SHORT") == Decimal("-0.01")


async def test_limit_order_rests_is_listed_open_and_can_be_cancelled(
    emulator: BinanceEmulator, binance: Any
) -> None:
    fund(emulator)
    placed = await binance.create_order(
        PERP, "limit", "sell", 0.01, 61_000, {"clientOrderId": "l-1"}
    )
    assert placed["status"] == "open"
    open_orders = await binance.fetch_open_orders(PERP)
    assert [o["clientOrderId"] for o in open_orders] == ["l-1"]
    cancelled = await binance.cancel_order(placed["id"], PERP)
    assert cancelled["status"] == "canceled"
    assert await binance.fetch_open_orders(PERP) == []
    with pytest.raises(ccxt.OrderNotFound):
        await binance.cancel_order(placed["id"], PERP)


async def test_resting_limit_order_fills_when_the_price_crosses_it(
    emulator: BinanceEmulator, binance: Any
) -> None:
    fund(emulator)
    await binance.create_order(PERP, "limit", "sell", 0.01, 61_000, {"clientOrderId": "l-2"})
    emulator.set_price("BTC", Decimal(61_050))
    order = await binance.fetch_order(None, PERP, {"clientOrderId": "l-2"})
    assert order["status"] == "closed"
    assert order["average"] == 61_000
    assert emulator.position(PERP) == Decimal("-0.01")


async def test_limit_ioc_fills_what_crosses_and_expires_the_rest(
    emulator: BinanceEmulator, binance: Any
) -> None:
    fund(emulator)
    emulator.set_futures_balance("USDT", Decimal(1_000_000))
    # bids: 59994.0 (5 BTC), 59993.9 (5 BTC), ...: a limit at 59993.9 takes two levels
    order = await binance.create_order(
        PERP, "limit", "sell", 12, 59_993.9, {"timeInForce": "IOC", "clientOrderId": "ioc"}
    )
    assert order["status"] == "expired"
    assert order["filled"] == 10
    assert emulator.position(PERP) == Decimal(-10)


async def test_fetch_order_for_an_unknown_client_id_raises_order_not_found(binance: Any) -> None:
    with pytest.raises(ccxt.OrderNotFound):
        await binance.fetch_order(None, PERP, {"clientOrderId": "never-sent"})


async def test_order_log_records_every_order_request_with_outcome_and_fills(
    emulator: BinanceEmulator, binance: Any
) -> None:
    fund(emulator)
    emulator.inject(Fault.RATE_LIMIT, path="/fapi/v1/order")
    with pytest.raises(ccxt.DDoSProtection):
        await binance.create_order(PERP, "market", "sell", 0.01, None, {"clientOrderId": "a"})
    await binance.create_order(PERP, "market", "sell", 0.01, None, {"clientOrderId": "a"})
    first, second = emulator.order_log
    assert (first.client_order_id, first.outcome, first.fills) == ("a", "rejected:-1003", ())
    assert (second.client_order_id, second.outcome) == ("a", "accepted")
    assert second.fills == ((Decimal("59994.0"), Decimal("0.01")),)
    assert (second.symbol, second.side, second.type, second.qty) == (
        "BTCUSDT",
        "SELL",
        "MARKET",
        Decimal("0.01"),
    )
    assert [o.client_order_id for o in emulator.orders()] == ["a"]


# ---------------------------------------------------------------- faults


async def test_rate_limit_fault_raises_ddos_protection_with_retry_after_header(
    emulator: BinanceEmulator, binance: Any
) -> None:
    emulator.inject(Fault.RATE_LIMIT, path="/fapi/v1/premiumIndex", retry_after=7)
    with pytest.raises(ccxt.DDoSProtection) as caught:
        await binance.fetch_funding_rate(PERP)
    assert isinstance(caught.value, ccxt.NetworkError)
    assert not isinstance(caught.value, ccxt.RateLimitExceeded)
    assert binance.last_response_headers["Retry-After"] == "7"
    # USDⓈ-M's documented weights: exchangeInfo 1, premiumIndex of one symbol 1
    assert int(binance.last_response_headers["X-MBX-USED-WEIGHT-1M"]) == 2
    assert (await binance.fetch_funding_rate(PERP))["fundingRate"] == 0.0001


async def test_server_error_fault_with_plain_body_raises_exchange_not_available(
    emulator: BinanceEmulator, binance: Any
) -> None:
    emulator.inject(Fault.SERVER_ERROR, path="/fapi/v3/positionRisk")
    with pytest.raises(ccxt.ExchangeNotAvailable):
        await binance.fetch_positions()


async def test_server_error_fault_with_binance_json_raises_operation_failed_not_network_error(
    emulator: BinanceEmulator, binance: Any
) -> None:
    emulator.inject(
        Fault.SERVER_ERROR,
        path="/fapi/v1/premiumIndex",
        status=500,
        code=-1001,
        msg="Internal error; unable to process your request. Please try again.",
    )
    with pytest.raises(ccxt.OperationFailed) as caught:
        await binance.fetch_funding_rate(PERP)
    assert not isinstance(caught.value, ccxt.NetworkError)


async def test_timeout_fault_raises_request_timeout_and_the_order_is_not_placed(
    emulator: BinanceEmulator,
) -> None:
    fund(emulator)
    async with ccxt_client(emulator, timeout=300) as client:
        await client.load_markets()
        emulator.inject(Fault.TIMEOUT, path="/fapi/v1/order", method="POST", delay_s=1.0)
        with pytest.raises(ccxt.RequestTimeout):
            await client.create_order(PERP, "market", "sell", 0.01, None, {"clientOrderId": "to"})
        assert emulator.order("to") is None
        assert emulator.order_log[-1].outcome == "rejected:timeout"


async def test_timeout_fault_with_accept_places_the_order_the_client_gave_up_on(
    emulator: BinanceEmulator,
) -> None:
    fund(emulator)
    async with ccxt_client(emulator, timeout=300) as client:
        await client.load_markets()
        emulator.inject(
            Fault.TIMEOUT, path="/fapi/v1/order", method="POST", delay_s=1.0, accept=True
        )
        with pytest.raises(ccxt.RequestTimeout):
            await client.create_order(PERP, "market", "sell", 0.01, None, {"clientOrderId": "to"})
        found = await client.fetch_order(None, PERP, {"clientOrderId": "to"})
        assert found["status"] == "closed"


async def test_drop_after_accept_raises_network_error_yet_the_order_exists(
    emulator: BinanceEmulator, binance: Any
) -> None:
    fund(emulator)
    emulator.inject(Fault.DROP_AFTER_ACCEPT)
    with pytest.raises(ccxt.NetworkError) as caught:
        await binance.create_order(PERP, "market", "sell", 0.01, None, {"clientOrderId": "lost"})
    assert isinstance(caught.value, ccxt.ExchangeNotAvailable)
    found = await binance.fetch_order(None, PERP, {"clientOrderId": "lost"})
    assert found["status"] == "closed"
    assert found["filled"] == 0.01
    assert emulator.position(PERP) == Decimal("-0.01")


async def test_partial_fill_fault_market_order_fills_a_fraction_and_expires_the_rest(
    emulator: BinanceEmulator, binance: Any
) -> None:
    fund(emulator)
    emulator.inject(Fault.PARTIAL_FILL, fraction=Decimal("0.4"))
    order = await binance.create_order(PERP, "market", "sell", 0.05, None, {"clientOrderId": "pf"})
    assert order["status"] == "expired"
    assert order["filled"] == 0.02
    assert order["filled"] < order["amount"]
    assert emulator.position(PERP) == Decimal("-0.02")


async def test_partial_fill_fault_leaves_a_gtc_limit_remainder_open(
    emulator: BinanceEmulator, binance: Any
) -> None:
    fund(emulator)
    emulator.inject(Fault.PARTIAL_FILL, fraction=Decimal("0.5"))
    order = await binance.create_order(PERP, "limit", "sell", 0.04, 59_000, {"clientOrderId": "pl"})
    assert order["status"] == "open"
    assert order["filled"] == 0.02
    assert order["remaining"] == 0.02
    assert [o["clientOrderId"] for o in await binance.fetch_open_orders(PERP)] == ["pl"]


async def test_reject_fault_margin_insufficient_maps_to_insufficient_funds(
    emulator: BinanceEmulator, binance: Any
) -> None:
    fund(emulator)
    emulator.inject(Fault.REJECT, path="/fapi/v1/order", code=-2019, msg="Margin is insufficient.")
    with pytest.raises(ccxt.InsufficientFunds):
        await binance.create_order(PERP, "market", "sell", 0.01, None)
    assert emulator.orders() == []


async def test_without_production_error_classes_futures_codes_fall_back_to_exchange_error(
    emulator: BinanceEmulator,
) -> None:
    fund(emulator)
    config = emulator.ccxt_config(production_error_classes=False)
    client = ccxt.binance(
        {**config, "apiKey": "k", "secret": "s", "rateLimit": 5, "timeout_on_exit": 0}
    )
    try:
        emulator.inject(
            Fault.REJECT, path="/fapi/v1/order", code=-2019, msg="Margin is insufficient."
        )
        with pytest.raises(ccxt.ExchangeError) as caught:
            await client.create_order(PERP, "market", "sell", 0.01, None)
        assert type(caught.value) is ccxt.ExchangeError
    finally:
        await client.close()


async def test_faults_are_consumed_count_times_and_match_by_method(
    emulator: BinanceEmulator, binance: Any
) -> None:
    emulator.inject(Fault.SERVER_ERROR, path="/fapi/v1/premiumIndex", method="GET", count=2)
    emulator.inject(Fault.SERVER_ERROR, path="/fapi/v1/order", method="DELETE")
    for _ in range(2):
        with pytest.raises(ccxt.ExchangeNotAvailable):
            await binance.fetch_funding_rate(PERP)
    await binance.fetch_funding_rate(PERP)
    assert emulator.requests_to("/fapi/v1/premiumIndex") == 3


# ---------------------------------------------------------------- lag


async def test_position_view_lag_shows_the_old_position_until_the_lag_has_passed() -> None:
    clock = ManualClock()
    async with BinanceEmulator(clock=clock) as emu, ccxt_client(emu) as client:
        fund(emu)
        emu.position_view_lag_s = 5.0
        await client.create_order(PERP, "market", "sell", 0.01, None, {"clientOrderId": "lag-1"})
        assert await client.fetch_positions([PERP]) == []
        order = await client.fetch_order(None, PERP, {"clientOrderId": "lag-1"})
        assert order["filled"] == 0.01  # order queries are not lagged
        assert emu.position(PERP) == Decimal("-0.01")
        clock.advance(5.1)
        positions = await client.fetch_positions([PERP])
        assert [(p["side"], p["contracts"]) for p in positions] == [("short", 0.01)]


async def test_lagged_position_view_is_a_consistent_old_snapshot_including_its_update_time() -> (
    None
):
    clock = ManualClock()
    async with BinanceEmulator(clock=clock) as emu, ccxt_client(emu) as client:
        fund(emu)
        emu.position_view_lag_s = 5.0
        await client.create_order(PERP, "market", "sell", 0.01, None)
        clock.advance(10)
        [first] = await client.fetch_positions([PERP])
        await client.create_order(PERP, "market", "sell", 0.02, None)
        clock.advance(1)
        [stale] = await client.fetch_positions([PERP])
        clock.advance(5)
        [fresh] = await client.fetch_positions([PERP])
    assert (stale["contracts"], stale["timestamp"]) == (0.01, first["timestamp"])
    assert fresh["contracts"] == 0.03
    assert fresh["timestamp"] == first["timestamp"] + 10_000


async def test_position_view_lag_also_delays_the_futures_balance_view() -> None:
    clock = ManualClock()
    async with BinanceEmulator(clock=clock) as emu, ccxt_client(emu) as client:
        fund(emu)
        emu.position_view_lag_s = 2.0
        await client.create_order(PERP, "market", "sell", 0.01, None)
        before = await client.fetch_balance({"type": "swap"})
        clock.advance(2.5)
        after = await client.fetch_balance({"type": "swap"})
        assert before["USDT"]["total"] == 10_000
        fee, unrealized = 0.01 * 59994 * 0.0004, -0.01 * (60000 - 59994)
        assert after["USDT"]["total"] == pytest.approx(10_000 - fee + unrealized)


# ---------------------------------------------------------------- auth, routing, hosts


async def test_missing_signature_or_api_key_is_rejected(emulator: BinanceEmulator) -> None:
    async with aiohttp.ClientSession() as session:
        url = f"{emulator.url}/fapi/v3/account?timestamp=1"
        async with session.get(url, headers={"X-MBX-APIKEY": "k"}) as response:
            assert response.status == 400
            assert (await response.json())["code"] == -1022
        async with session.get(f"{url}&signature=abc") as response:
            assert response.status == 401
            assert (await response.json())["code"] == -2014


async def test_ccxt_without_keys_refuses_private_calls_before_sending(
    emulator: BinanceEmulator,
) -> None:
    async with ccxt_client(emulator, apiKey="", secret="") as client:
        await client.load_markets()
        with pytest.raises(ccxt.AuthenticationError):
            await client.fetch_balance()
    assert emulator.requests_to("/api/v3/account") == 0


async def test_unknown_path_returns_404_and_is_logged(
    emulator: BinanceEmulator, binance: Any
) -> None:
    with pytest.raises(ccxt.ExchangeError):
        await binance.fapiPublicGetFundingInfo()
    assert emulator.unknown_requests == [("GET", "/fapi/v1/fundingInfo")]
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{emulator.url}/nope") as response:
            assert response.status == 404
            assert (await response.json())["code"] == -5000


async def test_every_ccxt_base_url_points_at_the_emulator_in_sandbox_and_demo_modes(
    emulator: BinanceEmulator,
) -> None:
    for mode in ("live", "sandbox", "demo"):
        async with ccxt_client(emulator) as client:
            if mode == "sandbox":
                client.set_sandbox_mode(True)
            elif mode == "demo":
                client.enable_demo_trading(True)
            for table in ("api", "test", "demo"):
                assert all(
                    str(url).startswith(emulator.url) for url in client.urls[table].values()
                ), (mode, table)


@pytest.mark.parametrize("mode", ["sandbox", "demo"])
async def test_sandbox_and_demo_modes_still_trade_only_against_the_emulator(
    emulator: BinanceEmulator, mode: str
) -> None:
    fund(emulator)
    async with ccxt_client(emulator) as client:
        if mode == "sandbox":
            client.set_sandbox_mode(True)
        else:
            client.enable_demo_trading(True)
        await client.load_markets()
        assert (await client.fetch_balance({"type": "swap"}))["USDT"]["total"] == 10_000
        await client.create_order(PERP, "market", "sell", 0.01, None, {"clientOrderId": mode})
        assert await client.fetch_positions([PERP])
    assert emulator.unknown_requests == []
    assert emulator.order(mode) is not None


# ---------------------------------------------------------------- market data and history


async def test_fetch_funding_rate_reports_rate_mark_and_next_funding_time(
    emulator: BinanceEmulator, binance: Any
) -> None:
    emulator.set_funding_rate("BTC", Decimal("0.0003"))
    emulator.set_price("BTC", Decimal(61_000))
    rate = await binance.fetch_funding_rate(PERP)
    rates = await binance.fetch_funding_rates([PERP, "ETH/USDT:USDT"])
    assert rate["fundingRate"] == 0.0003
    assert rate["markPrice"] == 61_000
    assert rate["fundingTimestamp"] % (8 * 3600 * 1000) == 0
    assert set(rates) == {PERP, "ETH/USDT:USDT"}


async def test_order_book_has_levels_each_side_around_bid_and_ask(binance: Any) -> None:
    book = await binance.fetch_order_book(PERP, 5)
    assert book["bids"][0] == [59994.0, 5.0]
    assert book["asks"][0] == [60006.0, 5.0]
    assert len(book["bids"]) == len(book["asks"]) == 5
    spot_book = await binance.fetch_order_book(SPOT)
    assert spot_book["bids"][0][0] < spot_book["asks"][0][0]


async def test_tickers_and_bids_asks_report_emulated_prices(
    emulator: BinanceEmulator, binance: Any
) -> None:
    emulator.set_price("ETH", Decimal(3_100), spread_bps=Decimal(10))
    spot = await binance.fetch_ticker("ETH/USDT")
    perp = await binance.fetch_ticker("ETH/USDT:USDT")
    tickers = await binance.fetch_tickers([SPOT, "ETH/USDT"])
    bids_asks = await binance.fetch_bids_asks(["ETH/USDT:USDT"])
    assert (spot["bid"], spot["ask"], spot["last"]) == (3098.45, 3101.55, 3100.0)
    assert perp["last"] == 3100.0
    assert perp["bid"] is None  # the futures 24hr ticker has no bid/ask, like Binance's
    assert set(tickers) == {SPOT, "ETH/USDT"}
    assert bids_asks["ETH/USDT:USDT"]["ask"] == 3101.55


async def test_ohlcv_and_open_interest_are_served(emulator: BinanceEmulator, binance: Any) -> None:
    candles = await binance.fetch_ohlcv(PERP, "1m", limit=3)
    interest = await binance.fetch_open_interest(PERP)
    assert len(candles) == 3
    assert candles[-1][4] == 60_000
    assert interest["openInterestAmount"] == 10_000


async def test_fetch_my_trades_lists_fills_with_fees(
    emulator: BinanceEmulator, binance: Any
) -> None:
    fund(emulator)
    await binance.create_order(PERP, "market", "sell", 0.01, None, {"clientOrderId": "tr"})
    trades = await binance.fetch_my_trades(PERP)
    assert [(t["side"], t["amount"], t["price"]) for t in trades] == [("sell", 0.01, 59994.0)]
    assert trades[0]["fee"]["cost"] == pytest.approx(0.01 * 59994 * 0.0004)
    assert trades[0]["takerOrMaker"] == "taker"


async def test_settle_funding_pays_a_short_and_shows_in_funding_history(
    emulator: BinanceEmulator, binance: Any
) -> None:
    fund(emulator)
    await binance.create_order(PERP, "market", "sell", 0.1, None)
    emulator.set_funding_rate("BTC", Decimal("0.0001"))
    wallet_before = emulator.futures_balance("USDT")
    emulator.settle_funding()
    history = await binance.fetch_funding_history(PERP)
    rates = await binance.fetch_funding_rate_history(PERP)
    assert [h["amount"] for h in history] == [pytest.approx(0.6)]  # 0.1 * 60000 * 0.0001
    assert emulator.futures_balance("USDT") == wallet_before + Decimal("0.6")
    assert rates[-1]["fundingRate"] == 0.0001


async def test_fetch_positions_reports_entry_mark_pnl_leverage_and_liquidation(
    emulator: BinanceEmulator, binance: Any
) -> None:
    fund(emulator)
    await binance.set_leverage(5, PERP)
    await binance.create_order(PERP, "market", "sell", 0.1, None)
    emulator.set_price("BTC", Decimal(59_000))
    [position] = await binance.fetch_positions([PERP])
    assert position["side"] == "short"
    assert position["entryPrice"] == 59994.0
    assert position["markPrice"] == 59_000
    assert position["unrealizedPnl"] == pytest.approx(0.1 * (59994 - 59000))
    assert position["liquidationPrice"] > 59994
    risk_v2 = await binance.fapiPrivateV2GetPositionRisk({"symbol": "BTCUSDT"})
    assert risk_v2[0]["leverage"] == "5"


async def test_spot_limit_order_locks_funds_until_cancelled(
    emulator: BinanceEmulator, binance: Any
) -> None:
    fund(emulator)
    placed = await binance.create_order(SPOT, "limit", "buy", 0.1, 50_000, {"clientOrderId": "sl"})
    locked = await binance.fetch_balance()
    await binance.cancel_order(placed["id"], SPOT)
    unlocked = await binance.fetch_balance()
    assert placed["status"] == "open"
    assert locked["USDT"]["used"] == 5_000
    assert locked["USDT"]["free"] == 5_000
    assert unlocked["USDT"]["free"] == 10_000


async def test_margin_mode_cannot_change_while_a_position_is_open(
    emulator: BinanceEmulator, binance: Any
) -> None:
    fund(emulator)
    await binance.create_order(PERP, "market", "sell", 0.01, None)
    with pytest.raises(ccxt.OperationRejected, match="-4048"):
        await binance.set_margin_mode("isolated", PERP)


# ---------------------------------------------------------------- isolated margin


async def isolated_short(emulator: BinanceEmulator, binance: Any) -> None:
    fund(emulator)
    await binance.set_margin_mode("isolated", PERP)
    await binance.create_order(PERP, "market", "sell", 0.1, None)


async def test_added_margin_is_listed_by_fetch_margin_adjustment_history(
    emulator: BinanceEmulator, binance: Any
) -> None:
    await isolated_short(emulator, binance)
    before = await binance.fetch_margin_adjustment_history(PERP)
    await binance.add_margin(PERP, 12.5)
    [change] = await binance.fetch_margin_adjustment_history(PERP)
    assert before == []
    assert change["type"] == "add"
    assert change["amount"] == 12.5
    assert change["code"] == "USDT"
    assert change["info"]["positionSide"] == "BOTH"
    assert change["info"]["deltaType"] == "USER_ADJUST"
    later = await binance.fetch_margin_adjustment_history(PERP, None, change["timestamp"] + 1)
    assert later == []
    assert emulator.margin_log[0].amount == Decimal("12.5")


async def test_drop_after_accept_on_position_margin_applies_the_change_and_loses_the_answer(
    emulator: BinanceEmulator, binance: Any
) -> None:
    await isolated_short(emulator, binance)
    emulator.inject(Fault.DROP_AFTER_ACCEPT, path="/fapi/v1/positionMargin", method="POST")
    with pytest.raises(ccxt.NetworkError):
        await binance.add_margin(PERP, 20)
    [change] = await binance.fetch_margin_adjustment_history(PERP)
    assert change["amount"] == 20
    assert [c.amount for c in emulator.margin_log] == [Decimal(20)]


# ---------------------------------------------------------------- suspended, delisted


async def test_a_suspended_perp_keeps_its_market_inactive_loses_its_ticker_and_refuses_orders(
    emulator: BinanceEmulator, binance: Any
) -> None:
    fund(emulator)
    emulator.suspend("BTC")
    markets = await binance.load_markets(True)
    assert markets[PERP]["active"] is False
    assert markets[PERP]["info"]["status"] == "SETTLING"
    assert markets[SPOT]["active"] is True
    assert PERP not in await binance.fetch_bids_asks()
    with pytest.raises(ccxt.BadRequest, match="-4140"):
        await binance.create_order(PERP, "market", "sell", 0.01, None)
    emulator.resume("BTC")
    await binance.create_order(PERP, "market", "sell", 0.01, None)


async def test_a_delisted_perp_leaves_exchange_info_and_orders_on_it_are_invalid_symbol(
    emulator: BinanceEmulator, binance: Any
) -> None:
    fund(emulator)
    emulator.delist("ETH")
    markets = await binance.load_markets(True)
    assert "ETH/USDT:USDT" not in markets
    assert "ETH/USDT" in markets
    with pytest.raises(ccxt.BadSymbol, match="-1121"):
        await binance.fapiPrivatePostOrder(
            {"symbol": "ETHUSDT", "side": "SELL", "type": "MARKET", "quantity": "0.1"}
        )
