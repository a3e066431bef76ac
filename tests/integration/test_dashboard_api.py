"""The dashboard's JSON and page (bot/service/dashboard.py) over a paper daemon's records,
and the metrics the monitoring files rely on (pauses, the database, band, liquidation)."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiohttp.web import Application
from prometheus_client.parser import text_string_to_metric_families

from bot.clock import FakeClock
from bot.config import HttpConfig
from bot.exchange.feeds import ManualFeed
from bot.service.dashboard import SECURITY_HEADERS, DashboardApi, allowed_hosts
from bot.service.http import HttpService, ServiceHealth
from bot.service.metrics import DaemonMetrics
from bot.store.dashboard_reads import DashboardReads
from bot.store.repository import Repository, create_engine
from tests.support.builders import open_daemon, pair, settings

CYCLES = 12


@pytest.fixture
async def recorded(repository: Repository, clock: FakeClock) -> Repository:
    """Twelve cycles of a paper daemon on ETH (hedged at 0.5), ten seconds apart, each
    stored (``record_every_s = 0``: no heartbeats between changes)."""
    feed = ManualFeed({"ETH": Decimal(3000)})
    config = settings([pair("ETH", target="0.5")], balances={"ETH": "10", "USDT": "50000"})
    config = config.model_copy(
        update={"storage": config.storage.model_copy(update={"record_every_s": 0.0})}
    )
    daemon, _ = await open_daemon(config, repository, clock, feed)
    for cycle in range(1, CYCLES + 1):
        feed.set_price("ETH", Decimal(3000 + cycle))
        report = await daemon.run_cycle(cycle)
        assert not report.errors, report.errors
        clock.advance(10)
    return repository


@pytest.fixture
async def client(recorded: Repository, clock: FakeClock) -> AsyncIterator[TestClient[Any, Any]]:
    app = Application()
    DashboardApi(recorded, clock).add_routes(app)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def get_json(client: TestClient[Any, Any], path: str) -> tuple[int, Any]:
    answer = await client.get(path)
    return answer.status, await answer.json()


async def test_pairs_show_the_ratio_against_target_and_band_and_the_last_action(
    client: TestClient[Any, Any],
) -> None:
    status, body = await get_json(client, "/api/pairs")
    assert status == 200
    [eth] = body["pairs"]
    assert eth["pair"] == "ETH"
    assert (eth["ratio"], eth["target_ratio"], eth["band"]) == ("0.5000", "0.5", "0.02")
    assert eth["in_band"] is True
    assert (Decimal(eth["spot_qty"]), Decimal(eth["hedge_qty"])) == (10, 5)
    assert eth["health"] == "ok"
    assert eth["paused"] is None
    assert eth["last_action"].startswith("sell 5")


async def test_the_series_covers_the_window_as_ratio_target_band_and_values(
    client: TestClient[Any, Any],
) -> None:
    status, body = await get_json(client, "/api/series?pair=ETH&window=1h")
    assert status == 200
    assert body["decisions"] == CYCLES
    points = body["points"]
    assert len(points) == CYCLES
    assert points[0]["ratio"] == 0.0  # before the first order
    last = points[-1]
    assert (last["ratio"], last["target"], last["band"]) == (0.5, 0.5, 0.02)
    # Half of the spot's value is covered by the short, half is not.
    assert last["hedged"] == pytest.approx(last["unhedged"])
    assert last["hedged"] + last["unhedged"] == pytest.approx(10 * (3000 + CYCLES))


async def test_a_long_window_is_thinned_in_the_database_to_the_points_asked(
    recorded: Repository, clock: FakeClock
) -> None:
    reads = DashboardReads(recorded.engine, clock)
    since = clock.now().replace(year=2000)
    series = await reads.decision_series("ETH", since, points=5)
    assert (series.total, series.stride) == (CYCLES, 3)  # ceil(12 / 5)
    assert len(series.points) == 5  # rows 1, 4, 7, 10 and the last, 12
    every = await reads.decision_series("ETH", since, points=1000)
    assert [p.at for p in series.points] == [every.points[i].at for i in (0, 3, 6, 9, 11)]
    assert (await reads.decision_series("BTC", since, points=5)).points == []


async def test_the_audit_tail_filters_by_pair_and_kind_newest_first(
    client: TestClient[Any, Any], recorded: Repository
) -> None:
    await recorded.append_audit("note.test", "about BTC", pair="BTC")
    status, body = await get_json(client, "/api/audit?limit=3")
    assert status == 200
    ids = [e["id"] for e in body["events"]]
    assert len(ids) == 3
    assert ids == sorted(ids, reverse=True)
    _, body = await get_json(client, "/api/audit?pair=ETH&kind=decision&limit=500")
    kinds = {e["kind"] for e in body["events"]}
    assert kinds == {"decision"}
    assert {e["pair"] for e in body["events"]} == {"ETH"}
    _, body = await get_json(client, "/api/audit?kind=note")
    assert [e["summary"] for e in body["events"]] == ["about BTC"]


async def test_the_report_is_the_pnl_attribution_over_the_window(
    client: TestClient[Any, Any],
) -> None:
    status, body = await get_json(client, "/api/report?window=24h")
    assert status == 200
    [eth] = body["pairs"]
    assert eth["pair"] == "ETH"
    assert eth["observations"] == CYCLES
    assert set(eth) >= {"spot_pnl", "perp_pnl", "funding", "fees", "net", "hedge_effectiveness"}


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/api/series?pair=ETH&window=2h", "window must be one of 1h, 6h, 24h, 7d, 30d"),
        ("/api/series?window=1h", "pair is required"),
        ("/api/audit?limit=0", "limit must be a whole number from 1 to 500"),
        ("/api/audit?limit=501", "limit must be a whole number from 1 to 500"),
        ("/api/audit?kind=" + "x" * 65, "kind is longer than 64 characters"),
    ],
)
async def test_unbounded_or_unknown_queries_are_refused_in_one_line(
    client: TestClient[Any, Any], path: str, message: str
) -> None:
    assert await get_json(client, path) == (400, {"error": message})


async def test_the_page_is_served_with_its_assets_and_a_strict_content_policy(
    client: TestClient[Any, Any],
) -> None:
    root = await client.get("/", allow_redirects=False)
    assert (root.status, root.headers["Location"]) == (302, "/dashboard/")
    page = await client.get("/dashboard/")
    assert page.status == 200
    assert page.headers["Content-Security-Policy"] == SECURITY_HEADERS["Content-Security-Policy"]
    html = await page.text()
    for asset, kind in (("dashboard.js", "text/javascript"), ("dashboard.css", "text/css")):
        assert f"/dashboard/{asset}" in html
        answer = await client.get(f"/dashboard/{asset}")
        assert (answer.status, answer.content_type) == (200, kind)
    assert (await client.get("/dashboard/other.js")).status == 404
    # Nothing outside the daemon is referenced: no CDN, no font service.
    assert "http" not in html.replace('"http://www.w3.org', "")
    script = await (await client.get("/dashboard/dashboard.js")).text()
    assert "innerHTML" not in script
    assert "https://" not in script


async def test_on_loopback_it_answers_loopback_names_only(
    client: TestClient[Any, Any],
) -> None:
    # A page on another site, its name re-pointed at 127.0.0.1 (DNS rebinding), reads nothing.
    for path in ("/api/pairs", "/api/audit", "/dashboard/", "/"):
        answer = await client.get(path, headers={"Host": "evil.example:8780"})
        assert answer.status == 421
    assert (await client.get("/api/pairs", headers={"Host": "localhost:8780"})).status == 200
    assert allowed_hosts("10.0.0.5") is None  # behind a network of one's own: any name


async def test_the_dashboard_takes_no_writes(client: TestClient[Any, Any]) -> None:
    for path in ("/api/pairs", "/api/audit", "/dashboard/"):
        for method in ("POST", "PUT", "DELETE"):
            assert (await client.request(method, path)).status == 405


async def test_metrics_tell_pauses_and_the_database_at_scrape_time(
    recorded: Repository, clock: FakeClock
) -> None:
    metrics = DaemonMetrics()
    health = ServiceHealth(["ETH", "BTC"], poll_interval_s=10)
    await recorded.set_pair_paused("ETH", True, "by hand")
    service = HttpService(HttpConfig(port=0), health, metrics, recorded, DashboardApi(recorded))
    port = await service.start()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/metrics") as answer:
                text = await answer.text()
            async with http.get(f"http://127.0.0.1:{port}/api/pairs") as answer:
                assert answer.status == 200
    finally:
        await service.stop()
    assert 'hedgebot_pair_paused{pair="ETH"} 1.0' in text
    assert 'hedgebot_pair_paused{pair="BTC"} 0.0' in text
    assert "hedgebot_database_up 1.0" in text


async def test_metrics_tell_band_and_liquidation_distance_from_each_cycle(
    repository: Repository, clock: FakeClock
) -> None:
    feed = ManualFeed({"ETH": Decimal(3000)})
    config = settings([pair("ETH", target="0.5")], balances={"ETH": "10", "USDT": "50000"})
    daemon, _ = await open_daemon(config, repository, clock, feed)
    metrics = DaemonMetrics()
    for cycle in (1, 2):
        metrics.cycle_finished(await daemon.run_cycle(cycle), 0.1)
        clock.advance(10)
    families = {f.name: f for f in text_string_to_metric_families(metrics.render().decode())}
    [band] = families["hedgebot_band_ratio"].samples
    assert (band.labels, band.value) == ({"pair": "ETH"}, 0.02)
    [distance] = families["hedgebot_liquidation_distance_ratio"].samples
    assert distance.labels == {"pair": "ETH"}
    assert 0.1 < distance.value < 1  # a 5x short, half the spot: far from liquidation


async def test_the_database_down_is_a_zero_at_scrape_time() -> None:
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    engine = create_engine(f"postgresql+asyncpg://hedgebot@127.0.0.1:{port}/hedgebot")
    service = HttpService(
        HttpConfig(port=0),
        ServiceHealth(["BTC"], poll_interval_s=10),
        DaemonMetrics(),
        Repository(engine, FakeClock()),
    )
    bound = await service.start()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{bound}/metrics") as answer:
                text = await answer.text()
            async with http.get(f"http://127.0.0.1:{bound}/dashboard/") as answer:
                assert answer.status == 404  # no dashboard given
    finally:
        await service.stop()
        await engine.dispose()
    assert "hedgebot_database_up 0.0" in text
    assert "hedgebot_pair_paused{" not in text  # unknown while the database is down
