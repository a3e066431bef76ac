"""Every margin model keeps the hedge alive through a rally and a crash (issue 15 item 4).

1 BTC at 60,000, hedged 1:1, taken through +50 % and +100 % within a day (2 % a cycle,
a cycle every 20 minutes) and then down to 30,000 (-50 % from the start), on the paper
venue through the daemon, once per margin model:

* isolated 3x with the collateral keeper (separate spot and futures wallets);
* cross 3x with the keeper (the futures wallet's quote backs the short; the keeper tops
  it up from the spot wallet);
* unified 2x: the coin backs its own short at its collateral ratio;
* inverse 1x (``BTC/USD:BTC``): the coins are the margin (its own module proves the USD
  value; here the common checks).

For each: nothing is liquidated, the ratio is inside the band after every cycle, and the
report attributes the money: spot PnL + perp PnL + funding - fees equals the account's
change in value over the run (the transfers between wallets move money, they make none).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from bot.clock import FakeClock
from bot.config import Settings
from bot.exchange.feeds import ManualFeed
from bot.exchange.paper import PaperVenue
from bot.store.repository import Repository
from tests.support import builders
from tests.support.builders import open_daemon

D = Decimal
START = datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC)
BAND = D("0.05")
CYCLE_S = 1200  # 20 minutes


@dataclass(frozen=True)
class Model:
    name: str
    pair: dict[str, Any]
    risk: dict[str, Any]
    paper: dict[str, Any]


KEEP = {"on_liquidation_risk": "keep", "min_liquidation_distance": "0.1"}
MODELS = [
    Model(
        "isolated 3x, keeper",
        {"leverage": "3", "margin_mode": "isolated", "allow_spot_trades": True},
        KEEP,
        {
            "balances": {"BTC": "1", "USDT": "30000"},
            "separate_wallets": True,
            "futures_balances": {"USDT": "20500"},
        },
    ),
    Model(
        "cross 3x, keeper",
        {"leverage": "3", "margin_mode": "cross", "allow_spot_trades": True},
        KEEP,
        {
            "account": "cross",
            "balances": {"BTC": "1", "USDT": "30000"},
            "separate_wallets": True,
            "futures_balances": {"USDT": "20500"},
        },
    ),
    Model(
        "unified 2x",
        {"leverage": "2", "margin_mode": "cross"},
        {},
        {"account": "unified", "balances": {"BTC": "1", "USDT": "1000"}},
    ),
]


def path() -> list[Decimal]:
    """60,000 -> 120,000 in 2 % steps (35 cycles, 12 hours), then -> 30,000 in 4 %."""
    prices = [D(60000)]
    while prices[-1] < D(120000):
        prices.append(min((prices[-1] * D("1.02")).quantize(D(1)), D(120000)))
    while prices[-1] > D(30000):
        prices.append(max((prices[-1] * D("0.96")).quantize(D(1)), D(30000)))
    return prices


def config(model: Model) -> Settings:
    return builders.settings(
        [builders.pair(band=str(BAND), **model.pair)],
        {"max_data_age_s": "7200", **model.risk},
        taker_fee_rate="0.0005",
        **model.paper,
    )


async def ratio(venue: PaperVenue) -> Decimal:
    position = (await venue.fetch_positions(["BTC/USDT:USDT"])).get("BTC/USDT:USDT")
    spot = (await venue.fetch_balances())["BTC"].total
    return -(position.qty if position else D(0)) / spot


@pytest.mark.parametrize("model", MODELS, ids=[m.name for m in MODELS])
async def test_the_hedge_survives_plus_100_and_minus_50_percent(
    model: Model, repository: Repository, clock: FakeClock
) -> None:
    clock.advance((START - clock.now()).total_seconds())  # between funding times
    feed = ManualFeed({"BTC": D(60000)})
    daemon, venue = await open_daemon(config(model), repository, clock, feed)
    start_value = (await venue.account_summary()).equity
    ratios: list[Decimal] = []
    for cycle, price in enumerate(path(), start=1):
        feed.set_price("BTC", price)
        report = await daemon.run_cycle(cycle)
        assert not report.errors, report.errors
        ratios.append(await ratio(venue))
        clock.advance(CYCLE_S)
    end_value = (await venue.account_summary()).equity

    assert venue.liquidations() == []
    outside = [(i, r) for i, r in enumerate(ratios, start=1) if abs(r - 1) > BAND]
    assert outside == []
    [pair_report] = await repository.report("BTC")
    assert abs(pair_report.net - (end_value - start_value)) < D("0.01"), (
        pair_report,
        end_value - start_value,
    )


async def test_an_inverse_1x_hedge_survives_the_same_path_and_its_report_adds_up(
    repository: Repository, clock: FakeClock
) -> None:
    clock.advance((START - clock.now()).total_seconds())
    config = builders.settings(
        [
            builders.pair(
                perp_symbol="BTC/USD:BTC",
                leverage="1",
                band=str(BAND),
                min_notional="0",
                max_order_notional="1000000",
            )
        ],
        {"max_data_age_s": "7200"},
        balances={"USDT": "0"},
        coin_margin_balances={"BTC": "1.001"},
        taker_fee_rate="0.0005",
    )
    feed = ManualFeed({"BTC": D(60000)})
    daemon, venue = await open_daemon(config, repository, clock, feed)

    async def value(price: Decimal) -> Decimal:
        equity = (await venue.fetch_margin_balances())["BTC"].equity
        assert equity is not None
        return equity * price

    start_value = D("1.001") * D(60000)
    ratios: list[Decimal] = []
    for cycle, price in enumerate(path(), start=1):
        feed.set_price("BTC", price)
        report = await daemon.run_cycle(cycle)
        assert not report.errors, report.errors
        position = venue.state.inverse_positions.get("BTC/USD:BTC")
        face = -position.qty if position else D(0)
        ratios.append(face / await value(price))
        clock.advance(CYCLE_S)
    end_value = await value(path()[-1])

    assert venue.liquidations() == []
    assert [r for r in ratios[1:] if abs(r - 1) > BAND] == []
    [pair_report] = await repository.report("BTC")
    assert abs(pair_report.net - (end_value - start_value)) < D("0.01"), (
        pair_report,
        end_value - start_value,
    )
