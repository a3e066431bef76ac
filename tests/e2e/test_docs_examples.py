"""The README's and the docs' command examples run, offline, as a reader would type them.

Each document's examples run in order in a directory of their own: `examples/` of this
checkout, `.venv/bin` (this interpreter's scripts) and a database from a short paper run,
so that `status`, `audit` and `report` have something to read. Examples marked
`<!-- not-run: why -->` in the Markdown (network, root, Docker, minutes) are not picked
(tests/support/doc_examples.py says what is).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.support.doc_examples import Example, examples

pytestmark = pytest.mark.slow  # starts hedgebot as a subprocess

DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SCRIPTS = Path(sys.executable).parent


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEDGEBOT_")}
    env["PATH"] = f"{SCRIPTS}{os.pathsep}{env.get('PATH', '')}"
    # A free port for /metrics (other daemons may hold 8780), and cycles 0.2 s apart
    # rather than the example's 2 s: the same daemon, only less waiting.
    env["HEDGEBOT_HTTP__PORT"] = "0"
    env["HEDGEBOT_POLL_INTERVAL_S"] = "0.2"
    env["COLUMNS"] = "120"
    return env


def _run(example: Example, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", example.command],
        cwd=cwd,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory as after `make demo` ran a little: examples/, .venv/bin, hedgebot.db."""
    base = tmp_path_factory.mktemp("docs-examples")
    (base / "examples").symlink_to(ROOT / "examples", target_is_directory=True)
    (base / ".venv").mkdir()
    (base / ".venv" / "bin").symlink_to(SCRIPTS, target_is_directory=True)
    seed = Example("fixture", 0, "hedgebot run -c examples/paper.toml --max-cycles 3", 0)
    result = _run(seed, base)
    assert result.returncode == 0, result.stderr
    assert (base / "hedgebot.db").exists()
    return base


def test_the_documents_have_examples_to_run() -> None:
    found = {path.name: examples(path) for path in DOCUMENTS}
    # The newcomer's path in the README, and the reference pages' own examples.
    for name in ("README.md", "commands.md", "audit.md", "backtest.md", "report.md"):
        assert found[name], f"{name} has no command example that runs"
    assert any(e.exit_code != 0 for e in found["commands.md"])


@pytest.mark.parametrize(
    "document", [p for p in DOCUMENTS if examples(p)], ids=lambda p: Path(p).name
)
def test_examples_run_with_the_documented_exit_code(
    document: Path, prepared: Path, tmp_path: Path
) -> None:
    workdir = tmp_path / "work"
    shutil.copytree(prepared, workdir, symlinks=True)
    for example in examples(document):
        result = _run(example, workdir)
        assert result.returncode == example.exit_code, (
            f"{example} exited {result.returncode}, the document says {example.exit_code}\n"
            f"stdout:\n{result.stdout[-2000:]}\nstderr:\n{result.stderr[-2000:]}"
        )
