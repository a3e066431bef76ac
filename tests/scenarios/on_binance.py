"""The scenarios' daemon on Binance: testnet mode through the real ccxt client against the
emulator on 127.0.0.1, with 1 BTC on spot and 100,000 USDT of margin."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from bot.config import Settings
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
