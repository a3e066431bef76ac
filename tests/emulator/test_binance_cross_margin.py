"""The Binance emulator's CROSSED margin type, as Binance documents it ("How to Calculate
Liquidation Price of USDⓈ-M Futures Contracts"): in cross margin the wallet balance WB is
the cross wallet balance (the wallet less the isolated positions' margin), less the other
cross positions' maintenance margin (TMM1), plus their unrealized PnL (UPNL1); and a
position the mark takes past its liquidation price is liquidated: closed there, its loss
and the rest of its maintenance margin (the insurance clearance fee) taken from its
margin, a cross position's from the whole cross wallet."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tests.support.emulators.binance import BinanceEmulator

D = Decimal
BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"


def formula(amount: Decimal, entry: Decimal, balance: Decimal, mmr: Decimal) -> Decimal:
    """Binance's one-way LP with one bracket (cum 0): (WB - side x size x EP) /
    (size x MMR - side x size)."""
    side = D(1) if amount > 0 else D(-1)
    size = abs(amount)
    return (balance - side * size * entry) / (size * mmr - side * size)


async def open_positions(emulator: BinanceEmulator, binance: Any) -> None:
    """A cross BTC short at 2x and an isolated ETH long at 5x on a 50,000 USDT wallet."""
    emulator.set_futures_balance("USDT", D(50000))
    emulator.set_price("BTC", D(60000), D(0))
    emulator.set_price("ETH", D(3000), D(0))
    await binance.set_leverage(2, BTC)
    await binance.set_leverage(5, ETH)
    await binance.set_margin_mode("isolated", ETH)
    await binance.create_order(BTC, "market", "sell", 0.5, None)
    await binance.create_order(ETH, "market", "buy", 2, None)


async def test_a_cross_liquidation_price_counts_the_cross_wallet_and_the_other_positions(
    emulator: BinanceEmulator, binance: Any
) -> None:
    await open_positions(emulator, binance)
    emulator.set_price("ETH", D(2900), D(0))
    positions = {p["symbol"]: p for p in await binance.fetch_positions([BTC, ETH])}

    wallet = emulator.futures_balance("USDT")
    eth_entry = D(str(positions[ETH]["entryPrice"]))  # the ask: 3000.01
    eth_isolated = D(2) * eth_entry / D(5)  # the isolated ETH position's margin
    btc = formula(D("-0.5"), D(60000), wallet - eth_isolated, D("0.004"))
    eth = formula(D(2), eth_entry, eth_isolated, D("0.005"))
    assert abs(D(str(positions[BTC]["liquidationPrice"])) - btc) < D("0.01")
    assert abs(D(str(positions[ETH]["liquidationPrice"])) - eth) < D("0.01")


async def test_a_second_cross_position_moves_the_first_ones_liquidation_price(
    emulator: BinanceEmulator, binance: Any
) -> None:
    emulator.set_futures_balance("USDT", D(50000))
    emulator.set_price("BTC", D(60000), D(0))
    emulator.set_price("ETH", D(3000), D(0))
    await binance.set_leverage(2, BTC)
    await binance.set_leverage(5, ETH)
    await binance.create_order(BTC, "market", "sell", 0.5, None)
    await binance.create_order(ETH, "market", "buy", 2, None)
    emulator.set_price("ETH", D(2900), D(0))
    positions = {p["symbol"]: p for p in await binance.fetch_positions([BTC, ETH])}
    btc = positions[BTC]

    wallet = emulator.futures_balance("USDT")
    eth_maintenance = D(2) * D(2900) * D("0.005")  # TMM1
    eth_unrealized = D(2) * (D(2900) - D(str(positions[ETH]["entryPrice"])))  # UPNL1
    expected = formula(D("-0.5"), D(60000), wallet - eth_maintenance + eth_unrealized, D("0.004"))
    assert abs(D(str(btc["liquidationPrice"])) - expected) < D("0.01")


async def test_a_cross_short_past_its_liquidation_price_is_liquidated_with_the_wallet(
    emulator: BinanceEmulator, binance: Any
) -> None:
    emulator.set_futures_balance("USDT", D(20000))
    emulator.set_price("BTC", D(60000), D(0))
    await binance.set_leverage(5, BTC)
    await binance.create_order(BTC, "market", "sell", 1, None)
    [short] = await binance.fetch_positions([BTC])
    price = D(str(short["liquidationPrice"]))

    emulator.set_price("BTC", price - 1, D(0))
    assert emulator.position(BTC) == D(-1)  # not yet
    emulator.set_price("BTC", price + 1, D(0))

    assert emulator.position(BTC) == 0
    assert len(emulator.liquidations) == 1
    # The cross wallet is gone but for rounding: the loss at the liquidation price and
    # the maintenance margin left there (the clearance fee) take all of it.
    assert abs(emulator.futures_balance("USDT")) < D("0.01")
    incomes = {e.income_type for e in emulator._engine.income}
    assert "INSURANCE_CLEAR" in incomes
