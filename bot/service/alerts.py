"""Alerts from the audit log, sent through apprise without ever holding up a cycle.

A background task reads the audit log by id (every event the daemon writes is already
there, so no code that writes events needs to know about alerts), turns the kinds worth
a person's attention into alerts, and puts them on a bounded queue; a second task sends
them one at a time with a timeout. A full queue drops the alert with a log line. It
starts after the newest event at start-up: history is not replayed.

A condition that repeats every cycle (a risk veto, an unreachable exchange) alerts once
when it begins, and again only after the pair has had a normal decision in between.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import structlog

from bot.config import AlertEvent, AlertsConfig
from bot.store.repository import AuditEvent, Repository

log = structlog.get_logger(__name__)

FILL_STATUSES = ("order.filled", "order.partially_filled", "order.canceled")
READ_BATCH = 500  # audit events read per query


@dataclass(frozen=True, slots=True)
class Alert:
    """One notification: which event kind, a title and a body (no secrets)."""

    event: AlertEvent
    title: str
    body: str


# Sends one alert; True when every URL took it.
Send = Callable[[Alert], Awaitable[bool]]


def _filled(event: AuditEvent) -> bool:
    try:
        return Decimal(str(event.data.get("filled") or 0)) > 0
    except InvalidOperation:
        return False


class AlertRules:
    """Maps audit events to alerts, once per onset of a repeating condition."""

    def __init__(self, events: Sequence[AlertEvent]) -> None:
        self._wanted = set(events)
        self._denied: set[str] = set()  # pairs whose veto was already reported
        self._feed_down = False

    def alert_for(self, event: AuditEvent) -> Alert | None:
        """The alert this event calls for, or None."""
        alert = self._classify(event)
        if alert is None or alert.event not in self._wanted:
            return None
        return alert

    def _classify(self, event: AuditEvent) -> Alert | None:
        pair = event.pair or "all pairs"
        where = f"\n\n{pair} · audit event #{event.id} at {event.ts.isoformat()}"
        kind = event.kind
        if kind == "decision":
            # The pair decides normally again: a later veto or outage is news.
            self._denied.discard(event.pair or "")
            self._feed_down = False
            return None
        if kind in FILL_STATUSES and _filled(event):
            return Alert("fill", f"hedgebot: {pair} order filled", event.summary + where)
        if kind == "order.rejected":
            return Alert("order_failed", f"hedgebot: {pair} order rejected", event.summary + where)
        if kind == "risk.denied":
            self._feed_down = False
            if event.pair in self._denied:
                return None
            self._denied.add(event.pair or "")
            return Alert("risk_denied", f"hedgebot: {pair} order vetoed", event.summary + where)
        if kind == "pair.paused":
            return Alert("paused", f"hedgebot: {pair} paused", event.summary + where)
        if kind == "cycle.observe_failed":
            if self._feed_down:
                return None
            self._feed_down = True
            return Alert("stale_feed", "hedgebot: exchange data unavailable", event.summary + where)
        return None


class RedactSecrets(logging.Filter):
    """Blanks the alert URLs, and every long part of them (tokens), out of log records."""

    def __init__(self, urls: Sequence[str]) -> None:
        super().__init__()
        parts: set[str] = set()
        for url in urls:
            parts.add(url)
            _, _, rest = url.partition("://")
            parts.update(p for p in re.split(r"[/:@?&=#]", rest) if len(p) >= 6)
        # Longest first, so a URL is replaced whole before its parts.
        self._secrets = sorted(parts, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def apprise_sender(urls: Sequence[str], timeout_s: float) -> Send:
    """A Send over apprise's async API; the URLs stay inside the apprise object.

    apprise's own log lines (why a service failed) are kept, with the URLs' secrets
    blanked out.
    """
    import apprise  # only when alerts are configured: 0.1 s of start-up otherwise

    redact = RedactSecrets(urls)
    apprise_log = logging.getLogger("apprise")
    for old in [f for f in apprise_log.filters if isinstance(f, RedactSecrets)]:
        apprise_log.removeFilter(old)
    apprise_log.addFilter(redact)
    notifier = apprise.Apprise()
    for index, url in enumerate(urls):
        if not notifier.add(url):
            # The URL itself may hold a token: name it by position only.
            raise ValueError(f"alerts.urls[{index}] is not a URL apprise understands")

    async def send(alert: Alert) -> bool:
        result = await notifier.async_notify(body=alert.body, title=alert.title, timeout=timeout_s)
        return bool(result)

    return send


class AuditAlerts:
    """Tails the audit log and sends alerts in the background."""

    def __init__(
        self,
        config: AlertsConfig,
        repository: Repository,
        send: Send | None = None,
    ) -> None:
        self._config = config
        self._repo = repository
        self._send = send or apprise_sender(
            [url.get_secret_value() for url in config.urls], config.timeout_s
        )
        self._rules = AlertRules(config.events)
        self._queue: asyncio.Queue[Alert] = asyncio.Queue(maxsize=config.queue_size)
        self._after_id = 0
        self._tasks: list[asyncio.Task[None]] = []
        self.sent = 0
        self.failed = 0
        self.dropped = 0

    async def start(self) -> None:
        """Start after the newest event so far, then tail and send in the background."""
        newest = await self._repo.audit_events(limit=1)
        self._after_id = newest[-1].id if newest else 0
        self._tasks = [
            asyncio.create_task(self._tail(), name="alerts-tail"),
            asyncio.create_task(self._deliver(), name="alerts-send"),
        ]
        log.info("alerts.started", urls=len(self._config.urls), events=self._config.events)

    async def poll_once(self) -> int:
        """Read the events written since the last poll; returns how many alerts it queued."""
        queued = 0
        while True:
            events = await self._repo.audit_events_after(self._after_id, READ_BATCH)
            for event in events:
                self._after_id = event.id
                alert = self._rules.alert_for(event)
                if alert is not None and self._enqueue(alert):
                    queued += 1
            if len(events) < READ_BATCH:
                return queued

    def _enqueue(self, alert: Alert) -> bool:
        try:
            self._queue.put_nowait(alert)
        except asyncio.QueueFull:
            self.dropped += 1
            log.warning(
                "alert.dropped", alert=alert.event, title=alert.title, queued=self._queue.qsize()
            )
            return False
        return True

    async def _tail(self) -> None:
        while True:
            try:
                await self.poll_once()
            except Exception as exc:  # a database hiccup must not end alerting
                log.warning("alerts.read_failed", error=f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(self._config.poll_interval_s)

    async def _deliver(self) -> None:
        while True:
            alert = await self._queue.get()
            try:
                # apprise has its own per-service timeout; this bounds the whole call.
                async with asyncio.timeout(self._config.timeout_s + 1):
                    ok = await self._send(alert)
            except TimeoutError:
                ok = False
                log.warning("alert.timeout", alert=alert.event, timeout_s=self._config.timeout_s)
            except Exception as exc:
                ok = False
                # The exception text may quote a URL (and its token): log only its class.
                log.warning("alert.send_failed", alert=alert.event, error=type(exc).__name__)
            if ok:
                self.sent += 1
                log.info("alert.sent", alert=alert.event, title=alert.title)
            else:
                self.failed += 1
                log.warning("alert.not_delivered", alert=alert.event, title=alert.title)
            self._queue.task_done()

    async def stop(self) -> None:
        """Stop tailing and sending; alerts still queued are dropped with a log line."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if not self._queue.empty():
            log.warning("alerts.unsent_at_stop", count=self._queue.qsize())
