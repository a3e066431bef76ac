"""What a backtest run amounts to: summary.json figures and the series behind the chart.

Money totals (fees, funding, PnL, turnover) are exact Decimals from the paper account and
the stored orders. Statistics over time (tracking error, time outside the band, drawdown,
variance reduction) are floats over per-step series, each step weighted by the time to
the next row. Portfolio value counts the quote asset and the pairs' coins; other coins of
the paper account have no price in the path and are left out.

An inverse pair's figures are in the quote too: its coins (spot and coin-margin wallets)
at the path's price, its position's coin PnL valued as it was realized (the open part at
the last price), its fees at their fill price and funding at the mark it was paid at
(``CoinLeg`` in engine.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt

from bot.backtest.engine import BacktestRun
from bot.config import PairConfig
from bot.domain.symbols import Symbol
from bot.exchange.feeds import base_coin
from bot.store.orders import StoredOrder

Floats = npt.NDArray[np.float64]
MONEY = Decimal("0.0001")
ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Series:
    """Per-step values of a run (floats), by pair where they are per pair."""

    times: Floats  # epoch seconds
    prices: dict[str, Floats]
    ratios: dict[str, Floats]
    targets: dict[str, Floats]
    hedged: Floats
    unhedged: Floats
    # |liquidation - price| / price of the pair's position (nan: no position; inf: no
    # price liquidates it, as a 1x inverse short).
    distances: dict[str, Floats]
    margin_moved: Floats  # quote moved into positions by the daemon so far (cumulative)


def _expand(run: BacktestRun, values: list[float], segment: npt.NDArray[np.intp]) -> Floats:
    return np.asarray(values, dtype=np.float64)[segment]


def series(run: BacktestRun) -> Series:
    """Prices, ratios, targets and portfolio values at every step."""
    times = run.path.times
    shots = run.snapshots
    segment = np.searchsorted(np.asarray(shots.steps), np.arange(len(times)), side="right") - 1
    segment = np.clip(segment, 0, None)
    settings = run.settings
    prices: dict[str, Floats] = {}
    ratios: dict[str, Floats] = {}
    targets: dict[str, Floats] = {}
    by_coin: dict[str, Floats] = {}
    distances: dict[str, Floats] = {}
    hedged = _expand(run, shots.quote, segment)
    quote_asset = settings.paper.quote_asset
    unhedged = np.full(len(times), float(run.initial_balances.get(quote_asset, ZERO)))
    for pair in settings.pairs:
        coin = base_coin(pair.perp_symbol)
        if coin not in by_coin:
            by_coin[coin] = run.path.prices(pair.perp_symbol)
        price = by_coin[coin]
        prices[pair.name] = price
        spot = _expand(run, shots.spot[pair.name], segment)
        perp = _expand(run, shots.perp[pair.name], segment)
        entry = _expand(run, shots.entry[pair.name], segment)
        hedged = hedged + perp * (price - entry)
        liquidation = _expand(run, shots.liquidation[pair.name], segment)
        distances[pair.name] = np.abs(liquidation - price) / price
        if Symbol.parse(pair.perp_symbol).inverse:
            ratios[pair.name] = _inverse_ratio(spot, perp, entry, price)
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                ratios[pair.name] = np.where(
                    spot > 0, -perp / np.where(spot > 0, spot, 1.0), np.nan
                )
        decided = run.targets.get(pair.name) or [(run.path.steps[0], pair.target_ratio)]
        decided_ts = np.asarray([at.timestamp() for at, _ in decided], dtype=np.float64)
        decided_values = np.asarray([float(t) for _, t in decided], dtype=np.float64)
        index = np.clip(np.searchsorted(decided_ts, times, side="right") - 1, 0, None)
        targets[pair.name] = decided_values[index]
    seen_spot: set[str] = set()
    for pair in settings.pairs:
        if pair.spot_base in seen_spot:
            continue
        seen_spot.add(pair.spot_base)
        price = prices[pair.name]
        hedged = hedged + _expand(run, shots.spot[pair.name], segment) * price
        unhedged = unhedged + float(run.initial_balances.get(pair.spot_base, ZERO)) * price
    return Series(
        times, prices, ratios, targets, hedged, unhedged, distances, _margin_moved(run, times)
    )


def _inverse_ratio(coins: Floats, perp: Floats, entry: Floats, price: Floats) -> Floats:
    """An inverse pair's ratio: the short's face value (``perp`` coins at ``entry``) over
    the USD value of the coins held, the position's PnL included (bot/domain/inverse.py)."""
    worth = coins * price + perp * (price - entry)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(worth > 0, -perp * entry / np.where(worth > 0, worth, 1.0), np.nan)


def _margin_moved(run: BacktestRun, times: Floats) -> Floats:
    """At each step, the margin the daemon had moved by then (every pair)."""
    moves = sorted((at.timestamp(), float(amount)) for at, _, amount in run.margin_moves)
    if not moves:
        return np.zeros(len(times))
    at = np.asarray([t for t, _ in moves], dtype=np.float64)
    total = np.concatenate(([0.0], np.cumsum([a for _, a in moves])))
    return total[np.searchsorted(at, times, side="right")]


def _weights(times: Floats) -> Floats:
    weights = np.zeros(len(times))
    weights[:-1] = np.diff(times)
    return weights


def max_drawdown(values: Floats) -> float:
    """The largest fall from a running peak, as a fraction of that peak."""
    peaks = np.maximum.accumulate(values)
    with np.errstate(divide="ignore", invalid="ignore"):
        falls = np.where(peaks > 0, (peaks - values) / peaks, 0.0)
    return float(falls.max()) if len(falls) else 0.0


def variance_reduction(hedged: Floats, unhedged: Floats) -> float | None:
    """1 - var(hedged step returns) / var(unhedged step returns); None when unhedged is flat."""
    if len(hedged) < 3:
        return None
    hedged_returns = np.diff(hedged) / hedged[:-1]
    unhedged_returns = np.diff(unhedged) / unhedged[:-1]
    base = float(np.var(unhedged_returns))
    if base == 0.0:
        return None
    return 1.0 - float(np.var(hedged_returns)) / base


def _money(value: Decimal) -> str:
    return str(value.quantize(MONEY))


def _stat(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else round(value, 6)


def _least(values: Floats) -> float | None:
    """The smallest known value (None: none known)."""
    known = values[np.isfinite(values)]
    return _stat(float(known.min())) if len(known) else None


def _pair_figures(
    run: BacktestRun, values: Series, weights: Floats, pair: PairConfig
) -> tuple[dict[str, Any], float, float]:
    """One pair's figures, with its time-weighted squared deviation and time outside."""
    deviation = values.ratios[pair.name] - values.targets[pair.name]
    known = np.isfinite(deviation)
    w = np.where(known, weights, 0.0)
    dev = np.where(known, deviation, 0.0)
    pair_time = float(w.sum()) or 1.0
    pair_squared = float((w * dev * dev).sum())
    pair_outside = float(w[np.abs(dev) > float(pair.band)].sum())
    orders = [o for o in run.orders if o.pair == pair.name]
    figures = {
        "rebalance": pair.rebalance,
        "target_ratio": str(pair.target_ratio),
        "band": str(pair.band),
        "tracking_error": _stat((pair_squared / pair_time) ** 0.5),
        "time_outside_band": _stat(pair_outside / pair_time),
        "hours_outside_band": _stat(pair_outside / 3600),
        "orders": len(orders),
        "turnover": _money(_turnover(run, orders)),
        "final_ratio": _stat(float(values.ratios[pair.name][-1])),
        "min_liquidation_distance": _least(values.distances[pair.name]),
        "margin_moved": _money(sum((m for _, p, m in run.margin_moves if p == pair.name), ZERO)),
    }
    return figures, pair_squared, pair_outside


def _turnover(run: BacktestRun, orders: list[StoredOrder]) -> Decimal:
    """The orders' filled notional in the quote: an inverse order's is its contracts'
    face value (USD)."""
    total = ZERO
    for order in orders:
        size = run.contract_sizes.get(order.symbol)
        total += order.filled * (size if size is not None else (order.average_price or ZERO))
    return total


def _spot_pnl(run: BacktestRun) -> Decimal:
    """The spot coins' value change over the path (each coin once), with the quote their
    spot trades brought in or paid (a keeper's sale keeps its proceeds; the fees are apart);
    the coins that margin inverse contracts: their price change while held
    (``BacktestRun.coin_spot_pnl``)."""
    steps = run.path.steps
    spot_pnl = run.coin_spot_pnl
    spot_symbols = {pair.spot_symbol for pair in run.settings.pairs}
    for order in run.orders:
        if order.symbol in spot_symbols:
            cash = order.filled * (order.average_price or ZERO)
            spot_pnl += cash if order.side == "sell" else -cash
    seen: set[str] = set(run.coin_assets)
    for pair in run.settings.pairs:
        if pair.spot_base in seen:
            continue
        seen.add(pair.spot_base)
        first = run.path.feed.quote(pair.perp_symbol, steps[0]).price
        last = run.final_prices[pair.name]
        spot_pnl += run.final_balances.get(pair.spot_base, ZERO) * last
        spot_pnl -= run.initial_balances.get(pair.spot_base, ZERO) * first
    return spot_pnl


def summarize(run: BacktestRun, values: Series | None = None) -> dict[str, Any]:
    """The figures of summary.json (JSON-able, deterministic)."""
    values = values or series(run)
    settings = run.settings
    steps = run.path.steps
    weights = _weights(values.times)
    total_time = float(weights.sum()) or 1.0
    pairs: dict[str, Any] = {}
    squared = 0.0
    outside = 0.0
    for pair in settings.pairs:
        pairs[pair.name], pair_squared, pair_outside = _pair_figures(run, values, weights, pair)
        squared += pair_squared
        outside += pair_outside
    spot_pnl = _spot_pnl(run)
    perp_pnl = run.realized_pnl + run.final_unrealized + run.coin_perp_pnl
    net = spot_pnl + perp_pnl - run.fees + run.funding
    count = len(settings.pairs)
    return {
        "path": {
            "from": steps[0].isoformat(),
            "to": steps[-1].isoformat(),
            "steps": len(steps),
            "files": {coin: str(path) for coin, path in run.path.files.items()},
        },
        "cycles": run.cycles,
        "quiet_steps": run.quiet_steps,
        "tracking_error": _stat((squared / (total_time * count)) ** 0.5),
        "time_outside_band": _stat(outside / (total_time * count)),
        "orders": len(run.orders),
        "filled_orders": sum(1 for o in run.orders if o.filled > ZERO),
        "turnover": _money(_turnover(run, run.orders)),
        "fees": _money(run.fees),
        "funding": _money(run.funding),
        "spot_pnl": _money(spot_pnl),
        "perp_pnl": _money(perp_pnl),
        "net": _money(net),
        "liquidations": run.liquidations,
        "min_liquidation_distance": _least(
            np.concatenate([values.distances[p.name] for p in settings.pairs])
        ),
        "margin_moved": _money(sum((m for _, _, m in run.margin_moves), ZERO)),
        "value_start_unhedged": _stat(float(values.unhedged[0])),
        "value_end_hedged": _stat(float(values.hedged[-1])),
        "value_end_unhedged": _stat(float(values.unhedged[-1])),
        "max_drawdown_hedged": _stat(max_drawdown(values.hedged)),
        "max_drawdown_unhedged": _stat(max_drawdown(values.unhedged)),
        "variance_reduction": _stat(variance_reduction(values.hedged, values.unhedged)),
        "pairs": pairs,
    }
