"""`hedgebot run` cannot start (a database it cannot use, a port in use): one line, exit 2,
and nothing written."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.e2e.test_cli import hedgebot, write_config

pytestmark = pytest.mark.slow  # starts hedgebot as a subprocess


def test_run_with_an_unreachable_database_says_so_in_one_line(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    config.write_text(
        config.read_text().replace(
            f"sqlite+aiosqlite:///{tmp_path / 'hb.db'}",
            "postgresql+asyncpg://postgres@127.0.0.1:1/test",
        )
    )
    result = hedgebot("run", "-c", str(config), "--max-cycles", "1", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "cannot connect to postgresql database test at 127.0.0.1:1: connection refused; "
        "is the server running?"
    )
    assert "Traceback" not in result.stderr


def test_run_on_a_port_in_use_says_so_before_writing_a_database(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config.write_text(config.read_text().replace("port = 0", f"port = {port}"))
        result = hedgebot("run", "-c", str(config), "--max-cycles", "1", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"http: cannot listen on 127.0.0.1:{port} (Address already in use); set [http] port "
        "(HEDGEBOT_HTTP__PORT) to a free port, or [http] enabled = false"
    )
    assert not (tmp_path / "hb.db").exists()
