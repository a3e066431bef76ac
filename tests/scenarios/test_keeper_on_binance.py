"""The collateral keeper through ccxt against the Binance emulator (a classic account:
spot and USDⓈ-M futures apart): a 3x isolated short through +50 % and back; quote moves
spot -> futures (``POST /sapi/v1/asset/transfer``) and into the position, and back out
of it and to spot on the fall."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.store.repository import Repository
from tests.scenarios.on_binance import binance_daemon, keeper_settings
from tests.support.emulators.binance import BinanceEmulator

D = Decimal
PERP = "BTC/USDT:USDT"


@pytest_asyncio.fixture
async def keeping(
    emulator: BinanceEmulator, engine: AsyncEngine
) -> AsyncIterator[tuple[Any, Repository]]:
    settings = keeper_settings(emulator, 3, D(30000), D(20500), margin_mode="isolated")
    async with binance_daemon(settings, engine) as running:
        yield running


async def test_the_keeper_moves_quote_in_on_a_rally_and_out_on_the_fall_on_binance(
    keeping: tuple[Any, Repository], emulator: BinanceEmulator
) -> None:
    daemon, repository = keeping
    prices = [D(60000) * D("1.02") ** i for i in range(21)]  # to about +50 %
    prices += [prices[-1] * D("0.95") ** i for i in range(1, 9)]  # and about -34 % back
    for cycle, price in enumerate(prices, start=1):
        emulator.set_price("BTC", price.quantize(D("0.1")), Decimal(0))
        report = await daemon.run_cycle(cycle)
        assert report.errors == {}, report.errors
        assert emulator.position(PERP) < 0  # still short: never liquidated nor closed

    kinds = [e.data["kind"] for e in await repository.audit_events(kind="margin.done")]
    assert "to_futures" in kinds
    assert "add_margin" in kinds
    assert "remove_margin" in kinds[kinds.index("add_margin") :]
    assert await repository.audit_events(kind="margin.failed") == []
    routes = {row.type for row in emulator._engine.wallet_transfers}
    assert "MAIN_UMFUTURE" in routes
    assert "UMFUTURE_MAIN" in routes
