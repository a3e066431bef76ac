"""/healthz, /readyz and /metrics of a daemon running on the paper venue, scraped over HTTP."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.clock import FakeClock
from bot.config import HttpConfig, Settings
from bot.domain.models import Ticker
from bot.exchange.feeds import ManualFeed
from bot.exchange.gateway import RetryableError
from bot.exchange.paper import PaperVenue
from bot.service.daemon import CycleReport, HedgeDaemon
from bot.service.http import HttpService, ServiceHealth
from bot.service.metrics import DaemonMetrics
from bot.service.notify import SystemdNotifier
from bot.service.runtime import ServiceRuntime, ServiceSetupError
from bot.service.wiring import build_daemon
from bot.store.repository import Repository, create_engine

D = Decimal


class FlakyVenue(PaperVenue):
    """A paper venue whose market data is unreachable while ``down`` is set."""

    down = False

    async def fetch_tickers(self, symbols: Sequence[str]) -> Mapping[str, Ticker]:
        if self.down:
            raise RetryableError("fetch_tickers: connection reset")
        return await super().fetch_tickers(symbols)


def config(**extra: Any) -> Settings:
    pairs = [
        {
            "name": name,
            "spot_symbol": f"{name}/USDT",
            "perp_symbol": f"{name}/USDT:USDT",
            "band": "0.02",
            "max_order_notional": "1000000",
            "leverage": "2",
        }
        for name in ("BTC", "ETH")
    ]
    paper = {"balances": {"BTC": "1", "ETH": "10", "USDT": "100000"}, "spread_bps": "0"}
    return Settings(
        **{"pairs": pairs, "paper": paper, "poll_interval_s": 10, "http": {"port": 0}, **extra}
    )


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def get(session: aiohttp.ClientSession, port: int, path: str) -> tuple[int, Any]:
    async with session.get(f"http://127.0.0.1:{port}{path}") as response:
        if response.content_type == "application/json":
            return response.status, await response.json()
        return response.status, await response.text()


async def test_endpoints_follow_a_running_daemon_from_start_to_an_exchange_outage(
    repository: Repository, clock: FakeClock
) -> None:
    settings = config()
    runtime = ServiceRuntime(settings, repository, notifier=SystemdNotifier({}))
    port = await runtime.start_http()
    assert port is not None
    assert port > 0
    feed = ManualFeed({"BTC": D(60000), "ETH": D(3000)})
    built = await build_daemon(
        settings, repository, clock, feed=feed, venue_class=FlakyVenue, runtime=runtime
    )
    venue, daemon = built.venue, built.daemon
    assert isinstance(venue, FlakyVenue)
    await daemon.start()
    stop = asyncio.Event()
    try:
        async with aiohttp.ClientSession() as http:
            assert await get(http, port, "/healthz") == (200, {"status": "alive"})
            status, body = await get(http, port, "/readyz")
            assert status == 503
            assert body["reasons"] == ["no cycle has finished without errors yet"]

            assert await daemon.run(stop, max_cycles=2) == 2
            assert await get(http, port, "/readyz") == (200, {"status": "ready", "reasons": []})
            status, text = await get(http, port, "/metrics")
            assert status == 200
            metrics = samples(text)
            assert metrics[("hedgebot_cycle_duration_seconds_count", ())] == 2
            assert metrics[("hedgebot_cycles_total", (("outcome", "ok"),))] == 2
            # Cycle 1 sold the whole hedge in one order; cycle 2 found it in the band.
            btc_filled = (("outcome", "filled"), ("pair", "BTC"))
            assert metrics[("hedgebot_orders_total", btc_filled)] == 1
            assert metrics[("hedgebot_hedge_ratio", (("pair", "BTC"),))] == 1.0
            assert metrics[("hedgebot_target_ratio", (("pair", "ETH"),))] == 1.0
            assert metrics[("hedgebot_drift_base_qty", (("pair", "BTC"),))] == 0.0
            assert metrics[("hedgebot_decisions_total", (("action", "none"), ("pair", "BTC")))] == 1
            fees = metrics[("hedgebot_fees_paid", (("asset", "USDT"), ("pair", "BTC")))]
            assert fees == pytest.approx(60000 * 0.0005)  # 1 BTC at 60000, taker 5 bp

            venue.down = True
            await daemon.run(stop, max_cycles=1, first_cycle=3)
            status, body = await get(http, port, "/readyz")
            assert status == 503
            assert "pair BTC failed in the last cycle: observing the venue failed" in (
                " ".join(body["reasons"])
            )
            metrics = samples((await get(http, port, "/metrics"))[1])
            errors = ("hedgebot_exchange_errors_total", (("error_class", "RetryableError"),))
            assert metrics[errors] == 1
            assert metrics[("hedgebot_cycles_total", (("outcome", "errors"),))] == 1

            venue.down = False
            await daemon.run(stop, max_cycles=1, first_cycle=4)
            assert (await get(http, port, "/readyz"))[0] == 200
    finally:
        await runtime.close()


def test_readiness_turns_stale_when_no_clean_cycle_ends_in_two_intervals_and_a_grace() -> None:
    now = [100.0]
    health = ServiceHealth(["BTC"], poll_interval_s=10, monotonic=lambda: now[0])
    health.cycle_finished(CycleReport(1), 0.1)
    assert health.reasons() == []
    now[0] += 50  # 2 x 10 s + 30 s
    assert health.reasons() == []
    now[0] += 1
    [reason] = health.reasons()
    assert reason.startswith("data stale: last cycle without errors ended 51 s ago")


async def test_readyz_names_an_unreachable_database() -> None:
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    engine = create_engine(f"postgresql+asyncpg://hedgebot@127.0.0.1:{port}/hedgebot")
    health = ServiceHealth(["BTC"], poll_interval_s=10)
    health.cycle_finished(CycleReport(1), 0.1)
    service = HttpService(
        HttpConfig(port=0), health, DaemonMetrics(), Repository(engine, FakeClock())
    )
    port = await service.start()
    try:
        async with aiohttp.ClientSession() as http:
            status, body = await get(http, port, "/readyz")
        assert status == 503
        [reason] = body["reasons"]
        assert reason.startswith("database unreachable: ")
    finally:
        await service.stop()
        await engine.dispose()


async def test_a_port_in_use_is_one_line_naming_the_port_and_the_setting(
    repository: Repository,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        runtime = ServiceRuntime(
            config(http={"port": port}), repository, notifier=SystemdNotifier({})
        )
        with pytest.raises(ServiceSetupError) as caught:
            await runtime.start_http()
    message = str(caught.value)
    assert "\n" not in message
    assert f"127.0.0.1:{port}" in message
    assert "HEDGEBOT_HTTP__PORT" in message


async def test_disabled_http_listens_nowhere(repository: Repository) -> None:
    runtime = ServiceRuntime(
        config(http={"enabled": False}), repository, notifier=SystemdNotifier({})
    )
    assert await runtime.start_http() is None
    await runtime.close()


class WaitingGateway:
    limiter_waits = 7


def test_limiter_waits_are_read_from_each_account_at_scrape_time() -> None:
    metrics = DaemonMetrics()
    gateway = WaitingGateway()
    metrics.watch_gateways({"main": gateway})  # type: ignore[dict-item]
    assert (
        samples(metrics.render().decode())[("hedgebot_limiter_waits_total", (("account", "main"),))]
        == 7
    )
    gateway.limiter_waits = 9
    assert (
        samples(metrics.render().decode())[("hedgebot_limiter_waits_total", (("account", "main"),))]
        == 9
    )


def test_two_daemons_metrics_do_not_share_a_registry() -> None:
    first, second = DaemonMetrics(), DaemonMetrics()
    first.cycle_finished(CycleReport(1), 0.5)
    assert samples(first.render().decode())[("hedgebot_cycles_total", (("outcome", "ok"),))] == 1
    assert ("hedgebot_cycles_total", (("outcome", "ok"),)) not in samples(second.render().decode())


async def test_funding_received_by_the_short_hedge_is_counted(
    repository: Repository, clock: FakeClock
) -> None:
    settings = config()
    metrics = DaemonMetrics()
    feed = ManualFeed({"BTC": D(60000), "ETH": D(3000)})
    feed.set_funding_rate("BTC", D("0.0001"))
    feed.set_funding_rate("ETH", D(0))
    venue = await PaperVenue.open(settings.paper, feed, clock, repository)
    daemon = HedgeDaemon(settings, repository, venue, clock, observer=metrics)
    await daemon.start()
    await daemon.run(asyncio.Event(), max_cycles=1)  # 1 BTC short from here on
    clock.advance(8 * 3600)  # past a funding boundary
    await daemon.run(asyncio.Event(), max_cycles=1, first_cycle=2)
    funding = samples(metrics.render().decode())
    # A short receives qty x mark x rate = 1 x 60000 x 0.0001.
    assert funding[("hedgebot_funding_net", (("asset", "USDT"), ("pair", "BTC")))] == 6.0


async def test_an_alert_url_apprise_does_not_know_is_one_line_without_the_url(
    repository: Repository,
) -> None:
    settings = config(alerts={"urls": ["nosuchscheme://token-abcdef/x"]})
    runtime = ServiceRuntime(settings, repository, notifier=SystemdNotifier({}))
    with pytest.raises(ServiceSetupError) as caught:
        await runtime.start_alerts()
    assert str(caught.value) == (
        "alerts.urls[0] is not a URL apprise understands; see the apprise URL formats"
    )


async def test_a_pair_that_paused_itself_makes_readyz_fail_until_resumed(
    repository: Repository, clock: FakeClock
) -> None:
    settings = config()
    health = ServiceHealth(["BTC", "ETH"], poll_interval_s=10)
    venue = await PaperVenue.open(
        settings.paper, ManualFeed({"BTC": D(60000), "ETH": D(3000)}), clock, repository
    )
    daemon = HedgeDaemon(settings, repository, venue, clock, observer=health)
    await daemon.start()
    stop = asyncio.Event()
    await daemon.run(stop, max_cycles=1)
    assert health.reasons() == []
    # A pause by hand is the user's choice, not a failure: still ready.
    await repository.set_pair_paused("ETH", True, "checking keys", source="user")
    await daemon.run(stop, max_cycles=1, first_cycle=2)
    assert health.reasons() == []
    reason = "3 consecutive orders rejected or failed (max_consecutive_failures 3)"
    await repository.set_pair_paused("BTC", True, reason, source="auto")
    await daemon.run(stop, max_cycles=1, first_cycle=3)
    assert health.reasons() == [f"pair BTC paused itself: {reason}; `hedgebot resume BTC`"]
    await repository.set_pair_paused("BTC", False, "resumed by hand", source="user")
    await daemon.run(stop, max_cycles=1, first_cycle=4)
    assert health.reasons() == []
