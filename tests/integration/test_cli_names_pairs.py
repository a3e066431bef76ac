"""Commands that name a pair accept only a pair the daemon knows, and a pause or resume
says which pairs it changed: an emergency stop that silently does nothing is a lie."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from bot.cli import app
from tests.e2e.test_cli import write_config


def invoke(cli: CliRunner, *args: str, env: dict[str, str] | None = None) -> Result:
    return cli.invoke(app, list(args), env=env)


@pytest.fixture
def config(cli: CliRunner, tmp_path: Path) -> Path:
    path = write_config(tmp_path)
    assert invoke(cli, "db", "upgrade", "-c", str(path)).exit_code == 0
    return path


def test_pausing_a_mistyped_pair_exits_2_naming_the_nearest_and_pauses_nothing(
    cli: CliRunner, config: Path
) -> None:
    result = invoke(cli, "pause", "btc", "-c", str(config), "--reason", "emergency")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "unknown pair 'btc' (did you mean BTC?); configured pairs: BTC, ETH"
    )
    assert "paused" not in result.stdout
    events = invoke(cli, "audit", "-c", str(config), "--kind", "pair.", "--format", "json")
    assert events.exit_code == 0
    assert events.stdout.strip() in ("", "[]")


def test_without_a_config_the_pairs_come_from_the_database(
    cli: CliRunner, config: Path, tmp_path: Path
) -> None:
    assert invoke(cli, "pause", "ETH", "-c", str(config)).exit_code == 0
    config.rename(tmp_path / "elsewhere.toml")  # no config is found now
    url = f"sqlite+aiosqlite:///{tmp_path / 'hb.db'}"
    result = invoke(cli, "resume", "eht", "--database-url", url)
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "unknown pair 'eht' (did you mean ETH?); pairs in the database: ETH"
    )
    assert invoke(cli, "resume", "ETH", "--database-url", url).stdout.strip() == "ETH resumed"


def test_a_pause_that_changes_nothing_is_not_a_success(cli: CliRunner, config: Path) -> None:
    assert invoke(cli, "pause", "BTC", "-c", str(config)).stdout.strip() == "BTC paused"
    again = invoke(cli, "pause", "BTC", "-c", str(config))
    assert again.exit_code == 1
    assert again.stderr.strip() == (
        "no pair was paused: BTC was already paused by the user: paused by hand"
    )
    every = invoke(cli, "pause", "-c", str(config), "--reason", "maintenance")
    assert every.exit_code == 0
    assert every.stdout.strip() == "every pair paused: ETH"
    resume_one = invoke(cli, "resume", "BTC", "-c", str(config))
    assert resume_one.exit_code == 1
    assert resume_one.stderr.strip() == (
        "no pair was resumed: BTC is still paused by the user (every pair): maintenance; "
        "`hedgebot resume` resumes every pair"
    )
    assert invoke(cli, "resume", "-c", str(config)).stdout.strip() == "every pair resumed: BTC, ETH"
    nothing = invoke(cli, "resume", "-c", str(config))
    assert nothing.exit_code == 1
    assert nothing.stderr.strip() == "no pair was resumed: none was paused"


@pytest.mark.parametrize("command", [["audit"], ["report"], ["audit", "export", "-o", "x.jsonl"]])
def test_reading_commands_refuse_an_unknown_pair(
    cli: CliRunner, config: Path, command: list[str]
) -> None:
    result = invoke(cli, *command, "-c", str(config), "--pair", "DOGE")
    assert result.exit_code == 2
    assert result.stderr.strip() == "unknown pair 'DOGE'; configured pairs: BTC, ETH"


def test_set_target_finds_the_config_in_the_working_directory(
    cli: CliRunner, config: Path, tmp_path: Path
) -> None:
    assert config == tmp_path / "hedgebot.toml"
    done = invoke(cli, "set-target", "ETH", "0.8")
    assert done.exit_code == 0, done.stderr
    assert (
        done.stdout.strip()
        == "ETH: target set to ratio 0.8; the daemon applies it on its next cycle"
    )
    config.rename(tmp_path / "elsewhere.toml")
    missing = invoke(cli, "set-target", "ETH", "0.8")
    assert missing.exit_code == 2
    assert missing.stderr.strip().startswith(
        "no config file: pass --config FILE, set HEDGEBOT_CONFIG"
    )
    named = invoke(cli, "set-target", "ETH", "0.7", env={"HEDGEBOT_CONFIG": "elsewhere.toml"})
    assert named.exit_code == 0, named.stderr


def test_a_mistyped_environment_variable_stops_a_command_in_one_line(
    cli: CliRunner, config: Path
) -> None:
    result = invoke(cli, "check-config", "-c", str(config), env={"HEDGEBOT_POLL_INTERVALL_S": "5"})
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "config error: environment variable HEDGEBOT_POLL_INTERVALL_S sets nothing "
        "(did you mean HEDGEBOT_POLL_INTERVAL_S?); fix its name or unset it"
    )
    status = invoke(cli, "status", env={"HEDGEBOT_DATABSE_URL": "x"})
    assert status.exit_code == 2
    assert "HEDGEBOT_DATABSE_URL sets nothing (did you mean HEDGEBOT_DATABASE_URL?)" in (
        status.stderr
    )


def test_the_emergency_stop_works_on_a_config_whose_values_are_wrong(
    cli: CliRunner, config: Path
) -> None:
    # An edit gone wrong (a band of 5 is refused by check-config and run) must not keep
    # the operator from pausing, nor from reading the status and the audit.
    text = config.read_text()
    config.write_text(text.replace('band = "0.02"', 'band = "5"', 1))
    assert invoke(cli, "check-config", "-c", str(config)).exit_code == 2
    paused = invoke(cli, "pause", "BTC", "-c", str(config), "--reason", "emergency")
    assert paused.exit_code == 0, paused.stderr
    assert paused.stdout.strip() == "BTC paused"
    assert invoke(cli, "status", "-c", str(config)).exit_code == 0
    events = invoke(cli, "audit", "-c", str(config), "--kind", "pair.paused", "--format", "json")
    assert "emergency" in events.stdout
