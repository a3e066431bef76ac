"""Fixtures: real ccxt clients on the Binance and Bybit emulators.

The Binance emulator fixture (``emulator``) is shared from ``tests/conftest.py``; the
Bybit one (``bybit_emulator``) lives here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio

from tests.support.emulators.binance import BinanceEmulator
from tests.support.emulators.binance.binance_emulator import ccxt_client
from tests.support.emulators.bybit import BybitEmulator
from tests.support.emulators.bybit.bybit_emulator import ccxt_client as bybit_ccxt_client


@pytest_asyncio.fixture
async def binance(emulator: BinanceEmulator) -> AsyncIterator[Any]:
    """``ccxt.async_support.binance`` on the emulator, markets loaded, closed after.

    ccxt's own limiter stays on (``enableRateLimit``), but paced at 5 ms per cost unit
    instead of 50: Binance's heavy endpoints (cost 30) would otherwise stall each test
    for 1.5 s.
    """
    async with ccxt_client(emulator, rateLimit=5) as client:
        await client.load_markets()
        yield client


@pytest_asyncio.fixture
async def bybit_emulator() -> AsyncIterator[BybitEmulator]:
    """A started Bybit emulator (BTC and ETH: spot, perp; a BTC dated future)."""
    async with BybitEmulator() as emu:
        yield emu


@pytest_asyncio.fixture
async def bybit(bybit_emulator: BybitEmulator) -> AsyncIterator[Any]:
    """``ccxt.async_support.bybit`` on the Bybit emulator, markets loaded, closed after.

    ccxt's limiter stays on, paced at 1 ms per cost unit instead of 20: loading
    currencies costs 28 units, which would stall each test for half a second.
    """
    async with bybit_ccxt_client(bybit_emulator, rateLimit=1) as client:
        await client.load_markets()
        yield client
