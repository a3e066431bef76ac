"""The scenarios' daemon on Binance: testnet mode through the real ccxt client against the
emulator on 127.0.0.1, with 1 BTC on spot and 100,000 USDT of margin; and a running
daemon on such settings (``binance_daemon``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.clock import SystemClock
from bot.config import Settings
from bot.exchange.ccxt_gateway import CcxtGateway
from bot.service.daemon import HedgeDaemon
from bot.service.wiring import build_daemon
from bot.store.repository import Repository
from tests.support.builders import pair
from tests.support.emulators.binance import BinanceEmulator


def binance_settings(emulator: BinanceEmulator, **extra: Any) -> Settings:
    """One BTC pair (``extra`` on top) on the emulator's account ``main``, funded."""
    emulator.set_spot_balance("BTC", Decimal(1))
    emulator.set_futures_balance("USDT", Decimal(100000))
    return Settings(
        mode="testnet",
        poll_interval_s=1,
        pairs=[pair("BTC", max_order_notional="200000", leverage="2", **extra)],
        accounts={
            "main": {
                "exchange": "binance",
                "api_key": "test-key",
                "secret": "test-secret",
                "ccxt_config": {**emulator.ccxt_config(), "timeout": 1000},
                "rate_limit_per_s": "500",
            }
        },
        # The emulator answers or drops at once: an unknown order is lost after 1 s.
        risk={"max_data_age_s": "30", "order_settle_s": "1"},
    )


def keeper_settings(
    emulator: BinanceEmulator,
    leverage: int,
    spot_usdt: Decimal,
    futures_usdt: Decimal,
    **extra: Any,
) -> Settings:
    """``binance_settings`` with the collateral keeper (``on_liquidation_risk = "keep"``)
    at ``leverage``: ``spot_usdt`` on spot beside the coin, ``futures_usdt`` in the
    USDⓈ-M wallet."""
    data = binance_settings(emulator, **extra).model_dump()
    emulator.set_spot_balance("USDT", spot_usdt)
    emulator.set_futures_balance("USDT", futures_usdt)
    data["pairs"][0]["leverage"] = Decimal(leverage)
    data["risk"]["on_liquidation_risk"] = "keep"
    return Settings.model_validate(data)


@asynccontextmanager
async def binance_daemon(
    settings: Settings, engine: AsyncEngine, *, funding_every_cycle: bool = False
) -> AsyncIterator[tuple[HedgeDaemon, Repository]]:
    """The daemon on ``settings``, started, with its repository; gateways closed after.
    ``funding_every_cycle``: the gateway asks for the funding history at every cycle
    (not once per FUNDING_POLL of wall time: the scenarios' cycles take milliseconds)."""
    repository = Repository(engine, SystemClock())
    built = await build_daemon(settings, repository, SystemClock())
    if funding_every_cycle:
        for gateway in built.gateways.values():
            assert isinstance(gateway, CcxtGateway)
            gateway.funding_poll = timedelta(0)
    await built.daemon.start()
    try:
        yield built.daemon, repository
    finally:
        await built.close_gateways()
