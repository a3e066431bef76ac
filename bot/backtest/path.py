"""The recorded path a backtest replays: price files per coin, an optional funding file.

Price files are the replay feed's CSVs (``timestamp,price[,funding_rate]``); a funding file
(``timestamp,funding_rate``) overrides the rates of every coin. The backtest steps once per
row of the first price file, inside ``--from``/``--to``.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bot.domain.words import plural
from bot.exchange.feeds import (
    FeedError,
    FeedQuote,
    ReplayFeed,
    base_coin,
    read_rate_series,
    row_at,
)

ALL_COINS = "*"


class FundingOverlay:
    """A replay feed whose funding rates come from a separate file (last row at or before)."""

    def __init__(self, feed: ReplayFeed, times: list[datetime], rates: list[Decimal]) -> None:
        """Price from ``feed``, funding from the ``times``/``rates`` rows."""
        self._feed = feed
        self._times = times
        self._rates = rates
        self._cursor = -1

    def quote(self, symbol: str, now: datetime) -> FeedQuote:
        """The feed's price with the funding rate in force at ``now``."""
        quote = self._feed.quote(symbol, now)
        index = self._cursor = row_at(self._times, now, self._cursor)
        return FeedQuote(quote.price, self._rates[index], quote.timestamp)

    def price_path(
        self, symbol: str, start: datetime, end: datetime
    ) -> list[tuple[datetime, Decimal]]:
        """The replay's prices (the paper venue builds candles from them)."""
        return self._feed.price_path(symbol, start, end)

    def state(self) -> dict[str, Any]:
        """Nothing to keep: a replay is a function of time."""
        return self._feed.state()

    def restore(self, state: Mapping[str, Any]) -> None:
        """Nothing to restore."""


@dataclass(frozen=True)
class RecordedPath:
    """The feed the paper venue quotes from and the step times of the backtest."""

    feed: ReplayFeed | FundingOverlay
    replay: ReplayFeed
    files: Mapping[str, Path]
    steps: Sequence[datetime] = field(repr=False)
    _prices: dict[str, npt.NDArray[np.float64]] = field(
        default_factory=dict, repr=False, compare=False
    )

    @cached_property
    def times(self) -> npt.NDArray[np.float64]:
        """Epoch seconds of every step (floats: for searching and statistics)."""
        return np.fromiter((t.timestamp() for t in self.steps), np.float64, len(self.steps))

    def prices(self, symbol: str) -> npt.NDArray[np.float64]:
        """The replayed price of ``symbol`` at every step (floats; the venue uses Decimals)."""
        prices = self._prices.get(symbol)
        if prices is None:
            row_times, row_prices, _ = self.replay.series(symbol)
            row_ts = np.fromiter((t.timestamp() for t in row_times), np.float64, len(row_times))
            index = np.clip(np.searchsorted(row_ts, self.times, side="right") - 1, 0, None)
            values = np.fromiter((float(p) for p in row_prices), np.float64, len(row_prices))
            prices = self._prices[symbol] = values[index]
        return prices


def parse_price_args(values: Sequence[str]) -> dict[str, Path]:
    """``--prices`` values: ``FILE`` (every coin) or ``COIN=FILE``, one per coin."""
    files: dict[str, Path] = {}
    for value in values:
        coin, sep, path = value.partition("=")
        key = coin.strip() if sep else ALL_COINS
        files[key] = Path(path if sep else value)
    return files


def load_path(
    price_files: Mapping[str, Path],
    coins: Sequence[str],
    funding_file: Path | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> RecordedPath:
    """Read the files (a bad row is a FeedError naming file and line) and pick the steps."""
    by_coin: dict[str, Path] = {}
    for coin in coins:
        path = price_files.get(coin) or price_files.get(ALL_COINS)
        if path is None:
            given = ", ".join(sorted(price_files)) or "none"
            raise FeedError(f"no --prices file for coin {coin}; given: {given} (use {coin}=FILE)")
        by_coin[coin] = path
    replay = ReplayFeed(by_coin)
    feed: ReplayFeed | FundingOverlay = replay
    if funding_file is not None:
        times, rates = read_rate_series(funding_file)
        feed = FundingOverlay(replay, times, rates)
    all_times = replay.series(base_coin(coins[0]))[0]
    lo = 0 if start is None else bisect.bisect_left(all_times, start)
    hi = len(all_times) if end is None else bisect.bisect_right(all_times, end)
    steps = all_times[lo:hi]
    if len(steps) < 2:
        raise FeedError(
            f"{by_coin[coins[0]]}: {plural(len(steps), 'row')} between --from and --to; "
            "a backtest needs at least 2"
        )
    return RecordedPath(feed=feed, replay=replay, files=by_coin, steps=steps)
