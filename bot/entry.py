"""The ``hedgebot`` console script: Ctrl-C at any moment, imports included, ends the
command with one line and exit code 130, never a traceback.

This module imports nothing heavy itself, so the handler is in place before the command
line (typer, pydantic, the store) is imported.
"""

from __future__ import annotations

from bot.interrupts import deferred, exit_interrupted


def main() -> None:
    """Run the ``hedgebot`` command line; Ctrl-C stops it quietly."""
    try:
        with deferred():
            from bot.cli import app
        app()
    except KeyboardInterrupt:
        exit_interrupted()
