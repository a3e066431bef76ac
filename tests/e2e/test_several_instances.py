"""Three `hedgebot run` processes on one Postgres database share six pairs through leases.

The emulator runs in its own process; the spot balances keep moving so that orders
keep being needed. One daemon is frozen (SIGSTOP: alive to the database, silent) until
its leases lapse and are taken over, then thawed; another is killed (SIGKILL). The
emulator's order log and the lease history in the audit log then show that each pair
had one holder at a time, that every order was sent under its holder's live lease (the
thawed daemon sent nothing on its lapsed leases), and that both daemons' pairs were
taken over within two lease periods.
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import subprocess
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_crash_safety import EmulatorProcess, clean_env, hedgebot_command, toml_value

pytestmark = pytest.mark.slow  # starts hedgebot as a subprocess

SEED = 20261122
BASES = {"BTC": Decimal(1), "ETH": Decimal(10), "SOL": Decimal(100)}
BASES |= {"XRP": Decimal(100), "ADA": Decimal(100), "DOGE": Decimal(100)}
POLL_S = 0.25
LEASE_S = 3.0
BAND = Decimal("0.02")

CONFIG = """
mode = "testnet"
database_url = "{url}"
poll_interval_s = {poll}
lease_s = {lease}

[http]
port = 0  # three daemons on one host: each takes a free port

[risk]
max_data_age_s = "30"
order_settle_s = "2"

[accounts.main]
exchange = "binance"
api_key = "lease-test-key"
secret = "lease-test-secret"
rate_limit_per_s = "1000"
ccxt_config = {ccxt_config}
"""

PAIR = """
[[pairs]]
name = "{base}"
spot_symbol = "{base}/USDT"
perp_symbol = "{base}/USDT:USDT"
target_ratio = "1"
band = "{band}"
leverage = "2"
"""


async def _fetch(url: str, sql: str) -> list[dict[str, Any]]:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        return [dict(r) for r in await conn.fetch(sql)]
    finally:
        await conn.close()


class Daemon:
    """One `hedgebot run` with its output in a file."""

    def __init__(self, config: Path, log: Path) -> None:
        self._log = log.open("w")
        self.process = subprocess.Popen(
            [*hedgebot_command(), "run", "-c", str(config), "--log-format", "json"],
            cwd=config.parent,
            env=clean_env(),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def stop(self, signum: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            return self.process.wait(timeout=30)
        finally:
            self._log.close()


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.1)


# One story told in order (start, kill, take over, each checked where it happens).
def test_three_daemons_hold_each_pair_once_and_take_over_a_killed_ones_pairs(  # noqa: C901
    tmp_path: Path, postgres_database: str
) -> None:
    database = postgres_database
    rng = random.Random(SEED)
    # Three daemons at 4 cycles a second (hours of leases in a minute) send more request
    # weight a minute than Binance allows, which is not what this test is about.
    emulator = EmulatorProcess(
        tmp_path / "emulator.log", "--bases", "SOL,XRP,ADA,DOGE", "--weight-limit", "1000000"
    )
    daemons: list[Daemon] = []

    def sql(statement: str) -> list[dict[str, Any]]:
        return asyncio.run(_fetch(database, statement))

    def leases() -> dict[str, str | None]:
        return {r["pair"]: r["holder"] for r in sql("SELECT pair, holder FROM pair_leases")}

    spots = dict(BASES)

    def move_spots(seconds: float) -> None:
        # One coin's balance jumps every few cycles: its holder must trade.
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            base = rng.choice(list(BASES))
            spots[base] = BASES[base] * rng.choice([Decimal("0.5"), Decimal(1), Decimal("1.5")])
            emulator.call("POST", "spot_balance", {"asset": base, "amount": str(spots[base])})
            time.sleep(0.4)

    try:
        emulator.call("POST", "futures_balance", {"asset": "USDT", "amount": "10000000"})
        for base, amount in BASES.items():
            emulator.call("POST", "spot_balance", {"asset": base, "amount": str(amount)})
        ccxt_config = {**emulator.call("GET", "ccxt_config"), "timeout": 5000}
        config = tmp_path / "hedgebot.toml"
        config.write_text(
            CONFIG.format(
                url=database, poll=POLL_S, lease=LEASE_S, ccxt_config=toml_value(ccxt_config)
            )
            + "".join(PAIR.format(base=b, band=BAND) for b in BASES)
        )
        upgrade = subprocess.run(
            [*hedgebot_command(), "db", "upgrade", "-c", str(config)],
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert upgrade.returncode == 0, upgrade.stderr
        daemons = [Daemon(config, tmp_path / f"daemon{i}.log") for i in range(3)]

        def shared_out() -> bool:
            held = leases()
            counts = defaultdict(int)
            for holder in held.values():
                counts[holder] += 1
            return len(held) == 6 and None not in counts and sorted(counts.values()) == [2, 2, 2]

        wait_until(shared_out, 90, "the three daemons hold two pairs each")
        move_spots(4)

        def take_down(pair: str, signum: int) -> Takedown:
            held = leases()
            holder = held[pair]
            assert holder is not None
            daemon = next(d for d in daemons if f":{d.process.pid}:" in holder)
            pairs = sorted(p for p, h in held.items() if h == holder)
            at = sql("SELECT clock_timestamp() AS t")[0]["t"]
            daemon.process.send_signal(signum)

            def taken_over() -> bool:
                now = leases()
                return all(now[p] not in (None, holder) for p in pairs)

            wait_until(taken_over, 30, f"{pairs} are taken over from {holder}")
            return Takedown(holder, pairs, at, daemon)

        # Frozen mid-run: its database session lives on, so its leases must run out.
        frozen = take_down("BTC", signal.SIGSTOP)
        move_spots(3)
        frozen.daemon.process.send_signal(signal.SIGCONT)
        move_spots(3)
        # Killed: its session dies with it, and the others see that at their next claim.
        survivors = [d for d in daemons if d is not frozen.daemon]
        target = next(p for p, h in leases().items() if h and f":{survivors[0].process.pid}:" in h)
        killed = take_down(target, signal.SIGKILL)
        killed.daemon.stop(signal.SIGKILL)
        move_spots(3)
        # Settle: the last balances stay; every pair ends inside its band.
        emulator.call("POST", "clear_faults", {})

        def hedged() -> bool:
            for base in BASES:
                position = Decimal(
                    emulator.call("GET", f"position?symbol={base}/USDT:USDT")["position"]
                )
                if abs(-position / spots[base] - 1) > BAND:
                    return False
            return True

        wait_until(hedged, 60, "every pair is back inside its band")
        for daemon in daemons:
            if daemon is not killed.daemon:
                assert daemon.stop() == 0

        check_lease_history(sql, emulator, [frozen, killed])
        status = subprocess.run(
            [*hedgebot_command(), "status", "-c", str(config), "--format", "json"],
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        held_by = {row["pair"]: row["held_by"] for row in json.loads(status.stdout)}
        assert set(held_by) == set(BASES)
        assert killed.holder not in held_by.values()  # its pairs were decided by others since
    finally:
        for daemon in daemons:
            if daemon.process.poll() is None:
                daemon.stop(signal.SIGKILL)
        emulator.close()


@dataclass(frozen=True)
class Takedown:
    holder: str
    pairs: list[str]
    at: datetime
    daemon: Daemon


def check_lease_history(
    sql: Callable[[str], list[dict[str, Any]]],
    emulator: EmulatorProcess,
    takedowns: list[Takedown],
) -> None:
    # Every acquisition, in order: a pair's token grows with each new holder.
    tokens: dict[str, list[tuple[int, datetime, str]]] = defaultdict(list)
    for event in sql(
        "SELECT pair, ts, data FROM audit_events WHERE kind = 'lease.acquired' ORDER BY id"
    ):
        data = json.loads(event["data"]) if isinstance(event["data"], str) else event["data"]
        tokens[event["pair"]].append((int(data["token"]), event["ts"], data["holder"]))
    for pair, history in tokens.items():
        numbers = [token for token, _, _ in history]
        assert numbers == sorted(set(numbers)), f"{pair}: tokens {numbers} repeat or go back"

    # The frozen and the dead daemon's pairs went to others within two lease periods.
    delays: dict[str, list[float]] = {}
    for down in takedowns:
        for pair in down.pairs:
            taken = next(
                ts for _, ts, holder in tokens[pair] if ts > down.at and holder != down.holder
            )
            delay = (taken - down.at).total_seconds()
            delays.setdefault(down.holder, []).append(delay)
            assert delay <= 2 * LEASE_S, f"{pair} taken over {delay:.2f} s after {down}"

    # Each order at the exchange: stored, sent once, by the holder of the lease it names,
    # and before the next holder took the pair.
    orders = {
        r["client_order_id"]: r
        for r in sql(
            "SELECT o.client_order_id, o.pair, d.inputs FROM orders o "
            "JOIN decisions d ON d.id = o.decision_id"
        )
    }
    log = [e for e in emulator.call("GET", "order_log")["entries"] if e["venue"] == "futures"]
    sent = [e["client_order_id"] for e in log]
    assert len(sent) == len(set(sent)), "a client order id reached the exchange twice"
    assert len(sent) >= 12, f"only {len(sent)} orders: the test did not exercise the daemons"
    holders_seen: dict[str, set[str]] = defaultdict(set)
    for entry in log:
        order = orders.get(entry["client_order_id"])
        assert order is not None, f"{entry['client_order_id']} is at the exchange, not stored"
        inputs = order["inputs"]
        lease = (json.loads(inputs) if isinstance(inputs, str) else inputs)["lease"]
        history = tokens[order["pair"]]
        holder_of = {token: holder for token, _, holder in history}
        assert holder_of[lease["token"]] == lease["holder"], f"{entry}: not the lease holder"
        later = [ts for token, ts, _ in history if token > lease["token"]]
        if later:
            sent_at = entry["time_ms"] / 1000
            assert sent_at <= min(later).timestamp(), f"{entry}: sent after a takeover"
        holders_seen[order["pair"]].add(lease["holder"])
    # The taken-over pairs were traded by their new holders too.
    assert any(len(holders_seen[p]) >= 2 for p in takedowns[0].pairs), holders_seen
    changes = sum(len(h) - 1 for h in tokens.values())
    frozen, killed = (", ".join(f"{d:.2f}" for d in delays[t.holder]) for t in takedowns)
    print(
        f"\nseveral instances: {len(sent)} orders, none sent twice or outside its lease; "
        f"{changes} lease hand-overs; taken over {frozen} s after SIGSTOP, {killed} s "
        f"after SIGKILL (lease {LEASE_S:g} s)"
    )
