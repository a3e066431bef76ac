"""Ctrl-C without a traceback: the command line's handling of SIGINT.

A KeyboardInterrupt raised inside a C extension's callback (pydantic-core building a
schema while a module is imported or the config is read) is printed by Python as
"Exception ignored ... Traceback" and cannot be caught. :func:`deferred` holds a Ctrl-C
over such a stretch and raises it as one KeyboardInterrupt right after it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

INTERRUPTED = 130  # 128 + SIGINT, as a shell reports it


@contextmanager
def deferred() -> Iterator[None]:
    """Hold Ctrl-C inside the block; raise KeyboardInterrupt after it if one came."""
    received: list[int] = []

    def _hold(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)

    try:
        previous = signal.signal(signal.SIGINT, _hold)
    except ValueError:  # not the main thread: signals are not ours to handle
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt


def exit_interrupted() -> None:
    """End the command after a Ctrl-C: one line, exit code 130."""
    # A second Ctrl-C while the line is written must not print a traceback either.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(OSError):
        sys.stderr.flush()
        os.write(sys.stderr.fileno(), b"interrupted\n")
    raise SystemExit(INTERRUPTED)
