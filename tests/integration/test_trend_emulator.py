"""The trend strategy through the real ccxt client: Binance klines from the emulator."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from decimal import Decimal

import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.clock import SystemClock
from bot.exchange.candles import bar_start
from bot.exchange.ccxt_gateway import CcxtGateway
from bot.service.daemon import HedgeDaemon
from bot.service.describe import pair_statuses
from bot.store.repository import Repository
from tests.integration.test_daemon_emulator import make_settings
from tests.support.emulators.binance import BinanceEmulator

D = Decimal


class SeedingClock:
    """The emulator's clock: a chosen past time while history is seeded, then the wall clock."""

    def __init__(self) -> None:
        self.past: float | None = None

    def __call__(self) -> float:
        return time.time() if self.past is None else self.past


@pytest_asyncio.fixture
async def seeded() -> AsyncIterator[BinanceEmulator]:
    """An emulator whose BTC rose for 30 minutes and has fallen for the last 10."""
    start = time.time() - 40 * 60
    clock = SeedingClock()
    clock.past = start  # the emulator's own starting prices are history too
    emulator = BinanceEmulator(clock=clock)
    for minute in range(40):
        clock.past = start + minute * 60
        price = 60000 + 100 * minute if minute < 30 else 63000 - 400 * (minute - 29)
        emulator.set_price("BTC", D(price))
    clock.past = None
    emulator.set_spot_balance("BTC", D(1))
    emulator.set_futures_balance("USDT", D(100000))
    await emulator.start()
    try:
        yield emulator
    finally:
        await emulator.stop()


async def test_trend_reads_closed_binance_klines_once_per_candle_and_hedges_a_fall(
    seeded: BinanceEmulator, engine: AsyncEngine
) -> None:
    settings = make_settings(
        seeded, strategy="trend", trend={"timeframe": "1m", "fast": 3, "slow": 10}
    )
    gateway = CcxtGateway.from_config(
        "main", settings.accounts["main"], settings.mode, SystemClock()
    )
    repository = Repository(engine, SystemClock())
    try:
        daemon = HedgeDaemon(settings, repository, {"main": gateway}, SystemClock())
        await daemon.start()
        for cycle in (1, 2, 3):
            report = await daemon.run_cycle(cycle)
            assert not report.errors, report.errors
    finally:
        await gateway.close()

    klines = [path for _, path in seeded.request_log if path.endswith("/klines")]
    assert 1 <= len(klines) <= 2  # three cycles, at most one new minute between them
    status = (await pair_statuses(repository))[0]
    assert status.strategy_detail == "trend bear"
    assert status.hedge_qty == D(1)
    strategy = (await repository.audit_events("BTC", "decision", None, None))[-1].data["inputs"][
        "strategy"
    ]
    last_closed = datetime.fromisoformat(strategy["last_closed_open_time"])
    assert last_closed + timedelta(minutes=1) <= status.decided_at
    assert last_closed < bar_start(status.decided_at, timedelta(minutes=1))
    assert D(strategy["fast_ma"]) < D(strategy["slow_ma"])
