"""Price sources for the paper venue: a seeded random walk, CSV replay, and manual prices.

Every feed prices a *base coin*: ``BTC/USDT`` and ``BTC/USDT:USDT`` get the same price, so
a spot holding and its perp hedge always move together (the perp's basis is not simulated;
the paper venue adds a configured basis to dated futures only).
Feeds are synchronous and cheap; the paper venue asks them for a quote whenever it
observes the account and keeps their ``state()`` in the saved paper account.
"""

from __future__ import annotations

import bisect
import csv
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import (
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    InvalidOperation,
    localcontext,
)
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from bot.config import PaperConfig, SimFeedConfig
from bot.domain.symbols import base_of
from bot.exchange.gateway import FatalError

ZERO = Decimal(0)

# Working precision of the walk; fixed here so a caller's decimal context cannot change a path.
_WALK_CONTEXT = Context(prec=28, rounding=ROUND_HALF_EVEN)
# Prices come out with 8 significant digits: enough for any tick size, short in the JSON state.
_PRICE_CONTEXT = Context(prec=8, rounding=ROUND_HALF_EVEN)
_RATE_QUANTUM = Decimal("1e-8")
# Funding rate per interval is kept within ±0.3 % (exchanges cap it in a similar range).
FUNDING_RATE_LIMIT = Decimal("0.003")
# Pull of the funding rate back to its configured mean, per step.
FUNDING_MEAN_REVERSION = Decimal("0.001")
DEFAULT_MAX_STEPS_PER_CALL = 10_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Epoch values above this are milliseconds (1e11 s is the year 5138).
_EPOCH_MS_THRESHOLD = Decimal("1e11")


class FeedError(FatalError):
    """A feed cannot price a symbol or its data is bad; the pair stops (a config problem)."""


@dataclass(frozen=True, slots=True)
class FeedQuote:
    """A feed's price and funding rate (per funding interval) for one symbol."""

    price: Decimal
    funding_rate: Decimal
    timestamp: datetime


@runtime_checkable
class PriceFeed(Protocol):
    """A source of prices for the paper venue."""

    def quote(self, symbol: str, now: datetime) -> FeedQuote:
        """Price and funding rate of ``symbol`` (or its base coin) at ``now``."""
        ...

    def state(self) -> dict[str, Any]:
        """JSON-able state, saved with the paper account."""
        ...

    def restore(self, state: Mapping[str, Any]) -> None:
        """Continue from a ``state()`` saved earlier; a state of another kind is ignored."""
        ...


@runtime_checkable
class RefreshableFeed(PriceFeed, Protocol):
    """A feed whose quotes come from I/O: refreshed before they are read."""

    async def refresh(self, symbols: Iterable[str]) -> None:
        """Bring the quotes of ``symbols`` up to date."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


def base_coin(symbol: str) -> str:
    """The base coin of ``BTC/USDT:USDT``, ``BTC/USDT`` or plain ``BTC`` (all give ``BTC``)."""
    return base_of(symbol)


def _elapsed_seconds(start: datetime, end: datetime) -> Decimal:
    delta = end - start
    return Decimal(delta.days * 86400 + delta.seconds) + Decimal(delta.microseconds) / 1_000_000


def _seconds(value: Decimal) -> timedelta:
    # Whole microseconds, via int, so no float touches the walk's clock.
    return timedelta(microseconds=int(value * 1_000_000))


# A remembered price path keeps one point per this long, and this many points (10 days).
PATH_RESOLUTION = timedelta(minutes=1)
MAX_PATH_POINTS = 14_400


@dataclass(slots=True)
class _Path:
    """Recent (time, price) points, one per PATH_RESOLUTION bucket: the bucket's last price."""

    points: list[tuple[datetime, Decimal]] = field(default_factory=list)

    def add(self, at: datetime, price: Decimal) -> None:
        bucket = _bucket(at)
        if self.points and _bucket(self.points[-1][0]) == bucket:
            self.points[-1] = (at, price)
        elif self.points and at < self.points[-1][0]:
            return
        else:
            self.points.append((at, price))
            if len(self.points) > MAX_PATH_POINTS * 2:
                del self.points[:MAX_PATH_POINTS]

    def between(self, start: datetime, end: datetime) -> list[tuple[datetime, Decimal]]:
        times = [at for at, _ in self.points]
        first = max(0, bisect.bisect_left(times, start) - 1)
        last = bisect.bisect_right(times, end)
        return self.points[first:last]


def _bucket(at: datetime) -> int:
    return (at - _EPOCH) // PATH_RESOLUTION


@dataclass(slots=True)
class _Walk:
    step: int
    price: Decimal
    funding_rate: Decimal
    at: datetime  # time of the last step taken (or of the start)


class SimFeed:
    """A seeded random walk with jumps per base coin, and a mean-reverting funding rate.

    One step per ``config.step_seconds`` of elapsed time. Step ``n`` of coin ``c`` draws
    from ``random.Random(f"{seed}:{c}:{n}")`` alone, so a path depends only on the seed,
    the coin and the step index, and a restored state continues the same path.
    """

    def __init__(
        self,
        config: SimFeedConfig,
        seed: int,
        *,
        max_steps_per_call: int = DEFAULT_MAX_STEPS_PER_CALL,
    ) -> None:
        """Start every coin at its configured price when it is first quoted."""
        if max_steps_per_call < 1:
            raise ValueError(f"max_steps_per_call must be at least 1, got {max_steps_per_call}")
        self._config = config
        self._seed = seed
        self._max_steps = max_steps_per_call
        self._walks: dict[str, _Walk] = {}
        # Price path for candles: one point per PATH_RESOLUTION (the last price in it), kept
        # in memory only, so after a restart the candles start again from the restart.
        self._paths: dict[str, _Path] = {}
        # A configured mean outside the usual range widens the clamp rather than fighting it.
        self._rate_limit = max(FUNDING_RATE_LIMIT, abs(config.initial_funding_rate))

    @property
    def seed(self) -> int:
        """The seed of every path."""
        return self._seed

    def quote(self, symbol: str, now: datetime) -> FeedQuote:
        """Advance the coin's walk to ``now`` and return its price and funding rate."""
        coin = base_coin(symbol)
        walk = self._walks.get(coin)
        if walk is None:
            walk = _Walk(
                step=0,
                price=self._config.initial_prices.get(coin, self._config.default_initial_price),
                funding_rate=self._config.initial_funding_rate,
                at=now,
            )
            self._walks[coin] = walk
        self._advance(coin, walk, now)
        return FeedQuote(price=walk.price, funding_rate=walk.funding_rate, timestamp=walk.at)

    def _advance(self, coin: str, walk: _Walk, now: datetime) -> None:
        if now <= walk.at:
            return  # a quote for an earlier time gets the current price; the walk never rewinds
        step_seconds = self._config.step_seconds
        due = int(_elapsed_seconds(walk.at, now) // step_seconds)
        if due == 0:
            return
        # After a long outage the walk takes at most max_steps and then resumes from now,
        # rather than spending minutes catching up on every missed step.
        path = self._paths.setdefault(coin, _Path())
        if not path.points:
            path.add(walk.at, walk.price)
        for taken in range(1, min(due, self._max_steps) + 1):
            self._step(coin, walk)
            path.add(walk.at + _seconds(taken * step_seconds), walk.price)
        walk.at += _seconds(due * step_seconds)

    def price_path(
        self, symbol: str, start: datetime, end: datetime
    ) -> list[tuple[datetime, Decimal]]:
        """The walk's prices since this process started it (one per minute at most)."""
        path = self._paths.get(base_coin(symbol))
        return path.between(start, end) if path else []

    def _step(self, coin: str, walk: _Walk) -> None:
        config = self._config
        step = walk.step + 1
        # Not for security: a reproducible simulation, one generator per step.
        rng = random.Random(f"{self._seed}:{coin}:{step}")  # noqa: S311
        with localcontext(_WALK_CONTEXT):
            log_return = config.volatility * _standard_normal(rng)
            if _uniform(rng) < config.jump_probability:
                log_return += config.jump_size if rng.getrandbits(1) else -config.jump_size
            # exp() keeps the price positive whatever the draw.
            price = _PRICE_CONTEXT.plus(walk.price * log_return.exp())
            rate = walk.funding_rate
            rate += FUNDING_MEAN_REVERSION * (config.initial_funding_rate - rate)
            rate += config.funding_drift * _standard_normal(rng)
            rate = min(self._rate_limit, max(-self._rate_limit, rate)).quantize(_RATE_QUANTUM)
        walk.step = step
        walk.price = price
        walk.funding_rate = rate

    def state(self) -> dict[str, Any]:
        """Each coin's step index, price, funding rate and step time (decimals as strings)."""
        return {
            "kind": "sim",
            "seed": self._seed,
            "coins": {
                coin: {
                    "step": walk.step,
                    "price": str(walk.price),
                    "funding_rate": str(walk.funding_rate),
                    "at": walk.at.isoformat(),
                }
                for coin, walk in self._walks.items()
            },
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Continue the saved walks.

        A state saved under another seed is still restored: the prices carry on from
        where they were (open positions stay consistent) with this feed's randomness.
        """
        if state.get("kind") != "sim":
            return
        try:
            walks = {
                str(coin): _Walk(
                    step=int(raw["step"]),
                    price=Decimal(raw["price"]),
                    funding_rate=Decimal(raw["funding_rate"]),
                    at=datetime.fromisoformat(raw["at"]),
                )
                for coin, raw in state["coins"].items()
            }
        except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
            raise FeedError(f"saved sim feed state is unreadable: {exc!r}") from exc
        self._walks = walks


def _uniform(rng: random.Random) -> Decimal:
    """A uniform draw in [0, 1) with 9 decimals, from integers only."""
    return Decimal(rng.randrange(1_000_000_000)) / 1_000_000_000


def _standard_normal(rng: random.Random) -> Decimal:
    """An approximately standard normal draw (Irwin-Hall: 12 uniforms - 6), integers only.

    Bounded at ±6 standard deviations; the jumps supply the fat tails.
    """
    total = sum(rng.getrandbits(32) for _ in range(12))
    return Decimal(total) / Decimal(2**32) - 6


@dataclass(frozen=True, slots=True)
class _Series:
    path: Path
    times: list[datetime]
    prices: list[Decimal]
    rates: list[Decimal]


class ReplayFeed:
    """Prices replayed from CSV files, one per symbol or base coin.

    Each file has the header ``timestamp,price[,funding_rate]``; timestamps are ISO 8601
    (naive ones are read as UTC) or epoch seconds / milliseconds, strictly increasing. A
    quote is the last row at or before ``now`` (the first row before the data starts).
    """

    def __init__(self, files: Mapping[str, Path]) -> None:
        """Read every file now, so a bad row stops start-up rather than a cycle."""
        if not files:
            raise FeedError("replay feed needs at least one file")
        self._by_key: dict[str, _Series] = {}
        self._by_coin: dict[str, _Series] = {}
        self._cursor: dict[str, int] = {}  # by symbol quoted: the row found last time
        for key, path in files.items():
            series = _read_series(Path(path))
            self._by_key[key] = series
            # The first file given for a coin serves its other symbols (spot ↔ perp).
            self._by_coin.setdefault(base_coin(key), series)

    def quote(self, symbol: str, now: datetime) -> FeedQuote:
        """The last row at or before ``now`` of the symbol's file (or its base coin's)."""
        series = self._by_key.get(symbol) or self._by_coin.get(base_coin(symbol))
        if series is None:
            known = ", ".join(sorted(self._by_key))
            raise FeedError(f"replay feed has no file for {symbol!r}; files are for: {known}")
        index = row_at(series.times, now, self._cursor.get(symbol, -1))
        self._cursor[symbol] = index
        return FeedQuote(
            price=series.prices[index],
            funding_rate=series.rates[index],
            timestamp=series.times[index],
        )

    def price_path(
        self, symbol: str, start: datetime, end: datetime
    ) -> list[tuple[datetime, Decimal]]:
        """The file's rows in ``[start, end]``, led by the last row before ``start``."""
        series = self._by_key.get(symbol) or self._by_coin.get(base_coin(symbol))
        if series is None:
            return []
        first = max(0, bisect.bisect_left(series.times, start) - 1)
        last = bisect.bisect_right(series.times, end)
        return list(zip(series.times[first:last], series.prices[first:last], strict=True))

    def series(self, symbol: str) -> tuple[list[datetime], list[Decimal], list[Decimal]]:
        """The rows that price ``symbol``: times, prices, funding rates (do not change them)."""
        series = self._by_key.get(symbol) or self._by_coin.get(base_coin(symbol))
        if series is None:
            known = ", ".join(sorted(self._by_key))
            raise FeedError(f"replay feed has no file for {symbol!r}; files are for: {known}")
        return series.times, series.prices, series.rates

    def state(self) -> dict[str, Any]:
        """Nothing to keep: a replay is a function of time."""
        return {"kind": "replay"}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Nothing to restore."""


def _read_series(path: Path) -> _Series:
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except OSError as exc:
        raise FeedError(f"{path}: cannot read replay file: {exc.strerror or exc}") from exc
    if not rows:
        raise FeedError(f"{path}: empty replay file; expected header 'timestamp,price'")
    header = [cell.strip().lower() for cell in rows[0]]
    if header not in (["timestamp", "price"], ["timestamp", "price", "funding_rate"]):
        raise FeedError(
            f"{path}:1: header must be 'timestamp,price[,funding_rate]', got {','.join(rows[0])!r}"
        )
    times: list[datetime] = []
    prices: list[Decimal] = []
    rates: list[Decimal] = []
    columns = len(header)
    # Rows a fixed number of whole seconds apart (the usual export) get their time by one
    # addition instead of a parse: a year of minutes is half a million rows.
    last_epoch = -1
    gap_s = 0
    gap = timedelta(0)
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != columns:
            if not row or all(not cell.strip() for cell in row):
                continue
            raise FeedError(
                f"{path}:{line}: expected {columns} columns ({','.join(header)}), "
                f"got {len(row)}: {','.join(row)!r}"
            )
        text = row[0].strip()
        epoch = int(text) if text.isdigit() else -1
        if gap_s > 0 and epoch - last_epoch == gap_s:
            at = times[-1] + gap
        else:
            at = _parse_timestamp(path, line, text)
            if times and at <= times[-1]:
                raise FeedError(
                    f"{path}:{line}: timestamp {text!r} is not after the previous "
                    f"row's {times[-1].isoformat()}"
                )
            gap_s = epoch - last_epoch if epoch >= 0 and last_epoch >= 0 else 0
            gap = timedelta(seconds=gap_s)
        last_epoch = epoch if epoch < 100_000_000_000 else -1
        price = _parse_decimal(path, line, "price", row[1].strip())
        if price <= ZERO:
            raise FeedError(f"{path}:{line}: price {row[1].strip()!r} must be positive")
        rate = _parse_decimal(path, line, "funding_rate", row[2].strip()) if columns > 2 else ZERO
        times.append(at)
        prices.append(price)
        rates.append(rate)
    if not times:
        raise FeedError(f"{path}: replay file has a header but no rows")
    return _Series(path=path, times=times, prices=prices, rates=rates)


def read_rate_series(path: Path) -> tuple[list[datetime], list[Decimal]]:
    """A funding-rate file with the header ``timestamp,funding_rate`` (rate per funding
    interval; timestamps as in replay files, strictly increasing)."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except OSError as exc:
        raise FeedError(f"{path}: cannot read funding file: {exc.strerror or exc}") from exc
    if not rows or [cell.strip().lower() for cell in rows[0]] != ["timestamp", "funding_rate"]:
        got = ",".join(rows[0]) if rows else "an empty file"
        raise FeedError(f"{path}:1: header must be 'timestamp,funding_rate', got {got!r}")
    times: list[datetime] = []
    rates: list[Decimal] = []
    for line, row in enumerate(rows[1:], start=2):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != 2:
            raise FeedError(f"{path}:{line}: expected 2 columns, got {len(row)}: {','.join(row)!r}")
        at = _parse_timestamp(path, line, row[0].strip())
        if times and at <= times[-1]:
            raise FeedError(
                f"{path}:{line}: timestamp {row[0].strip()!r} is not after the previous "
                f"row's {times[-1].isoformat()}"
            )
        times.append(at)
        rates.append(_parse_decimal(path, line, "funding_rate", row[1].strip()))
    if not times:
        raise FeedError(f"{path}: funding file has a header but no rows")
    return times, rates


def _parse_decimal(path: Path, line: int, column: str, text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite():
        raise FeedError(f"{path}:{line}: {column} {text!r} is not a decimal number")
    return value


def row_at(times: list[datetime], now: datetime, hint: int) -> int:
    """Index of the last of ``times`` at or before ``now`` (0 before the first).

    ``hint`` is the index found last time: a replay reads forward, so the answer is
    usually ``hint`` or the next row, found without a search."""
    last = len(times) - 1
    if 0 <= hint <= last and times[hint] <= now:
        if hint == last or now < times[hint + 1]:
            return hint
        if hint + 1 == last or now < times[hint + 2]:
            return hint + 1
    return max(0, bisect.bisect_right(times, now) - 1)


def _parse_timestamp(path: Path, line: int, text: str) -> datetime:
    if text.isdigit():  # whole epoch seconds or ms, the usual export: no Decimal needed
        whole = int(text)
        if whole >= 100_000_000_000:  # _EPOCH_MS_THRESHOLD as an int
            return _EPOCH + timedelta(milliseconds=whole)
        return _EPOCH + timedelta(seconds=whole)
    try:
        epoch = Decimal(text)
    except InvalidOperation:
        epoch = None
    if epoch is not None and epoch.is_finite():
        seconds = epoch / 1000 if abs(epoch) >= _EPOCH_MS_THRESHOLD else epoch
        try:
            return _EPOCH + _seconds(seconds)
        except OverflowError:
            raise FeedError(f"{path}:{line}: timestamp {text!r} is out of range") from None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise FeedError(
            f"{path}:{line}: timestamp {text!r} is neither ISO 8601 nor epoch seconds/ms"
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


class ManualFeed:
    """Prices and funding rates set by the caller (tests, worked examples).

    Prices are kept per base coin, so setting ``BTC`` or ``BTC/USDT:USDT`` prices both
    ``BTC/USDT`` and ``BTC/USDT:USDT``.
    """

    def __init__(
        self,
        prices: Mapping[str, Decimal] | None = None,
        funding_rates: Mapping[str, Decimal] | None = None,
    ) -> None:
        """Start with the given prices and funding rates (by base coin or symbol)."""
        self._prices: dict[str, Decimal] = {}
        self._rates: dict[str, Decimal] = {}
        self._paths: dict[str, _Path] = {}
        for key, price in (prices or {}).items():
            self.set_price(key, price)
        for key, rate in (funding_rates or {}).items():
            self.set_funding_rate(key, rate)

    def set_price(self, base_or_symbol: str, price: Decimal) -> None:
        """Set the price of a base coin (and so of all its symbols)."""
        if price <= ZERO:
            raise ValueError(f"price must be positive, got {price}")
        self._prices[base_coin(base_or_symbol)] = price

    def set_funding_rate(self, base_or_symbol: str, rate: Decimal) -> None:
        """Set the funding rate per interval of a base coin's perp (0 until set)."""
        self._rates[base_coin(base_or_symbol)] = rate

    def quote(self, symbol: str, now: datetime) -> FeedQuote:
        """The price last set for the symbol's base coin, stamped ``now``."""
        coin = base_coin(symbol)
        price = self._prices.get(coin)
        if price is None:
            raise FeedError(f"manual feed has no price for {symbol!r}; call set_price({coin!r}, …)")
        self._paths.setdefault(coin, _Path()).add(now, price)
        return FeedQuote(price=price, funding_rate=self._rates.get(coin, ZERO), timestamp=now)

    def price_path(
        self, symbol: str, start: datetime, end: datetime
    ) -> list[tuple[datetime, Decimal]]:
        """The prices quoted so far (one per minute at most)."""
        path = self._paths.get(base_coin(symbol))
        return path.between(start, end) if path else []

    def state(self) -> dict[str, Any]:
        """Nothing to keep: the caller owns the prices."""
        return {"kind": "manual"}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Nothing to restore: the caller sets prices again after a restart."""


def feed_from_config(config: PaperConfig) -> PriceFeed:
    """The feed ``config.feed`` names: the seeded sim walk or the replay files."""
    if config.feed == "replay":
        return ReplayFeed(config.replay_files)
    if config.feed == "live":
        raise FeedError("feed 'live' needs an exchange client: build it with LiveFeed.from_config")
    return SimFeed(config.sim, config.seed)
