"""`hedgebot set-target` as a user runs it, against a running daemon."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.commands import command
from tests.e2e.test_cli import hedgebot, query, write_config

pytestmark = pytest.mark.slow  # starts hedgebot as a subprocess


def wait_for(db: Path, sql: str, what: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    schema = "SELECT count(*) FROM sqlite_master WHERE name = 'decisions'"
    while time.monotonic() < deadline:
        if db.exists() and query(db, schema)[0][0] and query(db, sql)[0][0]:
            return
        time.sleep(0.05)
    pytest.fail(f"{what} within {timeout_s} s")


def test_set_target_changes_the_running_daemons_target_on_its_next_cycle(tmp_path: Path) -> None:
    config = write_config(tmp_path, poll=0.1)
    db = tmp_path / "hb.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEDGEBOT_")}
    daemon = subprocess.Popen(
        [*command(), "run", "-c", str(config)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(db, "SELECT count(*) FROM decisions WHERE pair = 'BTC'", "no decision")
        result = hedgebot("set-target", "BTC", "0.25", "-c", str(config), cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "BTC: target set to ratio 0.25" in result.stdout
        wait_for(
            db,
            "SELECT count(*) FROM decisions WHERE pair = 'BTC' AND target_ratio = '0.25'",
            "the daemon did not take the new target",
        )
        status = hedgebot("status", "-c", str(config), "--format", "json", cwd=tmp_path)
        assert status.returncode == 0, status.stderr
        btc = next(row for row in json.loads(status.stdout) if row["pair"] == "BTC")
        assert btc["target_ratio"] == "0.25"
        assert btc["target"].startswith("0.25 (fixed, set)")
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=15)
    assert daemon.returncode == 0
    kinds = [row[0] for row in query(db, "SELECT kind FROM audit_events WHERE pair = 'BTC'")]
    assert "pair.target_set" in kinds


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("DOGE", "0.5"), "unknown pair 'DOGE'"),
        (("BTC", "2.5"), "ratio 2.5 is outside 0..2"),
        (("BTC", "-1"), "ratio -1 is outside 0..2"),
        (("BTC", "bearish"), "uses strategy 'fixed', not 'outlook'"),
        (("BTC", "moon"), "is neither a ratio (0..2), an outlook"),
    ],
)
def test_bad_set_target_exits_2_with_one_line_and_stores_nothing(
    tmp_path: Path, args: tuple[str, str], expected: str
) -> None:
    config = write_config(tmp_path)
    assert hedgebot("db", "upgrade", "-c", str(config), cwd=tmp_path).returncode == 0
    # "--": a negative ratio is not an option
    result = hedgebot("set-target", "-c", str(config), "--", *args, cwd=tmp_path)
    assert result.returncode == 2
    assert expected in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert query(tmp_path / "hb.db", "SELECT count(*) FROM pair_targets") == [(0,)]
    assert query(tmp_path / "hb.db", "SELECT count(*) FROM audit_events") == [(0,)]


def test_set_target_without_a_database_says_how_to_create_it(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    result = hedgebot("set-target", "BTC", "0.5", "-c", str(config), cwd=tmp_path)
    assert result.returncode == 2
    assert "no database" in result.stderr
    assert not (tmp_path / "hb.db").exists()
