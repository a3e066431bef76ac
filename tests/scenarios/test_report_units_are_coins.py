"""Fills are stored in the venue's unit (contracts); the report counts them in coins
(contracts x contract size), the unit of the observed position."""

from __future__ import annotations

from decimal import Decimal

from bot.domain.models import Decision, Market, Observation, Side
from bot.service.cycle.assess import Assessment
from bot.service.cycle.record import decision_record
from bot.service.cycle.view import PairView
from bot.store.repository import Repository
from tests.support import builders
from tests.support.report_records import PERP, SPOT, T0, at, observe, trade

D = Decimal


async def test_fills_of_a_market_of_0_01_contracts_count_in_coins(repository: Repository) -> None:
    # A contract is 0.01 BTC: the 1 BTC short is 100 contracts, closed by buying 100 at
    # 60003, 3 USDT above where it stood. The position is observed in BTC.
    await observe(repository, "00", at(0), spot="1", perp="-1", price="60000", contract_size="0.01")
    await trade(
        repository, "00", at(0.5), symbol=PERP, side=Side.BUY, amount="100", price="60003", fee="3"
    )
    await observe(repository, "01", at(1), spot="1", perp="0", price="61003", contract_size="0.01")
    [report] = await repository.report()
    assert report.perp_realized_pnl == D(-3)
    assert report.perp_unrealized_pnl == 0  # nothing is left open
    assert report.perp_pnl == D(-3)
    assert report.spot_pnl == D(1003)
    assert report.net == D(997)  # 1003 - 3 - fee 3


async def test_a_contract_size_of_one_is_the_coin_itself(repository: Repository) -> None:
    await observe(repository, "00", at(0), spot="1", perp="-1", price="60000")
    await trade(
        repository, "00", at(0.5), symbol=PERP, side=Side.BUY, amount="1", price="60003", fee="3"
    )
    await observe(repository, "01", at(1), spot="1", perp="0", price="61003")
    [report] = await repository.report()
    assert report.perp_pnl == D(-3)


async def test_the_record_stage_stores_the_contract_size_the_report_uses(
    repository: Repository,
) -> None:
    pair = builders.settings([builders.pair()]).pairs[0]
    market = Market(PERP, "BTC", "USDT", D(1), D("0.1"), contract_size=D("0.01"), is_perp=True)
    observation = Observation(
        "BTC", SPOT, PERP, D(1), D(-1), D(60000), D(60000), D(60000), D(0), T0
    )
    decision = Decision("BTC", D(0), D(1), D(-1), D("0.05"), "order", "close the hedge")
    record = decision_record(
        "00",
        PairView(pair, observation, market, None, None, None),
        Assessment("BTC", observation, decision, None, "order", "close"),
        cycle=1,
        mode="paper",
        context={"foreign_open_orders": 0, "lease": None},
    )
    assert record.contract_size == D("0.01")
    await repository.record_decision(record)
    await trade(
        repository, "00", at(0.5), symbol=PERP, side=Side.BUY, amount="100", price="60003", fee="3"
    )
    await observe(repository, "01", at(1), spot="1", perp="0", price="61003", contract_size="0.01")
    [report] = await repository.report()
    assert report.perp_pnl == D(-3)
