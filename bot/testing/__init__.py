"""Test doubles that run in-process: an emulator of Binance's REST API for ccxt."""

from bot.testing._binance_models import (
    EmulatedMarket,
    EmulatedOrder,
    Fault,
    Fill,
    OrderLogEntry,
)
from bot.testing.binance_emulator import BinanceEmulator

__all__ = [
    "BinanceEmulator",
    "EmulatedMarket",
    "EmulatedOrder",
    "Fault",
    "Fill",
    "OrderLogEntry",
]
