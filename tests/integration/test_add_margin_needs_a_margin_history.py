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
