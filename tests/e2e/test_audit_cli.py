"""`hedgebot audit verify`, `audit export` and `audit --follow` as a user runs them."""

from __future__ import annotations

import csv
import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from alembic import command as alembic_command

from bot.store.migrate import alembic_config
from tests.e2e.commands import command
from tests.e2e.test_cli import hedgebot, query, write_config

pytestmark = pytest.mark.slow  # starts hedgebot as a subprocess


def dump(db: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table: what a read-only command must leave as it was."""
    tables = [row[0] for row in query(db, "SELECT name FROM sqlite_master WHERE type = 'table'")]
    return {table: query(db, f'SELECT * FROM "{table}"') for table in tables}


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory whose database holds a few cycles of the paper daemon."""
    tmp_path = tmp_path_factory.mktemp("audit")
    config = write_config(tmp_path)
    result = hedgebot("run", "-c", str(config), "--max-cycles", "3", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return tmp_path


def copy_of(ran: Path, tmp_path: Path) -> Path:
    """The ran database under tmp_path, with a config pointing at it."""
    with sqlite3.connect(ran / "hb.db") as source, sqlite3.connect(tmp_path / "hb.db") as target:
        source.backup(target)
    return write_config(tmp_path)


def test_verify_counts_the_intact_events_and_prints_the_head(ran: Path) -> None:
    config = ran / "hedgebot.toml"
    before = dump(ran / "hb.db")
    result = hedgebot("audit", "verify", "-c", str(config), cwd=ran)
    assert result.returncode == 0, result.stderr
    count, head_id, head_hash = query(
        ran / "hb.db", "SELECT count(*), max(id), (SELECT hash FROM audit_events "
        "ORDER BY id DESC LIMIT 1) FROM audit_events",
    )[0]  # fmt: skip
    lines = result.stdout.splitlines()
    assert lines[0] == f"audit chain intact: {count} events (#1 to #{head_id})"
    assert lines[1] == f"head {head_id}:{head_hash}"
    anchored = hedgebot(
        "audit", "verify", "-c", str(config), "--anchor", f"{head_id}:{head_hash}", cwd=ran
    )
    assert anchored.returncode == 0, anchored.stderr
    assert f"anchor #{head_id} matches" in anchored.stdout
    assert dump(ran / "hb.db") == before


def test_verify_names_an_edited_event_in_one_line_and_exits_1(ran: Path, tmp_path: Path) -> None:
    config = copy_of(ran, tmp_path)
    db = tmp_path / "hb.db"
    target_id, ts = query(
        db, "SELECT id, ts FROM audit_events WHERE kind = 'order.filled' ORDER BY id"
    )[0]
    with sqlite3.connect(db) as conn:
        conn.execute(
            "UPDATE audit_events SET summary = summary || ' (edited)' WHERE id = ?", (target_id,)
        )
    result = hedgebot("audit", "verify", "-c", str(config), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith(f"audit chain broken at event #{target_id} (order.filled, ")
    assert str(ts)[:19].replace(" ", "T") in line
    assert "does not match its stored hash" in line
    assert f"{target_id - 1} events before it are intact" in line


def test_verify_names_the_event_after_a_deleted_one(ran: Path, tmp_path: Path) -> None:
    config = copy_of(ran, tmp_path)
    with sqlite3.connect(tmp_path / "hb.db") as conn:
        conn.execute("DELETE FROM audit_events WHERE id = 4")
    result = hedgebot("audit", "verify", "-c", str(config), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("audit chain broken at event #5 ")
    assert "not the hash of event #3" in result.stderr


def test_a_wrong_anchor_exits_1_and_a_malformed_one_exits_2(ran: Path) -> None:
    config = ran / "hedgebot.toml"
    wrong = hedgebot("audit", "verify", "-c", str(config), "--anchor", "2:" + "ab" * 32, cwd=ran)
    assert wrong.returncode == 1
    assert "the log was rewritten at or before #2" in wrong.stderr
    malformed = hedgebot("audit", "verify", "-c", str(config), "--anchor", "2", cwd=ran)
    assert malformed.returncode == 2
    assert "ID:HASH" in malformed.stderr


def test_export_writes_every_event_with_its_hashes_and_refuses_to_overwrite(
    ran: Path, tmp_path: Path
) -> None:
    config = ran / "hedgebot.toml"
    before = dump(ran / "hb.db")
    out = tmp_path / "audit.jsonl"
    result = hedgebot("audit", "export", "-c", str(config), "--output", str(out), cwd=ran)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    stored = query(ran / "hb.db", "SELECT id, kind, summary, prev_hash, hash FROM audit_events")
    assert [(r["id"], r["kind"], r["summary"], r["prev_hash"], r["hash"]) for r in rows] == [
        tuple(s) for s in stored
    ]
    assert f"exported {len(rows)} audit events" in result.stderr

    again = hedgebot("audit", "export", "-c", str(config), "--output", str(out), cwd=ran)
    assert again.returncode == 2
    assert len(again.stderr.splitlines()) == 1
    assert "--force" in again.stderr
    assert [json.loads(line) for line in out.read_text().splitlines()] == rows

    as_csv = hedgebot(
        "audit", "export", "-c", str(config), "--format", "csv", "--kind", "order",
        "--output", str(out), "--force", cwd=ran,
    )  # fmt: skip
    assert as_csv.returncode == 0, as_csv.stderr
    with out.open(newline="") as handle:
        table = list(csv.DictReader(handle))
    assert table
    assert {row["kind"] for row in table} <= {"order.intent", "order.filled", "order.rejected"}
    assert all(len(row["hash"]) == 64 for row in table)
    assert json.loads(table[0]["data"])["client_order_id"].startswith("hb")
    assert not list(tmp_path.glob(".*.partial"))
    assert dump(ran / "hb.db") == before


def test_follow_prints_new_events_with_filters_and_exits_0_on_sigterm(
    ran: Path, tmp_path: Path
) -> None:
    config = copy_of(ran, tmp_path)
    db = tmp_path / "hb.db"
    last_id = query(db, "SELECT max(id) FROM audit_events")[0][0]
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEDGEBOT_")}
    follower = subprocess.Popen(
        [
            *command(), "audit", "-c", str(config), "--follow", "--kind", "daemon",
            "--format", "json", "--limit", "1", "--interval", "0.1",
        ],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert follower.stdout is not None
        first = json.loads(follower.stdout.readline())
        assert first["kind"] == "daemon.stop"  # the newest matching event, then new ones
        assert first["id"] <= last_id
        result = hedgebot("run", "-c", str(config), "--max-cycles", "1", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        started = json.loads(follower.stdout.readline())
        stopped = json.loads(follower.stdout.readline())
        assert (started["kind"], stopped["kind"]) == ("daemon.start", "daemon.stop")
        assert last_id < started["id"] < stopped["id"]
        time.sleep(0.3)
        follower.send_signal(signal.SIGTERM)
        follower.wait(timeout=15)
    finally:
        if follower.poll() is None:
            follower.kill()
        _, stderr = follower.communicate()
    assert follower.returncode == 0, stderr


def test_the_audit_listing_still_works_without_a_subcommand(ran: Path) -> None:
    config = ran / "hedgebot.toml"
    listing = hedgebot("audit", "-c", str(config), "--kind", "daemon", "--format", "json", cwd=ran)
    assert listing.returncode == 0, listing.stderr
    assert [json.loads(line)["kind"] for line in listing.stdout.splitlines()] == [
        "daemon.start",
        "daemon.stop",
    ]


def test_an_audit_log_from_before_the_hash_chain_verifies_after_db_upgrade(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path)
    db = tmp_path / "hb.db"
    alembic_command.upgrade(alembic_config(f"sqlite+aiosqlite:///{db}"), "0001")
    with sqlite3.connect(db) as conn:
        conn.executemany(
            "INSERT INTO audit_events (ts, pair, kind, summary, decision_id, data) "
            "VALUES (?, ?, ?, ?, NULL, ?)",
            [
                ("2026-11-01 08:00:00.000000", None, "daemon.start", "old start", "{}"),
                ("2026-11-01 08:00:01.250000", "BTC", "decision", "old decision", '{"r": "0.5"}'),
            ],
        )
    before = dump(db)
    refused = hedgebot("audit", "verify", "-c", str(config), cwd=tmp_path)
    assert refused.returncode == 2
    assert "hedgebot db upgrade" in refused.stderr
    assert dump(db) == before
    assert hedgebot("db", "upgrade", "-c", str(config), cwd=tmp_path).returncode == 0
    verified = hedgebot("audit", "verify", "-c", str(config), cwd=tmp_path)
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.startswith("audit chain intact: 2 events (#1 to #2)")
