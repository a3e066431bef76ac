"""The bearish sell-down through the real ccxt client against the Binance emulator."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from structlog.testing import capture_logs

from bot.clock import SystemClock
from bot.domain.models import OrderStatus
from bot.exchange.ccxt_gateway import CcxtGateway
from bot.service.daemon import HedgeDaemon
from bot.store.repository import Repository
from tests.integration.test_daemon_emulator import (
    PERP,
    accepted,
    assert_every_exchange_order_is_stored,
    assert_no_duplicate_orders,
    make_settings,
    open_stack,  # noqa: F401 - the fixture
)
from tests.support.emulators.binance import BinanceEmulator
from tests.support.emulators.binance._binance_models import Fault

D = Decimal
BEARISH = {"strategy": "outlook", "outlook": {"view": "bearish"}, "allow_spot_trades": True}


@pytest.fixture
def emulator(emulator: BinanceEmulator) -> BinanceEmulator:
    """The shared emulator, with 1 BTC on spot and 100,000 USDT of margin."""
    emulator.set_spot_balance("BTC", D(1))
    emulator.set_futures_balance("USDT", D(100000))
    return emulator


def spot_orders(emulator: BinanceEmulator) -> list[Any]:
    return [e for e in accepted(emulator) if e.venue == "spot"]


async def test_bearish_sell_down_reaches_the_spot_api_with_a_client_id_beside_the_hedge(
    open_stack: Any,  # noqa: F811
    emulator: BinanceEmulator,
) -> None:
    stack = await open_stack(**BEARISH)
    assert await stack.cycles(1) == [{}]
    sold = spot_orders(emulator)
    assert len(sold) == 1
    assert (sold[0].symbol, sold[0].side, sold[0].qty) == ("BTCUSDT", "SELL", D("0.5"))
    assert sold[0].client_order_id is not None
    assert sold[0].client_order_id.startswith("hb")
    assert emulator.requests_to("/api/v3/order", "POST") == 1
    assert emulator.spot_balance("BTC") == D("0.5")
    assert emulator.position(PERP) == D("-0.5")  # the hedge of the rest, beside the sell

    assert await stack.cycles(3) == [{}, {}, {}]
    assert emulator.position(PERP) == D("-0.5")  # 100% of what remains
    assert emulator.spot_balance("BTC") == D("0.5")
    assert len(spot_orders(emulator)) == 1
    assert_no_duplicate_orders(emulator)
    await assert_every_exchange_order_is_stored(stack, emulator)


async def test_a_spot_sell_whose_answer_is_lost_is_looked_up_never_sent_again(
    open_stack: Any,  # noqa: F811
    emulator: BinanceEmulator,
) -> None:
    stack = await open_stack(**BEARISH)
    emulator.inject(Fault.DROP_AFTER_ACCEPT, path="/api/v3/order", method="POST")
    with capture_logs() as logs:
        for _ in range(6):
            await stack.cycles(1)
    lost = [e for e in logs if e["event"] == "order.answer_lost"]
    assert len(lost) == 1  # the sell's answer was cut off after the exchange took it
    assert len(spot_orders(emulator)) == 1  # found by its client id, not resent
    assert emulator.spot_balance("BTC") == D("0.5")
    assert emulator.position(PERP) == D("-0.5")
    assert not await stack.repository.unresolved_orders()
    assert emulator.requests_to("/api/v3/order", "POST") == 1
    assert emulator.requests_to("/api/v3/order", "GET") >= 1  # the look-up
    assert_no_duplicate_orders(emulator)
    await assert_every_exchange_order_is_stored(stack, emulator)


async def test_an_unresolved_spot_sell_is_looked_up_on_the_spot_account_next_cycle(
    emulator: BinanceEmulator, engine: AsyncEngine
) -> None:
    # Spot on one exchange account, the perp on another: the sell goes to the spot
    # account, and so does the look-up of its lost answer.
    spot_venue = BinanceEmulator()
    await spot_venue.start()
    spot_venue.set_spot_balance("BTC", D(2))
    emulator.set_spot_balance("BTC", D(0))
    base = make_settings(emulator, **BEARISH)
    settings = base.model_copy(
        update={
            "pairs": [
                base.pairs[0].model_copy(update={"spot_account": "spot", "perp_account": "main"})
            ],
            "accounts": {
                "main": base.accounts["main"],
                "spot": base.accounts["main"].model_copy(
                    update={"ccxt_config": {**spot_venue.ccxt_config(), "timeout": 1000}}
                ),
            },
        }
    )
    clock = SystemClock()
    gateways = {
        name: CcxtGateway.from_config(name, account, "testnet", clock)
        for name, account in settings.accounts.items()
    }
    repository = Repository(engine, clock)
    try:
        daemon = HedgeDaemon(settings, repository, gateways, clock)
        await daemon.start()
        # The answer is cut off and every look-up in this cycle fails: outcome unknown.
        spot_venue.inject(Fault.DROP_AFTER_ACCEPT, path="/api/v3/order", method="POST")
        spot_venue.inject(Fault.SERVER_ERROR, path="/api/v3/order", method="GET", count=4)
        await daemon.run_cycle(1)
        [order] = [o for o in await repository.orders() if o.symbol == "BTC/USDT"]
        assert order.status == OrderStatus.UNKNOWN.value
        assert order.venue == "spot"
        # Next cycle: looked up on the spot account, found filled.
        for number in (2, 3, 4):
            report = await daemon.run_cycle(number)
            assert not report.errors, report.errors
        assert not await repository.unresolved_orders()
        assert len(spot_orders(spot_venue)) == 1
        assert spot_venue.spot_balance("BTC") == D(1)
        assert emulator.position(PERP) == D(-1)
        assert emulator.order_log
        assert all(e.venue == "futures" for e in emulator.order_log)
    finally:
        for gateway in gateways.values():
            await gateway.close()
        await spot_venue.stop()
