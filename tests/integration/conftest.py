"""Fixtures of the integration tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """The ``hedgebot`` command line in process, run in ``tmp_path`` with no
    ``HEDGEBOT_*`` variable of the caller's environment."""
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("HEDGEBOT_")]:
        monkeypatch.delenv(name)
    return CliRunner()
