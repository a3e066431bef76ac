"""Many funding payments stored in one transaction, each still only once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from bot.domain.models import FundingPayment
from bot.store.repository import Repository

T0 = datetime(2026, 1, 1, 8, tzinfo=UTC)


def payment(hours: int, amount: str, symbol: str = "BTC/USDT:USDT") -> FundingPayment:
    return FundingPayment(
        symbol,
        Decimal(amount),
        "USDT",
        Decimal("0.0001"),
        Decimal(-1),
        Decimal(60000),
        T0 + timedelta(hours=hours),
    )


async def test_a_batch_stores_the_new_payments_and_skips_the_stored_ones(
    repository: Repository,
) -> None:
    assert await repository.record_funding("BTC", "paper", payment(0, "0.6")) is True

    batch = [
        ("BTC", payment(0, "0.6")),  # stored already
        ("BTC", payment(8, "0.5")),
        ("BTC", payment(16, "-0.2")),
        ("ETH", payment(16, "0.3", "ETH/USDT:USDT")),
        ("BTC", payment(16, "-0.2")),  # twice in the batch
    ]
    assert len(await repository.record_fundings("paper", batch)) == 3

    assert await repository.funding_total("BTC") == Decimal("0.9")
    assert await repository.funding_total("ETH") == Decimal("0.3")
    funding_events = await repository.audit_events(kind="funding")
    assert len(funding_events) == 4
    assert funding_events[-1].summary == (
        "funding received 0.3 USDT on ETH/USDT:USDT (-1 at rate 0.0001)"
    )


async def test_the_same_batch_twice_stores_nothing_the_second_time(
    repository: Repository,
) -> None:
    batch = [("BTC", payment(h, "0.1")) for h in (0, 8, 16)]

    assert len(await repository.record_fundings("paper", batch)) == 3
    assert await repository.record_fundings("paper", batch) == []
    assert await repository.funding_total("BTC") == Decimal("0.3")
