"""Cross margin keeps the hedge through a rally and a crash on the Binance emulator (issue
15 item 4): through the real ccxt client, a classic account (spot and USDⓈ-M futures
apart), the pair on CROSSED margin with the USDT in the futures wallet backing the short.

1 BTC hedged 1:1 at 1x and at 2x from 60,000, taken through +50 % and +100 % (2 % a
cycle) and then down to 30,000 (-50 % from the start, 4 % a cycle), funding settled
every eight cycles. The futures wallet starts with the opening margin and a fifth; the
collateral keeper (``on_liquidation_risk = "keep"``) tops it up from the spot wallet's
USDT as the short's loss brings the cross liquidation price near, and sends the excess
back when the short is far from it (the emulator's cross liquidation price counts the
whole cross wallet; the mark past it liquidates).

For each: nothing is liquidated, the ratio is back inside the band after every cycle,
USDT moved spot -> futures on the rally, and the report attributes the money: spot PnL +
perp PnL + funding - fees is the account's change in value, and the transfers moved USDT
between the wallets (the spot wallet's USDT changed by exactly what they moved), making
none.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.domain.margin_transfers import TransferState
from tests.scenarios.on_binance import binance_daemon, keeper_settings
from tests.support.emulators.binance import BinanceEmulator

D = Decimal
PERP = "BTC/USDT:USDT"
START = D(60000)
BAND = D("0.05")
SPOT_USDT = D(60000)


def path() -> list[Decimal]:
    """60,000 -> 120,000 in 2 % steps, then -> 30,000 in 4 % steps."""
    prices = [START]
    while prices[-1] < 2 * START:
        prices.append(min((prices[-1] * D("1.02")).quantize(D(1)), 2 * START))
    while prices[-1] > START / 2:
        prices.append(max((prices[-1] * D("0.96")).quantize(D(1)), START / 2))
    return prices


def account_value(emulator: BinanceEmulator, price: Decimal) -> Decimal:
    """Both wallets, the coin at ``price`` (the report's), and the open position's
    unrealized PnL at the mark, in USDT."""
    futures = emulator._engine.futures_view(lagged=False)
    spot = emulator.spot_balance("BTC") * price + emulator.spot_balance("USDT")
    return spot + emulator.futures_balance("USDT") + futures.unrealized


@pytest.mark.parametrize("leverage", [1, 2])
async def test_a_cross_hedge_survives_plus_100_and_minus_50_percent_on_binance(
    leverage: int, emulator: BinanceEmulator, engine: AsyncEngine
) -> None:
    emulator.set_price("BTC", START, D(0))
    emulator.set_funding_rate("BTC", D("0.0001"))
    # Weeks of cycles (each reading the funding income, weight 30) played in seconds: more
    # weight a real minute than Binance allows, which is not what this test is about.
    emulator.fapi_limits.weight_limit = 100_000
    futures_usdt = START / leverage * D("1.2")  # the opening margin and a fifth
    settings = keeper_settings(
        emulator, leverage, SPOT_USDT, futures_usdt, margin_mode="cross", band=str(BAND)
    )
    start_usdt = SPOT_USDT + futures_usdt  # and the coin, valued at the report's first price
    ratios: list[Decimal] = []
    async with binance_daemon(settings, engine, funding_every_cycle=True) as (daemon, repository):
        for cycle, price in enumerate(path(), start=1):
            emulator.set_price("BTC", price, D(0))
            if cycle % 8 == 0:
                emulator.settle_funding()
            report = await daemon.run_cycle(cycle)
            assert report.errors == {}, report.errors
            ratios.append(-emulator.position(PERP) / emulator.spot_balance("BTC"))
        [pair_report] = await repository.report("BTC")
        transfers = await repository.margin_transfers()

    assert emulator._engine.margin_type["BTCUSDT"] == "CROSSED"
    assert emulator.liquidations == []
    assert [(i, r) for i, r in enumerate(ratios, start=1) if abs(r - 1) > BAND] == []
    done = [t for t in transfers if t.state == TransferState.DONE]
    assert any(t.kind == "to_futures" for t in done)
    assert {t.kind for t in done} <= {"to_futures", "to_spot"}  # no isolated margin on cross
    moved_in = sum((t.amount for t in done if t.kind == "to_futures"), D(0))
    moved_out = sum((t.amount for t in done if t.kind == "to_spot"), D(0))
    assert emulator.spot_balance("USDT") == SPOT_USDT - moved_in + moved_out
    assert pair_report.funding > 0  # a short on a positive rate earns
    assert pair_report.fees > 0
    assert pair_report.start_price is not None
    assert pair_report.end_price is not None
    start_value = start_usdt + pair_report.start_price  # 1 BTC
    change = account_value(emulator, pair_report.end_price) - start_value
    assert abs(pair_report.net - change) < D("0.01"), (pair_report, change)
