"""The guard may move margin only where a transfer whose answer was lost can be looked
up: on a venue without a margin history (Bybit through ccxt) `add_margin` is refused at
start in one line, before anything is sent."""

from __future__ import annotations

import pytest

from bot.clock import FakeClock
from bot.exchange.gateway import FatalError
from bot.exchange.paper import PaperVenue
from bot.service.wiring import build_daemon
from bot.store.repository import Repository
from tests.support import builders


class NoMarginHistory(PaperVenue):
    """A venue that cannot list its margin changes (as ccxt's bybit)."""

    @property
    def has_margin_history(self) -> bool:
        return False


@pytest.mark.parametrize("mode", ["add_margin", "reduce"])
async def test_add_margin_is_refused_at_start_on_a_venue_without_margin_history(
    repository: Repository, clock: FakeClock, mode: str
) -> None:
    config = builders.settings([builders.pair("BTC")], {"on_liquidation_risk": mode})
    built = await build_daemon(config, repository, clock, venue_class=NoMarginHistory)
    try:
        if mode == "reduce":
            await built.daemon.start()  # closing needs no margin history
            return
        with pytest.raises(FatalError) as refused:
            await built.daemon.start()
    finally:
        await built.close_gateways()
    assert str(refused.value) == (
        "account paper: on_liquidation_risk 'add_margin' needs the venue's margin history "
        "to look up a transfer whose answer was lost, and ccxt reads none there; set "
        "risk.on_liquidation_risk = 'reduce'"
    )
    assert await repository.orders() == []


class OneWallet(PaperVenue):
    """A venue without separate wallets to transfer between (as ccxt's bybit, okx)."""

    @property
    def separate_wallets(self) -> bool:
        return False


async def test_keep_is_refused_at_start_on_a_venue_without_separate_wallets(
    repository: Repository, clock: FakeClock
) -> None:
    config = builders.settings(
        [builders.pair("BTC")],
        {"on_liquidation_risk": "keep"},
        separate_wallets=True,
        futures_balances={"USDT": "10000"},
    )
    built = await build_daemon(config, repository, clock, venue_class=OneWallet)
    try:
        with pytest.raises(FatalError) as refused:
            await built.daemon.start()
    finally:
        await built.close_gateways()
    assert str(refused.value) == (
        "account paper: on_liquidation_risk 'keep' moves quote between separate spot and "
        "futures wallets, and this venue keeps none hedgebot can transfer between; set "
        "risk.on_liquidation_risk = 'reduce'"
    )
    assert await repository.orders() == []
