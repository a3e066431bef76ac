"""`hedgebot pause`, `resume` and `report` as a user runs them."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from tests.e2e.test_cli import hedgebot, query, write_config

pytestmark = pytest.mark.slow  # starts hedgebot as a subprocess


def test_pause_survives_a_restart_and_resume_lets_the_pair_trade(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    assert hedgebot("db", "upgrade", "-c", str(config), cwd=tmp_path).returncode == 0
    paused = hedgebot("pause", "BTC", "-c", str(config), "--reason", "checking keys", cwd=tmp_path)
    assert paused.returncode == 0, paused.stderr
    assert paused.stdout.strip() == "BTC paused"

    ran = hedgebot("run", "-c", str(config), "--max-cycles", "2", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    sent = query(tmp_path / "hb.db", "SELECT DISTINCT pair FROM orders")
    assert sent == [("ETH",)]  # BTC sent nothing
    status = json.loads(
        hedgebot("status", "-c", str(config), "--format", "json", cwd=tmp_path).stdout
    )
    btc = next(row for row in status if row["pair"] == "BTC")
    assert btc["paused"] == "paused by the user: checking keys"
    # The run ended: no daemon runs the pair, which health says before the pause.
    assert btc["daemon"] == "stopped"
    assert btc["health"].startswith("stopped: its daemon stopped at ")

    resumed = hedgebot("resume", "BTC", "-c", str(config), cwd=tmp_path)
    assert resumed.stdout.strip() == "BTC resumed"
    assert hedgebot("run", "-c", str(config), "--max-cycles", "1", cwd=tmp_path).returncode == 0
    assert ("BTC",) in query(tmp_path / "hb.db", "SELECT DISTINCT pair FROM orders")
    kinds = query(
        tmp_path / "hb.db",
        "SELECT kind, pair FROM audit_events WHERE kind LIKE 'pair.%' ORDER BY id",
    )
    assert kinds == [("pair.paused", "BTC"), ("pair.resumed", "BTC")]


def test_pause_of_an_unknown_pair_is_a_usage_error(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    assert hedgebot("db", "upgrade", "-c", str(config), cwd=tmp_path).returncode == 0
    result = hedgebot("pause", "DOGE", "-c", str(config), cwd=tmp_path)
    assert result.returncode == 2
    assert "unknown pair 'DOGE'" in result.stderr


def test_report_json_sums_to_net_for_each_pair(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    ran = hedgebot("run", "-c", str(config), "--max-cycles", "4", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    result = hedgebot("report", "-c", str(config), "--format", "json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = {row["pair"]: row for row in json.loads(result.stdout)}
    assert set(rows) == {"BTC", "ETH"}
    for row in rows.values():
        # Four cycles: the orders' observations, and holds only when they change (issue 16).
        assert 2 <= row["observations"] <= 4
        parts = sum(Decimal(row[k]) for k in ("spot_pnl", "perp_pnl", "funding"))
        # Each figure is rounded to 8 places on output.
        assert abs(parts - Decimal(row["fees"]) - Decimal(row["net"])) <= Decimal("3e-8")
        assert Decimal(row["fees"]) > 0
    table = hedgebot("report", "-c", str(config), "--pair", "ETH", cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    assert "ETH" in table.stdout
    assert "BTC" not in table.stdout
