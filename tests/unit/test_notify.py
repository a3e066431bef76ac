"""sd_notify: the messages reach the socket systemd names; the watchdog follows the loop."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.service.notify import SystemdNotifier, Watchdog


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "notify.sock")
    sock.bind(path)
    sock.settimeout(5)
    try:
        yield sock, path
    finally:
        sock.close()


def test_ready_sends_ready_and_status_in_one_datagram(
    listener: tuple[socket.socket, str],
) -> None:
    sock, path = listener
    notifier = SystemdNotifier({"NOTIFY_SOCKET": path})
    assert notifier.ready("running: BTC")
    assert sock.recv(4096).decode().split("\n") == ["READY=1", "STATUS=running: BTC"]
    assert notifier.watchdog()
    assert sock.recv(4096) == b"WATCHDOG=1"
    assert notifier.stopping("signal")
    assert sock.recv(4096).decode().split("\n") == ["STOPPING=1", "STATUS=signal"]
    notifier.close()


def test_an_abstract_socket_address_starting_with_at_is_reached() -> None:
    name = f"hedgebot-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(5)
    try:
        notifier = SystemdNotifier({"NOTIFY_SOCKET": "@" + name})
        assert notifier.status("cycle 3")
        assert sock.recv(4096) == b"STATUS=cycle 3"
        notifier.close()
    finally:
        sock.close()


def test_without_notify_socket_nothing_is_sent_and_nothing_fails() -> None:
    notifier = SystemdNotifier({})
    assert not notifier.enabled
    assert not notifier.ready("x")
    assert notifier.watchdog_interval_s is None


def test_a_vanished_socket_is_reported_as_not_sent_not_raised(tmp_path: Path) -> None:
    notifier = SystemdNotifier({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    assert not notifier.watchdog()
    assert not notifier.watchdog()
    notifier.close()


def test_watchdog_interval_is_half_of_watchdog_usec_for_this_process_only() -> None:
    env = {"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "30000000"}
    assert SystemdNotifier(env).watchdog_interval_s == 15.0
    mine = {**env, "WATCHDOG_PID": str(os.getpid())}
    assert SystemdNotifier(mine).watchdog_interval_s == 15.0
    other = {**env, "WATCHDOG_PID": str(os.getpid() + 1)}
    assert SystemdNotifier(other).watchdog_interval_s is None
    assert SystemdNotifier({**env, "WATCHDOG_USEC": "junk"}).watchdog_interval_s is None


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_watchdog_stops_pinging_when_the_cycle_loop_stalls_and_resumes_with_it(
    listener: tuple[socket.socket, str],
) -> None:
    sock, path = listener
    sock.settimeout(0)
    clock = FakeMonotonic()
    notifier = SystemdNotifier({"NOTIFY_SOCKET": path})
    watchdog = Watchdog(notifier, poll_interval_s=10, stall_s=20, monotonic=clock)

    def received() -> list[bytes]:
        messages = []
        while True:
            try:
                messages.append(sock.recv(4096))
            except BlockingIOError:
                return messages

    watchdog.progress()  # a cycle started
    assert received() == [b"WATCHDOG=1"]
    clock.now += 29  # within poll interval + stall
    assert watchdog.tick()
    assert received() == [b"WATCHDOG=1"]
    clock.now += 2  # 31 s without progress: the loop is stuck
    assert not watchdog.alive()
    assert not watchdog.tick()
    assert received() == []
    watchdog.progress()  # the cycle finally ended
    assert watchdog.tick()
    assert received() == [b"WATCHDOG=1", b"WATCHDOG=1"]
    notifier.close()
