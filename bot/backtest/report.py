"""report.png: price, hedge ratio against target, hedged against unhedged value, and each
position's distance from liquidation with the margin the daemon moved.

Drawn with matplotlib's Agg backend (no display) and without the PNG's software tag, so
the same run gives the same bytes. Long paths are thinned to at most ``MAX_POINTS``
points per line; the summary's figures use every step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np

from bot.backtest.metrics import Series
from bot.config import Settings

MAX_POINTS = 4000


def write_report(values: Series, settings: Settings, out: Path) -> None:
    """Draw the four panels into ``out`` (PNG)."""
    stride = max(1, len(values.times) // MAX_POINTS)
    pick = np.arange(0, len(values.times), stride)
    when = (values.times[pick] * 1e6).astype("datetime64[us]")
    with plt.rc_context({"svg.hashsalt": "hedgebot", "font.size": 9}):
        figure, (prices, ratios, worth, margin) = plt.subplots(
            4, 1, figsize=(10, 10.5), sharex=True, constrained_layout=True
        )
        for pair in settings.pairs:
            prices.plot(when, values.prices[pair.name][pick], label=pair.name, linewidth=0.8)
            line = ratios.plot(
                when, values.ratios[pair.name][pick], label=f"{pair.name} ratio", linewidth=0.8
            )[0]
            target = values.targets[pair.name][pick]
            ratios.plot(when, target, linestyle="--", color=line.get_color(), linewidth=0.8)
            ratios.fill_between(
                when,
                target - float(pair.band),
                target + float(pair.band),
                color=line.get_color(),
                alpha=0.12,
                linewidth=0,
            )
        prices.set_ylabel("price")
        prices.set_title("price")
        prices.legend(loc="upper left")
        ratios.set_ylabel("short / coins held")
        ratios.set_title("hedge ratio (solid) against target (dashed) and band")
        ratios.legend(loc="upper left")
        worth.plot(when, values.hedged[pick], label="hedged", linewidth=0.9)
        worth.plot(when, values.unhedged[pick], label="unhedged", linewidth=0.9)
        worth.set_ylabel(settings.paper.quote_asset)
        worth.set_title("portfolio value")
        worth.legend(loc="upper left")
        _draw_margin(margin, values, settings, when, pick)
        margin.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d"))  # type: ignore[no-untyped-call]
        figure.savefig(out, format="png", dpi=100, metadata={"Software": None})
        plt.close(figure)


def _draw_margin(axes: Any, values: Series, settings: Settings, when: Any, pick: Any) -> None:
    """Liquidation distance per pair against the guard's threshold; margin moved. A
    position no price liquidates (a 1x inverse short) has no line, and its legend says so."""
    for pair in settings.pairs:
        distance = values.distances[pair.name][pick]
        unbounded = np.isinf(distance)
        label = pair.name
        if unbounded.any():  # inf: held, no liquidation price; nan: no position
            some = np.isfinite(distance).any()
            label += " (gaps: no price liquidated it)" if some else ": no price liquidates it"
        shown = np.where(unbounded, np.nan, distance)
        axes.plot(when, shown, label=label, linewidth=0.8)
    threshold = float(settings.risk.min_liquidation_distance)
    axes.axhline(threshold, color="red", linestyle=":", linewidth=0.8, label="guard threshold")
    axes.set_ylabel("distance")
    axes.set_title("distance from liquidation ((liquidation - price) / price); margin moved")
    axes.legend(loc="upper left")
    moved = axes.twinx()
    moved.plot(when, values.margin_moved[pick], color="grey", linewidth=0.9)
    moved.set_ylim(bottom=0)
    moved.set_ylabel(f"margin moved ({settings.paper.quote_asset})")
