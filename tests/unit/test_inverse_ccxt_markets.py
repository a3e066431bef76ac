"""ccxt's inverse market dicts as Markets: contracts of the market's USD face value."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from ccxt.base.decimal_to_precision import TICK_SIZE

from bot.domain.inverse import position_in_coins
from bot.exchange.ccxt_markets import markets
from bot.exchange.ccxt_parse import positions
from bot.exchange.gateway import FatalError

D = Decimal
# ccxt's Binance COIN-M BTCUSD_PERP as load_markets gives it (the fields read).
BTCUSD_PERP: dict[str, Any] = {
    "symbol": "BTC/USD:BTC",
    "base": "BTC",
    "quote": "USD",
    "settle": "BTC",
    "swap": True,
    "future": False,
    "linear": False,
    "inverse": True,
    "contractSize": 100.0,
    "precision": {"amount": 1.0, "price": 0.1},
    "limits": {"amount": {"min": 1.0, "max": 1000000.0}, "cost": {"min": None}},
    "taker": 0.0005,
    "active": True,
}


def _client(exchange: str = "binance") -> Any:
    return SimpleNamespace(
        markets={"BTC/USD:BTC": BTCUSD_PERP}, precisionMode=TICK_SIZE, id=exchange
    )


def _coins_per_contract(symbol: str) -> Decimal:
    return D(100)  # what a venue counting contracts (OKX) says of its linear swaps


def test_an_inverse_market_counts_contracts_of_its_usd_face_value() -> None:
    market = markets(_client(), ["BTC/USD:BTC"], _coins_per_contract, inverse_ok=True)[
        "BTC/USD:BTC"
    ]
    assert market.inverse
    assert market.contract_size == D(100)
    assert market.amount_step == D(1)
    assert market.min_amount == D(1)
    assert market.price_step == D("0.1")
    assert market.is_perp


def test_an_inverse_market_is_refused_where_the_venue_does_not_read_its_coin_wallet() -> None:
    with pytest.raises(FatalError, match=r"inverse \(coin-margined\) contract.*not on binance"):
        markets(_client("binance"), ["BTC/USD:BTC"])


def test_a_coin_m_position_from_ccxt_is_its_face_value_then_coins_at_the_mark() -> None:
    # ccxt's Binance COIN-M short of 600 BTCUSD_PERP contracts (100 USD each).
    raw = {
        "symbol": "BTC/USD:BTC",
        "contracts": 600.0,
        "contractSize": 100.0,
        "side": "short",
        "entryPrice": 60000.0,
        "markPrice": 120000.0,
        "unrealizedPnl": -0.5,
        "leverage": 1.0,
        "liquidationPrice": None,
        "initialMargin": 1.0,
    }
    position = positions([raw], ["BTC/USD:BTC"], hedge_mode=False)["BTC/USD:BTC"]
    assert position.qty == D(-60000)  # the signed face value, as the paper venue gives it
    market = markets(_client(), ["BTC/USD:BTC"], inverse_ok=True)["BTC/USD:BTC"]
    assert position_in_coins(position, market).qty == D("-0.5")
