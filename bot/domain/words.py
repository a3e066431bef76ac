"""Words in the messages people read."""

from __future__ import annotations


def plural(count: int, noun: str) -> str:
    """ "1 event", "2 events", "0 pairs"."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
