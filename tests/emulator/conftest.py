"""Fixtures: a real ccxt client on the Binance emulator (the emulator fixture is shared)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio

from tests.support.emulators.binance import BinanceEmulator
from tests.support.emulators.binance.binance_emulator import ccxt_client


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
