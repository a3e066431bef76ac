"""Test doubles that run in-process: an emulator of OKX's v5 REST API for ccxt."""

from tests.support.emulators.okx._okx_guard import Credentials
from tests.support.emulators.okx._okx_models import (
    DEFAULT_MARKETS,
    EmulatedOrder,
    Fault,
    OkxMarket,
    OrderLogEntry,
    generate_markets,
)
from tests.support.emulators.okx.okx_emulator import OkxEmulator

__all__ = [
    "DEFAULT_MARKETS",
    "Credentials",
    "EmulatedOrder",
    "Fault",
    "OkxEmulator",
    "OkxMarket",
    "OrderLogEntry",
    "generate_markets",
]
