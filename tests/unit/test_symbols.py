"""ccxt unified symbols: one parser, every kind, and str() giving the text back."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.models import settle_asset
from bot.domain.symbols import Symbol, SymbolError, SymbolKind, base_of, parse_or_none


@pytest.mark.parametrize(
    ("text", "kind", "parts"),
    [
        ("BTC/USDT", SymbolKind.SPOT, ("BTC", "USDT", None, None)),
        ("BTC/USDT:USDT", SymbolKind.LINEAR_PERP, ("BTC", "USDT", "USDT", None)),
        ("BTC/USD:BTC", SymbolKind.INVERSE_PERP, ("BTC", "USD", "BTC", None)),
        (
            "BTC/USDT:USDT-250627",
            SymbolKind.DATED_FUTURE,
            ("BTC", "USDT", "USDT", date(2025, 6, 27)),
        ),
        (
            "ETH/USD:ETH-261225",
            SymbolKind.DATED_FUTURE,
            ("ETH", "USD", "ETH", date(2026, 12, 25)),
        ),
        ("1000PEPE/USDC:USDC", SymbolKind.LINEAR_PERP, ("1000PEPE", "USDC", "USDC", None)),
    ],
)
def test_each_kind_parses(
    text: str, kind: SymbolKind, parts: tuple[str, str, str | None, date | None]
) -> None:
    symbol = Symbol.parse(text)
    assert symbol.kind is kind
    assert (symbol.base, symbol.quote, symbol.settle, symbol.expiry) == parts
    assert str(symbol) == text


def test_the_kind_questions() -> None:
    spot, linear = Symbol.parse("BTC/USDT"), Symbol.parse("BTC/USDT:USDT")
    inverse, dated = Symbol.parse("BTC/USD:BTC"), Symbol.parse("BTC/USD:BTC-250328")
    assert (spot.is_spot, spot.is_contract, spot.is_perpetual, spot.is_dated) == (
        True,
        False,
        False,
        False,
    )
    assert (linear.is_contract, linear.is_perpetual, linear.inverse) == (True, True, False)
    assert (inverse.is_perpetual, inverse.inverse) == (True, True)
    assert (dated.is_perpetual, dated.is_dated, dated.inverse) == (False, True, True)
    assert [s.margin_asset for s in (spot, linear, inverse, dated)] == [
        "USDT",
        "USDT",
        "BTC",
        "BTC",
    ]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("BTCUSDT", "expected 'BASE/QUOTE'"),
        ("", "expected 'BASE/QUOTE'"),
        ("/USDT", "base ''"),
        ("BTC/", "quote ''"),
        ("BTC/USDT:", "settle ''"),
        ("BTC/USDT:-250627", "settle ''"),
        ("BTC/USDT:USDT-2506", "'-YYMMDD', got '-2506'"),
        ("BTC/USDT:USDT-251301", "'-YYMMDD', got '-251301'"),
        ("BTC/USD:BTC-250627-50000-C", "'-YYMMDD'"),
        ("BTC/USDT/X", "quote 'USDT/X'"),
        ("BTC /USDT", "base 'BTC '"),
    ],
)
def test_a_malformed_symbol_is_a_clear_value_error(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=f"^{text!r} is not a ccxt symbol: ") as caught:
        Symbol.parse(text)
    assert isinstance(caught.value, SymbolError)
    assert reason in caught.value.reason
    assert "\n" not in str(caught.value)
    assert parse_or_none(text) is None


def test_a_symbol_cannot_be_built_inconsistent() -> None:
    with pytest.raises(SymbolError, match="no expiry"):
        Symbol("BTC", "USDT", None, date(2025, 6, 27))
    with pytest.raises(SymbolError, match="2000-2099"):
        Symbol("BTC", "USDT", "USDT", date(1999, 12, 31))


def test_the_thin_wrapper_and_the_lenient_base() -> None:
    assert settle_asset("BTC/USDT:USDT-261225") == "USDT"
    assert settle_asset("BTC/USD:BTC") == "BTC"
    assert [base_of(t) for t in ("BTC/USDT:USDT", "BTC/USDT", "BTC", "ETH:X")] == [
        "BTC",
        "BTC",
        "BTC",
        "ETH",
    ]


codes = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.", min_size=1, max_size=10)
expiries = st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31))


@st.composite
def symbols(draw: st.DrawFn) -> Symbol:
    base, quote = draw(codes), draw(codes)
    kind = draw(st.sampled_from(SymbolKind))
    if kind is SymbolKind.SPOT:
        return Symbol(base, quote)
    settle = base if draw(st.booleans()) else quote
    if kind is SymbolKind.DATED_FUTURE:
        return Symbol(base, quote, settle, draw(expiries))
    return Symbol(base, quote, base if kind is SymbolKind.INVERSE_PERP else settle)


@given(symbols())
def test_parse_gives_back_the_symbol_str_gave(symbol: Symbol) -> None:
    text = str(symbol)
    assert Symbol.parse(text) == symbol
    assert str(Symbol.parse(text)) == text
    assert base_of(text) == symbol.base


@given(symbols())
def test_exactly_one_kind_and_its_questions_agree(symbol: Symbol) -> None:
    kind = symbol.kind
    assert symbol.is_spot == (kind is SymbolKind.SPOT)
    assert symbol.is_dated == (kind is SymbolKind.DATED_FUTURE)
    assert symbol.is_perpetual == (kind in (SymbolKind.LINEAR_PERP, SymbolKind.INVERSE_PERP))
    assert symbol.is_contract == (not symbol.is_spot)
    if kind is SymbolKind.INVERSE_PERP:
        assert symbol.inverse


@given(st.text(max_size=30))
def test_any_text_parses_or_raises_a_symbol_error(text: str) -> None:
    symbol = parse_or_none(text)
    if symbol is not None:
        assert str(symbol) == text
