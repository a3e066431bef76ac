"""Ctrl-C at any moment of a command, its imports included, ends it with one line and
exit code 130 (or it had already finished): never a traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.commands import command
from tests.e2e.test_cli import hedgebot, write_config

pytestmark = pytest.mark.slow  # starts hedgebot as a subprocess


def interpreter_start_s() -> float:
    """How long this machine takes to start Python up to the entry point's module: a
    signal before that reaches the interpreter's own start-up, not hedgebot."""
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", "import bot.entry"], check=True)
    return time.monotonic() - started


@pytest.mark.parametrize(
    "args", [["status"], ["audit", "-n", "5"], ["plan"], ["run", "--max-cycles", "3"]]
)
def test_ctrl_c_at_any_moment_ends_a_command_without_a_traceback(
    tmp_path: Path, args: list[str]
) -> None:
    config = write_config(tmp_path)
    assert hedgebot("db", "upgrade", "-c", str(config), cwd=tmp_path).returncode == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEDGEBOT_")}
    first = 1.5 * interpreter_start_s()
    for delay in (first, first + 0.1, first + 0.25, first + 0.5, first + 1.0):
        child = subprocess.Popen(
            [*command(), *args, "-c", str(config)],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(delay)
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=60)
        assert "Traceback" not in err, f"after {delay:.2f} s:\n{err}"
        # 0: it had finished; -SIGINT: the signal came while Python was exiting.
        assert child.returncode in (0, 130, -signal.SIGINT), f"after {delay:.2f} s: {err}"
        if child.returncode == 130 and err.strip():
            assert err.strip().splitlines()[-1] == "interrupted"
