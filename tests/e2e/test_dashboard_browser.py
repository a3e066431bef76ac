"""The dashboard in a real browser: headless Chromium (Debian's ``chromium``) driven over
the DevTools Protocol (tests/support/browser.py) against the paper daemon and against
``hedgebot dashboard`` over a stopped daemon's database.

Without chromium these tests fail with one line saying how to install it: they never
skip (``.ci/run`` installs it before ``make test``).
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot.clock import SystemClock
from bot.store.engine import create_engine
from bot.store.repository import Repository
from tests.e2e.commands import command
from tests.e2e.test_service import LogReader, clean_env
from tests.support.browser import INSTALL_HINT, Page, find_chromium, headless_chromium

pytestmark = pytest.mark.slow  # starts hedgebot and a browser as subprocesses

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "img" / "dashboard.png"

CONFIG = """
mode = "paper"
database_url = "sqlite+aiosqlite:///{db}"
poll_interval_s = 0.5

[http]
port = 0

# A point a second for the chart (a hold is otherwise stored when something changes).
[storage]
record_every_s = 1

[[pairs]]
name = "BTC"
spot_symbol = "BTC/USDT"
perp_symbol = "BTC/USDT:USDT"
target_ratio = "1.0"
band = "0.05"
max_order_notional = "20000"
leverage = "2"

[[pairs]]
name = "ETH"
spot_symbol = "ETH/USDT"
perp_symbol = "ETH/USDT:USDT"
target_ratio = "0.5"
band = "0.05"
max_order_notional = "10000"
leverage = "2"

[paper]
feed = "sim"
seed = 7
balances = {{ BTC = "1", ETH = "10", USDT = "80000" }}

[paper.sim]
initial_prices = {{ BTC = "60000", ETH = "3000" }}
volatility = "0.002"
"""

# What the page shows, read in one evaluation.
SNAPSHOT = """(() => ({
  pairs: [...document.querySelectorAll('#pairs tbody tr[data-pair]')].map(r => r.dataset.pair),
  pairText: document.querySelector('#pairs tbody').textContent,
  ratioPoints: (document.querySelector('#ratio-chart polyline.ratio')?.getAttribute('points')
    || '').trim().split(/\\s+/).filter(Boolean).length,
  valueAreas: document.querySelectorAll('#value-chart polygon').length,
  auditIds: [...document.querySelectorAll('#audit tbody tr')].map(r => Number(r.dataset.id)),
  reportPairs: [...document.querySelectorAll('#report tbody tr')].map(r => r.dataset.pair),
  updates: Number(document.getElementById('updated').dataset.updates),
  problem: document.getElementById('problem').hidden ? null
    : document.getElementById('problem').textContent,
}))()"""


@pytest.fixture
def chromium() -> str:
    binary = find_chromium()
    if binary is None:
        pytest.fail(INSTALL_HINT, pytrace=False)
    return binary


def write_config(tmp_path: Path) -> Path:
    config = tmp_path / "hedgebot.toml"
    config.write_text(CONFIG.format(db=tmp_path / "hedgebot.db"), encoding="utf-8")
    return config


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[tuple[int, LogReader]]:
    """The paper daemon with [http] on a free port: (port, its log)."""
    process = subprocess.Popen(
        [*command(), "run", "-c", str(write_config(tmp_path))],
        cwd=tmp_path,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    logs = LogReader(process)
    try:
        yield int(logs.wait_event("http.listening")["port"]), logs
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        logs.join()
        for stream in (process.stderr,):
            if stream is not None:
                stream.close()
    assert process.returncode == 0


@pytest.fixture
async def page(chromium: str, tmp_path: Path) -> AsyncIterator[Page]:
    async with headless_chromium(chromium, tmp_path / "profile") as tab:
        yield tab
        assert tab.errors == [], tab.errors  # no script error on the page, ever


def save_screenshot(png: bytes) -> None:
    """The README's picture of the dashboard (docs/img/dashboard.png)."""
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    SCREENSHOT.write_bytes(png)


def start_dashboard(config: Path, cwd: Path) -> subprocess.Popen[str]:
    """``hedgebot dashboard`` on a free port; it prints its URL first."""
    return subprocess.Popen(
        [*command(), "dashboard", "-c", str(config), "--port", "0"],
        cwd=cwd,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def hedgebot(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*command(), *args],
        cwd=cwd,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_the_dashboard_shows_the_running_daemon_and_follows_it(
    daemon: tuple[int, LogReader], page: Page, tmp_path: Path
) -> None:
    port, logs = daemon
    await page.navigate(f"http://127.0.0.1:{port}/dashboard/")
    first = await page.wait_for(
        f"(s => s.pairs.length === 2 && s.ratioPoints >= 3 && s.auditIds.length > 0"
        f" && s.reportPairs.length === 2 && s) ({SNAPSHOT})",
        what="pairs, the ratio chart, the report and the audit rows",
    )
    assert first["pairs"] == ["BTC", "ETH"]
    assert first["valueAreas"] == 2  # hedged and unhedged value
    assert first["problem"] is None
    # The next cycles reach the page by themselves: newer audit rows, more chart points.
    newest = max(first["auditIds"])
    after = await page.wait_for(
        f"(s => Math.max(...s.auditIds) > {newest} && s.updates > {first['updates']} && s)"
        f" ({SNAPSHOT})",
        what="newer audit rows after a cycle",
    )
    assert after["pairs"] == ["BTC", "ETH"]
    # A pause made with the CLI shows on the next poll (the page itself has no buttons).
    paused = hedgebot("pause", "ETH", "--reason", "dashboard test", cwd=tmp_path)
    assert paused.returncode == 0, paused.stderr
    await page.wait_for(
        "document.querySelector('#pairs tr[data-pair=\"ETH\"]').textContent"
        ".includes('dashboard test')",
        what="ETH shown paused",
    )
    assert await page.evaluate("document.querySelectorAll('button, form').length") == 0
    await page.evaluate(
        "document.getElementById('audit-kind').value = 'pair';"
        "document.getElementById('audit-kind').dispatchEvent(new Event('change'))"
    )
    kinds = await page.wait_for(
        "(k => k.length > 0 && k.every(x => x === 'pair' || x.startsWith('pair.')) && k)"
        "([...document.querySelectorAll('#audit tbody tr td:nth-child(4)')]"
        ".map(td => td.textContent))",
        what="the audit rows filtered by kind",
    )
    assert "pair.paused" in kinds
    await page.evaluate(
        "document.getElementById('audit-kind').value = '';"
        "document.getElementById('audit-kind').dispatchEvent(new Event('change'))"
    )
    await page.wait_for(f"(s => s.ratioPoints >= 10 && s)({SNAPSHOT})", what="ten chart points")
    png = await page.screenshot()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    save_screenshot(png)
    assert logs.wait_event("pair.decided")


HOSTILE = (
    '<img src=x onerror="window.__hedgebot_pwned=1"><script>window.__hedgebot_pwned=2</script>'
)


async def _store_hostile_text(database: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{database}")
    try:
        repository = Repository(engine, SystemClock())
        await repository.append_audit("note.test", f"summary {HOSTILE}", pair=f"P{HOSTILE}")
        await repository.set_pair_paused("BTC", True, f"why {HOSTILE}")
    finally:
        await engine.dispose()


async def test_a_stopped_daemons_history_shows_stored_markup_as_text(
    chromium: str, page: Page, tmp_path: Path
) -> None:
    config = write_config(tmp_path)
    ran = hedgebot("run", "-c", str(config), "--max-cycles", "3", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    await _store_hostile_text(tmp_path / "hedgebot.db")
    server = start_dashboard(config, tmp_path)
    try:
        assert server.stdout is not None
        line = await asyncio.to_thread(server.stdout.readline)
        assert line.startswith("dashboard: http://127.0.0.1:"), line + server.stderr.read()
        url = line.split()[1]
        await page.navigate(url)
        shown = await page.wait_for(
            f"(s => s.pairs.length === 2 && s.ratioPoints >= 2 && s.auditIds.length > 0 && s)"
            f" ({SNAPSHOT})",
            what="a stopped daemon's pairs, chart and audit rows",
        )
        assert "why " + HOSTILE in shown["pairText"]  # the pause reason, as text
        audit_text = await page.evaluate("document.querySelector('#audit tbody').textContent")
        assert f"summary {HOSTILE}" in audit_text
        assert f"P{HOSTILE}" in audit_text
        assert await page.evaluate("window.__hedgebot_pwned === undefined")
        assert await page.evaluate("document.querySelectorAll('main img, main script').length") == 0
    finally:
        server.send_signal(signal.SIGINT)
        _, err = server.communicate(timeout=30)
    assert server.returncode == 0, err
    assert err == ""
