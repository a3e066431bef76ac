"""Output fits the person: no stray metavars in --help, tables as wide as the terminal,
times labelled UTC, counts in words."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from bot.cli import app
from bot.cli.render import at_step, ratio_text
from bot.domain.words import plural
from tests.e2e.test_cli import write_config


def command_paths() -> list[list[str]]:
    root = typer.main.get_command(app)
    paths: list[list[str]] = [[]]
    for name, command in getattr(root, "commands", {}).items():
        paths.append([name])
        paths.extend([name, sub] for sub in getattr(command, "commands", {}))
    assert len(paths) > 10
    return paths


@pytest.mark.parametrize("path", command_paths(), ids=lambda p: " ".join(p) or "hedgebot")
def test_help_shows_no_type_metavars(cli: CliRunner, path: list[str]) -> None:
    result = cli.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.stdout
    options = [line for line in result.stdout.splitlines() if line.lstrip().startswith("-")]
    assert not [line for line in options if "<str>" in line or "<path>" in line]


def test_tables_take_the_terminal_width(cli: CliRunner, tmp_path: Path) -> None:
    config = write_config(tmp_path)
    assert cli.invoke(app, ["db", "upgrade", "-c", str(config)]).exit_code == 0
    assert cli.invoke(app, ["pause", "BTC", "-c", str(config), "-r", "x" * 300]).exit_code == 0
    for columns in (80, 140):
        result = cli.invoke(app, ["audit", "-c", str(config)], env={"COLUMNS": str(columns)})
        lines = result.stdout.splitlines()
        assert max(len(line) for line in lines) == columns
        assert "hedgebot audit (1 event)" in result.stdout
        assert " UTC " in result.stdout


def test_figures_are_shown_at_the_markets_steps() -> None:
    assert at_step("59992.513", "0.01") == "59992.51"
    assert at_step("1", "0.001") == "1.000"
    assert at_step("0.6660000", "0.001") == "0.666"
    assert at_step("59992.513", None) == "59992.513"
    assert at_step("61234.5", "10") == "61234"  # a tick of 10 shows no places
    assert ratio_text("0.999") == "0.9990"
    assert [plural(n, "event") for n in (0, 1, 2)] == ["0 events", "1 event", "2 events"]
