"""Pauses set with ``hedgebot pause`` (or by the daemon after repeated failures). Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

ALL_PAIRS = "*"


@dataclass(frozen=True, slots=True)
class PairControl:
    """A stored pause: of one pair, or of every pair (``pair == "*"``)."""

    pair: str
    paused: bool
    reason: str
    source: str  # user | auto
    updated_at: datetime


def active_pause(controls: Mapping[str, PairControl], pair: str) -> PairControl | None:
    """The pause that holds ``pair``: its own, else the pause of every pair; None if none."""
    for key in (pair, ALL_PAIRS):
        control = controls.get(key)
        if control is not None and control.paused:
            return control
    return None


def pause_text(control: PairControl, pair: str) -> str:
    """Why ``pair`` is paused, in one line, from the pause that holds it."""
    who = "by the user" if control.source == "user" else "automatically"
    scope = "" if control.pair == pair else " (every pair)"
    return f"paused {who}{scope}: {control.reason}"


def paused_reason(controls: Mapping[str, PairControl], pair: str) -> str | None:
    """Why ``pair`` is paused (its own pause, else the pause of every pair); None if not."""
    control = active_pause(controls, pair)
    return None if control is None else pause_text(control, pair)
