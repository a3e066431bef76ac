"""Import rules of the store's layer, read from the source (no import is executed).

The store knows no exchange and no service; SQLAlchemy stays behind it; the domain
(the paper account's state and port included) stays pure.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

BOT = Path(__file__).resolve().parents[2] / "bot"


def imported_modules(path: Path) -> Iterator[str]:
    """Every module ``path`` imports, at any depth (function-level imports included)."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def modules_under(folder: str) -> list[Path]:
    return sorted((BOT / folder).rglob("*.py"))


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(f"{package}.")


@pytest.mark.parametrize("path", modules_under("store"), ids=lambda p: p.name)
def test_the_store_imports_neither_the_exchange_layer_nor_the_service(path: Path) -> None:
    wrong = [
        m for m in imported_modules(path) if within(m, "bot.exchange") or within(m, "bot.service")
    ]
    assert wrong == [], f"{path.relative_to(BOT.parent)} imports {wrong}"


def test_only_the_store_imports_sqlalchemy_and_none_outside_it_its_exceptions() -> None:
    outside = [p for p in sorted(BOT.rglob("*.py")) if BOT / "store" not in p.parents]
    assert outside
    found: dict[str, list[str]] = {}
    for path in outside:
        names = [m for m in imported_modules(path) if within(m, "sqlalchemy")]
        # The config's URL rules parse database URLs (make_url): no session, no errors.
        allowed = {"sqlalchemy.engine"} if path == BOT / "config_view.py" else set()
        wrong = [m for m in names if m not in allowed]
        if wrong:
            found[str(path.relative_to(BOT.parent))] = wrong
    assert found == {}


@pytest.mark.parametrize("path", modules_under("domain"), ids=lambda p: p.name)
def test_the_domain_does_no_io(path: Path) -> None:
    impure = (
        "asyncio",
        "sqlalchemy",
        "ccxt",
        "aiohttp",
        "bot.store",
        "bot.exchange",
        "bot.service",
    )
    wrong = [m for m in imported_modules(path) if any(within(m, p) for p in impure)]
    assert wrong == [], f"{path.relative_to(BOT.parent)} imports {wrong}"


def test_stored_json_keeps_at_most_twelve_decimal_places() -> None:
    from decimal import Decimal

    from bot.store.database import jsonable

    data = {"liquidation_price": Decimal("4473.089839046199701937406855"), "qty": Decimal("0.333")}
    assert jsonable(data) == {"liquidation_price": "4473.0898390462", "qty": "0.333"}
    assert jsonable([Decimal("1E-20"), Decimal("2.50")]) == ["0", "2.50"]
