"""The inverse hedge's rally-and-crash scenario through the daemon, for any venue whose
emulator lists an inverse perpetual, and Binance COIN-M's side of it.

``InverseBook`` is what the scenario reads from an emulator: the short's USD face, the
coins the pair hedges (as the venue holds them), the fees paid in the coin, the client
ids the venue accepted. ``rally_and_crash`` runs a started daemon through +50 %, +100 %,
back and -50 % (one cycle a price, funding settled after each) and checks what a hedger
expects: the ratio back in the band after each cycle, the coins' USD value kept within
what the unhedged remainder and the fees explain, no client id accepted twice.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from bot.config import Settings
from tests.support.daemon_stack import DaemonStack
from tests.support.emulators.binance import BinanceEmulator

D = Decimal
INVERSE = "BTC/USD:BTC"
COINM_ID = "BTCUSD_PERP"
BAND = D("0.02")
START = D(60000)
#: 60,000 -> 120,000 -> 30,000, as the issue's worked truth asks (+100 %, -50 %).
PATH = (D(90000), D(120000), D(90000), D(60000), D(45000), D(30000))


class InverseBook(Protocol):
    """What the scenario reads from a venue's emulator."""

    def set_price(self, price: Decimal) -> None: ...

    def short_face(self) -> Decimal: ...

    def coins(self) -> Decimal: ...

    def fees(self) -> Decimal: ...

    def settle_funding(self) -> None: ...

    def accepted(self) -> list[str]: ...


@dataclass
class CoinmBook:
    """Binance COIN-M on the emulator: 100 USD contracts of ``BTCUSD_PERP``, the coins
    being the COIN-M wallet's margin balance (wallet + the short's PnL) and spot's."""

    emulator: BinanceEmulator

    def set_price(self, price: Decimal) -> None:
        self.emulator.set_price("BTC", price)

    def short_face(self) -> Decimal:
        return (
            -self.emulator.coinm_position(COINM_ID)
            * self.emulator.coinm.by_id[COINM_ID].contract_size
        )

    def coins(self) -> Decimal:
        return self.emulator.coinm_equity("BTC") + self.emulator.spot_balance("BTC")

    def fees(self) -> Decimal:
        return sum(
            (f.commission for o in self.emulator.orders() if o.venue == "coinm" for f in o.fills),
            D(0),
        )

    def settle_funding(self) -> None:
        self.emulator.settle_funding()

    def accepted(self) -> list[str]:
        return [
            e.client_order_id or ""
            for e in self.emulator.order_log
            if e.outcome == "accepted" and e.venue == "coinm"
        ]


def ratio(book: InverseBook, price: Decimal) -> Decimal:
    """The short's USD face over the USD value of the coins hedged."""
    return book.short_face() / (book.coins() * price)


def assert_in_band(book: InverseBook, price: Decimal, band: Decimal = BAND) -> None:
    assert abs(ratio(book, price) - 1) <= band, (price, ratio(book, price), book.short_face())


async def rally_and_crash(
    stack: DaemonStack, book: InverseBook, coins: Decimal, path: Sequence[Decimal] = PATH
) -> list[tuple[Decimal, Decimal]]:
    """Run the hedged daemon through ``path`` from :data:`START` (one cycle a price,
    funding settled after each); returns (price, USD value of the coins) per step, after
    checking the ratio in the band each time, the USD value kept and no id sent twice."""
    start_usd = book.coins() * START
    seen = []
    for price in path:
        book.set_price(price)
        assert await stack.cycles(1) == [{}]
        assert_in_band(book, price)
        seen.append((price, book.coins() * price))
        book.settle_funding()  # a short receives a positive rate, in the coin
    for price, usd in seen:
        # Unhedged: what the short's face leaves of the coins, plus the fees, in USD at
        # the worst price seen.
        unhedged = abs(coins * START - book.short_face()) / START
        allowed = (unhedged + book.fees()) * max(price, START)
        assert abs(usd - start_usd) <= allowed, (price, usd, start_usd, allowed)
        assert abs(usd - start_usd) / start_usd < D("0.001"), (price, usd)
    ids = Counter(book.accepted())
    assert all(count == 1 for count in ids.values()), ids
    return seen


def inverse_settings(exchange: str, ccxt_config: dict[str, Any], **pair: Any) -> Settings:
    """One pair hedging BTC with ``BTC/USD:BTC`` (ratio 1, band 2 %, leverage at most 2)
    on ``exchange`` through ``ccxt_config`` (an emulator's); ``pair`` overrides."""
    return Settings.model_validate(
        {
            "mode": "testnet",
            "poll_interval_s": 1,
            "pairs": [
                {
                    "name": "BTC-coin",
                    "spot_symbol": "BTC/USDT",
                    "perp_symbol": INVERSE,
                    "target_ratio": "1",
                    "band": str(BAND),
                    "min_notional": "0",
                    "max_order_notional": "200000",
                    "leverage": "2",
                    **pair,
                }
            ],
            "accounts": {
                "main": {
                    "exchange": exchange,
                    "api_key": "k",
                    "secret": "s",
                    "ccxt_config": {**ccxt_config, "timeout": 1000},
                    "rate_limit_per_s": "500",
                }
            },
            "risk": {"max_data_age_s": "30", "order_settle_s": "1", "max_leverage": "5"},
        }
    )


def coinm_settings(emulator: BinanceEmulator, **pair: Any) -> Settings:
    """The pair on the Binance emulator's COIN-M, cross margin: the whole COIN-M wallet
    margins the short, which a 1x hedge of the coins never exhausts (isolated 1x needs
    the fee beside the coins; isolated 2x is liquidated near twice the entry)."""
    return inverse_settings("binance", emulator.ccxt_config(), margin_mode="cross", **pair)


async def lost_order_found_after_restart(
    open_stack: Callable[[], Awaitable[DaemonStack]],
    book: InverseBook,
    add_coins: Callable[[], None],
    lose_answers: Callable[[], None],
    clear_faults: Callable[[], None],
) -> None:
    """Hedged, the user adds coins (``add_coins``); the next order executes but its
    answer and look-ups are lost (``lose_answers``): stored as unknown. After a restart
    (faults cleared) the first cycles find it by its client id, filled, never resent."""
    stack = await open_stack()
    assert await stack.cycles(2) == [{}, {}]  # hedged
    first = book.accepted()
    add_coins()
    lose_answers()
    await stack.cycles(1)
    unknown = [o for o in await stack.repository.orders() if o.status == "unknown"]
    assert len(unknown) == 1
    assert len(book.accepted()) == len(first) + 1  # the venue executed it
    clear_faults()
    restarted = await open_stack()
    assert await restarted.cycles(2) == [{}, {}]  # the first looks it up
    assert not await restarted.repository.unresolved_orders()
    found = [
        o
        for o in await restarted.repository.orders()
        if o.client_order_id == unknown[0].client_order_id
    ]
    assert [o.status for o in found] == ["filled"]
    ids = Counter(book.accepted())
    assert all(count == 1 for count in ids.values()), ids  # never resent
    assert_in_band(book, START)
