"""In paper mode a pair that would hold forever from its first cycle is said at start, in
one line, before anything is written: its coin is not held, its margin asset is not held,
or the replay feed cannot price it."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app

PAIRS = """
database_url = "sqlite+aiosqlite:///hb.db"
[[pairs]]
name = "DOGE"
spot_symbol = "DOGE/USDT"
perp_symbol = "DOGE/USDT:USDT"
[[pairs]]
name = "XRP"
spot_symbol = "XRP/USDC"
perp_symbol = "XRP/USDC:USDC"
[paper]
balances = { USDT = 20000, XRP = 100 }
"""


@pytest.mark.parametrize("command", [["check-config"], ["plan"], ["run", "--max-cycles", "1"]])
def test_a_paper_pair_that_would_hold_forever_is_refused_at_start(
    cli: CliRunner, tmp_path: Path, command: list[str]
) -> None:
    (tmp_path / "hedgebot.toml").write_text(PAIRS)
    result = cli.invoke(app, command)
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "pair DOGE: the paper account holds no DOGE, so there is nothing to hedge; "
        "add DOGE = <amount> to [paper] balances; "
        "pair XRP: the paper account holds no USDC to margin XRP/USDC:USDC; "
        "add USDC = <amount> to [paper] balances"
    )
    assert not (tmp_path / "hb.db").exists()


def test_a_paper_pair_with_its_coin_and_margin_starts(cli: CliRunner, tmp_path: Path) -> None:
    fixed = PAIRS.replace(
        "USDT = 20000, XRP = 100", "USDT = 20000, USDC = 5000, XRP = 100, DOGE = 1"
    )
    (tmp_path / "hedgebot.toml").write_text(fixed)
    result = cli.invoke(app, ["check-config"])
    assert result.exit_code == 0, result.stderr
