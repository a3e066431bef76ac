"""`hedgebot backtest`: one run with summary.json and report.png, or a comparison table."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from bot.backtest.engine import run_backtest
from bot.backtest.metrics import series, summarize
from bot.backtest.path import RecordedPath
from bot.config import Settings
from bot.exchange.feeds import base_coin

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
    return type(settings).model_validate(_margin_data(settings, account, margin_mode, guard))


def _margin_data(settings: Settings, account: str, margin_mode: str, guard: str) -> Any:
    data = settings.model_dump()
    data["pairs"] = [{**p, "margin_mode": margin_mode, "rebalance": "band"} for p in data["pairs"]]
    data["paper"] = {**data["paper"], "account": account}
    data["risk"] = {**data["risk"], "on_liquidation_risk": guard}
    return data


def with_keeper(settings: Settings, account: str, margin_mode: str, margin: Decimal) -> Settings:
    """``with_margin`` with the collateral keeper on separate spot and futures wallets:
    ``margin`` of the quote asset in the futures wallet (at most all of it), the rest and
    the coins on spot, and the pairs allowed to sell coins (the keeper's last step before
    closing the short)."""
    data = _margin_data(settings, account, margin_mode, "keep")
    quote = data["paper"]["quote_asset"]
    balances = dict(data["paper"]["balances"])
    futures = min(margin, balances.get(quote, Decimal(0)))
    balances[quote] = balances.get(quote, Decimal(0)) - futures
    data["paper"] = {
        **data["paper"],
        "balances": balances,
        "separate_wallets": True,
        "futures_balances": {quote: futures},
    }
    data["pairs"] = [{**p, "allow_spot_trades": True} for p in data["pairs"]]
    return type(settings).model_validate(data)


def with_inverse(settings: Settings) -> Settings:
    """``with_margin`` (isolated, the guard reducing) with every pair hedged by its coin's
    inverse perpetual (``BTC/USD:BTC``) at 1x, its coins moved from the paper balances
    into the coin-margin wallet: the coins are the short's margin."""
    data = _margin_data(settings, "isolated", "isolated", "reduce")
    balances = dict(data["paper"]["balances"])
    coin_margin = dict(data["paper"]["coin_margin_balances"])
    pairs = []
    for pair in data["pairs"]:
        coin = base_coin(pair["perp_symbol"])
        # Zeroed, not dropped: the config file's entry would come back in the merge.
        coin_margin[coin] = coin_margin.get(coin, Decimal(0)) + balances.get(coin, Decimal(0))
        balances[coin] = Decimal(0)
        pairs.append({**pair, "perp_symbol": f"{coin}/USD:{coin}", "leverage": Decimal(1)})
    data["pairs"] = pairs
    data["paper"] = {**data["paper"], "balances": balances, "coin_margin_balances": coin_margin}
    return type(settings).model_validate(data)


def opening_margin(settings: Settings, path: RecordedPath) -> Decimal:
    """The quote the pairs' opening shorts lock at the path's first prices (their coins
    x target x price / leverage), with a fifth more for fees and the first moves."""
    total = Decimal(0)
    for pair in settings.pairs:
        price = path.feed.quote(pair.perp_symbol, path.steps[0]).price
        coins = settings.paper.balances.get(pair.spot_base, Decimal(0))
        total += coins * pair.target_ratio * price / pair.leverage
    return (total * Decimal("1.2")).quantize(Decimal("0.01"))


def margin_variants(settings: Settings, path: RecordedPath) -> list[Variant]:
    """The margin models ``--compare`` runs, band rebalancing on the config's target:
    isolated margin (the guard closing the short, adding margin to it, or the collateral
    keeper on separate wallets), cross margin (the quote asset backs the short; alone or
    with the keeper), a unified account whose coins back it too, and inverse contracts at
    1x margined by the coins (``with_inverse``). The keeper's futures wallet starts with
    the opening margin (``opening_margin``), the rest on spot."""
    margin = opening_margin(settings, path)
    return [
        Variant(
            "margin: isolated, guard reduces",
            with_margin(settings, "isolated", "isolated", "reduce"),
        ),
        Variant(
            "margin: isolated, guard adds margin",
            with_margin(settings, "isolated", "isolated", "add_margin"),
        ),
        Variant("margin: isolated, keeper", with_keeper(settings, "isolated", "isolated", margin)),
        Variant("margin: cross", with_margin(settings, "cross", "cross", "reduce")),
        Variant("margin: cross, keeper", with_keeper(settings, "cross", "cross", margin)),
        Variant(
            "margin: unified, coins as collateral",
            with_margin(settings, "unified", "cross", "reduce"),
        ),
        Variant("margin: inverse 1x, coins as margin", with_inverse(settings)),
    ]


def variants(settings: Settings, path: RecordedPath) -> list[Variant]:
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
        *margin_variants(settings, path),
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
    for variant in variants(settings, path):

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
        elif value is None and key == "min_liquidation_distance":
            cells.append("none")  # no position had a liquidation price
        else:
            cells.append("-" if value is None else str(value))
    return cells
