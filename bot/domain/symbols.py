"""ccxt's unified market symbols, parsed in one place (pure).

The grammar:

- ``BTC/USDT``              spot
- ``BTC/USDT:USDT``         linear perpetual (settled in the quote coin)
- ``BTC/USD:BTC``           inverse perpetual (settled in the base coin)
- ``BTC/USDT:USDT-250627``  dated future (linear or inverse), expiry ``YYMMDD`` after ``-``

Everything else in hedgebot asks a ``Symbol`` what a symbol is rather than looking for a
``:`` in the text. A symbol's expiry is a date: the time of day a venue delivers at is the
venue's business.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from functools import lru_cache

GRAMMAR = (
    "expected 'BASE/QUOTE' (spot), 'BASE/QUOTE:SETTLE' (perpetual) or "
    "'BASE/QUOTE:SETTLE-YYMMDD' (dated future)"
)
# Characters that separate a symbol's parts, so never inside one.
_SEPARATORS = frozenset("/:-") | frozenset(" \t\r\n")


class SymbolKind(StrEnum):
    """What a symbol trades."""

    SPOT = "spot"
    LINEAR_PERP = "linear_perp"
    INVERSE_PERP = "inverse_perp"
    DATED_FUTURE = "dated_future"


class SymbolError(ValueError):
    """A text that is not a ccxt unified symbol; ``reason`` says what is wrong with it."""

    def __init__(self, text: str, reason: str) -> None:
        super().__init__(f"{text!r} is not a ccxt symbol: {reason}")
        self.text = text
        self.reason = reason


def _check_code(text: str, part: str, code: str) -> None:
    if not code or any(c in _SEPARATORS for c in code):
        raise SymbolError(text, f"{part} {code!r} is empty or holds a separator; {GRAMMAR}")


def _expiry(text: str, code: str) -> date:
    """``YYMMDD`` as a date (years 2000-2099)."""
    if len(code) != 6 or not code.isascii() or not code.isdigit():
        raise SymbolError(text, f"a dated future ends in '-YYMMDD', got '-{code}'")
    try:
        return date(2000 + int(code[:2]), int(code[2:4]), int(code[4:]))
    except ValueError:
        raise SymbolError(text, f"a dated future ends in '-YYMMDD', got '-{code}'") from None


@dataclass(frozen=True, slots=True)
class Symbol:
    """One market's symbol: its coins and, for a dated future, its expiry date.

    ``settle`` is None for spot; ``expiry`` is set for dated futures only. The kind follows
    from these: a contract settled in its base coin (and not its quote) is inverse.
    """

    base: str
    quote: str
    settle: str | None = None
    expiry: date | None = None

    def __post_init__(self) -> None:
        text = self._text()
        _check_code(text, "base", self.base)
        _check_code(text, "quote", self.quote)
        if self.settle is not None:
            _check_code(text, "settle", self.settle)
        if self.expiry is not None:
            if self.settle is None:
                raise SymbolError(text, "a spot symbol has no expiry")
            if not 2000 <= self.expiry.year <= 2099:
                raise SymbolError(text, f"expiry {self.expiry} is outside the years 2000-2099")

    @classmethod
    def parse(cls, text: str) -> Symbol:
        """The symbol ``text`` names; SymbolError (a ValueError) when it is malformed.

        Parsed once per distinct text: the paper venue asks on every request, and a
        symbol's meaning never changes (the cache holds values, no state)."""
        if cls is Symbol:
            return _parse_cached(text)
        return cls._parse(text)

    @classmethod
    def _parse(cls, text: str) -> Symbol:
        base, slash, rest = text.partition("/")
        if not slash:
            raise SymbolError(text, GRAMMAR)
        quote, colon, contract = rest.partition(":")
        if not colon:
            return cls(base, quote)
        settle, dash, code = contract.partition("-")
        if not dash:
            return cls(base, quote, settle)
        _check_code(text, "settle", settle)
        return cls(base, quote, settle, _expiry(text, code))

    def __str__(self) -> str:
        return self._text()

    def _text(self) -> str:
        text = f"{self.base}/{self.quote}"
        if self.settle is not None:
            text += f":{self.settle}"
        if self.expiry is not None:
            text += f"-{self.expiry:%y%m%d}"
        return text

    @property
    def kind(self) -> SymbolKind:
        if self.settle is None:
            return SymbolKind.SPOT
        if self.expiry is not None:
            return SymbolKind.DATED_FUTURE
        return SymbolKind.INVERSE_PERP if self.inverse else SymbolKind.LINEAR_PERP

    @property
    def is_spot(self) -> bool:
        return self.settle is None

    @property
    def is_contract(self) -> bool:
        """A perpetual or a dated future (anything with a settle coin)."""
        return self.settle is not None

    @property
    def is_perpetual(self) -> bool:
        return self.settle is not None and self.expiry is None

    @property
    def is_dated(self) -> bool:
        return self.expiry is not None

    @property
    def inverse(self) -> bool:
        """A contract settled in its base coin (``BTC/USD:BTC``); False for spot."""
        return self.settle is not None and self.settle == self.base != self.quote

    @property
    def margin_asset(self) -> str:
        """The coin a contract's margin and PnL are in (its settle coin); spot: the quote."""
        return self.settle if self.settle is not None else self.quote


def parse_or_none(text: str) -> Symbol | None:
    """The symbol ``text`` names, or None when it is malformed (for validators that
    report a bad symbol in their own words)."""
    try:
        return Symbol.parse(text)
    except SymbolError:
        return None


def base_of(text: str) -> str:
    """The base coin of a symbol, or ``text`` itself when it is a bare coin (``BTC``)."""
    symbol = parse_or_none(text)
    if symbol is not None:
        return symbol.base
    return text.partition("/")[0].partition(":")[0]


@lru_cache(maxsize=4096)
def _parse_cached(text: str) -> Symbol:
    return Symbol._parse(text)
