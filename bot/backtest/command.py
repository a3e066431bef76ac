"""`hedgebot backtest`: one run with summary.json and report.png, or a comparison table."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.backtest.engine import run_backtest
from bot.backtest.metrics import series, summarize
from bot.backtest.path import RecordedPath
from bot.config import Settings

SUMMARY_FILE = "summary.json"
REPORT_FILE = "report.png"


@dataclass(frozen=True, slots=True)
class Variant:
    """One configuration of a comparison: a name and the pairs' overrides."""

    name: str
    settings: Settings


def with_pairs(settings: Settings, **update: Any) -> Settings:
    """``settings`` with ``update`` applied to every pair (validated like a config file)."""
    data = settings.model_dump()
    data["pairs"] = [{**pair, **update} for pair in data["pairs"]]
    return type(settings).model_validate(data)


def with_margin(settings: Settings, account: str, margin_mode: str, guard: str) -> Settings:
    """``settings`` on a paper account of margin model ``account``, every
    pair on ``margin_mode`` with band rebalancing, the guard acting as ``guard``."""
    data = settings.model_dump()
    data["pairs"] = [{**p, "margin_mode": margin_mode, "rebalance": "band"} for p in data["pairs"]]
    data["paper"] = {**data["paper"], "account": account}
    data["risk"] = {**data["risk"], "on_liquidation_risk": guard}
    return type(settings).model_validate(data)


def margin_variants(settings: Settings) -> list[Variant]:
    """The margin models ``--compare`` runs, band rebalancing on the config's target:
    isolated margin (the guard closing the short, or adding margin to it), cross margin
    (the quote asset backs the short) and a unified account whose coins back it too."""
    return [
        Variant(
            "margin: isolated, guard reduces",
            with_margin(settings, "isolated", "isolated", "reduce"),
        ),
        Variant(
            "margin: isolated, guard adds margin",
            with_margin(settings, "isolated", "isolated", "add_margin"),
        ),
        Variant("margin: cross", with_margin(settings, "cross", "cross", "reduce")),
        Variant(
            "margin: unified, coins as collateral",
            with_margin(settings, "unified", "cross", "reduce"),
        ),
    ]


def variants(settings: Settings) -> list[Variant]:
    """The configurations ``--compare`` runs: band rebalancing and rebalancing at each
    pair's ``rebalance_interval_s`` on the config's target, then band rebalancing under
    each market-driven strategy with its default parameters, then each margin model."""
    intervals = sorted({p.rebalance_interval_s for p in settings.pairs})
    every = ", ".join(f"{s}s" for s in intervals)
    band = {"rebalance": "band", "outlook": None, "trend": None, "funding_carry": None}
    return [
        Variant("band (config target)", with_pairs(settings, rebalance="band")),
        Variant(f"interval {every} (config target)", with_pairs(settings, rebalance="interval")),
        Variant("band, outlook neutral", with_pairs(settings, **band, strategy="outlook")),
        Variant("band, trend sma 10/30 4h", with_pairs(settings, **band, strategy="trend")),
        Variant("band, funding carry", with_pairs(settings, **band, strategy="funding_carry")),
        *margin_variants(settings),
    ]


def backtest(
    settings: Settings,
    path: RecordedPath,
    out: Path,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Run once; write summary.json and report.png into ``out``; return the summary."""
    run = asyncio.run(run_backtest(settings, path, progress=progress))
    values = series(run)
    summary = summarize(run, values)
    out.mkdir(parents=True, exist_ok=True)
    (out / SUMMARY_FILE).write_text(
        json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    from bot.backtest.report import write_report  # matplotlib: only for the PNG

    write_report(values, run.settings, out / REPORT_FILE)
    return summary


def compare(
    settings: Settings,
    path: RecordedPath,
    progress: Callable[[str, int], None] | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """Run every variant over the same path; (name, summary) per variant."""
    results: list[tuple[str, dict[str, Any]]] = []
    for variant in variants(settings):

        def step(index: int, name: str = variant.name) -> None:
            if progress is not None:
                progress(name, index)

        run = asyncio.run(run_backtest(variant.settings, path, progress=step))
        results.append((variant.name, summarize(run)))
    return results


COMPARE_COLUMNS = (
    ("orders", "orders"),
    ("turnover", "turnover"),
    ("fees", "fees"),
    ("funding", "funding"),
    ("net", "net"),
    ("tracking err", "tracking_error"),
    ("outside band", "time_outside_band"),
    ("max DD hedged", "max_drawdown_hedged"),
    ("max DD unhedged", "max_drawdown_unhedged"),
    ("var. reduction", "variance_reduction"),
    ("liquidations", "liquidations"),
    ("least liq. distance", "min_liquidation_distance"),
    ("margin moved", "margin_moved"),
)


def compare_row(summary: dict[str, Any]) -> list[str]:
    """A summary's figures in the order of COMPARE_COLUMNS, as table cells."""
    cells: list[str] = []
    for _, key in COMPARE_COLUMNS:
        value = summary[key]
        if isinstance(value, float) and key in (
            "time_outside_band",
            "max_drawdown_hedged",
            "max_drawdown_unhedged",
            "variance_reduction",
            "min_liquidation_distance",
        ):
            cells.append(f"{value:.2%}")
        elif isinstance(value, float):
            cells.append(f"{value:.4f}")
        else:
            cells.append("-" if value is None else str(value))
    return cells
