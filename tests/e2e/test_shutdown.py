"""SIGTERM while an order's answer is outstanding: bounded wait, recorded, exit 0 in 5 s."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from tests.e2e.commands import command
from tests.support.emulators.binance import BinanceEmulator
from tests.support.emulators.binance._binance_models import Fault

pytestmark = pytest.mark.slow  # starts hedgebot as a subprocess

CONFIG = """
mode = "testnet"
database_url = "sqlite+aiosqlite:///{db}"
poll_interval_s = 0.2

# A free port: the default 8780 may be taken by a daemon or another test run.
[http]
port = 0

[[pairs]]
name = "BTC"
spot_symbol = "BTC/USDT"
perp_symbol = "BTC/USDT:USDT"
target_ratio = "1.0"
band = "0.02"
max_order_notional = "200000"
leverage = "2"

[risk]
order_settle_s = "1"

[accounts.main]
exchange = "binance"
api_key = "test-key"
secret = "test-secret"
rate_limit_per_s = "500"
"""


async def run(*args: str, cwd: Path, ccxt_config: str) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEDGEBOT_")}
    # A table from the environment is JSON (pydantic-settings parses it).
    env["HEDGEBOT_ACCOUNTS__main__CCXT_CONFIG"] = ccxt_config
    return await asyncio.create_subprocess_exec(
        *command(),
        *args,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_sigterm_during_an_order_records_it_and_exits_zero_after_its_grace(
    tmp_path: Path, emulator: BinanceEmulator
) -> None:
    emulator.set_spot_balance("BTC", Decimal(1))
    emulator.set_futures_balance("USDT", Decimal(100000))
    # Error classes cannot travel through TOML; this test meets no exchange errors.
    ccxt_config = {**emulator.ccxt_config(production_error_classes=False), "timeout": 30000}
    config = tmp_path / "hedgebot.toml"
    db = tmp_path / "hb.db"
    config.write_text(CONFIG.format(db=db))
    ccxt_json = json.dumps(ccxt_config)
    # The exchange takes the order at once but holds the answer for 20 s.
    emulator.inject(Fault.TIMEOUT, path="/fapi/v1/order", method="POST", accept=True, delay_s=20)

    process = await run(
        "run", "-c", str(config), "--log-format", "json", cwd=tmp_path, ccxt_config=ccxt_json
    )
    try:

        def order_sent() -> bool:
            return ("POST", "/fapi/v1/order") in emulator.request_log

        for _ in range(600):
            if order_sent():
                break
            await asyncio.sleep(0.05)
        assert order_sent(), "the daemon sent no order"
        await asyncio.sleep(0.3)  # the answer is now outstanding
        process.send_signal(signal.SIGTERM)
        # The answer is held 20 s: exiting before it means the daemon cut the cycle.
        await asyncio.wait_for(process.wait(), timeout=15)
    finally:
        if process.returncode is None:
            process.kill()
        stdout, stderr = await process.communicate()
    output = (stdout + stderr).decode()  # logs on stdout, one-line errors on stderr
    assert process.returncode == 0, output[-3000:]
    # It waited the grace it is given (SHUTDOWN_GRACE_S, under systemd's and Docker's
    # stop timeouts), not the exchange's answer; measured by the daemon itself.
    assert "the cycle in flight was cut after 3.5 s" in output, output[-3000:]
    with sqlite3.connect(db) as conn:
        [(status, reason)] = conn.execute("SELECT status, reason FROM orders").fetchall()
        kinds = [k for (k,) in conn.execute("SELECT kind FROM audit_events ORDER BY id")]
    assert status == "unknown"
    assert "shutdown" in reason
    assert kinds[-1] == "daemon.stop"

    # The next start finds the order by its client id: recorded as filled, never resent.
    again = await run(
        "run", "-c", str(config), "--max-cycles", "3", cwd=tmp_path, ccxt_config=ccxt_json
    )
    await asyncio.wait_for(again.wait(), timeout=60)
    assert again.returncode == 0
    with sqlite3.connect(db) as conn:
        statuses = [s for (s,) in conn.execute("SELECT status FROM orders")]
    assert statuses == ["filled"]
    assert len([e for e in emulator.order_log if e.outcome == "accepted"]) == 1
    assert emulator.position("BTC/USDT:USDT") == Decimal(-1)
