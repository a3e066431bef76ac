"""The API key and secret never leave the process: not in output, logs, audit or database.

The daemon trades in testnet mode against the Binance emulator (its own process) with a
distinctive key and secret, given once through the environment and once through
``*_file`` paths; then every command runs, including a configuration error and an
exchange that refuses the credentials. Neither secret may appear in any stdout or
stderr, any file the commands wrote (log, exports, the database's raw bytes), or any
column of any table.
"""

from __future__ import annotations

import sqlite3
import subprocess
import uuid
from decimal import Decimal
from pathlib import Path

import pytest

from tests.e2e.commands import command
from tests.e2e.test_crash_safety import EmulatorProcess, clean_env, toml_value

CONFIG = """
mode = "testnet"
database_url = "sqlite+aiosqlite:///{db}"
poll_interval_s = 0.2

# A free port: the default 8780 may be taken by a daemon or another test run.
[http]
port = 0

[risk]
max_data_age_s = "30"

[accounts.binance]
exchange = "binance"
rate_limit_per_s = "1000"
ccxt_config = {ccxt_config}

[[pairs]]
name = "BTC"
spot_symbol = "BTC/USDT"
perp_symbol = "BTC/USDT:USDT"
target_ratio = "1.0"
band = "0.02"
max_order_notional = "15000"
leverage = "2"
"""

# Distinctive values, different each run; no command has a reason to print them.
API_KEY = f"hbTestKey{uuid.uuid4().hex}"
SECRET = f"hbTestSecret{uuid.uuid4().hex}"
NEEDLES = {"api key": API_KEY, "secret": SECRET}
# The exchange's answer to bad credentials (Binance's code and message).
AUTH_REFUSED = {
    "fault": "reject",
    "count": 10000,
    "params": {
        "status": 401,
        "code": -2015,
        "msg": "Invalid API-key, IP, or permissions for action.",
    },
}


def leaks(text: str | bytes) -> list[str]:
    """Which secrets ``text`` contains, whole or as a long enough piece of one."""
    found = []
    for name, value in NEEDLES.items():
        pieces = {value, value[-24:], value[:24]}
        for piece in pieces:
            needle: str | bytes = piece.encode() if isinstance(text, bytes) else piece
            if needle in text:  # type: ignore[operator]
                found.append(name)
                break
    return found


def dump_tables(db: Path) -> str:
    """Every column of every row of every table, as text."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return "\n".join(
            f"{table}: {row!r}"
            for table in tables
            for row in conn.execute(f'SELECT * FROM "{table}"')
        )
    finally:
        conn.close()


class Session:
    """Runs hedgebot commands in one directory and keeps everything they printed."""

    def __init__(self, cwd: Path, config: Path) -> None:
        self.cwd = cwd
        self.config = config
        self.outputs: list[tuple[str, subprocess.CompletedProcess[str]]] = []

    def run(
        self, *args: str, env: dict[str, str], timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [*command(), *args],
            cwd=self.cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        self.outputs.append((" ".join(args), result))
        print(f"{' '.join(args)[:60]}: exit {result.returncode}", flush=True)
        return result


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_no_command_prints_logs_audits_or_stores_the_api_key_or_secret(tmp_path: Path) -> None:
    work = tmp_path / "work"  # everything the commands write lands here
    work.mkdir()
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "api_key").write_text(API_KEY + "\n")
    (secrets / "secret").write_text(SECRET + "\n")
    db = work / "hb.db"
    emulator = EmulatorProcess(tmp_path / "emulator.log")
    try:
        emulator.call("POST", "futures_balance", {"asset": "USDT", "amount": "1000000"})
        emulator.set_spot(Decimal(1))
        ccxt_config = {**emulator.call("GET", "ccxt_config"), "timeout": 5000}
        config = work / "hedgebot.toml"
        config.write_text(CONFIG.format(db=db, ccxt_config=toml_value(ccxt_config)))
        by_env = {
            **clean_env(),
            "HEDGEBOT_ACCOUNTS__BINANCE__API_KEY": API_KEY,
            "HEDGEBOT_ACCOUNTS__BINANCE__SECRET": SECRET,
        }
        by_file = {
            **clean_env(),
            "HEDGEBOT_ACCOUNTS__BINANCE__API_KEY_FILE": str(secrets / "api_key"),
            "HEDGEBOT_ACCOUNTS__BINANCE__SECRET_FILE": str(secrets / "secret"),
        }
        c = str(config)
        s = Session(work, config)

        for env in (by_env, by_file):
            assert s.run("check-config", "-c", c, env=env).returncode == 0
        assert s.run("db", "upgrade", "-c", c, env=by_env).returncode == 0
        assert s.run("plan", "-c", c, "--format", "json", env=by_env).returncode == 0
        assert s.run("plan", "-c", c, env=by_file).returncode == 0
        ran = s.run("run", "-c", c, "--max-cycles", "3", "--log-format", "json", env=by_env)
        assert ran.returncode == 0, ran.stderr
        ran = s.run("run", "-c", c, "--max-cycles", "2", "--log-format", "console", env=by_file)
        assert ran.returncode == 0, ran.stderr
        # The keys were used: signed requests went through and an order was placed.
        assert emulator.order_log()

        # The exchange refuses the credentials: the error is printed and audited.
        emulator.call("POST", "fault", AUTH_REFUSED)
        refused = s.run("run", "-c", c, "--max-cycles", "1", "--log-format", "json", env=by_env)
        assert refused.returncode == 2
        assert "refused the API credentials" in refused.stderr
        refused_plan = s.run("plan", "-c", c, env=by_file)
        assert refused_plan.returncode == 2
        emulator.call("POST", "clear_faults", {})
        # A server error whose message the gateway passes on.
        emulator.call(
            "POST",
            "fault",
            {"fault": "server_error", "count": 10000, "params": {"status": 500}},
        )
        failing = s.run("run", "-c", c, "--max-cycles", "1", "--log-format", "console", env=by_env)
        emulator.call("POST", "clear_faults", {})
        assert failing.returncode == 1  # the exchange is unreachable: not a usage error
        assert "hedgebot could not start: load_markets: ExchangeNotAvailable" in failing.stderr
        assert "Traceback" not in failing.stderr

        for args in (
            ("status", "-c", c),
            ("status", "-c", c, "--format", "json"),
            ("audit", "-c", c),
            ("audit", "-c", c, "--format", "json"),
            ("audit", "-c", c, "--format", "csv"),
            ("audit", "verify", "-c", c),
            ("audit", "export", "-c", c, "--output", str(work / "audit.jsonl")),
            ("audit", "export", "-c", c, "--format", "csv", "--output", str(work / "audit.csv")),
        ):
            result = s.run(*args, env=by_env)
            assert result.returncode == 0, (args, result.stderr)
        audit_json = s.outputs[-5][1].stdout
        assert "daemon.fatal" in audit_json
        assert "order.filled" in audit_json

        # Configuration errors, with the secrets set: an out-of-range value, and a
        # mistyped variable name that carries the key itself.
        bad = work / "bad.toml"
        bad.write_text(config.read_text().replace('band = "0.02"', 'band = "7"'))
        for args, env in (
            (("check-config", "-c", str(bad)), by_env),
            (("run", "-c", str(bad)), by_file),
            (("check-config", "-c", c), {**by_env, "HEDGEBOT_ACCOUNTS__BINANCE__APIKEY": API_KEY}),
            (("run", "-c", c), {**by_file, "HEDGEBOT_ACCOUNTS__BINANCE__SECRETS": SECRET}),
        ):
            result = s.run(*args, env=env)
            assert result.returncode == 2, (args, result.stderr)
            assert "config error" in result.stderr
    finally:
        emulator.close()

    # The scan finds a secret where there is one.
    assert leaks((secrets / "secret").read_text()) == ["secret"]
    assert leaks((secrets / "api_key").read_bytes()) == ["api key"]

    found = [
        f"{name} in the {stream} of `hedgebot {args}`"
        for args, result in s.outputs
        for stream, text in (("stdout", result.stdout), ("stderr", result.stderr))
        for name in leaks(text)
    ]
    written = sorted(p for p in work.rglob("*") if p.is_file())
    assert {p.name for p in written} >= {"hb.db", "audit.jsonl", "audit.csv", "hedgebot.toml"}
    found += [f"{name} in {p.name}" for p in written for name in leaks(p.read_bytes())]
    found += [f"{name} in a table" for name in leaks(dump_tables(db))]
    assert found == []
