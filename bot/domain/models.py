"""Value objects shared by the pure core and the shell.

Every price, quantity and notional is a ``Decimal``. Quantities of a perp are in
the *base* coin (contracts x contract size), signed: negative is short.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from bot.domain.symbols import Symbol

ZERO = Decimal(0)
ONE = Decimal(1)


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


class OrderStatus(StrEnum):
    """Lifecycle of an order as the store records it."""

    PENDING = "pending"  # intent stored, not yet (known to be) sent
    ACCEPTED = "accepted"  # the venue acknowledged it, fills unknown
    FILLED = "filled"
    PARTIALLY_FILLED = "partially_filled"
    CANCELED = "canceled"  # final without a full fill (IOC remainder, cancel); see filled
    REJECTED = "rejected"  # the venue said no
    UNKNOWN = "unknown"  # the answer was lost and the look-up found nothing yet


@dataclass(frozen=True, slots=True)
class Market:
    """Trading rules of one symbol, taken from the venue."""

    symbol: str
    base: str
    quote: str
    amount_step: Decimal
    price_step: Decimal
    min_amount: Decimal = ZERO
    max_amount: Decimal | None = None
    min_notional: Decimal = ZERO
    contract_size: Decimal = ONE
    is_perp: bool = False  # any contract, perpetual or dated
    expiry: datetime | None = None  # a dated future's delivery time; None: spot or perpetual
    taker_fee: Decimal | None = None  # the venue's taker fee rate (0.0005); None: not stated
    # The venue takes a reduce-only order under min_notional (Binance USDⓈ-M), so a
    # residual position below it can still be closed.
    reduce_only_below_min_notional: bool = False
    # None: open for trading; else why not, in the venue's word (Binance SETTLING, BREAK).
    suspended: str | None = None
    # A coin-margined contract (BTC/USD:BTC): contract_size is its face value in the quote
    # (USD), its margin, PnL and funding are in the base coin (see bot.domain.inverse).
    inverse: bool = False


@dataclass(frozen=True, slots=True)
class Balance:
    """One asset of a wallet, with the same meaning on every venue.

    ``total`` is the wallet balance: deposits, realized PnL, fees and funding, without the
    unrealized PnL of open positions (Binance's walletBalance). ``equity`` is a margin
    wallet's worth with that PnL (Binance's marginBalance); None for a spot wallet. The
    venue's adapter fills both from its own figures: nothing downstream adds PnL again.
    """

    asset: str
    free: Decimal
    total: Decimal
    equity: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Ticker:
    symbol: str
    bid: Decimal
    ask: Decimal
    last: Decimal
    timestamp: datetime

    @property
    def mid(self) -> Decimal:
        return (self.bid + self.ask) / 2


@dataclass(frozen=True, slots=True)
class BookLevel:
    price: Decimal
    amount: Decimal  # in contracts


@dataclass(frozen=True, slots=True)
class OrderBook:
    symbol: str
    bids: tuple[BookLevel, ...]  # best first
    asks: tuple[BookLevel, ...]  # best first
    timestamp: datetime


@dataclass(frozen=True, slots=True)
class MarketStats:
    """How liquid a market is, in the quote asset; None where the venue does not say."""

    symbol: str
    open_interest_value: Decimal | None
    quote_volume_24h: Decimal | None
    timestamp: datetime


@dataclass(frozen=True, slots=True)
class FundingRate:
    symbol: str
    rate: Decimal  # per funding interval, e.g. 0.0001 = 0.01 %
    next_funding_at: datetime | None
    timestamp: datetime
    interval_hours: Decimal | None = None  # hours between payments, where the venue says


@dataclass(frozen=True, slots=True)
class Candle:
    """One OHLCV bar; it covers ``[opened_at, opened_at + timeframe)`` and is closed after."""

    opened_at: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class Position:
    """A perp position; ``qty`` is signed base quantity (negative = short)."""

    symbol: str
    qty: Decimal
    entry_price: Decimal
    mark_price: Decimal
    unrealized_pnl: Decimal
    leverage: Decimal
    liquidation_price: Decimal | None
    margin: Decimal = ZERO
    updated_at: datetime | None = None  # when the venue last changed it, if it says


@dataclass(frozen=True, slots=True)
class Observation:
    """Everything one decision for one pair is based on."""

    pair: str
    spot_symbol: str
    perp_symbol: str
    spot_qty: Decimal  # base coin held on spot (total)
    perp_qty: Decimal  # signed base quantity of the perp position
    price: Decimal  # mark / mid price of the perp, in quote
    bid: Decimal
    ask: Decimal
    funding_rate: Decimal
    observed_at: datetime
    position: Position | None = None
    # Our recent fills the venue's position view does not show yet, already in perp_qty.
    unreflected_qty: Decimal = ZERO
    funding_interval_hours: Decimal | None = None  # None: the venue does not say
    # Dated futures (the basis strategy): the spot price and the contract's expiry.
    spot_price: Decimal | None = None
    expiry: datetime | None = None


@dataclass(frozen=True, slots=True)
class HedgeParams:
    """The pair's policy knobs, as the pure core sees them."""

    target_ratio: Decimal
    band: Decimal
    min_notional: Decimal
    max_order_notional: Decimal


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """An order the policy wants; amount is in contracts, already quantized."""

    symbol: str
    side: Side
    amount: Decimal
    reduce_only: bool
    reference_price: Decimal

    @property
    def notional(self) -> Decimal:
        return self.amount * self.reference_price


@dataclass(frozen=True, slots=True)
class Decision:
    """The policy's answer for one observation, with the reason in words."""

    pair: str
    target_ratio: Decimal
    ratio: Decimal | None  # None when there is no spot to hedge
    drift_qty: Decimal  # target x spot - hedge, in base
    band: Decimal
    action: str  # "none" | "order" | "denied" (the free margin cannot pay the smallest order)
    reason: str
    intent: OrderIntent | None = None


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """What the executor asks a venue to do."""

    symbol: str
    side: Side
    amount: Decimal
    client_order_id: str
    reduce_only: bool = False
    order_type: str = "market"
    price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Fill:
    trade_id: str
    symbol: str
    side: Side
    amount: Decimal
    price: Decimal
    fee: Decimal
    fee_asset: str
    timestamp: datetime


@dataclass(frozen=True, slots=True)
class OrderResult:
    """A venue's view of one order."""

    client_order_id: str
    exchange_order_id: str | None
    symbol: str
    side: Side
    status: OrderStatus
    amount: Decimal
    filled: Decimal
    average_price: Decimal | None
    fee: Decimal
    fee_asset: str | None
    fills: tuple[Fill, ...] = field(default_factory=tuple)
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class FundingPayment:
    """Funding paid (negative) or received (positive) on a position."""

    symbol: str
    amount: Decimal  # in the quote asset
    asset: str
    rate: Decimal | None  # None where the venue reports only the amount
    position_qty: Decimal | None
    mark_price: Decimal | None
    timestamp: datetime


def settle_asset(symbol: str) -> str:
    """The settlement asset of a contract symbol (``USDT`` of ``BTC/USDT:USDT-261225``).

    A thin wrapper over ``Symbol.parse(symbol).margin_asset`` for existing callers."""
    return Symbol.parse(symbol).margin_asset
