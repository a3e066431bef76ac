"""Crash safety: `hedgebot run` killed with SIGKILL over and over, against each venue's
emulator in turn (Binance, Bybit, OKX: the default 90 kills shared out, 30 each).

Each emulator runs in its own process (``python -m tests.support.emulators.<venue>``);
the daemon is the real command in testnet mode through that venue's module, restarted
after every kill. The spot balance and the price
keep moving, so orders keep being needed. Each kill is timed one of several ways, all from
outside the daemon (no hooks in its code):

* ``random``: a random time after the start, the market moving meanwhile;
* ``on_decision``: when the daemon logs an order decision, plus a few ms;
* ``on_intent``: as soon as a new pending order row is readable in the database;
* ``held_answer``: while the emulator holds an executed order's answer (TIMEOUT fault);
* ``lost_answer``: around an order whose connection the emulator cuts after accepting it.

After each kill, the database and the emulator's logs say where the kill landed:

* ``intent_not_stored``: the order decision is stored, its intent is not;
* ``stored_not_sent``: the intent is stored (pending), the exchange never got the order;
* ``sent_no_answer``: the exchange has the order, the daemon had not read the answer;
* ``answered_not_stored``: the daemon had the answer (it was confirming the fill), the
  outcome was not stored yet;
* ``unknown_at_kill``: the answer was lost and the order stored as unknown.

Every order a kill left open must be settled by a later start (the executor's
``resolve_unresolved``), never sent again; the exchange and the database must agree.

``CRASH_TEST_KILLS`` (the total), ``CRASH_TEST_VENUES`` (``binance,bybit,okx``),
``CRASH_TEST_SEED``, ``CRASH_TEST_LAG`` (the emulator's position view lag) and
``CRASH_TEST_PRELOAD=0`` (every start a plain ``hedgebot`` console script,
about 3 s of imports each) change the run.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter, deque
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import pytest

pytestmark = pytest.mark.slow

HEDGEBOT = Path(sys.executable).parent / "hedgebot"
ROOT = Path(__file__).resolve().parents[2]
SEED = int(os.environ.get("CRASH_TEST_SEED", "20240611"))
KILLS = int(os.environ.get("CRASH_TEST_KILLS", "90"))  # shared out among the venues
VENUES = tuple(os.environ.get("CRASH_TEST_VENUES", "binance,bybit,okx").split(","))
PRELOAD = os.environ.get("CRASH_TEST_PRELOAD", "1") == "1"
PRELOAD_AHEAD = 2
# Binance's position view lags fills; the daemon must not hedge twice across restarts.
LAG_S = os.environ.get("CRASH_TEST_LAG", "0.2")
PERP = "BTC/USDT:USDT"
STEP = Decimal("0.001")
BAND = Decimal("0.02")
TARGET = Decimal(1)
POLL_S = 0.05
FINAL_CYCLES = 60
SPOT_LOW, SPOT_HIGH, SPOT_FINAL = Decimal(1), Decimal(2), Decimal("1.5")
KILL_MODES = {"random": 7, "on_decision": 5, "on_intent": 4, "held_answer": 2, "lost_answer": 1}
WINDOWS = ("intent_not_stored", "stored_not_sent", "sent_no_answer", "answered_not_stored")
UNRESOLVED = ("pending", "accepted", "partially_filled", "unknown")

CONFIG = """
mode = "testnet"
database_url = "sqlite+aiosqlite:///{db}"
poll_interval_s = {poll}

# A free port: the default 8780 may be taken by a daemon or another test run.
[http]
port = 0

[risk]
max_data_age_s = "30"
# The emulator answers or drops at once: an order it never got is lost after 1 s.
order_settle_s = "1"

[accounts.main]
{account}
[[pairs]]
name = "BTC"
spot_symbol = "BTC/USDT"
perp_symbol = "{perp}"
target_ratio = "{target}"
band = "{band}"
# About 0.25 BTC an order at 60,000: a move of the spot balance takes several orders.
max_order_notional = "15000"
leverage = "2"
"""

# The `hedgebot` console script with its imports (2-3 s of CPU, most of it ccxt) done
# before it is told to go, so the next starts are spawned while the current one runs.
# From "go" on it is exactly `hedgebot ARGS` (the console script calls bot.cli.main).
PRELOADED = """
import sys
import bot.cli, bot.service.daemon, bot.service.venues, ccxt.async_support
if sys.stdin.readline().strip() != "go":
    sys.exit(3)
sys.argv = ["hedgebot", *sys.argv[1:]]
sys.exit(bot.cli.main())
"""


def toml_value(value: Any) -> str:
    """A JSON value as a TOML inline value (JSON's string quoting is valid TOML)."""
    if isinstance(value, dict):
        items = ", ".join(f"{json.dumps(str(k))} = {toml_value(v)}" for k, v in value.items())
        return "{ " + items + " }"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value))


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("HEDGEBOT_")}


def hedgebot_command() -> list[str]:
    return [str(HEDGEBOT)] if HEDGEBOT.exists() else [sys.executable, "-m", "bot"]


def query(db: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db, timeout=30)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


# ---------------------------------------------------------------------- the emulator


class EmulatorProcess:
    """``python -m tests.support.emulators.<venue>`` on 127.0.0.1, steered through its
    control API; started in the project root, where the ``tests`` package is importable.

    This base is Binance's (spot and USDⓈ-M futures wallets); ``BybitProcess`` and
    ``OkxProcess`` speak their emulators' control APIs. Every method answers in the
    daemon's terms: coins, the client order id, ``filled``/``canceled``."""

    venue = "binance"
    module = "tests.support.emulators.binance"
    order_path = "/fapi/v1/order"
    lookup_paths: tuple[str, ...] = ("/fapi/v1/order",)
    poll_s = POLL_S

    def __init__(self, log_path: Path, *args: str) -> None:
        self._log = log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", self.module, "--port", "0", *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            env=clean_env(),
        )
        self.url = self._read_url()
        self._requests_seen = 0

    def _read_url(self) -> str:
        stdout = self.process.stdout
        assert stdout is not None
        found: list[str] = []
        reader = threading.Thread(target=lambda: found.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout=60)
        if not found or not found[0].startswith("http://127.0.0.1:"):
            raise RuntimeError(f"the emulator did not print its URL: {found!r}")
        return found[0].strip()

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 - the loopback URL we started
            f"{self.url}/_control/{path}", data=data, method=method
        )
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
            return json.loads(answer.read())

    def fund(self) -> None:
        self.call("POST", "futures_balance", {"asset": "USDT", "amount": "1000000"})

    def account(self) -> str:
        """The ``[accounts.main]`` table's body for this venue."""
        config = {**self.call("GET", "ccxt_config"), "timeout": 5000}
        return (
            'exchange = "binance"\napi_key = "crash-test-key"\nsecret = "crash-test-secret"\n'
            f'rate_limit_per_s = "1000"\nccxt_config = {toml_value(config)}\n'
        )

    def set_spot(self, amount: Decimal) -> None:
        self.call("POST", "spot_balance", {"asset": "BTC", "amount": str(amount)})

    def set_price(self, price: Decimal) -> None:
        self.call("POST", "price", {"base": "BTC", "price": str(price)})

    def order_fault(self, fault: str, **params: Any) -> None:
        body = {"fault": fault, "path": self.order_path, "method": "POST", "params": params}
        self.call("POST", "fault", body)

    def position(self) -> Decimal:
        return Decimal(self.call("GET", f"position?symbol={PERP}")["position"])

    def spot(self) -> Decimal:
        return Decimal(self.call("GET", "spot_balance?asset=BTC")["amount"])

    def order_log(self) -> list[dict[str, Any]]:
        """Every perp order request: ``client_order_id`` and ``outcome``."""
        return [
            {"client_order_id": e["client_order_id"], "outcome": e["outcome"]}
            for e in self.call("GET", "order_log")["entries"]
            if e["venue"] == "futures"
        ]

    def orders(self) -> dict[str, dict[str, Any]]:
        """The perp orders the exchange holds by client id: ``status``, ``filled`` (coins)."""
        states = {"FILLED": "filled", "EXPIRED": "canceled", "CANCELED": "canceled"}
        return {
            o["client_order_id"]: {
                "status": states.get(o["status"], o["status"]),
                "filled": Decimal(o["executed_qty"]),
            }
            for o in self.call("GET", "orders")["orders"]
            if o["venue"] == "futures"
        }

    def new_requests(self) -> list[dict[str, Any]]:
        """API requests since the last call."""
        answer = self.call("GET", f"requests?since={self._requests_seen}")
        self._requests_seen = answer["next"]
        return list(answer["requests"])

    def looked_up(self) -> set[str]:
        """Client ids the daemon looked up since the last call."""
        return {
            r["client_order_id"]
            for r in self.new_requests()
            if r["method"] == "GET" and r["path"] in self.lookup_paths and r["client_order_id"]
        }

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._log.close()


class BybitProcess(EmulatorProcess):
    """The Bybit v5 emulator: one unified wallet; testnet mode reaches its demo prefix."""

    venue = "bybit"
    module = "tests.support.emulators.bybit"
    order_path = "/v5/order/create"
    lookup_paths = ("/v5/order/realtime", "/v5/order/history")

    def fund(self) -> None:
        self.call("POST", "balance", {"coin": "USDT", "amount": "1000000"})

    def account(self) -> str:
        config = {**self.call("GET", "ccxt_config"), "timeout": 5000}
        return (
            'exchange = "bybit"\napi_key = "k"\nsecret = "s"\n'
            f'rate_limit_per_s = "1000"\nccxt_config = {toml_value(config)}\n'
        )

    def set_spot(self, amount: Decimal) -> None:
        self.call("POST", "balance", {"coin": "BTC", "amount": str(amount)})

    def position(self) -> Decimal:
        return Decimal(self.call("GET", "position?symbol=BTCUSDT")["position"])

    def spot(self) -> Decimal:
        return Decimal(self.call("GET", "balance?coin=BTC")["amount"])

    def order_log(self) -> list[dict[str, Any]]:
        return [
            {"client_order_id": e["order_link_id"], "outcome": e["outcome"]}
            for e in self.call("GET", "order_log")["entries"]
            if e["category"] == "linear"
        ]

    def orders(self) -> dict[str, dict[str, Any]]:
        states = {
            "Filled": "filled",
            "Cancelled": "canceled",
            "PartiallyFilledCanceled": "canceled",
        }
        return {
            o["order_link_id"]: {
                "status": states.get(o["status"], o["status"]),
                "filled": Decimal(o["cum_exec_qty"]),
            }
            for o in self.call("GET", "orders")["orders"]
            if o["category"] == "linear"
        }


class OkxProcess(EmulatorProcess):
    """The OKX v5 emulator with a demo key (ccxt's sandbox); its perp counts contracts."""

    venue = "okx"
    module = "tests.support.emulators.okx"
    order_path = "/api/v5/trade/batch-orders"
    lookup_paths = ("/api/v5/trade/order",)
    contract = Decimal("0.01")
    # OKX limits the balance and positions endpoints to 10 requests per 2 s: a cycle
    # every 0.2 s asks each 5 times a second.
    poll_s = 0.2

    def fund(self) -> None:
        self.call("POST", "balance", {"ccy": "USDT", "amount": "1000000"})

    def account(self) -> str:
        config = self.call("GET", "ccxt_config")
        keys = {k: config.pop(k) for k in ("apiKey", "secret", "password")}
        return (
            f'exchange = "okx"\napi_key = "{keys["apiKey"]}"\nsecret = "{keys["secret"]}"\n'
            f'password = "{keys["password"]}"\nrate_limit_per_s = "1000"\n'
            f"ccxt_config = {toml_value({**config, 'timeout': 5000})}\n"
        )

    def set_spot(self, amount: Decimal) -> None:
        self.call("POST", "balance", {"ccy": "BTC", "amount": str(amount)})

    def position(self) -> Decimal:
        contracts = Decimal(self.call("GET", "position?instId=BTC-USDT-SWAP")["position"])
        return contracts * self.contract

    def spot(self) -> Decimal:
        return Decimal(self.call("GET", "balance?ccy=BTC")["amount"])

    def order_log(self) -> list[dict[str, Any]]:
        return [
            {"client_order_id": e["cl_ord_id"], "outcome": e["outcome"]}
            for e in self.call("GET", "order_log")["entries"]
            if (e["inst_id"] or "").endswith("-SWAP")
        ]

    def orders(self) -> dict[str, dict[str, Any]]:
        return {
            o["cl_ord_id"]: {
                "status": o["state"],
                "filled": Decimal(o["acc_fill_sz"]) * self.contract,
            }
            for o in self.call("GET", "orders")["orders"]
            if o["inst_id"].endswith("-SWAP")
        }


PROCESSES: dict[str, type[EmulatorProcess]] = {
    "binance": EmulatorProcess,
    "bybit": BybitProcess,
    "okx": OkxProcess,
}


def start_emulator(venue: str, log_path: Path) -> EmulatorProcess:
    """The venue's emulator process, lagging its position view by ``LAG_S``."""
    extra = ("--demo",) if venue == "okx" else ()
    emulator = PROCESSES[venue](log_path, "--lag", LAG_S, *extra)
    emulator.fund()
    return emulator


# ---------------------------------------------------------------------- the daemon


class DaemonProcess:
    """One `hedgebot run`, its JSON log read as it is written."""

    def __init__(
        self, config: Path, log: IO[str], run: int, *extra: str, gated: bool = False
    ) -> None:
        self._log = log
        self.run = run
        self.gated = gated
        self.started = threading.Event()
        self.order_decisions = 0
        self.tail: list[str] = []
        self._changed = threading.Condition()
        args = ["run", "-c", str(config), "--log-format", "json", *extra]
        command = [sys.executable, "-c", PRELOADED] if gated else hedgebot_command()
        self.process = subprocess.Popen(
            [*command, *args],
            cwd=config.parent,
            env=clean_env(),
            stdin=subprocess.PIPE if gated else subprocess.DEVNULL,
            # The daemon logs JSON lines to stdout; one-line errors go to stderr.
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._log.write(f"[run {self.run}] {line}")
            self.tail = [*self.tail[-19:], line]
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if not isinstance(event, dict):
                continue
            name = event.get("event")
            with self._changed:
                if name == "daemon.started":
                    self.started.set()
                elif name == "pair.decided" and event.get("action") == "order":
                    self.order_decisions += 1
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def go(self) -> None:
        """Let a preloaded process start the daemon."""
        if self.gated and self.process.stdin is not None:
            try:
                self.process.stdin.write("go\n")
                self.process.stdin.close()
            except BrokenPipeError:
                pass  # it died while preloading: wait_started says so

    def wait_started(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not self.started.wait(0.05):
            if self.process.poll() is not None:
                self._reader.join(timeout=10)
                raise AssertionError(
                    f"run {self.run} exited with {self.process.returncode} before starting: "
                    + "".join(self.tail)
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"run {self.run} did not start within {timeout} s")

    def wait_order_decisions(self, count: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._changed:
            while self.order_decisions < count:
                left = deadline - time.monotonic()
                if left <= 0 or self.process.poll() is not None:
                    return False
                self._changed.wait(min(left, 0.05))
        return True

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)
        self._reader.join(timeout=30)
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None and not pipe.closed:
                pipe.close()

    def wait(self, timeout: float) -> int:
        try:
            code = self.process.wait(timeout=timeout)
        finally:
            self.kill()
        return code


def wait_for_intent(db: Path, after_decision: str, timeout: float) -> bool:
    """Poll the database until a pending order of a decision after ``after_decision``
    is committed (readers never block the daemon's writes in WAL mode)."""
    conn = sqlite3.connect(db, timeout=30)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = conn.execute(
                "SELECT 1 FROM orders WHERE status = 'pending' AND decision_id > ? LIMIT 1",
                (after_decision,),
            ).fetchone()
            if found:
                return True
            time.sleep(0.0002)
        return False
    finally:
        conn.close()


# ---------------------------------------------------------------------- coverage


@dataclass
class Coverage:
    windows: Counter[str] = field(default_factory=Counter)
    kill_modes: Counter[str] = field(default_factory=Counter)
    # client order id -> (window, highest audit event id when the daemon died)
    left_open: dict[str, tuple[str, int]] = field(default_factory=dict)
    # order decisions whose intent a kill prevented
    no_intent: set[str] = field(default_factory=set)
    looked_up: set[str] = field(default_factory=set)
    max_hedge: Decimal = Decimal(0)
    startup_s: list[float] = field(default_factory=list)
    found_at_restart: int = 0  # orders a kill left open, found by client id after it


def classify_kill(db: Path, emulator: EmulatorProcess, coverage: Coverage, after: str) -> str:
    """Record where the kill landed in the life of this run's orders (decisions after
    ``after``); return the newest decision id."""
    newest = query(db, "SELECT max(id) FROM decisions")[0][0] or after
    coverage.looked_up |= emulator.looked_up()
    decisions = [
        row[0]
        for row in query(
            db, "SELECT id FROM decisions WHERE action = 'order' AND id > ? ORDER BY id", after
        )
    ]
    if not decisions:
        return str(newest)
    orders = {
        row[0]: (row[1], row[2])
        for row in query(
            db,
            "SELECT decision_id, client_order_id, status FROM orders WHERE decision_id > ?",
            after,
        )
    }
    died_at = query(db, "SELECT max(id) FROM audit_events")[0][0]
    sent = {e["client_order_id"]: e["outcome"] for e in emulator.order_log()}
    for decision_id in decisions:
        if decision_id not in orders:
            coverage.windows["intent_not_stored"] += 1
            coverage.no_intent.add(decision_id)
            continue
        coid, status = orders[decision_id]
        if status not in UNRESOLVED:
            continue
        if status == "unknown":
            window = "unknown_at_kill"
        elif coid not in sent:
            window = "stored_not_sent"
        elif sent[coid] != "accepted":
            window = "rejected_not_stored"
        elif coid in coverage.looked_up:
            window = "answered_not_stored"
        else:
            window = "sent_no_answer"
        coverage.windows[window] += 1
        coverage.left_open[coid] = (window, died_at)
    return str(newest)


# ---------------------------------------------------------------------- the tests


def test_emulator_process_serves_the_api_and_its_control_api_on_loopback(
    tmp_path: Path,
) -> None:
    emulator = EmulatorProcess(tmp_path / "emulator.log", "--lag", "0.5")
    try:
        assert emulator.call("GET", "health") == {"ok": True}
        emulator.set_price(Decimal(61000))
        with urllib.request.urlopen(  # noqa: S310 - the loopback URL we started
            f"{emulator.url}/fapi/v1/ticker/bookTicker?symbol=BTCUSDT", timeout=30
        ) as answer:
            ticker = json.loads(answer.read())
        assert Decimal(ticker["bidPrice"]) < 61000 < Decimal(ticker["askPrice"])
        emulator.set_spot(Decimal("1.2"))
        assert emulator.spot() == Decimal("1.2")
        assert emulator.position() == 0
        emulator.call("POST", "lag", {"seconds": 1})
        emulator.order_fault("timeout", accept=True, delay_s=1)
        emulator.call("POST", "clear_faults", {})
        assert emulator.order_log() == []
        assert emulator.orders() == {}
        assert [(r["method"], r["path"]) for r in emulator.new_requests()] == [
            ("GET", "/fapi/v1/ticker/bookTicker")
        ]
        config = emulator.call("GET", "ccxt_config")
        assert config["urls"]["api"]["fapiPrivate"] == f"{emulator.url}/fapi/v1"
        for path, body in (
            ("fault", {"fault": "no-such-fault"}),
            ("price", {"base": "XYZ", "price": "1"}),
            ("spot_balance", {"asset": "BTC", "amount": "lots"}),
        ):
            with pytest.raises(urllib.error.HTTPError) as refused:
                emulator.call("POST", path, body)
            assert refused.value.code == 400
            assert "error" in json.loads(refused.value.read())
            refused.value.close()
    finally:
        emulator.close()
    assert emulator.process.returncode == 0  # SIGTERM stops it cleanly


@pytest.mark.timeout(900)
def test_sigkill_at_every_step_of_an_order_never_duplicates_or_loses_one(
    tmp_path: Path,
) -> None:
    """The kills are shared out among the venues (30 each of the default 90), each venue's
    story checked on its own; every window must be hit on one venue or another."""
    rng = random.Random(SEED)
    covered: Counter[str] = Counter()
    found = 0
    lines = []
    for venue in VENUES:
        folder = tmp_path / venue
        folder.mkdir()
        coverage, line = crash_story(venue, max(1, KILLS // len(VENUES)), rng, folder)
        covered.update(coverage.windows)
        found += coverage.found_at_restart
        lines.append(line)
    print("\n" + "\n".join(lines))
    hits = ", ".join(f"{w} {n}" for w, n in sorted(covered.items()))
    for window in WINDOWS:
        assert covered[window] >= 1, f"no kill landed in {window} on any venue: {hits}"
    assert found >= 1, "no order a kill left open was found at the exchange after a restart"


# One story told in order (each kill checked where it happens): split, it reads worse.
def crash_story(venue: str, kills: int, rng: random.Random, tmp_path: Path) -> tuple[Coverage, str]:
    """``kills`` SIGKILLs of `hedgebot run` on ``venue``'s emulator, then a clean run;
    the outcome checked; returns the coverage and a one-line summary with the time."""
    db = tmp_path / "hedgebot.db"
    daemon_log = (tmp_path / "daemon.log").open("w")
    emulator = start_emulator(venue, tmp_path / "emulator.log")
    daemon: DaemonProcess | None = None
    preloaded: deque[DaemonProcess] = deque()
    coverage = Coverage()
    starts = 0
    began = time.monotonic()
    try:
        config = tmp_path / "hedgebot.toml"
        config.write_text(
            CONFIG.format(
                db=db,
                poll=emulator.poll_s,
                account=emulator.account(),
                perp=PERP,
                target=TARGET,
                band=BAND,
            )
        )
        spot = SPOT_HIGH
        emulator.set_spot(spot)
        last_decision = ""
        for run in range(kills):
            while PRELOAD and len(preloaded) < PRELOAD_AHEAD and run + len(preloaded) + 1 < kills:
                upcoming = run + len(preloaded) + 1
                preloaded.append(DaemonProcess(config, daemon_log, upcoming, gated=True))
            # Move the spot balance so that the hedge must grow or shrink by several orders.
            hedge = -emulator.position()
            if abs(hedge / spot - TARGET) <= 2 * BAND or rng.random() < 0.25:
                spot = SPOT_LOW if spot == SPOT_HIGH else SPOT_HIGH
                emulator.set_spot(spot)
            emulator.set_price(Decimal(rng.randrange(57000, 63000)))
            mode = rng.choices(list(KILL_MODES), list(KILL_MODES.values()))[0]
            coverage.kill_modes[mode] += 1
            if mode == "held_answer":
                # The exchange executes the order and holds its answer.
                emulator.order_fault("timeout", accept=True, delay_s=1.0)
            elif mode == "lost_answer":
                emulator.order_fault("drop_after_accept")

            # The first start is the console script itself, the others preloaded.
            daemon = preloaded.popleft() if preloaded and preloaded[0].run == run else None
            daemon = daemon or DaemonProcess(config, daemon_log, run)
            went = time.monotonic()
            daemon.go()
            starts += 1
            daemon.wait_started()
            coverage.startup_s.append(time.monotonic() - went)

            if mode == "random":
                pause = rng.uniform(0.05, 0.6)
                time.sleep(pause / 2)
                emulator.set_price(Decimal(rng.randrange(57000, 63000)))
                time.sleep(pause / 2)
            elif mode == "on_decision":
                daemon.wait_order_decisions(rng.choice([1, 1, 2]), timeout=5)
                time.sleep(rng.choice([0, 0, 0.002, 0.005, 0.01, 0.02]))
            elif mode == "on_intent":
                wait_for_intent(db, last_decision, timeout=5)
            elif mode == "held_answer":
                daemon.wait_order_decisions(1, timeout=5)
                time.sleep(rng.uniform(0.05, 0.5))
            else:
                daemon.wait_order_decisions(1, timeout=5)
                time.sleep(rng.uniform(0, 0.05))
            daemon.kill()
            daemon = None
            time.sleep(0.1)  # a request written just before the kill still arrives
            emulator.call("POST", "clear_faults", {})
            last_decision = classify_kill(db, emulator, coverage, last_decision)
            coverage.max_hedge = max(coverage.max_hedge, -emulator.position())

        # A final clean run on a stable balance settles what the kills left and exits 0.
        emulator.set_spot(SPOT_FINAL)
        emulator.set_price(Decimal(60000))
        daemon = DaemonProcess(config, daemon_log, kills, "--max-cycles", str(FINAL_CYCLES))
        starts += 1
        code = daemon.wait(timeout=120)
        daemon = None
        assert code == 0, f"the final run exited {code}; see {tmp_path / 'daemon.log'}"
        elapsed = time.monotonic() - began

        summary = check_outcome(db, emulator, coverage, starts)
        hits = ", ".join(f"{w} {n}" for w, n in sorted(coverage.windows.items()))
        line = (
            f"crash safety on {venue} (seed {SEED}): {kills} kills {dict(coverage.kill_modes)}, "
            f"{starts} starts (median {statistics.median(coverage.startup_s):.2f} s to "
            f"daemon.started), {summary}; windows hit: {hits}; {elapsed:.0f} s"
        )
        return coverage, line
    finally:
        for process in (daemon, *preloaded):
            if process is not None:
                process.kill()
        emulator.close()
        daemon_log.close()


def check_outcome(db: Path, emulator: EmulatorProcess, coverage: Coverage, starts: int) -> str:
    log = emulator.order_log()
    at_exchange = emulator.orders()
    rows = query(
        db, "SELECT client_order_id, decision_id, status, side, filled, reason FROM orders"
    )
    stored = {row[0]: row for row in rows}

    # (a) each client order id was sent once and accepted at most once
    sends = Counter(e["client_order_id"] for e in log)
    resent = {c: n for c, n in sends.items() if n > 1}
    assert resent == {}, f"client order ids sent more than once: {resent}"
    accepted = [e["client_order_id"] for e in log if e["outcome"] == "accepted"]
    assert len(accepted) == len(set(accepted))
    assert set(accepted) == set(at_exchange)

    # (b) every order the exchange has is in the database
    missing = sorted(set(accepted) - set(stored))
    assert missing == [], f"orders at the exchange but not in the database: {missing}"

    # (c) one order per decision, named after it; a decision a kill stopped before its
    # intent never got an order later
    decisions = [row[1] for row in rows]
    assert len(decisions) == len(set(decisions))
    assert all(row[0] == f"hb{row[1]}" for row in rows)
    ordered = {r[0] for r in query(db, "SELECT id FROM decisions WHERE action = 'order'")}
    assert set(decisions) <= ordered
    assert coverage.no_intent.isdisjoint(decisions)
    assert {f"hb{d}" for d in coverage.no_intent}.isdisjoint(sends)

    # The database agrees with the exchange about every fill.
    for coid, order in at_exchange.items():
        assert Decimal(stored[coid][4]) == order["filled"], (stored[coid], order)
    net = sum((Decimal(r[4]) * (1 if r[3] == "buy" else -1) for r in rows), Decimal(0))
    position = emulator.position()
    assert net == position

    # (d) hedged within the band, and never hedged beyond the largest spot balance
    spot = emulator.spot()
    assert abs(-position / spot - TARGET) <= BAND + STEP / spot, (position, spot)
    assert coverage.max_hedge <= SPOT_HIGH * (TARGET + BAND) + STEP, coverage.max_hedge

    # (e) every start is in the audit log
    start_ids = [r[0] for r in query(db, "SELECT id FROM audit_events WHERE kind = 'daemon.start'")]
    assert len(start_ids) == starts

    # (f) nothing left unresolved
    assert [row for row in rows if row[2] in UNRESOLVED] == []

    # Each order a kill left open was settled after a restart, by looking it up at the
    # exchange (resolve_unresolved) and never by sending it again.
    found_at_restart = 0
    for coid, (window, died_at) in coverage.left_open.items():
        events = query(
            db,
            "SELECT id, kind FROM audit_events WHERE id > ? AND kind LIKE 'order.%' "
            "AND json_extract(data, '$.client_order_id') = ? ORDER BY id",
            died_at,
            coid,
        )
        assert events, f"{coid} ({window}) was never settled after the kill"
        assert events[0][0] > min(i for i in start_ids if i > died_at)
        assert all(kind != "order.intent" for _, kind in events)
        status, reason = stored[coid][2], stored[coid][5] or ""
        if coid in at_exchange:
            found_at_restart += 1
            assert sends[coid] == 1
            assert status == at_exchange[coid]["status"], (coid, window)
        else:
            assert coid not in sends or window == "rejected_not_stored", (coid, window)
            assert status == "rejected", (coid, window, status)
        if window == "stored_not_sent":
            assert "never sent" in reason, reason
    coverage.found_at_restart = found_at_restart
    return (
        f"{len(at_exchange)} orders at the exchange, {len(rows)} in the database, "
        f"{len(coverage.left_open)} left open by kills and settled after a restart "
        f"({found_at_restart} found at the exchange by client id); final hedge "
        f"{-position} on spot {spot}, largest hedge {coverage.max_hedge}"
    )
