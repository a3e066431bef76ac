"""Per venue (Binance, Bybit, OKX), the real daemon and the real ccxt client against that
venue's emulator in a child process with a real-sized market list (about 600 spot and
600 linear markets), in testnet mode. Prints, per venue:

- requests per steady cycle by endpoint for one account with 1, 10 and 50 pairs, and
  whether the total grows with the pairs (it should grow with accounts, not pairs);
- CPU per cycle for 2 pairs (``process_time`` of this process around one cycle: the
  emulator's work is in the child), median and p99;
- start-up: wall and CPU time of ``hedgebot run --max-cycles 1`` (a fresh process, from
  its launch to its exit after the first completed cycle) for 2 and 200 pairs, on a
  fresh account and again on a restart where leverage is already set, with the requests
  by endpoint the run sent (start and its first cycle). The coins are not held on spot,
  so the first cycle holds: this is the start's cost, not the hedging orders';
- ccxt's own cost per call (median and p99 of wall and CPU time) for the calls the
  gateway makes: each ccxt method is timed where the gateway calls it, with the venue
  module's parameters.

Run: ``.venv/bin/python bench/bench_venues.py [--venue bybit] [--quick] [--postgres URL]``
(``--postgres``: the cycle's CPU on Postgres as well, in a fresh database on that server).
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import logging
import os
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from sqlalchemy import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from machine import machine_line  # noqa: E402

from bot.clock import SystemClock  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.domain.models import OrderRequest, Side  # noqa: E402
from bot.exchange.ccxt_gateway import CcxtGateway  # noqa: E402
from bot.logging import configure_logging  # noqa: E402
from bot.service.wiring import BuiltDaemon, build_daemon  # noqa: E402
from bot.store.migrate import upgrade  # noqa: E402
from bot.store.repository import Repository, create_engine  # noqa: E402
from tests.support import builders  # noqa: E402

VENUES = ("binance", "bybit", "okx")
REAL_SIZE = 600  # spot and linear markets each, about Bybit's list
# Each pair's coin on spot, for the steady cycles: one order hedges it (the Binance
# emulator's made-up books are 5 coins a level; an OKX contract is 10 coins).
SPOT_COINS = {"binance": Decimal(5), "bybit": Decimal(100), "okx": Decimal(100)}
MARGIN = Decimal(10_000_000)  # USDT
FAST_LIMITER = "1000"  # requests/s: a limiter that never waits (ccxt's cost per call)
READY_POLL_S = 0.05  # between /readyz polls during a start-up (or 1% of the time so far)
TICKS = os.sysconf("SC_CLK_TCK")
PACE_S = 0.2  # between rounds of calls: under every emulator's per-endpoint limit
# The ccxt methods timed: every unified call that reads or trades (whichever the gateway
# and the venue modules use; a call made inside another is timed as well).
CCXT_PREFIXES = ("fetch_", "create_", "cancel_", "set_")


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# ------------------------------------------------------------------ the emulator process


@dataclass
class VenueEmulator:
    """A venue's emulator in a child process (``python -m tests.support.emulators.V``),
    steered and read through its ``/_control/`` API."""

    venue: str
    markets: int
    url: str = ""
    process: asyncio.subprocess.Process | None = None
    session: aiohttp.ClientSession | None = None
    seen: int = 0  # requests already read

    def command(self) -> list[str]:
        module = f"tests.support.emulators.{self.venue}"
        if self.venue == "binance":
            bases = ",".join(made_up_coins("binance", self.markets))
            return [sys.executable, "-m", module, "--bases", bases]
        extra = ["--demo"] if self.venue == "okx" else []
        return [sys.executable, "-m", module, "--markets", str(self.markets), *extra]

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            *self.command(), cwd=ROOT, stdout=asyncio.subprocess.PIPE
        )
        assert self.process.stdout is not None
        line = (await self.process.stdout.readline()).decode()
        if not line.startswith("http"):
            raise RuntimeError(f"the {self.venue} emulator did not start: {line!r}")
        self.url = line.strip()
        self.session = aiohttp.ClientSession()

    async def stop(self) -> None:
        if self.session is not None:
            await self.session.close()
        if self.process is not None:
            self.process.terminate()
            await self.process.wait()

    async def control(
        self, name: str, body: dict[str, Any] | None = None, query: dict[str, str] | None = None
    ) -> Any:
        assert self.session is not None
        url = f"{self.url}/_control/{name}"
        method = "GET" if body is None else "POST"
        async with self.session.request(method, url, json=body, params=query) as answer:
            payload = await answer.json()
            if answer.status != 200:
                raise RuntimeError(f"{method} {url}: {answer.status} {payload}")
            return payload

    async def set_coin(self, coin: str, amount: Decimal) -> None:
        """The spot balance of ``coin`` (USDT: the margin too, on unified wallets)."""
        if self.venue == "binance":
            name = "futures_balance" if coin == "USDT" else "spot_balance"
            await self.control(name, {"asset": coin, "amount": str(amount)})
        else:
            key = "coin" if self.venue == "bybit" else "ccy"
            await self.control("balance", {key: coin, "amount": str(amount)})

    async def fund(self, coins: list[str]) -> None:
        await self.set_coin("USDT", MARGIN)
        await asyncio.gather(*(self.set_coin(c, SPOT_COINS[self.venue]) for c in coins))

    async def account(self, rate_limit_per_s: str | None) -> dict[str, Any]:
        """``[accounts.main]`` reaching this emulator in testnet mode."""
        query = {"environment": "testnet"} if self.venue == "bybit" else {}
        config = await self.control("ccxt_config", query=query)
        account: dict[str, Any] = {"exchange": self.venue, "api_key": "k", "secret": "s"}
        if self.venue == "binance":
            account.update({"api_key": "test-key", "secret": "test-secret"})
        if self.venue == "okx":
            account.update(
                api_key=config.pop("apiKey"),
                secret=config.pop("secret"),
                password=config.pop("password"),
            )
        account["ccxt_config"] = config
        if rate_limit_per_s is not None:
            account["rate_limit_per_s"] = rate_limit_per_s
        return account

    async def requests(self) -> Counter[str]:
        """The requests since the last call, by ``METHOD path``."""
        answer = await self.control("requests", query={"since": str(self.seen)})
        self.seen = int(answer["next"])
        return Counter(f"{r['method']} {r['path']}" for r in answer["requests"])


def made_up_coins(venue: str, markets: int) -> list[str]:
    """The emulator's made-up coins listed on spot and as a linear perp, in order."""
    if venue == "binance":
        return [f"C{i:04d}" for i in range(max(0, markets - 2))]
    if venue == "bybit":
        from tests.support.emulators.bybit.bybit_emulator import generated_markets

        listed = generated_markets(markets)
    else:
        from tests.support.emulators.okx._okx_models import generate_markets

        listed = generate_markets(markets)  # type: ignore[assignment]
    both = [m.base for m in listed if getattr(m, "spot", True) and getattr(m, "perp", True)]
    return [c for c in both if c.startswith("C")]


@asynccontextmanager
async def running(venue: str, markets: int) -> AsyncIterator[VenueEmulator]:
    emulator = VenueEmulator(venue, markets)
    await emulator.start()
    try:
        yield emulator
    finally:
        await emulator.stop()


# ------------------------------------------------------------------ the daemon in-process


def pair(coin: str) -> dict[str, Any]:
    return builders.pair(coin, band="0.05", max_order_notional="100000", leverage="1")


def settings_for(account: dict[str, Any], coins: list[str], database_url: str) -> Settings:
    return Settings.model_validate(
        {
            "mode": "testnet",
            "database_url": database_url,
            "pairs": [pair(c) for c in coins],
            "accounts": {"main": account},
            "http": {"enabled": False},
        }
    )


@asynccontextmanager
async def fresh_database(postgres: str | None) -> AsyncIterator[str]:
    """The URL of a fresh database: SQLite in a temporary directory, or a new database on
    ``postgres``'s server (dropped after)."""
    if postgres is None:
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        return
    server = make_url(postgres)
    name = f"bench_venues_{uuid.uuid4().hex[:12]}"
    dsn = server.set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
        try:
            yield server.set(database=name).render_as_string(hide_password=False)
        finally:
            await connection.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await connection.close()


@asynccontextmanager
async def daemon_on(
    emulator: VenueEmulator, coins: list[str], postgres: str | None = None
) -> AsyncIterator[BuiltDaemon]:
    """A started daemon over ``coins`` on a fresh database, SQLite unless ``postgres`` names
    a server (its gateway closed after)."""
    account = await emulator.account(None)
    async with fresh_database(postgres) as url:
        engine = create_engine(url)
        await upgrade(engine, url)
        clock = SystemClock()
        built = await build_daemon(
            settings_for(account, coins, url), Repository(engine, clock), clock
        )
        try:
            await built.daemon.start()
            yield built
        finally:
            await built.close_gateways()
            await engine.dispose()


@dataclass
class CycleRequests:
    pairs: int
    by_endpoint: Counter[str]

    @property
    def total(self) -> int:
        return sum(self.by_endpoint.values())


async def requests_per_cycle(emulator: VenueEmulator, coins: list[str]) -> CycleRequests:
    """The requests of one steady cycle (after the one that hedges) for these pairs."""
    async with daemon_on(emulator, coins) as built:
        await built.daemon.run_cycle(1)
        await built.daemon.run_cycle(2)  # settles what the first one sent
        await emulator.requests()
        report = await built.daemon.run_cycle(3)
        if report.errors:
            raise RuntimeError(f"cycle errors: {report.errors}")
        return CycleRequests(len(coins), await emulator.requests())


@dataclass
class Samples:
    wall_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)

    def line(self) -> str:
        w, c = self.wall_ms, self.cpu_ms
        return (
            f"wall median {statistics.median(w):.2f} ms, p99 {pct(w, 0.99):.2f} ms; "
            f"CPU median {statistics.median(c):.2f} ms, p99 {pct(c, 0.99):.2f} ms "
            f"({len(w)} samples)"
        )


@contextmanager
def timing(samples: Samples) -> Iterator[None]:
    w0, c0 = time.perf_counter(), time.process_time()
    try:
        yield
    finally:
        samples.wall_ms.append((time.perf_counter() - w0) * 1000)
        samples.cpu_ms.append((time.process_time() - c0) * 1000)


async def cycle_cpu(
    emulator: VenueEmulator, coins: list[str], runs: int, postgres: str | None = None
) -> Samples:
    """Wall and CPU time of this process around each of ``runs`` steady cycles."""
    samples = Samples()
    async with daemon_on(emulator, coins, postgres) as built:
        await built.daemon.run_cycle(1)
        await built.daemon.run_cycle(2)
        for cycle in range(3, runs + 3):
            with timing(samples):
                await built.daemon.run_cycle(cycle)
    return samples


# ------------------------------------------------------------------ ccxt's cost per call


class CallTimer:
    """Wraps a ccxt client's methods on the instance: each call's wall and CPU time."""

    def __init__(self, client: Any) -> None:
        self.calls: dict[str, Samples] = {}
        for name in dir(type(client)):
            unified = name.startswith(CCXT_PREFIXES) and inspect.iscoroutinefunction(
                getattr(type(client), name)
            )
            # An endpoint's own method (publicGetV5MarketTickers): what a venue module
            # calls where ccxt's unified method would parse every row.
            endpoint = name.startswith(("public", "private", "fapi", "dapi", "sapi"))
            if unified or (endpoint and callable(getattr(type(client), name))):
                setattr(client, name, self._wrap(name, getattr(client, name)))

    def _wrap(self, name: str, method: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
        async def timed(*args: Any, **kwargs: Any) -> Any:
            with timing(self.calls.setdefault(name, Samples())):
                return await method(*args, **kwargs)

        return timed


async def ccxt_costs(emulator: VenueEmulator, runs: int) -> dict[str, Samples]:
    """Drive the gateway's reads and an order with its look-up ``runs`` times (after a
    warm-up); ccxt's own time per method."""
    # The limiter runs inside ccxt's method (it is ccxt's throttle): never let it wait here,
    # and pace the rounds below the emulator's per-endpoint limits instead.
    await emulator.set_coin("USDT", MARGIN)
    account = await emulator.account(FAST_LIMITER)
    config = settings_for(account, ["BTC"], "sqlite+aiosqlite://")
    gateway = CcxtGateway.from_config("main", config.accounts["main"], "testnet", SystemClock())
    spot, perp = "BTC/USDT", "BTC/USDT:USDT"
    try:
        await gateway.load_markets([spot, perp])
        timer = CallTimer(gateway._client)
        for i in range(runs + 2):
            if i == 2:
                timer.calls.clear()  # two rounds of warm-up
            await gateway.fetch_balances()
            await gateway.fetch_positions([perp])
            await gateway.fetch_tickers([spot])  # one market type a call (Binance)
            await gateway.fetch_contract_quotes([perp])  # what a cycle asks of its perps
            side = Side.SELL if i % 2 == 0 else Side.BUY
            request = OrderRequest(perp, side, Decimal("0.01"), f"bench{os.getpid()}x{i}")
            await gateway.create_order(request)  # sends, then looks it up by id
            await asyncio.sleep(PACE_S)
        return timer.calls
    finally:
        await gateway.close()


# ------------------------------------------------------------------ start-up (a process)


@dataclass
class StartUp:
    pairs: int
    restart: bool
    wall_s: float
    cpu_s: float
    by_endpoint: Counter[str]
    returncode: int


def hedgebot_env(
    account: dict[str, Any], coins: list[str], database_url: str, http_port: int
) -> dict[str, str]:
    """The whole config in the environment (no config file); the HTTP endpoints on."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEDGEBOT_")}
    env.update(
        HEDGEBOT_MODE="testnet",
        HEDGEBOT_DATABASE_URL=database_url,
        HEDGEBOT_HTTP__PORT=str(http_port),
        HEDGEBOT_LOG_FORMAT="json",
        HEDGEBOT_PAIRS=json.dumps([pair(c) for c in coins]),
        HEDGEBOT_ACCOUNTS=json.dumps({"main": account}),
    )
    return env


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system time of a running process so far (``/proc/PID/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


async def until_ready(process: asyncio.subprocess.Process, port: int) -> None:
    """Poll ``/readyz`` until it answers 200: the first cycle finished without errors."""
    url = f"http://127.0.0.1:{port}/readyz"
    started = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        while process.returncode is None:
            try:
                async with session.get(url) as answer:
                    if answer.status == 200:
                        return
            except aiohttp.ClientError:
                pass  # not listening yet
            # Each poll costs the daemon CPU: a long start is polled less often.
            await asyncio.sleep(max(READY_POLL_S, (time.perf_counter() - started) / 100))
    raise RuntimeError(f"hedgebot exited {process.returncode} before its first cycle")


def byte_compiled() -> None:
    """hedgebot's modules byte-compiled, as an install leaves them (pip compiles a wheel's
    modules at install; freqtrade's are, in its virtualenv). A checkout installed in
    editable mode under PYTHONDONTWRITEBYTECODE=1 (this machine's environment) has none,
    so every start compiled its 130 modules from source first (about 0.1 s of CPU)."""
    import compileall

    compileall.compile_dir(ROOT / "bot", quiet=1)


async def start_up(
    emulator: VenueEmulator, coins: list[str], database: Path, restart: bool
) -> StartUp:
    """``hedgebot run`` on ``database`` with the venue's default limiter: wall and CPU time
    from launch to its first completed cycle (``/readyz`` answers 200), and the requests
    it sent until then. Stopped with SIGTERM after. Its modules are byte-compiled first
    (:func:`byte_compiled`), outside the time."""
    byte_compiled()
    account = await emulator.account(None)
    port = free_port()
    env = hedgebot_env(account, coins, f"sqlite+aiosqlite:///{database}", port)
    hedgebot = str(Path(sys.executable).with_name("hedgebot"))
    await emulator.requests()
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        hedgebot,
        *("run", "--migrate"),
        cwd=database.parent,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await until_ready(process, port)
        wall = time.perf_counter() - started
        cpu = cpu_seconds(process.pid)
        requests = await emulator.requests()
        process.terminate()
    finally:
        _, stderr = await process.communicate()
    if process.returncode != 0:
        print(f"  hedgebot exited {process.returncode}: {stderr.decode().strip()[-2000:]}")
    return StartUp(len(coins), restart, wall, cpu, requests, process.returncode or 0)


async def start_ups(emulator: VenueEmulator, sizes: tuple[int, ...]) -> list[StartUp]:
    """For each size, a fresh account (coins no run has touched) and then a restart."""
    coins = made_up_coins(emulator.venue, emulator.markets)
    await emulator.set_coin("USDT", MARGIN)
    results = []
    offset = 0
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            chosen = coins[offset : offset + size]
            offset += size
            if len(chosen) < size:
                raise ValueError(f"{emulator.markets} markets list fewer than {offset} coins")
            database = Path(tmp) / f"start{size}.db"
            for restart in (False, True):
                results.append(await start_up(emulator, chosen, database, restart))
    return results


# ------------------------------------------------------------------ printing


def endpoints(counts: Counter[str]) -> str:
    return ", ".join(f"{name} {n}" for name, n in sorted(counts.items()))


def print_cycles(venue: str, rows: list[CycleRequests]) -> None:
    for row in rows:
        print(
            f"{venue} steady cycle, {row.pairs:>2} pair(s): {row.total} requests: "
            f"{endpoints(row.by_endpoint)}"
        )
    totals = [r.total for r in rows]
    verdict = "grows with pairs" if totals[-1] > totals[0] else "does not grow with pairs"
    print(f"{venue} requests per cycle {' / '.join(map(str, totals))}: {verdict}")


def print_start(venue: str, row: StartUp) -> None:
    kind = "restart (leverage set)" if row.restart else "fresh account"
    failed = "" if row.returncode == 0 else f" EXIT {row.returncode}"
    print(
        f"{venue} start to first cycle, {row.pairs:>3} pairs, {kind}: wall {row.wall_s:.2f} s, "
        f"CPU {row.cpu_s:.2f} s{failed}; {sum(row.by_endpoint.values())} requests: "
        f"{endpoints(row.by_endpoint)}"
    )


@dataclass(frozen=True)
class Sizes:
    markets: int = REAL_SIZE
    cycle_pairs: tuple[int, ...] = (1, 10, 50)
    cpu_pairs: int = 2
    cpu_cycles: int = 30
    start_pairs: tuple[int, ...] = (2, 200)
    ccxt_calls: int = 100


QUICK = Sizes(cpu_cycles=20, ccxt_calls=30)


async def bench_venue(venue: str, sizes: Sizes, postgres: str | None) -> None:
    async with running(venue, sizes.markets) as emulator:
        coins = made_up_coins(venue, sizes.markets)
        await emulator.fund(coins[: max(sizes.cycle_pairs)])
        rows = [await requests_per_cycle(emulator, coins[:n]) for n in sizes.cycle_pairs]
        print_cycles(venue, rows)
        cpu = await cycle_cpu(emulator, coins[: sizes.cpu_pairs], sizes.cpu_cycles)
        print(f"{venue} cycle of {sizes.cpu_pairs} pairs, this process: {cpu.line()}")
        if postgres is not None:
            cpu = await cycle_cpu(emulator, coins[: sizes.cpu_pairs], sizes.cpu_cycles, postgres)
            print(f"{venue} cycle of {sizes.cpu_pairs} pairs on Postgres: {cpu.line()}")
        for name, samples in sorted((await ccxt_costs(emulator, sizes.ccxt_calls)).items()):
            print(f"{venue} ccxt {name:<18} {samples.line()}")
    # A fresh emulator: the start-up's coins have no leverage set yet.
    async with running(venue, sizes.markets) as emulator:
        for row in await start_ups(emulator, sizes.start_pairs):
            print_start(venue, row)


async def main(venues: list[str], sizes: Sizes, postgres: str | None) -> None:
    configure_logging("json", level=logging.ERROR)
    print(machine_line())
    for venue in venues:
        await bench_venue(venue, sizes, postgres)
    print(machine_line().split("; ")[-1] + " at the end")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--venue", choices=VENUES, action="append", help="default: all three")
    parser.add_argument("--quick", action="store_true", help="fewer samples")
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="the cycle's CPU on Postgres too: a fresh database on this URL's server "
        "(dropped after), e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/test",
    )
    args = parser.parse_args()
    sizes = QUICK if args.quick else Sizes()
    asyncio.run(main(args.venue or list(VENUES), sizes, args.postgres))
