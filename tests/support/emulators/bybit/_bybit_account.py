"""The emulated Bybit unified trading account: one wallet, positions, account settings.

A unified account (UTA 2.0) holds every coin in one wallet: spot trades move coins in
it, and linear contracts draw their margin from it and settle PnL, fees and funding
into its USDT; inverse contracts (sizes in USD contracts) do the same in their base
coin, held in the same wallet as the spot coins. The margin mode is account-wide.
Views that a fill changes (wallet, positions) can lag behind the truth by ``lag_s`` seconds.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from tests.support.emulators.bybit._bybit_models import ZERO, PositionState

MARGIN_MODES = ("REGULAR_MARGIN", "ISOLATED_MARGIN", "PORTFOLIO_MARGIN")
ONE_WAY, HEDGE = 0, 3
DEFAULT_LEVERAGE = Decimal(10)
#: symbol -> (mark, maintenance margin rate, max leverage, settle coin, inverse)
Marks = dict[str, tuple[Decimal, Decimal, int, str, bool]]


@dataclass
class Holdings:
    """What a view shows: wallet and spot-locked coins, positions by (symbol, idx)."""

    wallet: dict[str, Decimal] = field(default_factory=dict)
    locked: dict[str, Decimal] = field(default_factory=dict)
    positions: dict[tuple[str, int], PositionState] = field(default_factory=dict)
    updated_ms: int = 0


@dataclass
class PositionView:
    """One position as /v5/position/list reports it."""

    symbol: str
    idx: int
    state: PositionState
    mark: Decimal
    leverage: Decimal
    isolated: bool
    mmr: Decimal
    coin: str = "USDT"
    inverse: bool = False

    @property
    def size(self) -> Decimal:
        """Signed size in base coin (an inverse position's in USD contracts)."""
        return self.state.size

    @property
    def value(self) -> Decimal:
        """positionValue: size at the entry price (an inverse one's in coins)."""
        if self.inverse:
            return abs(self.size) / self.state.entry if self.state.entry else ZERO
        return abs(self.size) * self.state.entry

    @property
    def unrealised(self) -> Decimal:
        """Unrealised PnL at the mark (an inverse position's in its coin)."""
        if self.inverse:
            return self.size * (1 / self.state.entry - 1 / self.mark) if self.mark else ZERO
        return self.size * (self.mark - self.state.entry)

    @property
    def initial_margin(self) -> Decimal:
        """positionIM: the position's value over its leverage."""
        return self.value / self.leverage if self.leverage else ZERO

    @property
    def maint_margin(self) -> Decimal:
        """positionMM at the mark."""
        if self.inverse:
            return abs(self.size) / self.mark * self.mmr if self.mark else ZERO
        return abs(self.size) * self.mark * self.mmr

    @property
    def balance(self) -> Decimal:
        """positionBalance: initial margin plus what add-margin moved in (isolated)."""
        return self.initial_margin + (self.state.added_margin if self.isolated else ZERO)

    def liquidation(self, cross_equity: Decimal) -> Decimal:
        """A one-position liquidation price: isolated on its balance, cross on equity."""
        if self.size == 0:
            return ZERO
        margin = self.balance if self.isolated else cross_equity
        if self.inverse:
            return self._inverse_liquidation(margin)
        qty = abs(self.size)
        direction = Decimal(1) if self.size > 0 else Decimal(-1)
        price = (direction * qty * self.state.entry - margin) / (direction * qty - qty * self.mmr)
        return max(price, ZERO)

    def _inverse_liquidation(self, margin: Decimal) -> Decimal:
        """Where coin ``margin`` plus the coin PnL meets the maintenance margin:
        ``size/entry - size/p + margin = |size| x mmr / p``; 0 when no price gets there
        (a short at 1x margined by its coins)."""
        size = self.size
        below = size / self.state.entry + margin
        if below <= 0:
            return ZERO
        price = (size + abs(size) * self.mmr) / below
        return max(price, ZERO)


class Account:
    """Wallet, positions, leverage, margin and position modes of one unified account."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.live = Holdings()
        self.leverage: dict[str, Decimal] = {}
        self.margin_mode = "REGULAR_MARGIN"
        self.position_mode: dict[str, int] = {}
        self.cum_realised: dict[str, Decimal] = {}
        self.lag_s = 0.0
        self._history: list[tuple[float, Holdings]] = []
        self.updated_ms = 0

    def now_ms(self) -> int:
        """Current time in ms."""
        return int(self.clock() * 1000)

    # ------------------------------------------------------------------ lag
    def snapshot(self) -> None:
        """Remember the current holdings before a change the views may show late."""
        if self.lag_s <= 0:
            return
        self._prune()
        self._history.append((self.clock(), copy.deepcopy(self.live)))

    def _prune(self) -> None:
        cutoff = self.clock() - self.lag_s
        self._history = [(t, h) for t, h in self._history if t > cutoff]

    def view(self, *, lagged: bool = True) -> Holdings:
        """The oldest holdings inside the lag window, else the current ones."""
        self._prune()
        if lagged and self.lag_s > 0 and self._history:
            return self._history[0][1]
        return self.live

    def _everywhere(self) -> list[Holdings]:
        return [self.live, *(h for _, h in self._history)]

    # ------------------------------------------------------------------ wallet
    def set_balance(self, coin: str, amount: Decimal) -> None:
        """Set a coin's wallet balance, now and in every lagged view."""
        now = self.now_ms()
        for holdings in self._everywhere():
            holdings.wallet[coin] = amount
            holdings.locked.setdefault(coin, ZERO)
            holdings.updated_ms = now

    def credit(self, coin: str, delta: Decimal, *, lagged: bool = True) -> None:
        """Add ``delta`` to a coin (negative debits); unlagged changes show everywhere."""
        targets = [self.live] if lagged else self._everywhere()
        for holdings in targets:
            holdings.wallet[coin] = holdings.wallet.get(coin, ZERO) + delta
            holdings.locked.setdefault(coin, ZERO)
        self.live.updated_ms = self.now_ms()

    def free(self, coin: str) -> Decimal:
        """Wallet balance not locked by resting spot orders (true, unlagged)."""
        return self.live.wallet.get(coin, ZERO) - self.live.locked.get(coin, ZERO)

    def lock(self, coin: str, amount: Decimal) -> None:
        """Lock (or, negative, release) a coin for a resting spot order."""
        self.live.locked[coin] = self.live.locked.get(coin, ZERO) + amount

    # ------------------------------------------------------------------ positions
    def leverage_of(self, symbol: str, max_leverage: int) -> Decimal:
        """The symbol's leverage (the default until set)."""
        return self.leverage.get(symbol, min(DEFAULT_LEVERAGE, Decimal(max_leverage)))

    def hedged(self, symbol: str) -> bool:
        """Whether the symbol is in hedge mode (BothSide)."""
        return self.position_mode.get(symbol, ONE_WAY) == HEDGE

    def position(self, symbol: str, idx: int) -> PositionState:
        """The live position state (created empty)."""
        return self.live.positions.setdefault((symbol, idx), PositionState())

    def apply_fill(
        self, symbol: str, idx: int, signed: Decimal, price: Decimal, inverse: bool = False
    ) -> Decimal:
        """Move a position by a fill; returns the PnL it realised (not yet credited). An
        inverse position (``inverse``: sizes in USD contracts) averages its entry
        harmonically and realises its PnL in the coin."""
        state = self.position(symbol, idx)
        now = self.now_ms()
        realised = ZERO
        if state.size == 0 or (state.size > 0) == (signed > 0):
            total = abs(state.size) + abs(signed)
            if inverse:
                held = abs(state.size) / state.entry if state.size else ZERO
                state.entry = total / (held + abs(signed) / price)
            else:
                state.entry = (abs(state.size) * state.entry + abs(signed) * price) / total
            if state.size == 0:
                state.created_ms = now
        else:
            closed = min(abs(signed), abs(state.size))
            direction = Decimal(1) if state.size > 0 else Decimal(-1)
            if inverse:
                realised = closed * (1 / state.entry - 1 / price) * direction
            else:
                realised = closed * (price - state.entry) * direction
            before = abs(state.size)
            state.added_margin = state.added_margin * max(before - closed, ZERO) / before
            if abs(signed) > before:
                state.entry = price
                state.added_margin = ZERO
        state.size += signed
        if state.size == 0:
            state.entry = ZERO
            state.added_margin = ZERO
        state.cum_realised += realised
        state.updated_ms = now
        return realised

    def views(
        self,
        marks: Marks,
        *,
        lagged: bool = True,
    ) -> list[PositionView]:
        """Every held position (size ≠ 0) as seen; ``marks``: symbol → (mark, mmr, max lev,
        settle coin, inverse)."""
        holdings = self.view(lagged=lagged)
        isolated = self.margin_mode == "ISOLATED_MARGIN"
        rows = []
        for (symbol, idx), state in sorted(holdings.positions.items()):
            if state.size == 0 or symbol not in marks:
                continue
            mark, mmr, max_lev, coin, inverse = marks[symbol]
            lev = self.leverage_of(symbol, max_lev)
            rows.append(PositionView(symbol, idx, state, mark, lev, isolated, mmr, coin, inverse))
        return rows

    def has_position(self, symbol: str | None = None) -> bool:
        """Whether any (or the symbol's) position is open."""
        return any(
            s.size != 0 and (symbol is None or sym == symbol)
            for (sym, _idx), s in self.live.positions.items()
        )
