"""systemd's service notification protocol (sd_notify): READY, WATCHDOG, STOPPING, STATUS.

The protocol is one datagram of ``KEY=value`` lines to the AF_UNIX socket named by
``$NOTIFY_SOCKET`` (a leading ``@`` names an abstract socket). Without that variable —
not started by systemd with ``Type=notify`` — every call does nothing.

The watchdog is tied to the cycle loop, not to a timer alone: :class:`Watchdog` pings only
while cycles keep starting and finishing, so a loop that hangs stops the pings and systemd
restarts the service after ``WatchdogSec``.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable, Mapping

import structlog

log = structlog.get_logger(__name__)

# A cycle in flight longer than this (on top of the poll interval) counts as hung: every
# exchange request has its own timeout and a bounded number of retries.
CYCLE_STALL_S = 120.0


class SystemdNotifier:
    """Sends sd_notify messages; a no-op when ``NOTIFY_SOCKET`` is not set."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET") or None
        if address is not None and address.startswith("@"):
            address = "\0" + address[1:]
        self._address = address
        self._watchdog_usec = _watchdog_usec(env)
        self._socket: socket.socket | None = None
        self._failed = False

    @property
    def enabled(self) -> bool:
        return self._address is not None

    @property
    def watchdog_interval_s(self) -> float | None:
        """How often to ping: half of systemd's ``WatchdogSec``; None without a watchdog."""
        if self._address is None or self._watchdog_usec is None:
            return None
        return self._watchdog_usec / 2_000_000

    def notify(self, *lines: str) -> bool:
        """Send ``lines`` as one message; False when not under systemd or the send failed."""
        if self._address is None:
            return False
        try:
            if self._socket is None:
                self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._socket.setblocking(False)  # never hold up the event loop
            self._socket.sendto("\n".join(lines).encode(), self._address)
        except OSError as exc:
            if not self._failed:  # once: a broken socket would otherwise log every cycle
                log.warning("sd_notify.failed", error=str(exc))
                self._failed = True
            return False
        return True

    def ready(self, status: str) -> bool:
        return self.notify("READY=1", f"STATUS={status}")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def status(self, status: str) -> bool:
        return self.notify(f"STATUS={status}")

    def stopping(self, status: str) -> bool:
        return self.notify("STOPPING=1", f"STATUS={status}")

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def _watchdog_usec(env: Mapping[str, str]) -> int | None:
    raw = env.get("WATCHDOG_USEC")
    if not raw:
        return None
    pid = env.get("WATCHDOG_PID")
    if pid and pid != str(os.getpid()):
        return None  # meant for another process (e.g. a wrapper script)
    try:
        usec = int(raw)
    except ValueError:
        return None
    return usec if usec > 0 else None


class Watchdog:
    """Pings systemd's watchdog while the cycle loop makes progress.

    The daemon calls :meth:`progress` when a cycle starts and when it ends; the background
    task pings every ``WatchdogSec / 2`` as long as the last progress is recent enough for
    a healthy loop (the poll interval plus a cycle's worst case), and stops pinging if it
    is not, so systemd restarts a hung daemon.
    """

    def __init__(
        self,
        notifier: SystemdNotifier,
        poll_interval_s: float,
        stall_s: float = CYCLE_STALL_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._notifier = notifier
        self._limit_s = poll_interval_s + stall_s
        self._monotonic = monotonic
        self._last_progress = monotonic()
        self._task: asyncio.Task[None] | None = None

    def progress(self) -> None:
        """The loop moved (a cycle started or ended): ping now and count it."""
        self._last_progress = self._monotonic()
        self._notifier.watchdog()

    def alive(self) -> bool:
        """Whether the loop made progress recently enough to vouch for it."""
        return self._monotonic() - self._last_progress <= self._limit_s

    def tick(self) -> bool:
        """One timer tick: ping if the loop is alive; returns whether it pinged."""
        if not self.alive():
            log.error(
                "watchdog.loop_stalled",
                seconds_since_progress=round(self._monotonic() - self._last_progress, 1),
            )
            return False
        return self._notifier.watchdog()

    async def _run(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            self.tick()

    def start(self) -> None:
        """Start the timer task when systemd asked for a watchdog (``WATCHDOG_USEC``)."""
        interval = self._notifier.watchdog_interval_s
        self._last_progress = self._monotonic()  # start-up (markets, leverage) is progress
        if interval is not None and self._task is None:
            self._task = asyncio.create_task(self._run(interval), name="sd-watchdog")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
