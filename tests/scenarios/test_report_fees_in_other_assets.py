"""Fees and funding paid in another asset than the quote are converted at their time with
a price the daemon stored, or shown per asset, never added as if they were quote; the
spot sales of a sell-down count in the PnL and their fees in ``net``."""

from __future__ import annotations

from decimal import Decimal

from bot.domain.models import Side
from bot.store.repository import Repository
from tests.support.report_records import PERP, SPOT, at, observe, pay_funding, trade

D = Decimal


async def hedged(repository: Repository, fee: str = "0", fee_asset: str = "USDT") -> None:
    """1 BTC held and shorted at 60000 inside the first minute (paying ``fee``), 61000 at
    the end."""
    await observe(repository, "00", at(0), spot="1", perp="0", price="60000")
    await trade(
        repository,
        "00",
        at(0.5),
        symbol=PERP,
        side=Side.SELL,
        amount="1",
        price="60000",
        fee=fee,
        fee_asset=fee_asset,
    )
    await observe(repository, "01", at(1), spot="1", perp="-1", price="61000")


async def test_a_bnb_fee_is_converted_at_the_bnb_price_of_its_time(
    repository: Repository,
) -> None:
    await observe(
        repository,
        "b0",
        at(0.4),
        spot="0",
        perp="0",
        price="600",
        pair="BNB",
        spot_symbol="BNB/USDT",
        perp_symbol="BNB/USDT:USDT",
    )
    await hedged(repository, fee="0.05", fee_asset="BNB")
    report = {r.pair: r for r in await repository.report()}["BTC"]
    assert report.fees == D(30)  # 0.05 BNB x 600
    assert report.fees_unconverted == {}
    assert report.net == D(-30)  # spot +1000, perp -1000


async def test_a_fee_without_a_stored_price_is_shown_per_asset_not_summed(
    repository: Repository,
) -> None:
    await hedged(repository, fee="0.05", fee_asset="BNB")
    [report] = await repository.report()
    assert report.fees == 0
    assert report.fees_unconverted == {"BNB": D("0.05")}
    assert report.net == 0


async def test_funding_in_the_coin_is_converted_at_its_mark_price(
    repository: Repository,
) -> None:
    await hedged(repository)
    await pay_funding(repository, at(0.7), "0.0001", "BTC", mark_price="60500")
    await pay_funding(repository, at(0.8), "-0.00005", "BTC")  # no mark: the observed price
    [report] = await repository.report()
    assert report.funding == D("6.05") - D("3.05")  # 0.0001 x 60500, -0.00005 x 61000
    assert report.funding_unconverted == {}


async def test_a_spot_sale_counts_in_spot_pnl_and_its_fee_in_net(
    repository: Repository,
) -> None:
    await observe(repository, "00", at(0), spot="1", perp="-1", price="60000")
    # The outlook's sell-down sells half the spot at 60000 before the price rises.
    await trade(
        repository,
        "00",
        at(0.5),
        symbol=SPOT,
        side=Side.SELL,
        amount="0.5",
        price="60000",
        fee="15",
    )
    await observe(repository, "01", at(1), spot="0.5", perp="-1", price="61000")
    [report] = await repository.report()
    assert report.spot_pnl == D(500)  # the half sold at 60000 earned nothing after
    assert report.perp_pnl == D(-1000)
    assert report.fees == D(15)
    assert report.net == D(-515)
