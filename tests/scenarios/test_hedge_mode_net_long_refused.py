"""Hedge mode with a strategy that can ask for a net long is refused at start, in one line
naming the pair: in hedge mode hedgebot trades only the short side, so a target below 0
(a long perp) could never be reached — every such order would be rejected.

A strategy "can ask for a net long" when the lowest target ratio it can return
(``Strategy.lowest_ratio()``) is below 0: today only trend with ``bull_ratio < 0``
(allowed down to ``-max_net_long``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.clock import SystemClock
from bot.config import Settings
from bot.domain.strategies.registry import STRATEGIES, strategy_for
from bot.exchange.gateway import FatalError
from bot.service.wiring import BuiltDaemon, build_daemon
from bot.store.repository import Repository
from tests.scenarios.on_binance import binance_settings
from tests.support.builders import pair
from tests.support.emulators.binance import BinanceEmulator

D = Decimal
NET_LONG = {"strategy": "trend", "trend": {"bull_ratio": "-0.5", "max_net_long": "0.5"}}

Build = Callable[..., Any]


@pytest_asyncio.fixture
async def build(emulator: BinanceEmulator, engine: AsyncEngine) -> AsyncIterator[Build]:
    opened: list[BuiltDaemon] = []

    async def make(**extra: Any) -> BuiltDaemon:
        config = binance_settings(emulator, **extra)
        built = await build_daemon(config, Repository(engine, SystemClock()), SystemClock())
        opened.append(built)
        return built

    yield make
    for built in opened:
        await built.close_gateways()


async def test_hedge_mode_and_a_net_long_strategy_do_not_start(
    build: Build, emulator: BinanceEmulator
) -> None:
    emulator.set_dual_side_position(True)
    built = await build(**NET_LONG)

    with pytest.raises(FatalError) as refused:
        await built.daemon.start()

    message = str(refused.value)
    assert "\n" not in message
    assert "pair BTC" in message
    assert "hedge mode" in message
    assert "-0.5" in message
    assert [e for e in emulator.order_log if e.outcome == "accepted"] == []


async def test_one_way_mode_starts_the_same_strategy(
    build: Build, emulator: BinanceEmulator
) -> None:
    built = await build(**NET_LONG)
    await built.daemon.start()


async def test_hedge_mode_starts_a_strategy_that_stays_short(
    build: Build, emulator: BinanceEmulator
) -> None:
    emulator.set_dual_side_position(True)
    built = await build(strategy="trend")  # bull 0, bear 1: never a net long
    await built.daemon.start()


def test_only_a_strategy_whose_lowest_ratio_is_below_zero_asks_for_a_net_long() -> None:
    spec = Settings.model_validate({"pairs": [pair("BTC", **NET_LONG)]}).pairs[0]
    assert strategy_for(spec).lowest_ratio() == D("-0.5")
    for name in STRATEGIES:
        extra: dict[str, Any] = {"strategy": name}
        if name == "basis":
            extra["perp_symbol"] = "BTC/USDT:USDT-260327"
        spec = Settings.model_validate({"pairs": [pair("BTC", **extra)]}).pairs[0]
        assert strategy_for(spec).lowest_ratio() >= 0, name
