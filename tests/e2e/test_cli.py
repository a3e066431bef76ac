"""The `hedgebot` command as a user runs it: a subprocess on a fresh directory."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from tests.e2e.commands import command

pytestmark = pytest.mark.slow  # starts hedgebot as a subprocess

ROOT = Path(__file__).resolve().parents[2]

CONFIG = """
mode = "paper"
database_url = "sqlite+aiosqlite:///{db}"
poll_interval_s = {poll}

# A free port: the default 8780 may be taken by a daemon or another test run.
[http]
port = 0

[[pairs]]
name = "BTC"
spot_symbol = "BTC/USDT"
perp_symbol = "BTC/USDT:USDT"
target_ratio = "1.0"
band = "0.02"
min_notional = "10"
max_order_notional = "{max_notional}"
leverage = "2"

[[pairs]]
name = "ETH"
spot_symbol = "ETH/USDT"
perp_symbol = "ETH/USDT:USDT"
target_ratio = "0.5"
band = "0.02"
max_order_notional = "{max_notional}"
leverage = "2"

[paper]
balances = {{ BTC = "1", ETH = "10", USDT = "100000" }}
"""


def write_config(tmp_path: Path, poll: float = 0.1, max_notional: str = "1000000") -> Path:
    path = tmp_path / "hedgebot.toml"
    path.write_text(CONFIG.format(db=tmp_path / "hb.db", poll=poll, max_notional=max_notional))
    return path


def hedgebot(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEDGEBOT_")}
    return subprocess.run(
        [*command(), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def query(db: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return conn.execute(sql).fetchall()


def test_run_creates_the_database_and_status_and_audit_read_it(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    result = hedgebot(
        "run", "-c", str(config), "--max-cycles", "3", "--log-format", "json", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    decided = [line for line in lines if line["event"] == "pair.decided"]
    assert {line["pair"] for line in decided} == {"BTC", "ETH"}
    assert all("cycle" in line for line in decided)

    status = hedgebot("status", "-c", str(config), "--format", "json", cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    rows = json.loads(status.stdout)
    assert [r["pair"] for r in rows] == ["BTC", "ETH"]
    assert set(rows[0]) >= {
        "pair",
        "price",
        "spot_qty",
        "hedge_qty",
        "ratio",
        "target_ratio",
        "band",
        "drift_qty",
        "last_action",
        "last_action_at",
        "mode",
    }
    for row in rows:
        assert abs(float(row["ratio"]) - float(row["target_ratio"])) <= float(row["band"])
        assert isinstance(row["spot_qty"], str)

    audit = hedgebot(
        "audit", "-c", str(config), "--format", "json", "--kind", "order", cwd=tmp_path
    )
    events = [json.loads(line) for line in audit.stdout.splitlines()]
    assert events
    assert {"id", "ts", "pair", "kind", "summary", "data"} <= set(events[0])
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)

    table = hedgebot("status", "-c", str(config), cwd=tmp_path)
    assert "BTC" in table.stdout
    assert "paper" in table.stdout
    csv_out = hedgebot("audit", "-c", str(config), "--format", "csv", "--limit", "2", cwd=tmp_path)
    assert csv_out.stdout.splitlines()[0] == "id,ts,pair,kind,summary,decision_id,data"
    assert len(csv_out.stdout.splitlines()) == 3


def test_sigterm_mid_run_exits_zero_within_5_seconds_with_every_order_recorded(
    tmp_path: Path,
) -> None:
    # A small max order notional keeps orders flowing for many cycles.
    config = write_config(tmp_path, poll=0.05, max_notional="500")
    db = tmp_path / "hb.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEDGEBOT_")}
    process = subprocess.Popen(
        [*command(), "run", "-c", str(config), "--log-format", "json"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if (
                db.exists()
                and query(db, "SELECT count(*) FROM sqlite_master WHERE name = 'orders'")[0][0]
            ):
                if query(db, "SELECT count(*) FROM orders")[0][0] >= 5:
                    break
            time.sleep(0.05)
        else:
            pytest.fail("the daemon sent no orders within 30 s")
        process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        process.wait(timeout=10)
        waited = time.monotonic() - started
    finally:
        if process.poll() is None:
            process.kill()
        _, stderr = process.communicate()
    assert process.returncode == 0, stderr
    assert waited < 5
    statuses = {row[0] for row in query(db, "SELECT status FROM orders")}
    assert statuses <= {"filled", "rejected"}
    stored = {row[0] for row in query(db, "SELECT client_order_id FROM orders")}
    at_venue = {row[0] for row in query(db, "SELECT client_order_id FROM paper_orders")}
    assert at_venue
    assert at_venue <= stored
    kinds = [row[0] for row in query(db, "SELECT kind FROM audit_events ORDER BY id")]
    assert kinds[-1] == "daemon.stop"


def test_bad_config_exits_2_names_the_field_and_writes_nothing(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    config.write_text(config.read_text().replace('band = "0.02"', 'band = "1.5"', 1))
    result = hedgebot("run", "-c", str(config), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "pairs[0].band" in result.stderr
    assert "1.5" in result.stderr
    assert "less than or equal to 1" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hedgebot.toml"]


def test_check_config_refuses_two_pairs_hedging_one_coin_in_one_line_and_writes_nothing(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path)
    config.write_text(
        config.read_text()
        + '\n[[pairs]]\nname = "BTC-USDC"\nspot_symbol = "BTC/USDC"\n'
        + 'perp_symbol = "BTC/USDC:USDC"\n'
    )
    for args in (["check-config"], ["run", "--max-cycles", "1"]):
        result = hedgebot(*args, "-c", str(config), cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        assert result.stderr.strip().count("\n") == 0, result.stderr
        assert "pairs BTC and BTC-USDC both hedge BTC on account paper" in result.stderr
        assert "remove one" in result.stderr
        assert sorted(p.name for p in tmp_path.iterdir()) == ["hedgebot.toml"]


def test_check_config_prints_effective_config_with_secrets_masked(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    env = {
        **os.environ,
        "HEDGEBOT_ACCOUNTS__main__EXCHANGE": "binance",
        "HEDGEBOT_ACCOUNTS__main__API_KEY": "very-secret-key-value",
    }
    result = subprocess.run(
        [*command(), "check-config", "-c", str(config)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "very-secret-key-value" not in result.stdout + result.stderr
    effective = json.loads(result.stdout)
    assert effective["accounts"]["main"]["api_key"] == "**********"
    assert effective["pairs"][1]["target_ratio"] == "0.5"


def test_status_on_a_missing_database_says_how_to_start_and_creates_nothing(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path)
    result = hedgebot("status", "-c", str(config), cwd=tmp_path)
    assert result.returncode == 2
    assert "no database" in result.stderr
    assert not (tmp_path / "hb.db").exists()


def test_outdated_schema_is_refused_unless_migrate_is_given(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    assert hedgebot("db", "upgrade", "-c", str(config), cwd=tmp_path).returncode == 0
    # A newer hedgebot would ship one more migration: simulate it with a copy.
    migrations = tmp_path / "migrations"
    shutil.copytree(ROOT / "migrations", migrations, ignore=shutil.ignore_patterns("__pycache__"))
    head = ScriptDirectory(str(migrations)).get_current_head()
    (migrations / "versions" / "9999_extra.py").write_text(
        'import sqlalchemy as sa\nfrom alembic import op\n\nrevision = "9999"\n'
        f'down_revision = "{head}"\nbranch_labels = None\ndepends_on = None\n\n\n'
        "def upgrade() -> None:\n"
        '    op.create_table("extra", sa.Column("id", sa.Integer, primary_key=True))\n\n\n'
        "def downgrade() -> None:\n"
        '    op.drop_table("extra")\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEDGEBOT_")}
    env["HEDGEBOT_MIGRATIONS_DIR"] = str(migrations)
    refused = subprocess.run(
        [*command(), "run", "-c", str(config), "--max-cycles", "1"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2
    assert "out of date" in refused.stderr
    assert "--migrate" in refused.stderr
    migrated = subprocess.run(
        [*command(), "run", "-c", str(config), "--max-cycles", "1", "--migrate"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert migrated.returncode == 0, migrated.stderr
    assert query(tmp_path / "hb.db", "SELECT version_num FROM alembic_version") == [("9999",)]


ACCOUNT = """
[accounts.main]
exchange = "binance"
"""


def test_live_mode_needs_the_flag_and_the_confirmation_variable(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    config.write_text(config.read_text().replace('mode = "paper"', 'mode = "live"') + ACCOUNT)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEDGEBOT_")}
    for args, extra_env in (
        (["run", "-c", str(config)], {}),
        (["run", "-c", str(config), "--live"], {}),
        (["run", "-c", str(config)], {"HEDGEBOT_LIVE_CONFIRM": "yes"}),
    ):
        result = subprocess.run(
            [*command(), *args],
            cwd=tmp_path,
            env={**env, **extra_env},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 2
        assert "--live" in result.stderr
        assert "HEDGEBOT_LIVE_CONFIRM=yes" in result.stderr
    confirmed = subprocess.run(
        [*command(), "run", "-c", str(config), "--live"],
        cwd=tmp_path,
        env={**env, "HEDGEBOT_LIVE_CONFIRM": "yes"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert confirmed.returncode == 2
    assert "accounts.main" in confirmed.stderr
    assert "api_key" in confirmed.stderr
    assert not (tmp_path / "hb.db").exists()


def test_testnet_for_an_exchange_without_sandbox_or_demo_is_refused_in_one_line(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path)
    text = config.read_text().replace('mode = "paper"', 'mode = "testnet"')
    config.write_text(text + ACCOUNT.replace("binance", "bitstamp"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEDGEBOT_")}
    env |= {"HEDGEBOT_ACCOUNTS__main__API_KEY": "k", "HEDGEBOT_ACCOUNTS__main__SECRET": "s"}
    result = subprocess.run(
        [*command(), "run", "-c", str(config)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if not line.startswith("{")]
    assert len(lines) == 1
    assert "bitstamp" in lines[0]
    assert "testnet" in lines[0]


def test_plan_prints_what_would_happen_and_sends_and_writes_nothing(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    fresh = hedgebot("plan", "-c", str(config), "--format", "json", cwd=tmp_path)
    assert fresh.returncode == 0, fresh.stderr
    rows = json.loads(fresh.stdout)
    assert [r["action"] for r in rows] == ["order", "order"]
    assert rows[0]["order"].startswith("sell 1.000 BTC/USDT:USDT IOC @ ")
    assert not (tmp_path / "hb.db").exists()

    assert hedgebot("run", "-c", str(config), "--max-cycles", "2", cwd=tmp_path).returncode == 0
    before = query(tmp_path / "hb.db", "SELECT count(*) FROM audit_events")
    state = query(tmp_path / "hb.db", "SELECT state FROM paper_accounts")
    hedged = hedgebot("plan", "-c", str(config), cwd=tmp_path)
    assert hedged.returncode == 0, hedged.stderr
    assert "none" in hedged.stdout
    assert query(tmp_path / "hb.db", "SELECT count(*) FROM audit_events") == before
    assert query(tmp_path / "hb.db", "SELECT state FROM paper_accounts") == state


def test_the_daemon_runs_on_postgres_as_on_sqlite(tmp_path: Path, postgres_database: str) -> None:
    config = write_config(tmp_path)
    text = config.read_text().replace(
        f"sqlite+aiosqlite:///{tmp_path / 'hb.db'}", postgres_database
    )
    config.write_text(text)
    result = hedgebot("run", "-c", str(config), "--max-cycles", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    status = hedgebot("status", "-c", str(config), "--format", "json", cwd=tmp_path)
    rows = json.loads(status.stdout)
    assert [r["pair"] for r in rows] == ["BTC", "ETH"]
    assert rows[0]["hedge_qty"] == "1"  # exact decimals back from NUMERIC, no exponent
    assert rows[0]["spot_qty"] == "1"


def test_a_second_daemon_on_the_same_sqlite_database_is_refused(tmp_path: Path) -> None:
    config = write_config(tmp_path, poll=0.2)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEDGEBOT_")}
    first = subprocess.Popen(
        [*command(), "run", "-c", str(config)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (tmp_path / "hb.db.lock").exists():
            time.sleep(0.05)
        time.sleep(0.5)
        second = hedgebot("run", "-c", str(config), "--max-cycles", "1", cwd=tmp_path)
        assert second.returncode == 2
        assert f"another hedgebot (pid {first.pid}) is running" in second.stderr
        # Reading commands work while the daemon runs.
        status = hedgebot("status", "-c", str(config), "--format", "json", cwd=tmp_path)
        assert status.returncode == 0, status.stderr
        assert [row["pair"] for row in json.loads(status.stdout)] == ["BTC", "ETH"]
        audit = hedgebot("audit", "-c", str(config), "--kind", "daemon", cwd=tmp_path)
        assert audit.returncode == 0, audit.stderr
        assert "daemon.start" in audit.stdout
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=15)
    assert first.returncode == 0
    # Once the first one stopped, the database is free again.
    assert hedgebot("run", "-c", str(config), "--max-cycles", "1", cwd=tmp_path).returncode == 0
