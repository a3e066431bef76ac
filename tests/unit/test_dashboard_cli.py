"""``hedgebot dashboard``: loads the dashboard only when it runs, and refuses in one line."""

from __future__ import annotations

import socket
import tomllib
from fnmatch import fnmatch
from pathlib import Path

from typer.testing import CliRunner

from bot.cli import app
from bot.service.dashboard import ASSETS
from tests.unit.test_lazy_imports import loaded_after


def test_the_command_module_imports_neither_aiohttp_code_nor_the_dashboard() -> None:
    modules = ("bot.service.dashboard", "bot.store.dashboard_reads")
    assert loaded_after("import bot.cli.dashboard", modules) == dict.fromkeys(modules, False)


def test_no_database_is_one_line_and_exit_2(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'none.db'}"
    result = CliRunner().invoke(app, ["dashboard", "--database-url", url, "--port", "0"])
    assert result.exit_code == 2
    [line] = result.output.splitlines()
    assert line.startswith(f"no database at {tmp_path / 'none.db'}")


def test_a_port_in_use_is_one_line_and_exit_2(tmp_path: Path) -> None:
    database = tmp_path / "hedgebot.db"
    upgrade = CliRunner().invoke(
        app, ["db", "upgrade", "--database-url", f"sqlite+aiosqlite:///{database}"]
    )
    assert upgrade.exit_code == 0, upgrade.output
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(
            app,
            ["dashboard", "--database-url", f"sqlite+aiosqlite:///{database}", "--port", str(port)],
        )
    assert result.exit_code == 2
    [line] = result.output.splitlines()
    assert line.startswith(f"dashboard: cannot listen on 127.0.0.1:{port}")
    assert "--port" in line


def test_the_wheel_carries_every_file_the_dashboard_serves() -> None:
    root = Path(__file__).resolve().parents[2]
    pyproject = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    globs = pyproject["tool"]["setuptools"]["package-data"]["bot.service"]
    folder = root / "bot" / "service" / "dashboard_assets"
    assert {p.name for p in folder.iterdir()} == set(ASSETS)
    for name in ASSETS:
        assert any(fnmatch(f"dashboard_assets/{name}", glob) for glob in globs), name
