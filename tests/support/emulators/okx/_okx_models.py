"""Data types shared by the OKX emulator's engine, account and HTTP layer."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal

# Rendering decimals is the same on every venue: the Binance emulator's copy serves.
from tests.support.emulators._common import fmt as fmt

ZERO = Decimal(0)
ONE = Decimal(1)
INST_TYPES = ("SPOT", "MARGIN", "SWAP", "FUTURES", "OPTION")
RATE_LIMIT_MSG = "Too Many Requests"


class Fault(enum.Enum):
    """Faults a test can inject into the OKX emulator (see ``OkxEmulator.inject``).

    RATE_LIMIT, SERVER_ERROR, REJECT and TIMEOUT (without ``accept``) answer before
    the request is executed: no order is placed, no setting changes.
    """

    RATE_LIMIT = "rate_limit"
    """HTTP 429 with ``{"code": "50011"}``, as OKX answers a request over its limit."""
    SERVER_ERROR = "server_error"
    """HTTP ``status`` (default 503); plain-text ``body``, or OKX JSON with ``code``/``msg``."""
    TIMEOUT = "timeout"
    """Hold the answer ``delay_s`` (default 2 s), then 50004; ``accept=True`` executes first."""
    DROP_AFTER_ACCEPT = "drop_after_accept"
    """Order creation: the order is accepted (and filled), then the connection is cut."""
    PARTIAL_FILL = "partial_fill"
    """The next order fills only ``fraction`` (default 0.5); the rest rests or is canceled."""
    REJECT = "reject"
    """Order endpoints: ``code "1"`` with ``sCode``/``sMsg`` (default 51008) per order;
    other endpoints: the top-level ``code``/``msg``."""


class OkxError(Exception):
    """An error answer in OKX's shape: HTTP status plus ``{"code", "msg", "data": []}``."""

    def __init__(self, code: str, msg: str, status: int = 200) -> None:
        super().__init__(f"{status} {code} {msg}")
        self.status = status
        self.code = code
        self.msg = msg


class OrderRejected(Exception):
    """One order refused by the order service: ``sCode``/``sMsg`` inside ``data``."""

    def __init__(self, code: str, msg: str) -> None:
        super().__init__(f"{code} {msg}")
        self.code = code
        self.msg = msg


def param_error(name: str) -> OkxError:
    """51000 ``Parameter {name} error`` (HTTP 400), OKX's answer to a bad value."""
    return OkxError("51000", f"Parameter {name} error", 400)


def param_empty(name: str) -> OkxError:
    """50014 ``Parameter {name} can not be empty.`` (HTTP 400)."""
    return OkxError("50014", f"Parameter {name} can not be empty.", 400)


@dataclass(frozen=True)
class OkxMarket:
    """One base coin's instruments: a spot pair, a USDT-margined perpetual, dated futures,
    and a coin-margined (inverse) perpetual when ``inverse_ct_val`` is set.

    Contracts are not coins: one ``BTC-USDT-SWAP`` contract is ``ct_val`` (0.01) BTC, and
    ``sz`` of a swap/futures order, ``pos`` of a position and book sizes count contracts.
    ``lot_sz``/``min_sz`` are the spot ones (base coin); ``ct_lot_sz``/``ct_min_sz``
    those of the contracts. One ``BTC-USD-SWAP`` contract is ``inverse_ct_val`` USD of
    face (100; ETH-USD-SWAP 10), settled and margined in the coin (lot and minimum 1
    contract). The emulated book has ``depth_levels`` levels each side of
    ``level_base`` coins, one tick apart; it does not deplete. ``state`` is ``live`` or
    ``suspend`` (orders refused with 51022). ``open_interest`` is everyone else's, in
    coins, per contract instrument (our positions add to it).
    """

    base: str
    quote: str = "USDT"
    spot: bool = True
    swap: bool = True
    futures: tuple[datetime, ...] = ()
    ct_val: Decimal = Decimal("0.01")
    ct_mult: Decimal = ONE
    lot_sz: Decimal = Decimal("0.00000001")
    min_sz: Decimal = Decimal("0.00001")
    ct_lot_sz: Decimal = Decimal("0.01")
    ct_min_sz: Decimal = Decimal("0.01")
    tick_sz: Decimal = Decimal("0.1")
    price: Decimal = Decimal(60000)
    level_base: Decimal = Decimal(5)
    depth_levels: int = 20
    max_lever: int = 100
    mmr: Decimal = Decimal("0.004")
    funding_rate: Decimal = Decimal("0.0001")
    state: str = "live"
    open_interest: Decimal = Decimal(50000)
    inverse_ct_val: Decimal | None = None

    @property
    def spot_id(self) -> str:
        """``BTC-USDT``."""
        return f"{self.base}-{self.quote}"

    @property
    def swap_id(self) -> str:
        """``BTC-USDT-SWAP``."""
        return f"{self.base}-{self.quote}-SWAP"

    @property
    def inverse_swap_id(self) -> str:
        """``BTC-USD-SWAP``: the coin-margined perpetual."""
        return f"{self.base}-USD-SWAP"

    def futures_id(self, expiry: datetime) -> str:
        """``BTC-USDT-261225``."""
        return f"{self.base}-{self.quote}-{expiry:%y%m%d}"

    @property
    def contract_base(self) -> Decimal:
        """Base coins per contract: ctVal * ctMult."""
        return self.ct_val * self.ct_mult


DEFAULT_MARKETS: tuple[OkxMarket, ...] = (
    OkxMarket(
        base="BTC",
        futures=(datetime(2026, 12, 25, 8, tzinfo=UTC),),
        inverse_ct_val=Decimal(100),
    ),
    OkxMarket(
        base="ETH",
        ct_val=Decimal("0.1"),
        lot_sz=Decimal("0.000001"),
        min_sz=Decimal("0.0001"),
        tick_sz=Decimal("0.01"),
        price=Decimal(3000),
        level_base=Decimal(50),
        max_lever=100,
        mmr=Decimal("0.005"),
        inverse_ct_val=Decimal(10),
    ),
)


def generate_markets(count: int = 600) -> list[OkxMarket]:
    """A real-sized list: BTC, ETH and ``count - 2`` made-up coins, each with a spot pair
    and a USDT perpetual (``count`` of each; no coin-margined swap), for benchmarks of
    ``load_markets``."""
    made_up = [
        OkxMarket(
            base=f"C{i:04d}",
            ct_val=Decimal(10),
            ct_lot_sz=ONE,
            ct_min_sz=ONE,
            lot_sz=Decimal("0.0001"),
            min_sz=Decimal("0.1"),
            tick_sz=Decimal("0.001"),
            price=Decimal(100),
            level_base=Decimal(1000),
            max_lever=50,
        )
        for i in range(max(0, count - len(DEFAULT_MARKETS)))
    ]
    linear_only = [replace(m, inverse_ct_val=None) for m in DEFAULT_MARKETS]
    return [*linear_only, *made_up]


@dataclass(frozen=True)
class Instrument:
    """One tradable instrument id of a market: ``SPOT``, ``SWAP`` or ``FUTURES``;
    ``inverse``: the coin-margined swap (face in USD, margin, PnL and fees in the coin)."""

    inst_id: str
    inst_type: str
    market: OkxMarket
    expiry_ms: int | None = None
    inverse: bool = False

    @property
    def is_contract(self) -> bool:
        """Whether sizes count contracts (SWAP, FUTURES)."""
        return self.inst_type != "SPOT"

    @property
    def lot(self) -> Decimal:
        """The size step (lotSz)."""
        if self.inverse:
            return ONE
        return self.market.ct_lot_sz if self.is_contract else self.market.lot_sz

    @property
    def min_size(self) -> Decimal:
        """The smallest order size (minSz)."""
        if self.inverse:
            return ONE
        return self.market.ct_min_sz if self.is_contract else self.market.min_sz

    @property
    def settle_ccy(self) -> str:
        """What margins the contract and settles its PnL and fees: the coin of an inverse
        swap, the quote (USDT) of a linear one."""
        return self.market.base if self.inverse else self.market.quote

    @property
    def face(self) -> Decimal:
        """USD per contract of an inverse swap (ctVal)."""
        return self.market.inverse_ct_val or ONE

    def base_qty(self, size: Decimal, price: Decimal | None = None) -> Decimal:
        """Base coins of ``size`` (contracts for a contract, coins for spot); an inverse
        contract's coins depend on ``price``."""
        if self.inverse:
            return size * self.face / (price or self.market.price)
        return size * self.market.contract_base if self.is_contract else size

    def contracts(self, coins: Decimal, price: Decimal) -> Decimal:
        """Contracts of ``coins`` at ``price``."""
        if self.inverse:
            return coins * price / self.face
        return coins / self.market.contract_base if self.is_contract else coins

    def value(self, size: Decimal, price: Decimal) -> Decimal:
        """What ``size`` is worth at ``price`` in the settle currency: USDT for a linear
        contract, coins (face / price) for an inverse one."""
        if self.inverse:
            return size * self.face / price
        return self.base_qty(size) * price

    def long_pnl(self, size: Decimal, entry: Decimal, exit_price: Decimal) -> Decimal:
        """PnL in the settle currency of ``size`` long from ``entry`` to ``exit_price``:
        an inverse contract's is ``face x (1/entry - 1/exit)`` coins."""
        if self.inverse:
            return self.value(size, entry) - self.value(size, exit_price)
        return self.value(size, exit_price) - self.value(size, entry)

    def average(self, held: Decimal, avg: Decimal, size: Decimal, price: Decimal) -> Decimal:
        """Entry price after adding ``size`` at ``price`` to ``held`` at ``avg``: the
        harmonic mean for an inverse contract (its coins add up), else the arithmetic."""
        total = held + size
        if self.inverse:
            return total / (held / avg + size / price) if held else price
        return (held * avg + size * price) / total


@dataclass
class Fill:
    """One execution of an order against the emulated book (size in order units)."""

    trade_id: int
    bill_id: int
    price: Decimal
    size: Decimal
    fee: Decimal  # negative: charged, as OKX signs it
    fee_ccy: str
    maker: bool
    time_ms: int
    pnl: Decimal = ZERO


@dataclass
class EmulatedOrder:
    """An order the exchange accepted, with its fills."""

    ord_id: str
    cl_ord_id: str
    tag: str
    inst: Instrument
    td_mode: str
    side: str
    pos_side: str
    ord_type: str
    size: Decimal
    price: Decimal
    reduce_only: bool
    lever: str
    time_ms: int
    update_ms: int
    state: str = "live"
    fills: list[Fill] = field(default_factory=list)
    cancel_source: str = ""

    @property
    def filled(self) -> Decimal:
        """Size filled so far."""
        return sum((f.size for f in self.fills), ZERO)

    @property
    def avg_price(self) -> Decimal:
        """Average fill price, 0 when nothing filled."""
        filled = self.filled
        return sum((f.size * f.price for f in self.fills), ZERO) / filled if filled else ZERO

    @property
    def fee(self) -> Decimal:
        """Fees so far (negative)."""
        return sum((f.fee for f in self.fills), ZERO)

    @property
    def remaining(self) -> Decimal:
        """Size still open."""
        return self.size - self.filled

    @property
    def is_open(self) -> bool:
        """Whether the order still rests on the book."""
        return self.state in ("live", "partially_filled")


@dataclass(frozen=True)
class OrderLogEntry:
    """One order request as received, with what became of it."""

    time_ms: int
    cl_ord_id: str | None
    inst_id: str | None
    side: str | None
    ord_type: str | None
    size: Decimal | None
    price: Decimal | None
    td_mode: str | None
    pos_side: str | None
    reduce_only: bool
    outcome: str
    fills: tuple[tuple[Decimal, Decimal], ...] = ()


@dataclass(frozen=True)
class Bill:
    """One account bill (``/api/v5/account/bills``): 2 trade, 6 margin transfer, 8 funding."""

    bill_id: int
    type: str
    sub_type: str
    ccy: str
    bal_chg: Decimal
    bal: Decimal
    inst_id: str
    inst_type: str
    mgn_mode: str
    time_ms: int
    ord_id: str = ""
    size: Decimal = ZERO
    price: Decimal = ZERO
    pnl: Decimal = ZERO
    fee: Decimal = ZERO
    pos_bal_chg: Decimal = ZERO


@dataclass(frozen=True)
class FundingEvent:
    """One funding settlement of a perpetual (``/api/v5/public/funding-rate-history``)."""

    inst_id: str
    rate: Decimal
    time_ms: int


@dataclass
class PositionState:
    """One position: size in contracts (signed in net mode), entry, margin added."""

    inst_id: str
    mgn_mode: str
    pos_side: str
    pos_id: str
    pos: Decimal = ZERO
    avg_px: Decimal = ZERO
    c_time: int = 0
    u_time: int = 0
    added_margin: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    fee: Decimal = ZERO
    funding_fee: Decimal = ZERO


def fmt_ratio(value: Decimal, places: int = 8) -> str:
    """Render a derived figure (ratio, liquidation price) rounded to ``places``."""
    return fmt(value.quantize(Decimal(1).scaleb(-places)))
