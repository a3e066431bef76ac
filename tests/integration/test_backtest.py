"""The backtest: the daemon's cycle over a recorded path, its figures and its determinism."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import structlog
from typer.testing import CliRunner

from bot.backtest.command import backtest, compare, margin_variants
from bot.backtest.engine import coins_of, run_backtest
from bot.backtest.metrics import summarize
from bot.backtest.path import load_path
from bot.cli import app
from bot.clock import FakeClock
from bot.config import Settings
from bot.config_view import PAPER_ACCOUNT
from bot.domain.inverse import coin_pnl
from bot.store.repository import Repository, create_engine

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "examples" / "sample"
START = datetime(2026, 3, 2, tzinfo=UTC)


@pytest.fixture
def cli() -> Iterator[CliRunner]:
    """A CliRunner; the command configures logging onto the runner's stderr, which is
    closed afterwards, so the defaults are put back for the tests that follow."""
    handlers = list(logging.getLogger().handlers)
    yield CliRunner()
    structlog.reset_defaults()
    logging.getLogger().handlers[:] = handlers


def write_prices(path: Path, prices: list[str], step_s: int = 3600) -> Path:
    rows = ["timestamp,price"]
    for index, price in enumerate(prices):
        rows.append(f"{(START + timedelta(seconds=index * step_s)).isoformat()},{price}")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def one_pair(**pair: Any) -> Settings:
    return Settings(
        pairs=[
            {
                "name": "SOL",
                "spot_symbol": "SOL/USDT",
                "perp_symbol": "SOL/USDT:USDT",
                "target_ratio": "1",
                "band": "0.05",
                "max_order_notional": "1000000",
                "leverage": "2",
                **pair,
            }
        ],
        paper={
            "balances": {"SOL": "10", "USDT": "1000"},
            "spread_bps": "0",
            "taker_fee_rate": "0.0005",
        },
        risk={"max_data_age_s": "7200"},
    )


def sample_settings(**pair: Any) -> Settings:
    return Settings(
        pairs=[
            {
                "name": "BTC",
                "spot_symbol": "BTC/USDT",
                "perp_symbol": "BTC/USDT:USDT",
                "max_order_notional": "100000",
                **pair,
            }
        ],
        paper={"balances": {"BTC": "1", "USDT": "30000"}},
        risk={"max_data_age_s": "7200"},
    )


def sample_path(settings: Settings) -> Any:
    return load_path({"*": SAMPLE / "prices.csv"}, coins_of(settings), SAMPLE / "funding.csv")


async def test_full_hedge_on_a_10_percent_fall_nets_minus_the_fees(tmp_path: Path) -> None:
    # 10 SOL at 100 falling to 90 in 1-point steps; 1000 USDT of cash; no spread, no funding.
    settings = one_pair()
    prices = write_prices(tmp_path / "sol.csv", [str(100 - i) for i in range(11)])
    path = load_path({"SOL": prices}, coins_of(settings))

    summary = summarize(await run_backtest(settings, path))

    # One order: sell 10 SOL perp at 100, fee 10 * 100 * 0.0005 = 0.5.
    assert summary["orders"] == 1
    assert summary["turnover"] == "1000.0000"
    assert summary["fees"] == "0.5000"
    assert summary["funding"] == "0.0000"
    assert summary["spot_pnl"] == "-100.0000"
    assert summary["perp_pnl"] == "100.0000"
    assert summary["net"] == "-0.5000"
    # Unhedged: 2000 falls to 1900, a 5 % drawdown; hedged only pays the fee.
    assert summary["max_drawdown_unhedged"] == pytest.approx(0.05)
    assert summary["max_drawdown_hedged"] == pytest.approx(0.0)
    assert summary["value_end_hedged"] == pytest.approx(1999.5)
    assert summary["variance_reduction"] == pytest.approx(1.0)
    assert summary["tracking_error"] == pytest.approx(0.0)
    assert summary["time_outside_band"] == pytest.approx(0.0)


async def test_unhedged_target_keeps_the_whole_fall_and_sends_nothing(tmp_path: Path) -> None:
    settings = one_pair(target_ratio="0")
    prices = write_prices(tmp_path / "sol.csv", [str(100 - i) for i in range(11)])
    path = load_path({"SOL": prices}, coins_of(settings))

    summary = summarize(await run_backtest(settings, path))

    assert summary["orders"] == 0
    assert summary["net"] == "-100.0000"
    assert summary["max_drawdown_hedged"] == pytest.approx(0.05)
    assert summary["variance_reduction"] == pytest.approx(0.0)


async def test_funding_file_pays_a_short_hedge_at_each_funding_time(tmp_path: Path) -> None:
    settings = one_pair()
    prices = write_prices(tmp_path / "sol.csv", ["100"] * 25)  # flat for 24 hours
    funding = tmp_path / "funding.csv"
    funding.write_text(f"timestamp,funding_rate\n{START.isoformat()},0.001\n", encoding="utf-8")
    path = load_path({"SOL": prices}, coins_of(settings), funding)

    summary = summarize(await run_backtest(settings, path))

    # Funding at 08:00, 16:00 and 24:00 on -10 SOL at 100: 3 x 10 x 100 x 0.001 = 3.
    assert summary["funding"] == "3.0000"
    assert summary["net"] == "2.5000"


async def test_a_liquidation_is_replayed_the_same_when_every_step_is_visited() -> None:
    # Leverage 3 on the sample path, the guard acting only within 0.1 % of the
    # liquidation price (hourly steps jump past that): the rally liquidates the short,
    # then orders are denied.
    settings = sample_settings(leverage="3").model_copy(
        update={
            "risk": sample_settings().risk.model_copy(
                update={"min_liquidation_distance": Decimal("0.001")}
            )
        }
    )
    fast = summarize(await run_backtest(settings, sample_path(settings)))
    slow = summarize(await run_backtest(settings, sample_path(settings), step_every=True))

    assert fast["liquidations"] == 1
    for key in ("cycles", "quiet_steps"):
        del fast[key], slow[key]
    assert fast == slow


def test_the_same_inputs_write_byte_identical_summary_and_chart(tmp_path: Path) -> None:
    settings = sample_settings(leverage="2")
    backtest(settings, sample_path(settings), tmp_path / "a")
    backtest(settings, sample_path(settings), tmp_path / "b")

    for name in ("summary.json", "report.png"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert (tmp_path / "a" / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_runs_band_interval_and_each_strategy_over_the_same_path() -> None:
    settings = sample_settings(leverage="2", rebalance_interval_s=86400)
    # Ten days of the sample: enough closed 4h candles for the trend's 30-candle average.
    full = sample_path(settings)
    path = load_path(
        {"*": SAMPLE / "prices.csv"},
        coins_of(settings),
        SAMPLE / "funding.csv",
        end=full.steps[0] + timedelta(days=10),
    )
    results = compare(settings, path)

    names = [name for name, _ in results]
    assert names == [
        "band (config target)",
        "interval 86400s (config target)",
        "band, outlook neutral",
        "band, trend sma 10/30 4h",
        "band, funding carry",
        "margin: isolated, guard reduces",
        "margin: isolated, guard adds margin",
        "margin: isolated, keeper",
        "margin: cross",
        "margin: cross, keeper",
        "margin: unified, coins as collateral",
        "margin: inverse 1x, coins as margin",
    ]
    band, interval, outlook, trend, carry = (summary for _, summary in results[:5])
    assert band["pairs"]["BTC"]["rebalance"] == "band"
    assert interval["pairs"]["BTC"]["rebalance"] == "interval"
    assert all(summary["path"] == band["path"] for _, summary in results)
    # The strategies set different targets over the same path, so they trade differently.
    assert outlook["orders"] != band["orders"] or outlook["net"] != band["net"]
    assert len({trend["net"], carry["net"], band["net"]}) > 1


def test_from_and_to_limit_the_replayed_rows(tmp_path: Path) -> None:
    settings = one_pair()
    prices = write_prices(tmp_path / "sol.csv", [str(100 + i) for i in range(48)])
    path = load_path(
        {"SOL": prices},
        coins_of(settings),
        start=START + timedelta(hours=10),
        end=START + timedelta(hours=20),
    )

    assert len(path.steps) == 11
    assert path.steps[0] == START + timedelta(hours=10)


def test_cli_backtest_writes_both_files_and_prints_the_figures(
    tmp_path: Path, cli: CliRunner
) -> None:
    result = cli.invoke(
        app,
        [
            "backtest",
            "--config",
            str(ROOT / "examples" / "backtest.toml"),
            "--prices",
            str(SAMPLE / "prices.csv"),
            "--funding",
            str(SAMPLE / "funding.csv"),
            "--out",
            str(tmp_path / "out"),
        ],
    )

    assert result.exit_code == 0, result.output
    assert "net" in result.output
    assert (tmp_path / "out" / "summary.json").is_file()
    assert (tmp_path / "out" / "report.png").is_file()


def test_cli_backtest_names_the_bad_row_and_exits_2(tmp_path: Path, cli: CliRunner) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,price\n2026-01-01T00:00:00Z,100\n2026-01-01T01:00:00Z,abc\n")

    result = cli.invoke(
        app,
        [
            "backtest",
            "--config",
            str(ROOT / "examples" / "backtest.toml"),
            "--prices",
            str(bad),
            "--out",
            str(tmp_path / "out"),
        ],
    )

    assert result.exit_code == 2
    assert f"{bad}:3: price 'abc' is not a decimal number" in result.output
    assert not (tmp_path / "out").exists()


def test_cli_backtest_without_a_file_for_a_coin_says_how_to_give_one(cli: CliRunner) -> None:
    result = cli.invoke(
        app,
        [
            "backtest",
            "--config",
            str(ROOT / "examples" / "backtest.toml"),
            "--prices",
            f"ETH={SAMPLE / 'prices.csv'}",
        ],
    )

    assert result.exit_code == 2
    assert "no --prices file for coin BTC" in result.output


async def test_the_summary_gives_each_pairs_least_liquidation_distance_and_the_margin_moved(
    tmp_path: Path,
) -> None:
    # 10 SOL hedged at 3x isolated from 100; the price rises 2 a step to 140. The guard
    # (threshold 0.1) adds margin each time the short comes within 10 % of liquidation.
    settings = one_pair(leverage="3").model_copy(
        update={
            "risk": one_pair().risk.model_copy(
                update={
                    "on_liquidation_risk": "add_margin",
                    "min_liquidation_distance": Decimal("0.1"),
                }
            )
        }
    )
    prices = write_prices(tmp_path / "sol.csv", [str(100 + 2 * i) for i in range(21)])
    run = await run_backtest(settings, load_path({"SOL": prices}, coins_of(settings)))
    summary = summarize(run)
    figures = summary["pairs"]["SOL"]

    assert summary["liquidations"] == 0
    moved = sum((amount for _, _, amount in run.margin_moves), Decimal(0))
    assert moved > 0
    assert summary["margin_moved"] == figures["margin_moved"] == f"{moved:.4f}"
    # Never closer than the guard lets it come (one 2 % step past the threshold at most).
    assert 0.08 < figures["min_liquidation_distance"] < 0.2


async def test_a_pair_that_never_holds_a_position_has_no_liquidation_distance(
    tmp_path: Path,
) -> None:
    settings = one_pair(target_ratio="0")
    prices = write_prices(tmp_path / "sol.csv", ["100"] * 5)
    path = load_path({"SOL": prices}, coins_of(settings))
    summary = summarize(await run_backtest(settings, path))

    assert summary["pairs"]["SOL"]["min_liquidation_distance"] is None
    assert summary["margin_moved"] == "0.0000"


def test_compare_has_a_row_per_margin_model_and_only_the_unified_one_stays_hedged_at_3x() -> None:
    # Leverage 3 on the sample path's 22 % rally. Isolated margin: the guard closes the
    # short before the venue liquidates it, and reopening it is refused for lack of margin
    # (the pair pauses itself, unhedged); or the guard moves USDT into the position. The
    # unified account's coin backs its own short: nothing to do, never near liquidation.
    settings = sample_settings(leverage="3")
    rows = dict(compare(settings, sample_path(settings)))

    reduces = rows["margin: isolated, guard reduces"]
    adds = rows["margin: isolated, guard adds margin"]
    unified = rows["margin: unified, coins as collateral"]
    assert reduces["liquidations"] == adds["liquidations"] == unified["liquidations"] == 0
    assert reduces["time_outside_band"] > 0.3
    assert Decimal(adds["margin_moved"]) > 0
    assert unified["time_outside_band"] == 0
    for keeper in ("margin: isolated, keeper", "margin: cross, keeper"):
        kept = rows[keeper]
        assert kept["liquidations"] == 0
        assert kept["time_outside_band"] == 0
        assert Decimal(kept["margin_moved"]) > 0
    assert unified["margin_moved"] == "0.0000"
    assert unified["min_liquidation_distance"] > 5
    assert unified["orders"] == 1
    inverse = rows["margin: inverse 1x, coins as margin"]
    assert inverse["liquidations"] == 0
    assert inverse["min_liquidation_distance"] is None  # a 1x inverse short has no such price
    assert inverse["time_outside_band"] < 0.01


async def test_the_guard_acts_in_a_backtest_of_a_quiet_pair_before_the_venue_liquidates() -> None:
    # 1 BTC hedged 3x isolated on the sample path (a 22 % rally in its first half). The
    # daemon holds quietly between its few cycles; the live daemon's guard would act once
    # the short comes within 10 % of its liquidation price. Before the fix the backtest
    # visited that step but ran no cycle there: the short was liquidated, margin moved 0.
    settings = sample_settings(leverage="3").model_copy(
        update={
            "risk": sample_settings().risk.model_copy(update={"on_liquidation_risk": "add_margin"})
        }
    )
    run = await run_backtest(settings, sample_path(settings))
    summary = summarize(run)

    assert summary["liquidations"] == 0
    assert Decimal(summary["margin_moved"]) > 0
    assert summary["min_liquidation_distance"] > 0.09


async def test_the_inverse_1x_row_is_never_liquidated_and_its_net_is_the_value_change(
    tmp_path: Path,
) -> None:
    # The compare's inverse row on the sample path: 1 BTC in the coin-margin wallet, short
    # BTC/USD:BTC at 1x, 30,000 USDT beside it. Its figures are in USD; its net must be the
    # account's change in value as the paper venue left it (USDT, plus the coin-margin
    # wallet and the short's coin PnL at the last price), less nothing.
    settings = sample_settings(leverage="3")
    path = sample_path(settings)
    [inverse] = [v for v in margin_variants(settings, path) if "inverse 1x" in v.name]
    assert inverse.settings.pairs[0].perp_symbol == "BTC/USD:BTC"
    run = await run_backtest(inverse.settings, path, database_dir=tmp_path)
    summary = summarize(run)

    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'backtest.db'}")
    try:
        saved = await Repository(engine, FakeClock()).load_paper_account(PAPER_ACCOUNT)
    finally:
        await engine.dispose()
    assert saved is not None
    first = path.feed.quote("BTC/USD:BTC", path.steps[0]).price
    last = path.feed.quote("BTC/USD:BTC", path.steps[-1]).price
    [position] = saved.inverse_positions.values()
    coins = saved.coin_margin["BTC"] + coin_pnl(position.qty, position.entry_price, last)
    change = saved.balances["USDT"] + coins * last - (Decimal(30000) + first)

    assert summary["liquidations"] == 0
    assert summary["min_liquidation_distance"] is None
    assert summary["filled_orders"] >= 1
    assert abs(Decimal(summary["net"]) - change) < Decimal("0.001"), (summary["net"], change)
    # The hedge gave the rally back: within fees and funding of flat, as the linear rows.
    assert abs(Decimal(summary["spot_pnl"]) + Decimal(summary["perp_pnl"])) < 500
    assert Decimal(summary["turnover"]) == -position.qty  # one sell: its face value, USD
    assert summary["max_drawdown_hedged"] < 0.01


async def test_a_keeper_that_sells_coins_keeps_the_sale_in_the_net() -> None:
    # 1 BTC hedged 3x on cross margin with the keeper on the sample path, 30,000 USDT: with
    # no quote left on spot, the keeper sells a slice of the coin (and cuts the short). The
    # sale's USDT stays in the account, so the net is still the value change; before the
    # fix the spot PnL counted the coins sold as lost (net -684 for a value change of +754).
    settings = sample_settings(leverage="3")
    path = sample_path(settings)
    [keeper] = [v for v in margin_variants(settings, path) if v.name == "margin: cross, keeper"]
    run = await run_backtest(keeper.settings, path)
    summary = summarize(run)

    assert any(o.symbol == "BTC/USDT" and o.filled > 0 for o in run.orders)  # a sale
    change = summary["value_end_hedged"] - summary["value_start_unhedged"]
    assert abs(float(summary["net"]) - change) < 0.01, (summary["net"], change)
