"""What runs beside the cycle loop in ``hedgebot run``: HTTP endpoints, metrics, alerts
and the systemd notifications, started and stopped together.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping, Sequence

import structlog

from bot.config import HttpConfig, Settings
from bot.domain.words import plural
from bot.exchange.gateway import ExchangeGateway
from bot.service.alerts import AuditAlerts
from bot.service.daemon import CycleObserver, CycleReport
from bot.service.dashboard import DashboardApi
from bot.service.errors import ServiceSetupError
from bot.service.http import HttpService, ServiceHealth
from bot.service.metrics import DaemonMetrics
from bot.service.notify import SystemdNotifier, Watchdog
from bot.store.repository import Repository

log = structlog.get_logger(__name__)

__all__ = ["ServiceRuntime", "ServiceSetupError"]


class _Observers:
    """Fans a cycle's start and end out to several observers; one failing spoils none."""

    def __init__(self, observers: Sequence[CycleObserver]) -> None:
        self._observers = list(observers)

    def cycle_started(self, cycle: int) -> None:
        for observer in self._observers:
            try:
                observer.cycle_started(cycle)
            except Exception:
                log.exception("observer.failed", observer=type(observer).__name__)

    def cycle_finished(self, report: CycleReport, duration_s: float) -> None:
        for observer in self._observers:
            try:
                observer.cycle_finished(report, duration_s)
            except Exception:
                log.exception("observer.failed", observer=type(observer).__name__)


class _SystemdProgress:
    """Pings the watchdog and updates systemd's STATUS line as cycles go by."""

    def __init__(self, notifier: SystemdNotifier, watchdog: Watchdog, pairs: int) -> None:
        self._notifier = notifier
        self._watchdog = watchdog
        self._pairs = pairs

    def cycle_started(self, cycle: int) -> None:
        self._watchdog.progress()

    def cycle_finished(self, report: CycleReport, duration_s: float) -> None:
        self._watchdog.progress()
        ok = 0 if "*" in report.errors else self._pairs - len(report.errors)
        self._notifier.status(
            f"cycle {report.cycle}: {ok} of {plural(self._pairs, 'pair')} ok in {duration_s:.2f} s"
        )


class ServiceRuntime:
    """HTTP endpoints, metrics, alerts and sd_notify around one daemon."""

    def __init__(
        self,
        settings: Settings,
        repository: Repository,
        notifier: SystemdNotifier | None = None,
    ) -> None:
        self._settings = settings
        self._repo = repository
        self.notifier = notifier or SystemdNotifier()
        self.metrics = DaemonMetrics()
        self.health = ServiceHealth([p.name for p in settings.pairs], settings.poll_interval_s)
        self.watchdog = Watchdog(self.notifier, settings.poll_interval_s)
        self.http: HttpService | None = None
        self.alerts: AuditAlerts | None = None
        self.observer: CycleObserver = _Observers(
            [
                self.metrics,
                self.health,
                _SystemdProgress(self.notifier, self.watchdog, len(settings.pairs)),
            ]
        )

    async def start_http(self) -> int | None:
        """Listen for /healthz, /readyz, /metrics and the dashboard; the bound port, None
        when disabled."""
        config = self._settings.http
        if not config.enabled:
            return None
        dashboard = DashboardApi(self._repo, bind_host=config.host) if config.dashboard else None
        http = HttpService(config, self.health, self.metrics, self._repo, dashboard)
        try:
            port = await http.start()
        except OSError as exc:
            raise _cannot_listen(config, exc) from None
        self.http = http
        return port

    def watch_gateways(self, gateways: Mapping[str, ExchangeGateway]) -> None:
        self.metrics.watch_gateways(gateways)

    async def start_alerts(self) -> None:
        """Tail the audit log for alerts, if any URL is configured."""
        config = self._settings.alerts
        if not config.enabled or not config.urls:
            return
        try:
            alerts = AuditAlerts(config, self._repo)
        except ValueError as exc:
            raise ServiceSetupError(f"{exc}; see the apprise URL formats") from None
        await alerts.start()
        self.alerts = alerts

    def ready(self) -> None:
        """Tell systemd the daemon is up; start the watchdog timer if it asked for one."""
        pairs = ", ".join(p.name for p in self._settings.pairs)
        self.notifier.ready(f"running in {self._settings.mode} mode: {pairs}")
        self.watchdog.start()

    def stopping(self, reason: str) -> None:
        self.notifier.stopping(f"stopping: {reason}")

    async def close(self) -> None:
        """Stop the watchdog, alerts and the HTTP server (in that order)."""
        await self.watchdog.stop()
        if self.alerts is not None:
            await self.alerts.stop()
            self.alerts = None
        if self.http is not None:
            await self.http.stop()
            self.http = None
        self.notifier.close()


def _cannot_listen(config: HttpConfig, exc: OSError) -> ServiceSetupError:
    return ServiceSetupError(
        f"http: cannot listen on {config.host}:{config.port} ({exc.strerror or exc}); "
        "set [http] port (HEDGEBOT_HTTP__PORT) to a free port, or [http] enabled = false"
    )


def check_http_port(config: HttpConfig) -> None:
    """Before anything is written: the configured port can be listened on (bound and let
    go again; the address is reused as aiohttp reuses it). A clear error, not a database
    file left behind by a start that could never serve."""
    if not config.enabled or config.port == 0:
        return
    try:
        infos = socket.getaddrinfo(config.host, config.port, type=socket.SOCK_STREAM)
        family, kind, proto, _, address = infos[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
            probe.listen()
    except OSError as exc:
        raise _cannot_listen(config, exc) from None
