"""What the installed command loads: heavy libraries only on the paths that use them.

``import ccxt.async_support`` costs about 0.6 s and 80 MB, matplotlib a large part of a
second, Alembic and the migration scripts 0.2 s; ``hedgebot --help``, ``status``,
``audit`` and ``report`` use none of them, nor the daemon's wiring or the exchange code,
and the paper daemon on simulated prices uses neither ccxt nor matplotlib. Each check
runs in a fresh interpreter, since this process has imported them all.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bot.clock import FakeClock
from bot.domain.models import Side
from bot.store.migrate import upgrade
from bot.store.repository import Repository, create_engine
from tests.support.migrations import migrate_one_by_one
from tests.support.report_records import PERP, SPOT, T0, at, observe, trade

HEAVY = ("ccxt", "matplotlib")
# What a command that reads the database has no use for.
NOT_FOR_READING = (
    *HEAVY,
    "alembic",
    "bot.exchange",
    "bot.service.wiring",
    "bot.service.daemon",
    "bot.backtest",
    "bot.logging",
    "bot.cli.run",
    "bot.cli.backtest",
    "sqlalchemy.dialects.postgresql",  # on SQLite
    # The settings: a read takes the URL and the pairs' names from the config without
    # building them (bot/config_view.py). (pydantic itself comes with typer.)
    "pydantic_settings",
    "bot.config",
)
READ_COMMANDS = [["status"], ["audit", "-n", "50"], ["report"], ["report", "--pair", "BTC"]]


def loaded_after(code: str, modules: tuple[str, ...] = HEAVY) -> dict[str, bool]:
    """Run ``code`` in a fresh interpreter; which of ``modules`` it left in ``sys.modules``."""
    report = f"import json, sys; print(json.dumps({{m: m in sys.modules for m in {modules!r}}}))"
    result = subprocess.run(
        [sys.executable, "-c", f"{code}\n{report}"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout.splitlines()[-1])
    assert isinstance(loaded, dict)
    return loaded


def test_the_cli_loads_neither_ccxt_nor_matplotlib() -> None:
    assert loaded_after("import bot.cli") == dict.fromkeys(HEAVY, False)


def test_help_loads_neither_ccxt_nor_matplotlib_nor_alembic() -> None:
    # Alembic comes with the first schema check (status, audit, run), not with --help.
    code = (
        "import contextlib, io, sys\n"
        "from bot.entry import main\n"
        "sys.argv = ['hedgebot', '--help']\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    main()"
    )
    modules = (*HEAVY, "alembic")
    assert loaded_after(code, modules) == dict.fromkeys(modules, False)


# Two decisions of BTC, each with a filled order: a perp sell, then a spot buy.
TRADES = [
    ("01A", PERP, Side.SELL, "1", "60000", "0"),
    ("01B", SPOT, Side.BUY, "0.1", "61000", "-1"),
]


async def _fill(url: str) -> None:
    engine = create_engine(url)
    try:
        await upgrade(engine, url)
        repository = Repository(engine, FakeClock(T0))
        for minute, (decision, symbol, side, amount, price, perp) in enumerate(TRADES):
            when = at(minute)
            await observe(repository, decision, when, spot="1", perp=perp, price=price)
            await trade(
                repository,
                decision,
                when,
                symbol=symbol,
                side=side,
                amount=amount,
                price=price,
                fee="0.5",
            )
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A database with decisions, orders, fills and audit events of one pair."""
    path: Path = tmp_path_factory.mktemp("reads") / "hedgebot.db"
    url = f"sqlite+aiosqlite:///{path}"
    asyncio.run(_fill(url))
    return url


def command_code(argv: list[str]) -> str:
    """Python that runs ``hedgebot ARGV`` as the console script does; fails on an error."""
    return (
        "import contextlib, io, sys\n"
        "from bot.entry import main\n"
        f"sys.argv = {['hedgebot', *argv]!r}\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        "    try:\n"
        "        main()\n"
        "    except SystemExit as exit:\n"
        "        assert not exit.code, exit.code\n"
        "assert out.getvalue().strip(), 'no output'"
    )


@pytest.mark.parametrize("argv", READ_COMMANDS, ids=" ".join)
def test_the_read_commands_load_only_the_store_and_the_tables(
    argv: list[str], database_url: str
) -> None:
    code = command_code([*argv, "--database-url", database_url])
    loaded = loaded_after(code, NOT_FOR_READING)
    assert [name for name, yes in loaded.items() if yes] == []


@pytest.mark.parametrize("argv", [*READ_COMMANDS, ["audit", "--pair", "BTC"]], ids=" ".join)
def test_the_read_commands_with_a_config_build_no_settings(
    argv: list[str], database_url: str, tmp_path: Path
) -> None:
    config = tmp_path / "hedgebot.toml"
    config.write_text(
        f'database_url = "{database_url}"\n[[pairs]]\nname = "BTC"\n'
        'spot_symbol = "BTC/USDT"\nperp_symbol = "BTC/USDT:USDT"\n'
    )
    loaded = loaded_after(command_code([*argv, "-c", str(config)]), NOT_FOR_READING)
    assert [name for name, yes in loaded.items() if yes] == []


async def _migrated_to(url: str, revision: str) -> None:
    engine = create_engine(url)
    await migrate_one_by_one(engine, url, revision)
    await engine.dispose()


def test_the_read_probe_sees_a_command_that_loads_them(tmp_path: Path) -> None:
    # Migrating a database of an older revision takes Alembic: the probe reports it.
    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    asyncio.run(_migrated_to(url, "0009"))
    loaded = loaded_after(command_code(["db", "upgrade", "--database-url", url]), ("alembic",))
    assert loaded == {"alembic": True}


def test_a_new_databases_schema_is_made_without_alembic(tmp_path: Path) -> None:
    # What `hedgebot run` does first on a new database (prepare_database): the schema in
    # one step from the tables (tests/integration/test_schema_create.py), no Alembic.
    url = f"sqlite+aiosqlite:///{tmp_path / 'new.db'}"
    loaded = loaded_after(command_code(["db", "upgrade", "--database-url", url]), ("alembic",))
    assert loaded == {"alembic": False}


def test_the_paper_daemon_wiring_loads_neither_ccxt_nor_matplotlib() -> None:
    # What `hedgebot run` imports for a daemon; ccxt comes only with a ccxt gateway or
    # the live price feed, built inside bot.service.venues.
    code = (
        "import bot.cli, bot.service.daemon, bot.service.runtime, bot.service.venues\n"
        "import bot.exchange.paper, bot.domain.paper_account, bot.backtest.command"
    )
    assert loaded_after(code) == dict.fromkeys(HEAVY, False)


def test_the_exchange_daemon_wiring_loads_no_paper_venue() -> None:
    # `hedgebot run` on testnet or live: what the command and its wiring import before
    # the accounts' ccxt gateways are built. The paper venue and its price feeds come
    # with paper mode (bot.service.venues.open_paper_venue).
    modules = ("bot.exchange.paper", "bot.exchange.feeds")
    code = "import bot.cli.run, bot.service.wiring, bot.service.venues"
    assert loaded_after(code, modules) == dict.fromkeys(modules, False)


def test_the_paper_venue_still_loads_in_paper_mode() -> None:
    # The probe sees the paper venue once a paper daemon's gateways are opened.
    code = (
        "import asyncio\n"
        "from bot.clock import FakeClock\n"
        "from bot.config import Settings\n"
        "from bot.domain.paper_account import InMemoryPaperAccountStore\n"
        "from bot.service.venues import open_gateways\n"
        "settings = Settings.model_validate({'mode': 'paper', 'pairs': [{'name': 'BTC', "
        "'spot_symbol': 'BTC/USDT', 'perp_symbol': 'BTC/USDT:USDT'}]})\n"
        "asyncio.run(open_gateways(settings, InMemoryPaperAccountStore(), FakeClock()))"
    )
    modules = ("bot.exchange.paper", "bot.exchange.feeds")
    assert loaded_after(code, modules) == dict.fromkeys(modules, True)


@pytest.mark.parametrize(
    ("module", "library"),
    [("bot.exchange.ccxt_gateway", "ccxt"), ("bot.backtest.report", "matplotlib")],
)
def test_the_modules_that_use_them_still_load_them(module: str, library: str) -> None:
    # The probe sees an import when there is one.
    assert loaded_after(f"import {module}")[library]


def test_the_emulator_is_not_in_the_bot_package() -> None:
    assert importlib.util.find_spec("bot.testing") is None
    assert importlib.util.find_spec("tests.support.emulators.binance") is not None
