"""The tickers answer keeps what it got: a symbol left out, or without a bid or an ask, is
absent from the result rather than failing every pair on the account."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from bot.exchange import ccxt_parse

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_symbol_without_bid_or_ask_is_left_out_and_the_others_kept() -> None:
    raw = {
        "BTC/USDT:USDT": {"bid": 60000, "ask": 60001, "timestamp": None},
        "SOL/USDT:USDT": {"bid": None, "ask": 150},
    }
    wanted = ["BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"]

    tickers = ccxt_parse.tickers(raw, wanted, NOW)

    assert list(tickers) == ["BTC/USDT:USDT"]
    assert tickers["BTC/USDT:USDT"].bid == Decimal(60000)
