"""Test doubles that run in-process: an emulator of Binance's REST API for ccxt."""

from tests.support.emulators.binance._binance_models import (
    EmulatedMarket,
    EmulatedOrder,
    Fault,
    Fill,
    OrderLogEntry,
)
from tests.support.emulators.binance.binance_emulator import BinanceEmulator

__all__ = [
    "BinanceEmulator",
    "EmulatedMarket",
    "EmulatedOrder",
    "Fault",
    "Fill",
    "OrderLogEntry",
]
