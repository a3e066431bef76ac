"""The reading commands' view of the config (bot/config_view.py) agrees with the settings:
the same keys, the same precedence, the same errors, without building them."""

from __future__ import annotations

import os
import pprint
from pathlib import Path
from typing import Any, get_args, get_origin

import pytest
from pydantic import BaseModel

from bot.config import Settings, load_settings
from bot.config_view import SHAPE, ConfigError, read_view, walk_variable

PAIR = '[[pairs]]\nname = "BTC"\nspot_symbol = "BTC/USDT"\nperp_symbol = "BTC/USDT:USDT"\n'


def shape_of(model: type[BaseModel]) -> dict[str, Any]:
    """The tree of keys of ``model`` as SHAPE writes it."""
    shape: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        annotation = field.annotation
        node: Any = None
        if get_origin(annotation) is dict:
            inner = get_args(annotation)[1]
            is_model = isinstance(inner, type) and issubclass(inner, BaseModel)
            node = {"*": shape_of(inner) if is_model else None}
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            node = shape_of(annotation)
        shape[name] = node
    return shape


def test_the_shape_is_the_settings_tree_of_keys() -> None:
    wanted = shape_of(Settings)
    assert SHAPE == wanted, (
        "bot/config_view.py SHAPE is not the settings' keys; it should be:\n"
        + pprint.pformat(wanted, sort_dicts=False)
    )


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hedgebot.toml"
    path.write_text(text)
    return path


def test_the_url_and_pairs_come_from_the_file_then_the_environment(tmp_path: Path) -> None:
    path = write(tmp_path, f'database_url = "sqlite:///a.db"\n{PAIR}')
    view = read_view(path, {})
    assert view.database_url == "sqlite+aiosqlite:///a.db"  # hedgebot's driver
    assert view.pair_names == ("BTC",)
    assert view.database_url == load_settings(path).database_url

    env = {
        "HEDGEBOT_DATABASE_URL": "postgresql://me@db/hb",
        "HEDGEBOT_PAIRS": '[{"name": "ETH"}]',
        "HEDGEBOT_HTTP__HOST": "0.0.0.0",  # noqa: S104 - a value, not a listener
    }
    view = read_view(path, env)
    assert view.database_url == "postgresql+asyncpg://me@db/hb"
    assert view.pair_names == ("ETH",)
    assert view.http_host == "0.0.0.0"  # noqa: S104


def test_without_a_file_the_url_is_the_default_the_daemon_uses() -> None:
    view = read_view(None, {})
    assert view.database_url == Settings.model_fields["database_url"].default
    assert view.pair_names == ()


@pytest.mark.parametrize(
    "text",
    [
        f'databse_url = "sqlite:///a.db"\n{PAIR}',
        f"[http]\nprot = 1\n{PAIR}",
        f'[accounts.main]\nexchange = "binance"\napikey = "x"\n{PAIR}',
        f'database_url = "postgresql+psycopg2://me:secret@db/hb"\n{PAIR}',
        f"database_url = \n{PAIR}",
    ],
    ids=["unknown key", "unknown nested key", "unknown account key", "driver", "not toml"],
)
def test_a_config_the_settings_refuse_is_refused_in_the_same_words(
    tmp_path: Path, text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [n for n in os.environ if n.startswith("HEDGEBOT_")]:
        monkeypatch.delenv(name)
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as settings_error:
        load_settings(path)
    with pytest.raises(ConfigError) as view_error:
        read_view(path, {})
    assert str(view_error.value) == str(settings_error.value).splitlines()[0]
    assert "secret" not in str(view_error.value)


def test_a_missing_file_is_said_in_the_same_words(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as settings_error:
        load_settings(tmp_path / "none.toml")
    with pytest.raises(ConfigError) as view_error:
        read_view(tmp_path / "none.toml", {})
    assert str(view_error.value) == str(settings_error.value)


@pytest.mark.parametrize(
    ("variable", "exists", "nearest"),
    [
        ("HEDGEBOT_POLL_INTERVAL_S", True, None),
        ("HEDGEBOT_POLL_INTERVALL_S", False, "HEDGEBOT_POLL_INTERVAL_S"),
        ("HEDGEBOT_ACCOUNTS__MAIN__API_KEY", True, None),
        ("HEDGEBOT_ACCOUNTS__MAIN__APIKEY", False, "HEDGEBOT_ACCOUNTS__MAIN__API_KEY"),
        ("HEDGEBOT_ACCOUNTS__MAIN__CCXT_CONFIG__OPTIONS", True, None),
        ("HEDGEBOT_PAPER__SIM__INITIAL_PRICES__BTC", True, None),
        ("HEDGEBOT_PAPER__MARKETS__BTC__PRICE_STEP", True, None),
        ("HEDGEBOT_PAIRS", True, None),
        ("HEDGEBOT_PAIRS__0__NAME", False, None),
        ("HEDGEBOT_HTTP", True, None),
        ("HEDGEBOT_XYZZY", False, None),
    ],
)
def test_an_environment_variable_names_a_setting_or_its_nearest(
    variable: str, exists: bool, nearest: str | None
) -> None:
    assert walk_variable(variable) == (exists, nearest)
