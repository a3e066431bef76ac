"""How the end-to-end tests start hedgebot: the installed console script when there is one."""

from __future__ import annotations

import sys
from pathlib import Path

HEDGEBOT = Path(sys.executable).parent / "hedgebot"


def command() -> list[str]:
    """argv prefix that runs the ``hedgebot`` command."""
    return [str(HEDGEBOT)] if HEDGEBOT.exists() else [sys.executable, "-m", "bot"]
