"""The schema check without Alembic: the newest revision read from the migration scripts,
and Alembic asked only when the database is not at it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.store.migrate import (
    SchemaState,
    alembic_config,
    head_revision,
    migrations_dir,
    schema_state,
    script_head,
)
from tests.conftest import ROOT

EXTRA = """from alembic import op

revision{annotation} = "{revision}"
down_revision{annotation} = {down}
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("SELECT 1")
"""


def alembic_head() -> str | None:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def copied_migrations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    copy = tmp_path / "migrations"
    shutil.copytree(ROOT / "migrations", copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setenv("HEDGEBOT_MIGRATIONS_DIR", str(copy))
    return copy


def add_revision(migrations: Path, revision: str, down: str | None, annotation: str = "") -> None:
    down_text = "None" if down is None else f'"{down}"'
    (migrations / "versions" / f"{revision}_extra.py").write_text(
        EXTRA.format(revision=revision, down=down_text, annotation=annotation)
    )


def test_the_scripts_head_is_alembics() -> None:
    assert migrations_dir() == ROOT / "migrations"
    assert script_head() is not None
    assert script_head() == alembic_head() == head_revision()


def test_a_new_revision_moves_the_head_with_or_without_annotations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    migrations = copied_migrations(tmp_path, monkeypatch)
    head = alembic_head()
    add_revision(migrations, "9998", head)
    add_revision(migrations, "9999", "9998", annotation=": str")
    assert script_head() == alembic_head() == "9999"


def test_two_heads_are_left_to_alembic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    migrations = copied_migrations(tmp_path, monkeypatch)
    head = alembic_head()
    add_revision(migrations, "aaaa", head)
    add_revision(migrations, "bbbb", head)
    assert script_head() is None


async def test_an_older_revision_is_outdated_and_a_foreign_one_unknown(
    engine: AsyncEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert await schema_state(engine) is SchemaState.CURRENT
    migrations = copied_migrations(tmp_path, monkeypatch)
    add_revision(migrations, "9999", alembic_head())
    assert await schema_state(engine) is SchemaState.OUTDATED
    async with engine.begin() as connection:
        await connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    assert await schema_state(engine) is SchemaState.CURRENT
    monkeypatch.delenv("HEDGEBOT_MIGRATIONS_DIR")
    assert await schema_state(engine) is SchemaState.UNKNOWN
