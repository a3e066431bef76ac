"""Words in the messages people read."""

from __future__ import annotations

from datetime import datetime


def plural(count: int, noun: str) -> str:
    """ "1 event", "2 events", "0 pairs"."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def utc_time(at: datetime) -> str:
    """ "2026-12-01 22:15:00 UTC": a stored time (every one is UTC) as people read it."""
    return at.strftime("%Y-%m-%d %H:%M:%S UTC")
