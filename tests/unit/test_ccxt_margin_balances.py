"""The USDⓈ-M wallet as ccxt's own Binance parser leaves it, read by the Binance venue
module; any other venue's by plain ccxt (``ccxt_parse``)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import ccxt
import pytest

from bot.exchange import ccxt_parse
from bot.exchange.venues import binance

D = Decimal

# /fapi/v3/account with a losing short open: walletBalance 10000, uPnL -500.
ACCOUNT_V3 = {
    "totalWalletBalance": "10000.00000000",
    "totalUnrealizedProfit": "-500.00000000",
    "totalMarginBalance": "9500.00000000",
    "availableBalance": "6500.00000000",
    "assets": [
        {
            "asset": "USDT",
            "walletBalance": "10000.00000000",
            "unrealizedProfit": "-500.00000000",
            "marginBalance": "9500.00000000",
            "initialMargin": "3000.00000000",
            "availableBalance": "6500.00000000",
            "crossWalletBalance": "10000.00000000",
            "crossUnPnl": "-500.00000000",
            "updateTime": 1700000000000,
        }
    ],
    "positions": [],
}

# /fapi/v2/balance: ``balance`` is the wallet, ``crossUnPnl`` the PnL, no marginBalance.
BALANCE_V2 = [
    {
        "asset": "USDT",
        "balance": "10000.00000000",
        "crossWalletBalance": "10000.00000000",
        "crossUnPnl": "-500.00000000",
        "availableBalance": "6500.00000000",
        "updateTime": 1700000000000,
    }
]


def ccxt_answer(exchange_id: str, response: Any) -> Any:
    client = getattr(ccxt, exchange_id)()
    return client.parse_balance_custom(response, "linear")


@pytest.mark.parametrize("exchange_id", ["binanceusdm", "binance"])
def test_ccxt_binance_total_is_the_margin_balance_so_equity_is_wallet_plus_pnl_once(
    exchange_id: str,
) -> None:
    raw = ccxt_answer(exchange_id, ACCOUNT_V3)
    assert D(str(raw["total"]["USDT"])) == D(9500)  # ccxt: total = marginBalance
    usdt = binance.margin_balances(raw)["USDT"]
    assert usdt.total == D(10000)
    assert usdt.equity == D(9500)
    assert usdt.free == D(6500)


def test_binance_balance_endpoint_rows_give_wallet_and_equity() -> None:
    usdt = binance.margin_balances(ccxt_answer("binanceusdm", BALANCE_V2))["USDT"]
    assert usdt.total == D(10000)
    assert usdt.equity == D(9500)


def test_an_unmapped_venue_takes_ccxts_total_for_both() -> None:
    raw = {"total": {"USDT": 9500.0}, "free": {"USDT": 6500.0}, "info": ACCOUNT_V3}
    usdt = ccxt_parse.margin_balances(raw)["USDT"]
    assert usdt.total == usdt.equity == D(9500)
