"""Alerts from the audit log through apprise to a local webhook; never in a cycle's way."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest_asyncio
from aiohttp import web

from bot.clock import FakeClock
from bot.config import AlertsConfig, Settings
from bot.exchange.feeds import ManualFeed
from bot.service.alerts import Alert, AlertRules, AuditAlerts, RedactSecrets
from bot.service.daemon import HedgeDaemon
from bot.service.notify import SystemdNotifier
from bot.service.runtime import ServiceRuntime
from bot.service.wiring import build_daemon
from bot.store.repository import AuditEvent, Repository

D = Decimal


class Receiver:
    """A webhook on 127.0.0.1 that records what apprise posts; optionally never answers."""

    def __init__(self, hang: bool = False) -> None:
        self.hang = hang
        self.bodies: list[dict[str, Any]] = []
        self.arrived = asyncio.Event()
        self.release = asyncio.Event()
        self.hanging = 0
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.json())
        self.arrived.set()
        if self.hang:
            self.hanging += 1
            await self.release.wait()
            self.hanging -= 1
        return web.json_response({})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        self.release.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def wait_for(self, count: int) -> None:
        async with asyncio.timeout(30):
            while len(self.bodies) < count:
                self.arrived.clear()
                await self.arrived.wait()


@pytest_asyncio.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    await r.start()
    yield r
    await r.stop()


def settings(port: int) -> Settings:
    def pair(name: str, leverage: str) -> dict[str, Any]:
        return {
            "name": name,
            "spot_symbol": f"{name}/USDT",
            "perp_symbol": f"{name}/USDT:USDT",
            "band": "0.02",
            "max_order_notional": "1000000",
            "leverage": leverage,
        }

    return Settings(
        # ETH asks for more leverage than the risk gate allows: every order is vetoed.
        pairs=[pair("BTC", "2"), pair("ETH", "5")],
        paper={"balances": {"BTC": "1", "ETH": "10", "USDT": "100000"}, "spread_bps": "0"},
        risk={"max_leverage": "3"},
        poll_interval_s=10,
        http={"enabled": False},
        alerts={
            "urls": [f"json://127.0.0.1:{port}/hook?token=s3cr3t-webhook-token"],
            "poll_interval_s": 0.02,
            "timeout_s": 30,
        },
    )


async def start_daemon(
    config: Settings, repository: Repository, clock: FakeClock
) -> tuple[ServiceRuntime, HedgeDaemon]:
    runtime = ServiceRuntime(config, repository, notifier=SystemdNotifier({}))
    feed = ManualFeed({"BTC": D(60000), "ETH": D(3000)})
    built = await build_daemon(config, repository, clock, feed=feed, runtime=runtime)
    await runtime.start_alerts()
    await built.daemon.start()
    return runtime, built.daemon


async def test_a_fill_and_a_risk_veto_reach_the_webhook(
    repository: Repository, clock: FakeClock, receiver: Receiver
) -> None:
    # Something from before the start: not replayed.
    await repository.append_audit("risk.denied", "old veto", pair="ETH")
    runtime, daemon = await start_daemon(settings(receiver.port), repository, clock)
    try:
        report = await daemon.run_cycle(1)
        assert report.actions == {"BTC": "order filled", "ETH": "denied"}
        await receiver.wait_for(2)
        by_title = {body["title"]: body["message"] for body in receiver.bodies}
        assert set(by_title) == {"hedgebot: BTC order filled", "hedgebot: ETH order vetoed"}
        assert "filled: sell 1" in by_title["hedgebot: BTC order filled"]
        assert "max_leverage 3" in by_title["hedgebot: ETH order vetoed"]
        assert all("s3cr3t" not in str(body) for body in receiver.bodies)
        assert all("old veto" not in str(body) for body in receiver.bodies)
    finally:
        await runtime.close()


async def test_a_webhook_that_never_answers_does_not_hold_up_the_cycles(
    repository: Repository, clock: FakeClock
) -> None:
    hanging = Receiver(hang=True)
    await hanging.start()
    runtime, daemon = await start_daemon(settings(hanging.port), repository, clock)
    try:
        await daemon.run_cycle(1)
        await hanging.wait_for(1)  # the first alert is stuck in the webhook
        assert await daemon.run(asyncio.Event(), max_cycles=5, first_cycle=2) == 5
        assert hanging.hanging == 1  # still unanswered after five more cycles
        assert runtime.alerts is not None
        assert runtime.alerts.sent == 0
    finally:
        await hanging.stop()
        await runtime.close()


def event(
    kind: str, pair: str | None = "BTC", data: dict[str, Any] | None = None, id_: int = 1
) -> AuditEvent:
    return AuditEvent(
        id=id_,
        ts=datetime(2026, 1, 1, tzinfo=UTC),
        pair=pair,
        kind=kind,
        summary=f"{kind} happened",
        decision_id=None,
        data=data or {},
    )


def test_rules_map_the_five_kinds_and_ignore_the_rest() -> None:
    rules = AlertRules(["fill", "risk_denied", "paused", "order_failed", "stale_feed"])

    def kind_of(e: AuditEvent) -> str | None:
        alert = rules.alert_for(e)
        return None if alert is None else alert.event

    assert kind_of(event("order.filled", data={"filled": "0.5"})) == "fill"
    assert kind_of(event("order.canceled", data={"filled": "0.1"})) == "fill"  # IOC partial
    assert kind_of(event("order.canceled", data={"filled": "0"})) is None
    assert kind_of(event("order.rejected")) == "order_failed"
    assert kind_of(event("pair.paused")) == "paused"
    assert kind_of(event("risk.denied")) == "risk_denied"
    assert kind_of(event("cycle.observe_failed", pair=None)) == "stale_feed"
    assert kind_of(event("decision")) is None
    assert kind_of(event("order.intent")) is None
    assert kind_of(event("daemon.start", pair=None)) is None


def test_a_repeating_veto_or_outage_alerts_once_until_the_pair_recovers() -> None:
    rules = AlertRules(["risk_denied", "stale_feed"])
    assert rules.alert_for(event("risk.denied")) is not None
    assert rules.alert_for(event("risk.denied")) is None  # the next cycle, same veto
    assert rules.alert_for(event("risk.denied", pair="ETH")) is not None  # another pair
    assert rules.alert_for(event("cycle.observe_failed", pair=None)) is not None
    assert rules.alert_for(event("cycle.observe_failed", pair=None)) is None
    assert rules.alert_for(event("decision")) is None  # BTC decides normally again
    assert rules.alert_for(event("risk.denied")) is not None
    assert rules.alert_for(event("cycle.observe_failed", pair=None)) is not None


def test_events_not_chosen_are_not_sent() -> None:
    rules = AlertRules(["paused"])
    assert rules.alert_for(event("order.filled", data={"filled": "1"})) is None
    assert rules.alert_for(event("pair.paused")) is not None


async def test_a_full_queue_drops_alerts_with_a_count_instead_of_waiting(
    repository: Repository,
) -> None:
    never = asyncio.Event()

    async def send(alert: Alert) -> bool:
        await never.wait()
        return True

    alerts = AuditAlerts(AlertsConfig(urls=[], queue_size=2), repository, send=send)
    for n in range(3):
        await repository.append_audit("order.filled", f"fill {n}", {"filled": "1"}, pair="BTC")
    assert await alerts.poll_once() == 2
    assert alerts.dropped == 1
    assert await alerts.poll_once() == 0  # read once, not again


def test_apprise_log_lines_have_the_url_and_its_token_blanked() -> None:
    url = "tgram://123456789:AAE-secret-token/987654"
    redact = RedactSecrets([url])
    record = logging.LogRecord(
        "apprise",
        logging.WARNING,
        __file__,
        1,
        "failed %s via %s",
        ("123456789:AAE-secret-token", url),
        None,
    )
    assert redact.filter(record)
    message = record.getMessage()
    assert "secret-token" not in message
    assert "123456789" not in message
