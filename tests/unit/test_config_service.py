"""The service settings: [http], [alerts] and the log file, from TOML and the environment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.config import load_settings, masked_dump
from bot.config_view import ConfigError

MINIMAL = """
[[pairs]]
name = "BTC"
spot_symbol = "BTC/USDT"
perp_symbol = "BTC/USDT:USDT"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hedgebot.toml"
    path.write_text(text + MINIMAL, encoding="utf-8")
    return path


def test_http_is_on_and_loopback_only_by_default(tmp_path: Path) -> None:
    http = load_settings(write(tmp_path, "")).http
    assert http.enabled
    assert http.host == "127.0.0.1"
    assert http.port == 8780


def test_http_host_and_port_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEDGEBOT_HTTP__HOST", "127.0.0.2")
    monkeypatch.setenv("HEDGEBOT_HTTP__PORT", "9100")
    http = load_settings(write(tmp_path, "[http]\nport = 8000\n")).http
    assert (http.host, http.port) == ("127.0.0.2", 9100)


def test_a_port_out_of_range_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, "[http]\nport = 70000\n"))
    assert str(caught.value).startswith("config error: http.port = 70000:")


def test_alert_urls_from_the_environment_are_secrets_masked_in_the_dump(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = "tgram://123456:token-value/42"
    monkeypatch.setenv("HEDGEBOT_ALERTS__URLS", json.dumps([url]))
    settings = load_settings(write(tmp_path, ""))
    assert [u.get_secret_value() for u in settings.alerts.urls] == [url]
    assert "token-value" not in json.dumps(masked_dump(settings))
    assert "token-value" not in repr(settings)


def test_an_unknown_alert_event_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, '[alerts]\nevents = ["fill", "lunch"]\n'))
    assert "alerts.events[1]" in str(caught.value)


def test_log_file_settings(tmp_path: Path) -> None:
    settings = load_settings(
        write(tmp_path, 'log_file = "/var/log/hb.log"\nlog_file_max_bytes = 4096\n')
    )
    assert settings.log_file == Path("/var/log/hb.log")
    assert settings.log_file_max_bytes == 4096
    assert settings.log_file_backups == 5
