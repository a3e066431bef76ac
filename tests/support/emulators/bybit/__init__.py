"""Test doubles that run in-process: an emulator of Bybit's v5 REST API for ccxt."""

from tests.support.emulators.bybit._bybit_models import (
    EmulatedMarket,
    EmulatedOrder,
    Execution,
    Fault,
    OrderLogEntry,
)
from tests.support.emulators.bybit.bybit_emulator import BybitEmulator, generated_markets

__all__ = [
    "BybitEmulator",
    "EmulatedMarket",
    "EmulatedOrder",
    "Execution",
    "Fault",
    "OrderLogEntry",
    "generated_markets",
]
