"""Configuration: TOML file, environment overrides, one-line errors."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from bot.config import load_settings, masked_dump
from bot.config_view import ConfigError, find_config

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "paper.toml"

MINIMAL = """
[[pairs]]
name = "BTC"
spot_symbol = "BTC/USDT"
perp_symbol = "BTC/USDT:USDT"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hedgebot.toml"
    path.write_text(text)
    return path


def test_example_config_has_btc_and_eth_pairs_in_paper_mode() -> None:
    settings = load_settings(EXAMPLE)
    assert settings.mode == "paper"
    assert [p.name for p in settings.pairs] == ["BTC", "ETH"]
    assert settings.paper.balances["ETH"] == Decimal(10)


def test_defaults_are_paper_mode_sqlite_and_full_hedge(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, MINIMAL))
    assert settings.mode == "paper"
    assert settings.database_url == "sqlite+aiosqlite:///hedgebot.db"
    assert settings.pairs[0].target_ratio == Decimal(1)


def test_environment_overrides_the_file_with_double_underscore_nesting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEDGEBOT_POLL_INTERVAL_S", "3.5")
    monkeypatch.setenv("HEDGEBOT_PAPER__SEED", "7")
    settings = load_settings(write(tmp_path, "poll_interval_s = 99\n" + MINIMAL))
    assert settings.poll_interval_s == 3.5
    assert settings.paper.seed == 7


def test_decimal_values_are_exact_when_written_as_floats(tmp_path: Path) -> None:
    text = MINIMAL + "target_ratio = 0.3\nband = 0.01\n"
    settings = load_settings(write(tmp_path, text))
    assert settings.pairs[0].target_ratio == Decimal("0.3")
    assert settings.pairs[0].band == Decimal("0.01")


def test_target_ratio_above_two_names_field_value_and_range(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(write(tmp_path, MINIMAL + 'target_ratio = "2.5"\n'))
    message = str(err.value)
    assert "pairs[0].target_ratio" in message
    assert "2.5" in message
    assert "less than or equal to 2" in message
    assert "\n" not in message


def test_unknown_key_is_rejected_not_ignored(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="targt_ratio"):
        load_settings(write(tmp_path, MINIMAL + 'targt_ratio = "0.5"\n'))


def test_missing_pairs_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no \\[\\[pairs\\]\\]"):
        load_settings(write(tmp_path, 'mode = "paper"\n'))


def test_perp_for_another_coin_is_rejected(tmp_path: Path) -> None:
    text = MINIMAL.replace('perp_symbol = "BTC/USDT:USDT"', 'perp_symbol = "ETH/USDT:USDT"')
    with pytest.raises(ConfigError, match="does not hedge"):
        load_settings(write(tmp_path, text))


def test_two_pairs_cannot_share_one_perp(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="shared: BTC/USDT:USDT"):
        load_settings(write(tmp_path, MINIMAL + MINIMAL.replace('name = "BTC"', 'name = "B2"')))


def test_missing_config_file_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.toml")


def test_secrets_are_masked_in_the_effective_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEDGEBOT_ACCOUNTS__main__EXCHANGE", "binance")
    monkeypatch.setenv("HEDGEBOT_ACCOUNTS__main__API_KEY", "key-123-secret")
    monkeypatch.setenv("HEDGEBOT_ACCOUNTS__main__SECRET", "shh-456")
    settings = load_settings(write(tmp_path, MINIMAL))
    dumped = str(masked_dump(settings))
    assert "key-123-secret" not in dumped
    assert "shh-456" not in dumped
    assert settings.accounts["main"].api_key is not None
    assert settings.accounts["main"].api_key.get_secret_value() == "key-123-secret"


def test_account_secrets_can_come_from_files(tmp_path: Path) -> None:
    (tmp_path / "key").write_text("file-key\n")
    (tmp_path / "secret").write_text("file-secret")
    text = MINIMAL + (
        f'\n[accounts.main]\nexchange = "binance"\napi_key_file = "{tmp_path / "key"}"\n'
        f'secret_file = "{tmp_path / "secret"}"\n'
    )
    account = load_settings(write(tmp_path, text)).accounts["main"]
    assert account.api_key is not None
    assert account.api_key.get_secret_value() == "file-key"
    assert account.secret is not None
    assert account.secret.get_secret_value() == "file-secret"


def test_an_unreadable_secret_file_is_one_clear_line(tmp_path: Path) -> None:
    text = MINIMAL + '\n[accounts.main]\nexchange = "binance"\nsecret_file = "/nonexistent/s"\n'
    with pytest.raises(ConfigError, match="secret_file '/nonexistent/s' cannot be read"):
        load_settings(write(tmp_path, text))


def test_with_two_accounts_each_pair_names_both_legs(tmp_path: Path) -> None:
    text = (
        'mode = "testnet"\n'
        + MINIMAL
        + ('\n[accounts.a]\nexchange = "binance"\n[accounts.b]\nexchange = "bybit"\n')
    )
    with pytest.raises(ConfigError, match="spot_account and perp_account"):
        load_settings(write(tmp_path, text))
    named = text.replace(
        'perp_symbol = "BTC/USDT:USDT"',
        'perp_symbol = "BTC/USDT:USDT"\nspot_account = "a"\nperp_account = "b"',
    )
    settings = load_settings(write(tmp_path, named))
    assert settings.accounts_of(settings.pairs[0]) == ("a", "b")


def test_leverage_that_opens_inside_the_liquidation_guard_is_a_config_error(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, MINIMAL + 'leverage = "10"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    message = str(caught.value)
    # Binance's formula, BTCUSDT's first tier (0.4 %): 1.1 / 1.004 - 1 = 9.6 %.
    assert "leverage 10 opens positions about 9.6% from liquidation" in message
    assert "risk.min_liquidation_distance 0.1" in message
    assert load_settings(path, risk={"min_liquidation_distance": "0.05"}).pairs[0].leverage == 10


def test_risk_and_liquidity_settings_have_safe_defaults(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, MINIMAL))
    assert settings.risk.min_liquidation_distance == Decimal("0.1")
    assert settings.risk.on_liquidation_risk == "reduce"
    assert settings.risk.max_consecutive_failures == 3
    pair = settings.pairs[0]
    assert (pair.max_position_notional, pair.max_daily_notional) == (None, None)
    assert pair.on_thin_book == "split"


def test_a_mistyped_account_key_is_named_without_echoing_its_value(tmp_path: Path) -> None:
    text = MINIMAL + '[accounts.main]\nexchange = "binance"\napikey = "k-9f3e1c77a2"\n'
    with pytest.raises(ConfigError) as err:
        load_settings(write(tmp_path, text))
    message = str(err.value)
    assert "accounts.main.apikey: unknown key" in message
    assert "k-9f3e1c77a2" not in message


def test_a_secret_of_the_wrong_type_is_refused_without_echoing_it(tmp_path: Path) -> None:
    text = MINIMAL + '[accounts.main]\nexchange = "binance"\nsecret = 918273645546372\n'
    with pytest.raises(ConfigError) as err:
        load_settings(write(tmp_path, text))
    message = str(err.value)
    assert "accounts.main.secret" in message
    assert "918273645546372" not in message


def test_masked_dump_hides_the_database_password_and_ccxt_config_credentials(
    tmp_path: Path,
) -> None:
    text = (
        'database_url = "postgresql+asyncpg://hb:pw-7c1d2e@db.example/hedgebot"\n'
        + MINIMAL
        + '[accounts.main]\nexchange = "binance"\n'
        + 'ccxt_config = { secret = "cc-5a6b7c", apiKey = "cc-8d9e0f", timeout = 5000 }\n'
    )
    dumped = masked_dump(load_settings(write(tmp_path, text)))
    assert dumped["database_url"] == "postgresql+asyncpg://hb:***@db.example/hedgebot"
    ccxt = dumped["accounts"]["main"]["ccxt_config"]
    assert ccxt == {"secret": "**********", "apiKey": "**********", "timeout": 5000}


def one_line_error(path: Path, **overrides: object) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(path, **overrides)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_a_mistyped_environment_variable_is_an_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEDGEBOT_POLL_INTERVALL_S", "5")
    message = one_line_error(write(tmp_path, MINIMAL))
    assert message == (
        "config error: environment variable HEDGEBOT_POLL_INTERVALL_S sets nothing "
        "(did you mean HEDGEBOT_POLL_INTERVAL_S?); fix its name or unset it"
    )


def test_a_mistyped_nested_variable_is_an_error_and_known_ones_are_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEDGEBOT_HTTP__PORT", "0")
    monkeypatch.setenv("HEDGEBOT_CONFIG", "elsewhere.toml")
    assert load_settings(write(tmp_path, MINIMAL)).http.port == 0
    monkeypatch.setenv("HEDGEBOT_HTTP__PROT", "8080")
    assert "HEDGEBOT_HTTP__PROT sets nothing" in one_line_error(write(tmp_path, MINIMAL))


def test_a_config_is_found_by_option_then_environment_then_default_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    given = tmp_path / "given.toml"
    assert find_config(given, {}) == given
    assert find_config(None, {"HEDGEBOT_CONFIG": "env.toml"}) == Path("env.toml")
    assert find_config(None, {}) in (None, Path("/etc/hedgebot/hedgebot.toml"))
    write(tmp_path, MINIMAL)
    assert find_config(None, {}) == Path("hedgebot.toml")
