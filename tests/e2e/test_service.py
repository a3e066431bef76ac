"""`hedgebot run` as systemd and Docker run it: sd_notify, the HTTP endpoints, JSON logs."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.commands import command

pytestmark = pytest.mark.slow  # starts hedgebot as a subprocess

CONFIG = """
mode = "paper"
database_url = "sqlite+aiosqlite:///{db}"
poll_interval_s = 0.2

[http]
port = 0

[[pairs]]
name = "BTC"
spot_symbol = "BTC/USDT"
perp_symbol = "BTC/USDT:USDT"
target_ratio = "1.0"
max_order_notional = "100000"
leverage = "2"
"""


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HEDGEBOT_", "NOTIFY_SOCKET", "WATCHDOG_"))
    }
    return {**env, **extra}


def write_config(tmp_path: Path) -> Path:
    config = tmp_path / "hedgebot.toml"
    config.write_text(CONFIG.format(db=tmp_path / "hedgebot.db"), encoding="utf-8")
    return config


class LogReader:
    """Reads the daemon's stdout (JSON lines) on a thread, so its pipe never fills."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.events: list[dict[str, Any]] = []
        self.other: list[str] = []
        self._changed = threading.Condition()
        self._process = process
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            with self._changed:
                try:
                    self.events.append(json.loads(line))
                except ValueError:
                    self.other.append(line)
                self._changed.notify_all()
        self._process.stdout.close()

    def wait_event(self, name: str, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for event in self.events:
                    if event.get("event") == name:
                        return event
                left = deadline - time.monotonic()
                if left <= 0 or self._process.poll() is not None:
                    raise AssertionError(f"no {name} event; got {self.events[-5:]} {self.other}")
                self._changed.wait(min(left, 0.1))

    def join(self) -> None:
        self._thread.join(timeout=30)


def fetch(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def receive_all(sock: socket.socket) -> list[str]:
    messages = []
    while True:
        try:
            messages.append(sock.recv(4096).decode())
        except BlockingIOError:
            return messages


def test_daemon_notifies_systemd_serves_endpoints_and_logs_json_to_stdout(
    tmp_path: Path,
) -> None:
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify_path = tmp_path / "notify.sock"
    notify.bind(str(notify_path))
    notify.setblocking(False)
    config = write_config(tmp_path)
    process = subprocess.Popen(
        [*command(), "run", "-c", str(config)],
        cwd=tmp_path,
        # WATCHDOG_USEC: systemd's WatchdogSec=1 -> a ping at least every 0.5 s.
        env=clean_env(NOTIFY_SOCKET=str(notify_path), WATCHDOG_USEC="1000000"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    logs = LogReader(process)
    try:
        port = int(logs.wait_event("http.listening")["port"])
        deadline = time.monotonic() + 60
        while fetch(port, "/readyz")[0] != 200:
            assert time.monotonic() < deadline, fetch(port, "/readyz")
            time.sleep(0.1)
        assert fetch(port, "/healthz") == (200, '{"status": "alive"}')
        status, metrics = fetch(port, "/metrics")
        assert status == 200
        assert 'hedgebot_hedge_ratio{pair="BTC"}' in metrics
        assert "hedgebot_cycle_duration_seconds_count" in metrics
        logs.wait_event("pair.decided")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        logs.join()
        assert process.stderr is not None
        stderr = process.stderr.read()
        process.stderr.close()
        messages = receive_all(notify)
        notify.close()
    assert process.returncode == 0, stderr
    assert stderr == ""  # logs go to stdout; stderr is for one-line errors
    assert logs.other == []  # every stdout line is a JSON object
    assert {"daemon.started", "pair.decided", "daemon.exit"} <= {e["event"] for e in logs.events}
    lines = [line for message in messages for line in message.split("\n")]
    assert "READY=1" in lines
    assert "WATCHDOG=1" in lines
    assert "STOPPING=1" in lines
    assert lines.index("READY=1") < lines.index("STOPPING=1")
    assert any(line.startswith("STATUS=cycle ") for line in lines)


def test_a_port_in_use_stops_run_with_one_line_and_exit_2(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [*command(), "run", "-c", str(config), "--max-cycles", "1"],
            cwd=tmp_path,
            env=clean_env(HEDGEBOT_HTTP__PORT=str(port)),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert result.returncode == 2, result.stdout + result.stderr
    [line] = result.stderr.splitlines()
    assert f"127.0.0.1:{port}" in line
    assert "HEDGEBOT_HTTP__PORT" in line
