"""`hedgebot run` on an exchange checks its markets before it writes anything: a symbol the
venue does not list refuses the start in one line and leaves no database behind."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_cli import hedgebot
from tests.e2e.test_crash_safety import CONFIG, EmulatorProcess, start_emulator

pytestmark = pytest.mark.slow  # starts hedgebot and the emulator as subprocesses


@pytest.fixture
def binance(tmp_path: Path) -> Iterator[EmulatorProcess]:
    emulator = start_emulator("binance", tmp_path / "emulator.log")
    try:
        yield emulator
    finally:
        emulator.close()


def write_config(tmp_path: Path, emulator: EmulatorProcess, perp: str) -> Path:
    text = CONFIG.format(
        db=tmp_path / "hb.db",
        poll=0.05,
        account=emulator.account(),
        perp=perp,
        target="1",
        band="0.05",
    )
    path = tmp_path / "hedgebot.toml"
    path.write_text(text)
    return path


def test_a_symbol_the_venue_does_not_list_refuses_the_start_before_writing_a_database(
    tmp_path: Path, binance: EmulatorProcess
) -> None:
    config = write_config(tmp_path, binance, "BTC/USDC:USDC")
    result = hedgebot("run", "-c", str(config), "--max-cycles", "1", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "account main lists no market BTC/USDC:USDC (pair BTC); check the pair's symbols "
        "in the config (ccxt's unified form, e.g. BTC/USDT:USDT for a USDT perpetual)"
    ]
    assert not (tmp_path / "hb.db").exists()


def test_a_listed_symbol_starts_and_the_markets_are_loaded_once(
    tmp_path: Path, binance: EmulatorProcess
) -> None:
    config = write_config(tmp_path, binance, "BTC/USDT:USDT")
    result = hedgebot("run", "-c", str(config), "--max-cycles", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "hb.db").exists()
    loads = [r for r in binance.new_requests() if r["path"] == "/fapi/v1/exchangeInfo"]
    assert len(loads) == 1
