"""Data types shared by the Binance emulator's engine and HTTP layer."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Literal

from tests.support.emulators._common import ceil_to as ceil_to
from tests.support.emulators._common import decimals_of as decimals_of
from tests.support.emulators._common import floor_to as floor_to
from tests.support.emulators._common import fmt as fmt
from tests.support.emulators._common import fmt_fixed as fmt_fixed
from tests.support.emulators._common import is_multiple as is_multiple

Venue = Literal["spot", "futures", "coinm"]  # coinm: the COIN-M (/dapi) futures
ZERO = Decimal(0)


class Fault(enum.Enum):
    """Faults a test can inject into the emulator (see ``BinanceEmulator.inject``).

    RATE_LIMIT, SERVER_ERROR, REJECT and TIMEOUT (without ``accept``) answer before
    the request is executed: no order is placed, no setting changes.
    """

    RATE_LIMIT = "rate_limit"
    """HTTP 429, ``{"code": -1003}``, header ``Retry-After`` (param ``retry_after``, s)."""
    SERVER_ERROR = "server_error"
    """HTTP ``status`` (default 503); plain-text ``body``, or Binance JSON with ``code``/``msg``."""
    TIMEOUT = "timeout"
    """Hold the answer ``delay_s`` (default 2 s), then -1007; ``accept=True`` executes first."""
    DROP_AFTER_ACCEPT = "drop_after_accept"
    """The request is executed, then the connection is cut before the answer: an order is
    accepted (and filled), a margin change (``path="/fapi/v1/positionMargin"``) applied.
    Without ``path`` it matches order creation only."""
    PARTIAL_FILL = "partial_fill"
    """The next order fills only ``fraction`` (default 0.5); the rest rests or expires."""
    REJECT = "reject"
    """HTTP ``status`` (default 400) with ``code``/``msg`` (default -2019 margin)."""


class BinanceError(Exception):
    """An error answer in Binance's shape: HTTP status plus ``{"code", "msg"}``."""

    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(f"{status} {code} {msg}")
        self.status = status
        self.code = code
        self.msg = msg


@dataclass(frozen=True)
class EmulatedMarket:
    """One base coin's markets: a spot pair and/or a USDⓈ-M perpetual.

    ``step_size``/``tick_size``/``min_qty``/``max_qty`` are the LOT_SIZE and
    PRICE_FILTER of both markets; ``min_notional`` is the perp's MIN_NOTIONAL and
    ``spot_min_notional`` the spot NOTIONAL filter. The emulated book has
    ``depth_levels`` levels of ``level_qty`` each side, one tick apart; it does not
    deplete. ``price`` is the initial last/mark/index price.
    """

    base: str
    quote: str = "USDT"
    spot: bool = True
    perp: bool = True
    step_size: Decimal = Decimal("0.001")
    tick_size: Decimal = Decimal("0.1")
    min_qty: Decimal = Decimal("0.001")
    max_qty: Decimal = Decimal(1000)
    min_notional: Decimal = Decimal(100)
    spot_min_notional: Decimal = Decimal(5)
    price: Decimal = Decimal(60000)
    level_qty: Decimal = Decimal(5)
    depth_levels: int = 20
    max_leverage: int = 125
    maint_margin_ratio: Decimal = Decimal("0.004")
    funding_rate: Decimal = Decimal("0.0001")
    open_interest: Decimal = Decimal(10000)
    # A USDⓈ-M quarterly delivered then, listed in exchangeInfo only (it does not trade).
    quarterly_delivery: datetime | None = None

    @property
    def symbol_id(self) -> str:
        """Binance's id for both markets, e.g. ``BTCUSDT``."""
        return f"{self.base}{self.quote}"


DEFAULT_MARKETS: tuple[EmulatedMarket, ...] = (
    EmulatedMarket(base="BTC"),
    EmulatedMarket(
        base="ETH",
        tick_size=Decimal("0.01"),
        min_notional=Decimal(20),
        price=Decimal(3000),
        level_qty=Decimal(50),
        max_leverage=100,
        maint_margin_ratio=Decimal("0.005"),
    ),
)


@dataclass
class Fill:
    """One execution of an order against the emulated book."""

    trade_id: int
    price: Decimal
    qty: Decimal
    commission: Decimal
    commission_asset: str
    maker: bool
    time_ms: int
    realized_pnl: Decimal = ZERO


@dataclass
class EmulatedOrder:
    """An order the exchange accepted, with its fills."""

    venue: Venue
    order_id: int
    client_order_id: str
    symbol: str
    side: str
    type: str
    time_in_force: str
    orig_qty: Decimal
    price: Decimal
    reduce_only: bool
    position_side: str
    time_ms: int
    update_ms: int
    status: str = "NEW"
    fills: list[Fill] = field(default_factory=list)

    @property
    def executed_qty(self) -> Decimal:
        """Base quantity filled so far."""
        return sum((f.qty for f in self.fills), ZERO)

    @property
    def cum_quote(self) -> Decimal:
        """Quote value filled so far."""
        return sum((f.qty * f.price for f in self.fills), ZERO)

    @property
    def avg_price(self) -> Decimal:
        """Average fill price, 0 when nothing filled."""
        executed = self.executed_qty
        return self.cum_quote / executed if executed else ZERO

    @property
    def remaining(self) -> Decimal:
        """Quantity still open."""
        return self.orig_qty - self.executed_qty

    @property
    def is_open(self) -> bool:
        """Whether the order still rests on the book."""
        return self.status in ("NEW", "PARTIALLY_FILLED")


@dataclass(frozen=True)
class OrderLogEntry:
    """One order request as received, with what became of it."""

    time_ms: int
    venue: Venue
    client_order_id: str | None
    symbol: str | None
    side: str | None
    type: str | None
    qty: Decimal | None
    price: Decimal | None
    reduce_only: bool
    outcome: str
    fills: tuple[tuple[Decimal, Decimal], ...] = ()


@dataclass(frozen=True)
class IncomeEntry:
    """One futures income record (``/fapi/v1/income``)."""

    tran_id: int
    symbol: str
    income_type: str
    income: Decimal
    asset: str
    time_ms: int
    info: str = ""
    trade_id: str = ""


@dataclass(frozen=True)
class FundingEvent:
    """One funding settlement of a market (``/fapi/v1/fundingRate``)."""

    symbol: str
    rate: Decimal
    time_ms: int
    mark_price: Decimal


@dataclass(frozen=True)
class MarginChange:
    """One isolated-margin change (``/fapi/v1/positionMargin/history``)."""

    symbol: str
    type: int  # 1 add, 2 reduce
    amount: Decimal
    asset: str
    time_ms: int
    position_side: str
    delta_type: str = "USER_ADJUST"


@dataclass(frozen=True)
class WalletTransferRow:
    """One transfer between the spot and USDⓈ-M wallets (``/sapi/v1/asset/transfer``)."""

    asset: str
    amount: Decimal
    type: str  # MAIN_UMFUTURE or UMFUTURE_MAIN
    time_ms: int
    tran_id: int
    status: str = "CONFIRMED"


@dataclass
class PositionState:
    """Signed amount, average entry and last change (ms) of one futures position side."""

    amount: Decimal = ZERO
    entry: Decimal = ZERO
    update_ms: int = 0
    # Margin moved into an isolated position (POST /fapi/v1/positionMargin type 1).
    added_margin: Decimal = ZERO
