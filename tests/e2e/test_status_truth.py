"""`hedgebot status` tells the truth: the hedge after the last recorded fill, and whether
a daemon still runs the pair (never `ok` for a daemon that is not running)."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.e2e.test_cli import hedgebot

pytestmark = pytest.mark.slow  # starts hedgebot as a subprocess


def example_config(tmp_path: Path) -> Path:
    """The README's paper config: orders capped so a hedge is built in thirds."""
    path = tmp_path / "hedgebot.toml"
    shutil.copy(ROOT / "examples" / "paper.toml", path)
    text = path.read_text()
    lines = [
        f'database_url = "sqlite+aiosqlite:///{tmp_path / "hb.db"}"'
        if line.startswith("database_url")
        else line
        for line in text.splitlines()
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def status_rows(tmp_path: Path) -> dict[str, dict[str, Any]]:
    result = hedgebot("status", "--format", "json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return {row["pair"]: row for row in json.loads(result.stdout)}


def test_status_shows_the_hedge_after_the_last_fill_and_a_stopped_daemon(
    tmp_path: Path,
) -> None:
    example_config(tmp_path)
    assert hedgebot("run", "--max-cycles", "3", cwd=tmp_path).returncode == 0
    btc = status_rows(tmp_path)["BTC"]
    # Three orders of 0.333: the last filled after the cycle's observation (0.666).
    assert btc["hedge_qty"] == "0.999"
    assert btc["ratio"] == "0.999000"
    assert btc["daemon"] == "stopped"
    assert btc["health"].startswith("stopped: its daemon stopped at ")
    assert btc["last_cycle_at"].startswith(btc["last_action_at"][:10])
    table = hedgebot("status", cwd=tmp_path).stdout
    assert "stopped" in table
    btc_row = next(line for line in table.splitlines() if line.startswith("│ BTC"))
    cells = [cell.strip() for cell in btc_row.split("│")]
    # The price at the paper market's tick (0.01), quantities at its step (0.001).
    assert re.fullmatch(r"\d+\.\d\d", cells[3])
    assert cells[4:7] == ["1.000", "0.999", "0.9990"]


def test_a_pair_whose_daemon_vanished_is_stale_not_ok(tmp_path: Path) -> None:
    example_config(tmp_path)
    assert hedgebot("run", "--max-cycles", "1", cwd=tmp_path).returncode == 0
    with sqlite3.connect(tmp_path / "hb.db") as db:  # as a SIGKILL leaves it
        db.execute(
            "UPDATE pair_leases SET holder = 'host:4242:dead', "
            "expires_at = '2026-01-01 00:00:00.000000'"
        )
    rows = status_rows(tmp_path)
    assert {row["daemon"] for row in rows.values()} == {"stale"}
    assert rows["ETH"]["health"].startswith(
        "stale: its daemon's lease lapsed at 2026-01-01 00:00:00 UTC (last cycle "
    )
    with sqlite3.connect(tmp_path / "hb.db") as db:  # a live lease: the daemon runs
        db.execute("UPDATE pair_leases SET expires_at = '2999-01-01 00:00:00.000000'")
    rows = status_rows(tmp_path)
    assert {row["daemon"] for row in rows.values()} == {"running"}
    assert rows["ETH"]["health"] == "ok"
