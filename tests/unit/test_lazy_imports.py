"""What the installed command loads: heavy libraries only on the paths that use them.

``import ccxt.async_support`` costs about 0.6 s and 80 MB, matplotlib a large part of a
second; ``hedgebot --help``, ``status``, ``audit`` and the paper daemon on simulated
prices use neither. Each check runs in a fresh interpreter, since this process has
imported both.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

HEAVY = ("ccxt", "matplotlib")


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


def test_the_paper_daemon_wiring_loads_neither_ccxt_nor_matplotlib() -> None:
    # What `hedgebot run` imports for a daemon; ccxt comes only with a ccxt gateway or
    # the live price feed, built inside bot.service.venues.
    code = (
        "import bot.cli, bot.service.daemon, bot.service.runtime, bot.service.venues\n"
        "import bot.exchange.paper, bot.domain.paper_account, bot.backtest.command"
    )
    assert loaded_after(code) == dict.fromkeys(HEAVY, False)


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
