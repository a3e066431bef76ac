"""Small rooms: no class in bot/ over 400 lines, no function over 60 (a sign to split)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

BOT = Path(__file__).resolve().parents[2] / "bot"
MAX_CLASS_LINES = 400
MAX_FUNCTION_LINES = 60


def oversized(source: str) -> list[str]:
    """The classes and functions of ``source`` past their limit, as 'name: N lines'."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef):
            limit = MAX_CLASS_LINES
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            limit = MAX_FUNCTION_LINES
        else:
            continue
        lines = (node.end_lineno or node.lineno) - node.lineno + 1
        if lines > limit:
            found.append(f"{node.name}: {lines} lines (limit {limit})")
    return found


@pytest.mark.parametrize("path", sorted(BOT.rglob("*.py")), ids=lambda p: str(p.relative_to(BOT)))
def test_no_class_or_function_in_bot_is_oversized(path: Path) -> None:
    assert oversized(path.read_text(encoding="utf-8")) == []


def test_the_size_check_finds_a_long_function() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    assert oversized(f"def long():\n{body}\n") == ["long: 61 lines (limit 60)"]
