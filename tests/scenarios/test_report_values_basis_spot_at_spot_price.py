"""A basis pair's spot is valued at the spot price observed with it, not at the dated
future's; observations stored before the spot price was kept are counted, not hidden."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from bot.cli import render
from bot.clock import FakeClock
from bot.exchange.feeds import ManualFeed
from bot.store.repository import Repository
from tests.support import builders
from tests.support.report_records import MARCH, T0, at, observe, observe_basis

D = Decimal


async def test_a_basis_pairs_spot_is_valued_at_the_spot_price(repository: Repository) -> None:
    # 1 BTC held, 1 BTC short of the March future; the future's premium shrinks from 1000
    # to 500 while the spot gains 700: the hedge earned the 500 of basis it gave up.
    await observe_basis(repository, [(60000, 61000), (60800, 61500), (60700, 61200)], perp="-1")
    [report] = await repository.report()
    assert report.spot_pnl == D(700)  # 60000 -> 60700, not the future's 61000 -> 61200
    assert report.perp_pnl == D(-200)
    assert report.net == D(500)
    assert report.unpriced_spot == 0


async def test_observations_without_a_spot_price_are_counted_and_said(
    repository: Repository,
) -> None:
    # Two rows recorded before the spot price was stored, then one with it.
    await observe(repository, "00", at(0), spot="1", perp="-1", price="61000", perp_symbol=MARCH)
    await observe(repository, "01", at(1), spot="1", perp="-1", price="61500", perp_symbol=MARCH)
    await observe(
        repository,
        "02",
        at(2),
        spot="1",
        perp="-1",
        price="61200",
        spot_price="60700",
        perp_symbol=MARCH,
    )
    [report] = await repository.report()
    assert report.unpriced_spot == 2
    row = render.report_json(report)
    assert row["unpriced_spot"] == 2
    assert render.report_notes([row]) == [
        "BTC: 2 of 3 observations have no spot price (stored before it was kept, or not "
        "observed): their spot is valued at the contract's price"
    ]


async def test_the_daemon_stores_the_spot_price_a_basis_pair_is_valued_at(
    repository: Repository,
) -> None:
    # The December future at a 10 % basis over the spot; 2 BTC held and shorted.
    dec, expiry = "BTC/USDT:USDT-260215", T0 + timedelta(days=45)
    pair = builders.pair(
        perp_symbol=dec,
        leverage="1",
        min_notional="1",
        strategy="basis",
        basis={"entry_apr": "0.05", "close_before_s": 3600, "at_expiry": "close"},
    )
    config = builders.settings(
        [pair],
        balances={"BTC": "2", "USDT": "200000"},
        markets={dec: {"expiry": expiry, "basis_apr": "0.10"}},
    )
    clock, feed = FakeClock(T0), ManualFeed({"BTC": D(60000)})
    daemon, _venue = await builders.open_daemon(config, repository, clock, feed)
    for number, spot in enumerate([60000, 61000, 60500], start=1):
        feed.set_price("BTC", D(spot))
        assert not (await daemon.run_cycle(number)).errors
        clock.advance(86400)
    [report] = await repository.report()
    assert report.unpriced_spot == 0
    assert report.spot_pnl == 2 * D(60500 - 60000)  # the spot's move, not the future's
    assert report.start_price is not None
    assert report.start_price > D(60000)  # the report's price is the future's
