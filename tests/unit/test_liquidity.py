from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.liquidity import estimate_slippage, largest_amount_within
from bot.domain.models import BookLevel, OrderBook, Side

D = Decimal
AT = datetime(2026, 1, 1, tzinfo=UTC)


def book(bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> OrderBook:
    return OrderBook(
        "BTC/USDT:USDT",
        tuple(BookLevel(D(p), D(a)) for p, a in bids),
        tuple(BookLevel(D(p), D(a)) for p, a in asks),
        AT,
    )


BOOK = book(
    bids=[("100", "1"), ("99", "1"), ("98", "2")],
    asks=[("101", "1"), ("102", "1"), ("104", "2")],
)


def test_order_inside_the_top_level_has_no_slippage() -> None:
    estimate = estimate_slippage(BOOK, Side.BUY, D("0.5"))
    assert estimate is not None
    assert estimate.average_price == D(101)
    assert estimate.slippage_bps == 0
    assert estimate.complete


def test_buy_walking_two_levels_averages_them() -> None:
    # 1 @ 101 + 1 @ 102 = 203 / 2 = 101.5: 0.5 / 101 = 49.5 bps
    estimate = estimate_slippage(BOOK, Side.BUY, D(2))
    assert estimate is not None
    assert estimate.average_price == D("101.5")
    assert estimate.slippage_bps.quantize(D("0.01")) == D("49.50")


def test_sell_walks_the_bids_downwards() -> None:
    # 1 @ 100 + 1 @ 99 + 1 @ 98 = 297 / 3 = 99: 1 / 100 = 100 bps
    estimate = estimate_slippage(BOOK, Side.SELL, D(3))
    assert estimate is not None
    assert estimate.average_price == D(99)
    assert estimate.slippage_bps == D(100)


def test_order_larger_than_the_book_is_incomplete() -> None:
    estimate = estimate_slippage(BOOK, Side.SELL, D(10))
    assert estimate is not None
    assert not estimate.complete
    assert estimate.available == D(4)


def test_empty_side_gives_no_estimate() -> None:
    assert estimate_slippage(book([], []), Side.BUY, D(1)) is None
    assert largest_amount_within(book([], []), Side.BUY, D(10), D("0.001")) == 0


def test_largest_amount_within_solves_inside_a_level() -> None:
    # Average may reach 101 x 1.005 = 101.505: 1 @ 101 and 1 @ 102 average 101.5, then
    # x @ 104 with (203 + 104 x) / (2 + x) = 101.505 -> x = 0.01 / 2.495 = 0.004
    amount = largest_amount_within(BOOK, Side.BUY, D(50), D("0.001"))
    assert amount == D("2.004")


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.decimals(min_value=D("0.001"), max_value=D(5), places=3), min_size=1, max_size=8),
    st.decimals(min_value=D("0.1"), max_value=D(200), places=1),
)
def test_the_largest_amount_within_the_limit_stays_within_it(
    sizes: list[Decimal], max_bps: Decimal
) -> None:
    asks = tuple(BookLevel(D(100) + i, size) for i, size in enumerate(sizes))
    ladder = OrderBook("X", (), asks, AT)
    amount = largest_amount_within(ladder, Side.BUY, max_bps, D("0.001"))
    if amount > 0:
        estimate = estimate_slippage(ladder, Side.BUY, amount)
        assert estimate is not None
        assert estimate.complete
        assert estimate.slippage_bps <= max_bps
