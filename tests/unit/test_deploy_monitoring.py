"""deploy/grafana/hedgebot.json and deploy/prometheus/hedgebot-alerts.yml: they load, use
only metrics the daemon exports, parse as PromQL and fire when they should.

promtool is Prometheus' own checker, from Debian's ``prometheus`` package (``.ci/run``
installs it): ``promtool check rules`` parses every rule and every Grafana query (written
into a rules file as recording rules), ``promtool test rules`` runs the alerts' unit tests
(deploy/prometheus/hedgebot-alerts.test.yml) and ``promtool check metrics`` lints the
daemon's /metrics. Those tests fail with one line saying how to install it, never skip.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.service.metrics import DaemonMetrics

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
GRAFANA = DEPLOY / "grafana" / "hedgebot.json"
ALERTS = DEPLOY / "prometheus" / "hedgebot-alerts.yml"
ALERT_TESTS = DEPLOY / "prometheus" / "hedgebot-alerts.test.yml"
LABEL_VALUES = re.compile(r"^label_values\((.*), *\w+\)$")
METRIC = re.compile(r"\bhedgebot_[a-z0-9_]+\b")
PROMTOOL_HINT = (
    "promtool not found: install Debian's prometheus package "
    "(`sudo apt-get install -y --no-install-recommends prometheus`; .ci/run does)"
)

# The series each type of metric family is scraped as.
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
}


def exported_series() -> set[str]:
    """Every series name the daemon's /metrics can hold (labelled ones before any sample)."""
    names: set[str] = set()
    for family in DaemonMetrics().registry.collect():
        names |= {family.name + suffix for suffix in SUFFIXES[family.type]}
    return names


def grafana_queries() -> list[str]:
    dashboard = json.loads(GRAFANA.read_text(encoding="utf-8"))
    queries = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            queries.append(variable["definition"])
    return queries


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"]]


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail(PROMTOOL_HINT, pytrace=False)
    return found


def test_the_grafana_dashboard_loads_and_queries_only_exported_metrics() -> None:
    queries = grafana_queries()
    assert len(queries) >= 12
    used = {name for query in queries for name in METRIC.findall(query)}
    assert used - exported_series() == set()
    # Everything the daemon counts per pair is on the dashboard.
    for name in ("hedge_ratio", "target_ratio", "band_ratio", "liquidation_distance_ratio"):
        assert f"hedgebot_{name}" in used
    dashboard = json.loads(GRAFANA.read_text(encoding="utf-8"))
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert dashboard["uid"] == "hedgebot"


def test_the_alert_rules_load_and_use_only_exported_metrics() -> None:
    rules = alert_rules()
    used = {name for rule in rules for name in METRIC.findall(rule["expr"])}
    assert used - exported_series() == set()
    by_name = {rule["alert"]: rule for rule in rules}
    # The alerts the issue asks for, each on the metric that tells it.
    wanted = {
        "HedgebotHedgeOutsideBand": "hedgebot_band_ratio",
        "HedgebotStaleData": "hedgebot_last_successful_cycle_timestamp_seconds",
        "HedgebotPairPaused": "hedgebot_pair_paused",
        "HedgebotLiquidationClose": "hedgebot_liquidation_distance_ratio",
        "HedgebotDatabaseDown": "hedgebot_database_up",
    }
    for alert, metric in wanted.items():
        assert metric in by_name[alert]["expr"], alert
        assert by_name[alert]["labels"]["severity"] in ("warning", "critical")
        assert by_name[alert]["annotations"]["summary"]


def test_no_exported_metric_name_is_a_typo_of_another() -> None:
    # The checks above compare names; make sure the exported set is not empty or odd.
    series = exported_series()
    assert "hedgebot_hedge_ratio" in series
    assert "hedgebot_cycles_total" in series
    assert "hedgebot_cycle_duration_seconds_bucket" in series
    assert "hedgebot_limiter_waits_total" in series


@pytest.mark.slow
def test_promtool_accepts_the_rules_and_their_unit_tests() -> None:
    tool = promtool()
    for args in (["check", "rules", ALERTS.name], ["test", "rules", ALERT_TESTS.name]):
        result = subprocess.run(
            [tool, *args],
            cwd=ALERTS.parent,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_promtool_parses_every_grafana_query(tmp_path: Path) -> None:
    # Grafana's variables become label values PromQL can parse; label_values(series,
    # label) (Grafana's, for a variable's choices) its series.
    queries = [
        LABEL_VALUES.sub(r"\1", q).replace("$instance", ".*").replace("$pair", ".*")
        for q in grafana_queries()
    ]
    rules = [
        {"record": f"hedgebot:grafana_query_{i}", "expr": query} for i, query in enumerate(queries)
    ]
    path = tmp_path / "grafana-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "grafana", "rules": rules}]}))
    result = subprocess.run(
        [promtool(), "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_promtool_lints_the_daemons_metrics() -> None:
    result = subprocess.run(
        [promtool(), "check", "metrics"],
        input=DaemonMetrics().render(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, (result.stdout + result.stderr).decode()


def test_every_exported_metric_is_in_the_deploy_page() -> None:
    page = (DEPLOY.parent / "docs" / "deploy.md").read_text(encoding="utf-8")
    for family in DaemonMetrics().registry.collect():
        shown = family.name + ("_total" if family.type == "counter" else "")
        assert f"`{shown}" in page, shown
