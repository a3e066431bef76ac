from datetime import UTC, datetime, timedelta
from decimal import Decimal

from bot.domain.report import (
    PRICE_WINDOW,
    PairAssets,
    PriceBook,
    ReportFill,
    ReportFunding,
    ReportPoint,
    hedge_effectiveness,
    pair_report,
)

D = Decimal
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def series(prices: list[int], spot: str, perp: str) -> list[ReportPoint]:
    return [
        ReportPoint(T0 + timedelta(minutes=i), D(spot), D(perp), D(p)) for i, p in enumerate(prices)
    ]


PRICES = [60000, 61000, 59000, 62000]


def test_full_hedge_removes_all_of_the_spot_variance() -> None:
    assert hedge_effectiveness(series(PRICES, "1", "-1")) == 1


def test_without_a_spot_price_a_half_hedge_moves_with_the_spot_and_removes_three_quarters() -> None:
    # No spot price stored: the spot is valued at the contract's price, so both legs move
    # alike (a basis that moves is measured in tests/scenarios).
    assert hedge_effectiveness(series(PRICES, "1", "-0.5")) == D("0.75")


def test_no_hedge_removes_nothing_and_a_double_short_adds_it_back() -> None:
    assert hedge_effectiveness(series(PRICES, "1", "0")) == 0
    assert hedge_effectiveness(series(PRICES, "1", "-2")) == 0  # |1 - 2| = 1: same variance


def test_effectiveness_is_unknown_without_price_moves() -> None:
    assert hedge_effectiveness(series([60000, 60000], "1", "-1")) is None
    assert hedge_effectiveness(series([60000], "1", "-1")) is None


def test_half_hedged_pnl_by_hand() -> None:
    points = series(PRICES, "1", "0")[:1] + series(PRICES, "1", "-0.5")[1:]
    # Sold 0.5 at 60000 just after the first observation, fee 15.
    fills = [ReportFill(T0 + timedelta(seconds=1), D("-0.5"), D(60000), D(15))]
    funding = [ReportFunding(T0 + timedelta(minutes=2), D("3.1"))]
    report = pair_report("BTC", points, fills, funding, None, T0 + timedelta(hours=1))
    assert report.spot_pnl == D(2000)  # 1 BTC from 60000 to 62000
    assert report.perp_realized_pnl == 0
    assert report.perp_unrealized_pnl == D(-1000)  # -0.5 x (62000 - 60000)
    assert report.fees == D(15)
    assert report.funding == D("3.1")
    assert report.net == D("988.1")


def test_a_reduction_realizes_pnl_at_the_average_entry() -> None:
    points = series([60000, 62000], "1", "-1")
    fills = [
        ReportFill(T0 + timedelta(seconds=1), D(-1), D(61000), D(0)),  # entry 60500 on 2
        ReportFill(T0 + timedelta(seconds=2), D("1.5"), D(62000), D(0)),  # closes 1.5
    ]
    report = pair_report("BTC", points, fills, [], None, T0)
    assert report.perp_realized_pnl == D("-2250")  # 1.5 x (60500 - 62000)
    assert report.perp_unrealized_pnl == D(-750)  # -0.5 x (62000 - 60500)


def test_a_fee_in_another_asset_takes_a_price_only_from_near_its_time() -> None:
    points = series(PRICES, "1", "-1")
    fill_at = T0 + timedelta(seconds=30)
    fills = [ReportFill(fill_at, D(-1), D(60000), D("0.05"), "BNB")]
    assets = PairAssets("BTC", "USDT")
    near = PriceBook({"BNB": [(fill_at - PRICE_WINDOW, D(600))]})
    far = PriceBook({"BNB": [(fill_at - PRICE_WINDOW - timedelta(seconds=1), D(600))]})
    converted = pair_report("BTC", points, fills, [], None, T0, assets=assets, prices=near)
    assert (converted.fees, converted.fees_unconverted) == (D(30), {})
    left = pair_report("BTC", points, fills, [], None, T0, assets=assets, prices=far)
    assert (left.fees, left.fees_unconverted) == (0, {"BNB": D("0.05")})


def test_a_fee_in_the_coin_is_converted_at_its_fills_price() -> None:
    points = series(PRICES, "1", "-1")
    fills = [ReportFill(T0, D("0.5"), D(60000), D("0.0005"), "BTC", spot=True)]
    report = pair_report("BTC", points, fills, [], None, T0, assets=PairAssets("BTC", "USDT"))
    assert report.fees == D(30)
