"""Stored series for the report's tests: observations, orders with one fill, funding.

Each helper writes through the repository the way the daemon does, so a test's report is
read from the same rows (and units) as a real one.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from bot.domain.models import (
    Decision,
    Fill,
    FundingPayment,
    Observation,
    OrderRequest,
    OrderResult,
    OrderStatus,
    Side,
)
from bot.store.repository import DecisionRecord, Repository

D = Decimal
T0 = datetime(2026, 1, 1, tzinfo=UTC)
PERP = "BTC/USDT:USDT"
SPOT = "BTC/USDT"
MARCH = "BTC/USDT:USDT-260327"


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


async def observe(
    repository: Repository,
    decision_id: str,
    when: datetime,
    *,
    spot: str,
    perp: str,
    price: str,
    spot_price: str | None = None,
    contract_size: str = "1",
    pair: str = "BTC",
    spot_symbol: str = SPOT,
    perp_symbol: str = PERP,
) -> None:
    """Store one observation (and its decision) as the daemon's record stage does."""
    observation = Observation(
        pair=pair,
        spot_symbol=spot_symbol,
        perp_symbol=perp_symbol,
        spot_qty=D(spot),
        perp_qty=D(perp),
        price=D(price),
        bid=D(price),
        ask=D(price),
        funding_rate=D(0),
        observed_at=when,
        spot_price=None if spot_price is None else D(spot_price),
    )
    decision = Decision(pair, D(1), None, D(0), D("0.05"), "none", "test")
    await repository.record_decision(
        DecisionRecord(
            decision_id,
            observation,
            1,
            "paper",
            decision,
            "order",
            None,
            {},
            "s",
            contract_size=D(contract_size),
        )
    )


async def observe_basis(
    repository: Repository, prices: list[tuple[int, int]], *, perp: str
) -> None:
    """A basis pair on the March future, 1 BTC held and ``perp`` of the future, observed
    once a minute at each (spot price, future price)."""
    for number, (spot, future) in enumerate(prices):
        await observe(
            repository,
            f"0{number}",
            at(number),
            spot="1",
            perp=perp,
            price=str(future),
            spot_price=str(spot),
            perp_symbol=MARCH,
        )


async def trade(
    repository: Repository,
    decision_id: str,
    when: datetime,
    *,
    symbol: str,
    side: Side,
    amount: str,
    price: str,
    fee: str,
    fee_asset: str = "USDT",
    pair: str = "BTC",
) -> None:
    """Store an order of ``decision_id`` (already observed) filled at once: ``amount`` in
    the venue's unit (contracts of a contract, coins of spot), as the executor stores it."""
    coid = f"hb-{decision_id}"
    request = OrderRequest(symbol=symbol, side=side, amount=D(amount), client_order_id=coid)
    await repository.insert_order_intent(decision_id, pair, "paper", request)
    fill = Fill(f"t-{decision_id}", symbol, side, D(amount), D(price), D(fee), fee_asset, when)
    result = OrderResult(
        coid,
        f"x-{decision_id}",
        symbol,
        side,
        OrderStatus.FILLED,
        D(amount),
        D(amount),
        D(price),
        D(fee),
        fee_asset,
        (fill,),
    )
    await repository.record_order_result(pair, decision_id, result)


async def pay_funding(
    repository: Repository,
    when: datetime,
    amount: str,
    asset: str = "USDT",
    *,
    mark_price: str | None = None,
    pair: str = "BTC",
    symbol: str = PERP,
) -> None:
    payment = FundingPayment(
        symbol, D(amount), asset, None, None, None if mark_price is None else D(mark_price), when
    )
    assert await repository.record_funding(pair, "paper", payment)
