"""Data types shared by the Bybit emulator's engine and HTTP layer."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal

Category = Literal["spot", "linear", "inverse"]
CONTRACTS: tuple[Category, ...] = ("linear", "inverse")
ZERO = Decimal(0)
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


class Fault(enum.Enum):
    """Faults a test can inject into the emulator (see ``BybitEmulator.inject``).

    RATE_LIMIT, IP_BAN, SERVER_ERROR, REJECT and TIMEOUT (without ``accept``) answer
    before the request is executed: no order is placed, no setting changes.
    """

    RATE_LIMIT = "rate_limit"
    """HTTP 200, ``retCode`` 10006 "Too many visits!", with the X-Bapi-Limit-* headers."""
    IP_BAN = "ip_ban"
    """HTTP 403 "access too frequent" (plain text), as Bybit's per-IP limit answers."""
    SERVER_ERROR = "server_error"
    """HTTP ``status`` (default 503; 429 is Bybit's "system level frequency protection")
    with a plain-text ``body``; or, with ``code``, HTTP 200 and that ``retCode``/``msg``
    (e.g. 10016 "Internal system error")."""
    TIMEOUT = "timeout"
    """Hold the answer ``delay_s`` (default 2 s), then 10016; ``accept=True`` executes first."""
    DROP_AFTER_ACCEPT = "drop_after_accept"
    """Order creation: the order is accepted (and filled), then the connection is cut."""
    PARTIAL_FILL = "partial_fill"
    """The next order fills only ``fraction`` (default 0.5); the rest rests or is cancelled."""
    REJECT = "reject"
    """HTTP 200 with ``code``/``msg`` (default 110007 "ab not enough for new order")."""


class BybitError(Exception):
    """An error answer in Bybit's v5 shape: ``retCode``/``retMsg`` (HTTP 200 unless said)."""

    def __init__(self, code: int, msg: str, status: int = 200, result: object = None) -> None:
        super().__init__(f"{code} {msg}")
        self.code = code
        self.msg = msg
        self.status = status
        self.result = {} if result is None else result


def params_error(msg: str) -> BybitError:
    """retCode 10001, Bybit's catch-all for a malformed or invalid parameter."""
    return BybitError(10001, msg)


@dataclass(frozen=True)
class EmulatedMarket:
    """One base coin's instruments: a spot pair, a linear perpetual, dated linear futures.

    ``qty_step``/``tick_size``/``min_qty``/``max_qty`` are the lotSizeFilter and
    priceFilter of the linear contracts; ``min_notional`` is their minNotionalValue.
    Spot has its own ``spot_base_precision`` (basePrecision, also its minimum quantity)
    and ``spot_min_amt`` (minOrderAmt in quote). The book has ``depth_levels`` levels
    of ``level_qty`` each side, one tick apart; it does not deplete. ``futures`` lists
    the delivery dates of dated USDT futures (``BTCUSDT-27MAR26``), which trade at the
    perp's prices and pay no funding. ``inverse`` lists the coin-margined perpetual
    (category ``inverse``, ``BTCUSD``): quantities in contracts of 1 USD face
    (``inverse_qty_step``, ``inverse_min_qty``), margin, PnL, fees and funding in the
    base coin of the same unified wallet. ``collateral_tiers``: the coin's tiered
    collateral value ratios on a unified cross account ((from this many coins, ratio),
    lowest first: /v5/spot-margin-trade/collateral's ``collateralRatioList``).
    """

    base: str
    quote: str = "USDT"
    spot: bool = True
    perp: bool = True
    futures: tuple[datetime, ...] = ()
    qty_step: Decimal = Decimal("0.001")
    tick_size: Decimal = Decimal("0.1")
    min_qty: Decimal = Decimal("0.001")
    max_qty: Decimal = Decimal(1000)
    min_notional: Decimal = Decimal(5)
    spot_base_precision: Decimal = Decimal("0.000001")
    spot_tick_size: Decimal = Decimal("0.01")
    spot_min_amt: Decimal = Decimal(1)
    price: Decimal = Decimal(60000)
    level_qty: Decimal = Decimal(5)
    depth_levels: int = 25
    max_leverage: int = 100
    maint_margin_ratio: Decimal = Decimal("0.005")
    funding_rate: Decimal = Decimal("0.0001")
    funding_interval_min: int = 480
    open_interest: Decimal = Decimal(50000)
    inverse: bool = False
    inverse_qty_step: Decimal = Decimal(1)
    inverse_min_qty: Decimal = Decimal(1)
    inverse_max_qty: Decimal = Decimal(1_000_000)
    collateral_tiers: tuple[tuple[Decimal, Decimal], ...] = (
        (Decimal(0), Decimal("0.95")),
        (Decimal(1000), Decimal("0.9")),
        (Decimal(5000), Decimal(0)),
    )

    @property
    def inverse_id(self) -> str:
        """Bybit's id of the inverse perpetual, e.g. ``BTCUSD``."""
        return f"{self.base}USD"

    @property
    def perp_id(self) -> str:
        """Bybit's id of the perp and the spot pair, e.g. ``BTCUSDT``."""
        return f"{self.base}{self.quote}"


def future_id(market: EmulatedMarket, delivery: datetime) -> str:
    """Bybit's id of a dated USDT future, e.g. ``BTCUSDT-27MAR26``."""
    return f"{market.perp_id}-{delivery.day:02d}{MONTHS[delivery.month - 1]}{delivery.year % 100}"


DEFAULT_MARKETS: tuple[EmulatedMarket, ...] = (
    EmulatedMarket(base="BTC", futures=(datetime(2027, 3, 26, 8, tzinfo=UTC),)),
    EmulatedMarket(
        base="ETH",
        qty_step=Decimal("0.01"),
        min_qty=Decimal("0.01"),
        tick_size=Decimal("0.01"),
        price=Decimal(3000),
        level_qty=Decimal(50),
        max_leverage=50,
        spot_base_precision=Decimal("0.00001"),
    ),
)


@dataclass(frozen=True)
class Instrument:
    """One tradable symbol of one category."""

    symbol: str
    category: Category
    market: EmulatedMarket
    delivery_ms: int = 0

    @property
    def contract_type(self) -> str:
        """instruments-info ``contractType`` (empty for spot)."""
        if self.category == "spot":
            return ""
        if self.category == "inverse":
            return "InversePerpetual"
        return "LinearFutures" if self.delivery_ms else "LinearPerpetual"

    @property
    def inverse(self) -> bool:
        """A coin-margined contract: quantities in USD contracts, money in the base coin."""
        return self.category == "inverse"

    @property
    def settle(self) -> str:
        """The coin its margin, PnL, fees and funding are in."""
        return self.market.base if self.inverse else self.market.quote

    @property
    def lot(self) -> tuple[Decimal, Decimal, Decimal]:
        """(qty step, min qty, max qty) of a contract: coins (linear), contracts (inverse)."""
        m = self.market
        if self.inverse:
            return m.inverse_qty_step, m.inverse_min_qty, m.inverse_max_qty
        return m.qty_step, m.min_qty, m.max_qty


@dataclass
class Execution:
    """One row of /v5/execution/list: a trade fill, or a funding settlement."""

    exec_id: str
    category: Category
    symbol: str
    exec_type: str  # Trade | Funding | BustTrade (the venue closing it at liquidation)
    side: str
    price: Decimal
    qty: Decimal
    fee: Decimal
    fee_rate: Decimal
    fee_coin: str
    is_maker: bool
    time_ms: int
    order_id: str = ""
    order_link_id: str = ""
    order_type: str = "UNKNOWN"
    order_price: Decimal = ZERO
    order_qty: Decimal = ZERO
    leaves_qty: Decimal = ZERO
    closed_size: Decimal = ZERO
    mark_price: Decimal = ZERO

    @property
    def value(self) -> Decimal:
        """execValue: quote (linear, spot); coins, contracts over the price (inverse)."""
        if self.category == "inverse":
            return self.qty / self.price if self.price else ZERO
        return self.qty * self.price


@dataclass
class EmulatedOrder:
    """An order the exchange accepted, with its executions."""

    category: Category
    order_id: str
    order_link_id: str
    symbol: str
    side: str  # Buy | Sell
    order_type: str  # Market | Limit
    time_in_force: str  # GTC | IOC | FOK | PostOnly
    qty: Decimal
    price: Decimal
    reduce_only: bool
    position_idx: int
    market_unit: str
    created_ms: int
    updated_ms: int
    status: str = "New"
    reject_reason: str = "EC_NoError"
    fills: list[Execution] = field(default_factory=list)

    @property
    def cum_qty(self) -> Decimal:
        """Quantity filled so far (base coin; contracts for an inverse order)."""
        return sum((f.qty for f in self.fills), ZERO)

    @property
    def cum_value(self) -> Decimal:
        """Value filled so far: in the quote; an inverse order's in the coin."""
        return sum((f.value for f in self.fills), ZERO)

    @property
    def cum_fee(self) -> Decimal:
        """Fees charged so far."""
        return sum((f.fee for f in self.fills), ZERO)

    @property
    def avg_price(self) -> Decimal:
        """Average fill price, 0 when nothing filled (an inverse order's is harmonic)."""
        qty, value = self.cum_qty, self.cum_value
        if not qty:
            return ZERO
        return qty / value if self.category == "inverse" else value / qty

    @property
    def leaves_qty(self) -> Decimal:
        """Quantity still working (0 once the order is final)."""
        return self.qty - self.cum_qty if self.is_open else ZERO

    @property
    def is_open(self) -> bool:
        """Whether the order still rests on the book."""
        return self.status in ("New", "PartiallyFilled")


@dataclass(frozen=True)
class OrderLogEntry:
    """One order request as received, with what became of it."""

    time_ms: int
    category: str | None
    order_link_id: str | None
    symbol: str | None
    side: str | None
    order_type: str | None
    qty: Decimal | None
    price: Decimal | None
    reduce_only: bool
    outcome: str
    fills: tuple[tuple[Decimal, Decimal], ...] = ()


@dataclass
class PositionState:
    """Signed size, average entry, margin added and PnL of one position (symbol, idx)."""

    size: Decimal = ZERO
    entry: Decimal = ZERO
    added_margin: Decimal = ZERO
    cum_realised: Decimal = ZERO
    created_ms: int = 0
    updated_ms: int = 0


@dataclass(frozen=True)
class FundingEvent:
    """One funding settlement of a perp (``/v5/market/funding/history``)."""

    symbol: str
    rate: Decimal
    time_ms: int


@dataclass(frozen=True)
class LedgerEntry:
    """One row of ``/v5/account/transaction-log`` (TRADE or SETTLEMENT)."""

    entry_id: str
    symbol: str
    category: Category
    kind: str
    side: str
    coin: str
    qty: Decimal
    price: Decimal
    fee: Decimal
    funding: Decimal
    cash_flow: Decimal
    change: Decimal
    cash_balance: Decimal
    time_ms: int
    trade_id: str = ""
    order_id: str = ""
    order_link_id: str = ""
