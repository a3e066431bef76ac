"""Logs: JSON lines on stdout, readable lines on a terminal, an optional rotating file."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from bot.logging import configure_logging, remove_handlers


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    yield
    remove_handlers()
    structlog.reset_defaults()


def test_json_lines_go_to_stdout_with_context_level_and_utc_time(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("json")
    log = structlog.get_logger("bot.test")
    structlog.contextvars.bind_contextvars(cycle=7)
    try:
        log.info("pair.decided", pair="BTC", ratio="0.5000")
        logging.getLogger("somelib").warning("library says %s", "hi")
    finally:
        structlog.contextvars.clear_contextvars()
    out, err = capsys.readouterr()
    assert err == ""
    first, second = (json.loads(line) for line in out.splitlines())
    assert first["event"] == "pair.decided"
    assert first["pair"] == "BTC"
    assert first["cycle"] == 7
    assert first["level"] == "info"
    assert first["timestamp"].endswith("Z")
    assert second["event"] == "library says hi"
    assert second["level"] == "warning"


def test_auto_is_json_when_stdout_is_not_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("auto")
    structlog.get_logger().info("daemon.started", mode="paper")
    assert json.loads(capsys.readouterr().out)["event"] == "daemon.started"


def test_console_format_is_not_json(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("console")
    structlog.get_logger().info("daemon.started", mode="paper")
    out = capsys.readouterr().out
    assert "daemon.started" in out
    assert "mode" in out
    assert not out.startswith("{")


def test_other_commands_can_log_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("json", to_stderr=True)
    structlog.get_logger().warning("plan.slow")
    out, err = capsys.readouterr()
    assert out == ""
    assert json.loads(err)["event"] == "plan.slow"


def test_below_the_level_nothing_is_written(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("json", level=logging.WARNING)
    structlog.get_logger().info("quiet")
    logging.getLogger("somelib").info("quiet too")
    assert capsys.readouterr().out == ""


def test_the_log_file_holds_json_lines_and_rotates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "hedgebot.log"
    configure_logging("console", log_file=path, max_bytes=2048, backups=2)
    log = structlog.get_logger()
    for n in range(100):
        log.info("cycle.done", cycle=n, padding="x" * 40)
    capsys.readouterr()
    files = sorted(tmp_path.iterdir())
    assert [f.name for f in files] == ["hedgebot.log", "hedgebot.log.1", "hedgebot.log.2"]
    cycles = []
    for file in files:
        assert file.stat().st_size <= 2048
        for line in file.read_text(encoding="utf-8").splitlines():
            cycles.append(json.loads(line)["cycle"])  # JSON even with a console on stdout
    assert max(cycles) == 99  # the newest is kept; the oldest were rotated away
    assert len(cycles) < 100


def test_reconfiguring_replaces_the_handlers_instead_of_adding(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("json")
    configure_logging("json")
    structlog.get_logger().info("once")
    assert len(capsys.readouterr().out.splitlines()) == 1
