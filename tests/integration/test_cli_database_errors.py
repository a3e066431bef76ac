"""A database a command cannot use is said in one line with what to do, exit 2: never a
traceback, whichever command meets it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from tests.conftest import POSTGRES_URL
from tests.e2e.test_cli import write_config

PG = POSTGRES_URL.rsplit("/", 1)[0]  # postgresql+asyncpg://postgres@127.0.0.1:5432


def one_line_exit_2(cli: CliRunner, *args: str) -> str:
    result = cli.invoke(app, list(args))
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    message = result.stderr.strip()
    assert "\n" not in message
    assert "Traceback" not in message
    return message


@pytest.mark.parametrize("command", [["db", "upgrade"], ["status"], ["audit"], ["pause"]])
@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgresql+asyncpg://postgres@127.0.0.1:1/test",
            "cannot connect to postgresql database test at 127.0.0.1:1: connection refused; "
            "is the server running?",
        ),
        (
            f"{PG}/no_such_database",
            "postgresql database no_such_database at 127.0.0.1:5432 does not exist; "
            "create it (e.g. `createdb NAME`) or fix database_url",
        ),
        (
            "postgresql+asyncpg://no_such_role@127.0.0.1:5432/test",
            'postgresql database test at 127.0.0.1:5432 refused the login (role "no_such_role" '
            "does not exist); fix the user in database_url",
        ),
        (
            "postgresql+psycopg2://me:secret@127.0.0.1/test",
            "--database-url: database_url uses the driver 'postgresql+psycopg2', which hedgebot "
            "does not ship; write postgresql+asyncpg://me:***@127.0.0.1/test",
        ),
    ],
)
def test_every_command_says_what_is_wrong_with_the_database_in_one_line(
    cli: CliRunner, command: list[str], url: str, expected: str
) -> None:
    assert one_line_exit_2(cli, *command, "--database-url", url) == expected


def test_a_postgresql_url_without_a_driver_gets_asyncpg(cli: CliRunner) -> None:
    # Without the driver SQLAlchemy would load psycopg, which is not installed: a traceback.
    plain = f"{PG}/no_such_database".replace("postgresql+asyncpg://", "postgresql://")
    assert one_line_exit_2(cli, "status", "--database-url", plain).startswith(
        "postgresql database no_such_database at 127.0.0.1:5432 does not exist"
    )


def test_a_config_with_another_driver_names_the_url_to_write_without_its_password(
    cli: CliRunner, tmp_path: Path
) -> None:
    config = write_config(tmp_path)
    config.write_text(
        config.read_text().replace(
            f"sqlite+aiosqlite:///{tmp_path / 'hb.db'}", "postgresql+psycopg2://me:secret@db/hb"
        )
    )
    message = one_line_exit_2(cli, "check-config", "-c", str(config))
    assert message == (
        "config error: database_url uses the driver 'postgresql+psycopg2', which hedgebot "
        "does not ship; write postgresql+asyncpg://me:***@db/hb"
    )


def test_a_sqlite_file_locked_by_another_writer_is_said_in_one_line(
    cli: CliRunner, tmp_path: Path
) -> None:
    config = write_config(tmp_path)
    assert cli.invoke(app, ["db", "upgrade", "-c", str(config)]).exit_code == 0
    holder = sqlite3.connect(tmp_path / "hb.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        message = one_line_exit_2(cli, "pause", "BTC", "-c", str(config))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert message == (
        f"sqlite database {tmp_path / 'hb.db'} is locked by another process (waited 10 s); "
        "try again when it ends"
    )
