"""ccxt's packages with their ``__init__`` deferred (bot/exchange/ccxt_lazy.py): a daemon's
client imports its own exchange's module, not ccxt's 200 others, and every name ccxt
defines still resolves to the same object. Each check runs in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

BUILD = """
from bot.config import AccountConfig
from bot.exchange.ccxt_client import build_client
client = build_client(AccountConfig(exchange="bybit", api_key="k", secret="s"))
"""


def run(code: str) -> Any:
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def test_a_bybit_client_imports_bybit_s_module_alone() -> None:
    loaded = run(
        BUILD
        + "import json, sys\n"
        + "print(json.dumps({'class': type(client).__module__, 'modules': sorted(sys.modules)}))"
    )
    assert loaded["class"] == "ccxt.async_support.bybit"
    modules = loaded["modules"]
    kept = ("base", "abstract", "async_support", "static_dependencies")
    asynchronous = [m for m in modules if m.startswith("ccxt.async_support.") and m.count(".") == 2]
    assert [m for m in asynchronous if not m.endswith(".base")] == ["ccxt.async_support.bybit"]
    sync = [m for m in modules if m.startswith("ccxt.") and m.count(".") == 1]
    assert [m for m in sync if m.split(".")[1] not in kept] == []  # no sync exchange


def test_every_name_ccxt_defines_still_resolves_after_the_deferral() -> None:
    found = run(
        BUILD
        + """
import json
from importlib.metadata import version
import ccxt
import ccxt.async_support as ccxt_async
from ccxt.base import errors
print(json.dumps({
    "version": ccxt.__version__ == version("ccxt") == ccxt_async.__version__,
    "errors": ccxt.BaseError is errors.BaseError is ccxt_async.BaseError,
    "exchange": ccxt_async.Exchange.__module__ == "ccxt.async_support.base.exchange",
    "sync": ccxt.binance.__module__ == "ccxt.binance",
    "async": ccxt_async.okx.__module__ == "ccxt.async_support.okx",
    "bybit": ccxt_async.bybit is type(client),
    "list": "bybit" in ccxt_async.exchanges and "okx" in ccxt.exchanges,
}))
"""
    )
    assert found == dict.fromkeys(found, True)
    assert len(found) == 7


def test_an_unknown_exchange_id_is_refused_in_one_line() -> None:
    refused = run(
        """
import json
from bot.config import AccountConfig
from bot.exchange.ccxt_client import build_client
from bot.exchange.gateway import FatalError
try:
    build_client(AccountConfig(exchange="nosuchvenue", api_key="k", secret="s"))
except FatalError as exc:
    print(json.dumps(str(exc)))
"""
    )
    assert refused == "exchange 'nosuchvenue' is not a ccxt exchange id"
