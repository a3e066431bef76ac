"""Spot as collateral (issue 15 item 2): the coins a pair hedges are counted across the
wallets the user names for it, so moving coins between them changes nothing.

On a classic account (separate spot and USDⓈ-M futures wallets) a user who moves half of
their BTC into the futures wallet, as collateral (Binance's multi-assets mode takes it
there), still holds that BTC. Before ``coin_wallets``, the daemon counted the spot wallet
only: it read the transfer as a sale and bought back half the hedge, leaving 0.5 BTC
unhedged. With ``coin_wallets = ["spot", "futures"]`` the hedge stays whole.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from bot.clock import FakeClock
from bot.exchange.feeds import ManualFeed
from bot.store.repository import Repository
from tests.support import builders
from tests.support.builders import open_daemon

D = Decimal
PERP = "BTC/USDT:USDT"


async def hedge_after_moving_half_the_coins(
    repository: Repository, clock: FakeClock, **pair: object
) -> Decimal:
    config = builders.settings(
        [builders.pair(leverage="2", **pair)],
        balances={"BTC": "1", "USDT": "1000"},
        separate_wallets=True,
        futures_balances={"USDT": "40000"},
    )
    daemon, venue = await open_daemon(config, repository, clock, ManualFeed({"BTC": D(60000)}))
    report = await daemon.run_cycle(1)
    assert not report.errors, report.errors
    assert (await venue.fetch_positions([PERP]))[PERP].qty == D(-1)

    await venue.transfer("BTC", D("0.5"), "spot", "futures", "user-move-1")
    for cycle in (2, 3):
        clock.advance(10)
        report = await daemon.run_cycle(cycle)
        assert not report.errors, report.errors
    position = (await venue.fetch_positions([PERP])).get(PERP)
    return position.qty if position else D(0)


async def test_coins_moved_into_the_futures_wallet_stay_hedged_when_the_pair_names_it(
    repository: Repository, clock: FakeClock
) -> None:
    qty = await hedge_after_moving_half_the_coins(
        repository, clock, coin_wallets=["spot", "futures"]
    )

    assert qty == D(-1)
    decisions = await repository.audit_events(kind="decision")
    assert "ratio 1.0000 within target 1.0000" in decisions[-1].summary


async def test_by_default_only_the_spot_wallet_is_counted(
    repository: Repository, clock: FakeClock
) -> None:
    # The default keeps what the venue's spot wallet holds: the moved coins are not seen.
    assert await hedge_after_moving_half_the_coins(repository, clock) == D("-0.5")


def test_coin_wallets_must_name_a_wallet_once() -> None:
    with pytest.raises(ValidationError, match="coin_wallets"):
        builders.settings([builders.pair(coin_wallets=[])])
    with pytest.raises(ValidationError, match="coin_wallets"):
        builders.settings([builders.pair(coin_wallets=["spot", "spot"])])
