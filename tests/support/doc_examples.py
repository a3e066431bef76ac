"""The command examples of the README and docs/*.md, as a test runs them.

What is picked, in order of appearance:

- in a ```console fence, each line that starts with ``$ `` (the rest of the fence is the
  output, shown for the reader and not compared: it holds times and ids);
- in a ```sh fence, each line that is not blank or a comment.

A line ending in a backslash continues on the next. A trailing ``# exit N`` says the
command is expected to exit with N (0 otherwise). A fence right after a line
``<!-- not-run: why -->`` is not picked: examples that need a network, root, systemd,
Docker or a terminal, or that run for minutes. Every other fence (```text, ```toml, …)
is never run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_FENCE = re.compile(r"^```(\w*)\s*$")
_NOT_RUN = re.compile(r"^<!--\s*not-run:\s*\S.*-->\s*$")
_EXIT = re.compile(r"\s+#\s*exit\s+(\d+)\s*$")
RUN_FENCES = ("console", "sh")


@dataclass(frozen=True)
class Example:
    """One command of a document: where it is, what to run, the exit code it documents."""

    source: str
    line: int
    command: str
    exit_code: int

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.command}"


@dataclass(frozen=True)
class _Fence:
    kind: str
    first_line: int
    lines: tuple[str, ...]
    not_run: bool


def _fences(text: str) -> list[_Fence]:
    fences: list[_Fence] = []
    lines = text.splitlines()
    index = 0
    previous = ""
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None:
            if lines[index].strip():
                previous = lines[index].strip()
            index += 1
            continue
        body_start = index + 1
        end = body_start
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        fences.append(
            _Fence(
                kind=opening.group(1),
                first_line=body_start + 1,
                lines=tuple(lines[body_start:end]),
                not_run=bool(_NOT_RUN.match(previous)),
            )
        )
        previous = ""
        index = end + 1
    return fences


def _commands(fence: _Fence) -> list[tuple[int, str]]:
    """(line number, command) of each command in the fence, continuations joined."""
    found: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for offset, raw in enumerate(fence.lines):
        line = raw.rstrip()
        if not pending:
            if fence.kind == "console":
                if not line.startswith("$ "):
                    continue
                line = line[2:]
            elif not line.strip() or line.lstrip().startswith("#"):
                continue
            start = fence.first_line + offset
        if line.endswith("\\"):
            pending.append(line[:-1].rstrip())
            continue
        pending.append(line.strip())
        found.append((start, " ".join(part.strip() for part in pending)))
        pending = []
    if pending:
        raise ValueError(f"line {start}: a command ends in a backslash with nothing after it")
    return found


def examples(path: Path, source: str | None = None) -> list[Example]:
    """Every command example of the Markdown file ``path`` that a test runs."""
    name = source or path.name
    result: list[Example] = []
    for fence in _fences(path.read_text(encoding="utf-8")):
        if fence.kind not in RUN_FENCES or fence.not_run:
            continue
        for line, command in _commands(fence):
            expected = _EXIT.search(command)
            if expected is not None:
                command = command[: expected.start()]
            result.append(Example(name, line, command, int(expected.group(1)) if expected else 0))
    return result
