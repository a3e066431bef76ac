"""The report reads the observations and fills raw (no per-value type processing) and
makes them the store's types itself: the same Decimals and UTC datetimes the tables'
types give, on SQLite (text) and on Postgres (numeric cast to text, timestamptz)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select

from bot.domain.models import Side
from bot.domain.report import ReportPoint
from bot.store.report_series import load_report_series
from bot.store.repository import Repository
from bot.store.tables import FillRow, ObservationRow
from tests.support.report_records import PERP, T0, observe, trade

# Integers with trailing zeros (60000, not 6E+4), small and long fractions, negative, zero.
FIGURES = [
    ("1", "-1", "60000", None),
    ("0", "0", "59999.99999999", "60000.5"),
    ("0.00000001", "-123456789.123456789", "0.1", "100"),
    ("2.50", "-2.5", "60000.000000000000000001", None),
]


async def test_the_raw_points_and_fills_are_what_the_tables_types_read(
    repository: Repository,
) -> None:
    for number, (spot, perp, price, spot_price) in enumerate(FIGURES):
        # A whole second (no microseconds stored as zeros) and a fraction of one.
        when = T0 + timedelta(minutes=number, microseconds=number * 250_001)
        await observe(
            repository, f"0{number}", when, spot=spot, perp=perp, price=price, spot_price=spot_price
        )
    await trade(
        repository,
        "02",
        T0 + timedelta(minutes=2, seconds=1),
        symbol=PERP,
        side=Side.SELL,
        amount="0.010",
        price="60000.10",
        fee="0.0060",
    )
    async with repository._read() as session:
        series = await load_report_series(session, None, None)
        rows = (await session.execute(select(ObservationRow).order_by(ObservationRow.id))).scalars()
        expected = [
            ReportPoint(r.observed_at, r.spot_qty, r.perp_qty, r.price, r.spot_price) for r in rows
        ]
        stored = (await session.execute(select(FillRow))).scalar_one()
        size = (await session.get_one(ObservationRow, "02")).contract_size
    points = series.points["BTC"]
    assert [repr(p) for p in points] == [repr(p) for p in expected]
    assert all(p.at.tzinfo is not None and p.at.utcoffset() == timedelta(0) for p in points)
    [fill] = series.fills["BTC"]
    assert (repr(fill.qty), repr(fill.price), repr(fill.fee), fill.at) == (
        repr(-(stored.amount * (size or Decimal(1)))),
        repr(stored.price),
        repr(stored.fee),
        stored.filled_at,
    )
