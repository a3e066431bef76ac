"""What a reading command needs of the configuration, without building the settings.

``status``, ``audit``, ``report`` and ``dashboard`` read the database: they need its URL
and the pairs' names. Building :class:`bot.config.Settings` (pydantic) costs them more
than the read itself, so they take these here from the TOML file and the environment,
with the same precedence (environment over file over default), the same key checks (a
key or a ``HEDGEBOT_*`` variable that names no setting is an error, in the same words)
and the same database-URL rules. Values are not validated here: ``check-config`` and
``run`` do that. ``bot.config`` builds on this module (its errors, the URL rules, where
the config is looked for, the environment check).

:data:`SHAPE` is the settings' tree of keys; ``tests/unit/test_config_view.py`` keeps it
equal to :class:`bot.config.Settings` (and prints the literal to paste when it is not).
"""

from __future__ import annotations

import difflib
import json
import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

# A key's node: None for a value, a dict of keys for a table, {"*": node} for a table
# whose keys are the user's (accounts by name, balances by asset).
Shape = Mapping[str, Any]

PAPER_ACCOUNT = "paper"
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///hedgebot.db"
SQLITE_DRIVER = "sqlite+aiosqlite"
POSTGRES_DRIVER = "postgresql+asyncpg"
# A URL that names the backend without a driver gets the driver hedgebot ships.
_PLAIN = {"sqlite": SQLITE_DRIVER, "postgresql": POSTGRES_DRIVER, "postgres": POSTGRES_DRIVER}
_EXAMPLES = "sqlite+aiosqlite:///hedgebot.db or postgresql+asyncpg://USER@HOST:5432/DATABASE"

ENV_PREFIX = "HEDGEBOT_"
# Variables the command line and the test suite read themselves, not Settings fields.
NON_SETTINGS_VARIABLES = frozenset(
    {
        "HEDGEBOT_CONFIG",
        "HEDGEBOT_MIGRATIONS_DIR",
        "HEDGEBOT_LIVE_CONFIRM",
        "HEDGEBOT_TEST_POSTGRES_URL",
    }
)
# Where a command looks for its config when neither --config nor HEDGEBOT_CONFIG names one.
DEFAULT_CONFIG_PATHS = (Path("hedgebot.toml"), Path("/etc/hedgebot/hedgebot.toml"))

_ANY = {"*": None}
_MARKET = dict.fromkeys(
    (
        "amount_step",
        "price_step",
        "min_amount",
        "min_notional",
        "open_interest_value",
        "quote_volume_24h",
        "expiry",
        "basis_apr",
        "contract_size",
    )
)
SHAPE: Shape = {
    **dict.fromkeys(
        (
            "mode",
            "database_url",
            "poll_interval_s",
            "log_format",
            "log_file",
            "log_file_max_bytes",
            "log_file_backups",
            "markets_refresh_s",
            "lease_s",
            "pairs",
        )
    ),
    "paper": {
        "balances": _ANY,
        "feed": None,
        "live_exchange": None,
        "live_ccxt_config": _ANY,
        "seed": None,
        "spread_bps": None,
        "taker_fee_rate": None,
        "maintenance_margin_rate": None,
        "maintenance_tiers": _ANY,
        "funding_interval_hours": None,
        "quote_asset": None,
        "account": None,
        "collateral_ratios": {"*": None},
        "coin_margin_balances": _ANY,
        "sim": dict.fromkeys(
            (
                "initial_prices",
                "default_initial_price",
                "volatility",
                "jump_probability",
                "jump_size",
                "initial_funding_rate",
                "funding_drift",
                "step_seconds",
            )
        )
        | {"initial_prices": _ANY},
        "replay_files": _ANY,
        "markets": {"*": _MARKET},
        "book_levels": None,
        "book_level_notional": None,
        "default_market": _MARKET,
        "separate_wallets": None,
        "futures_balances": _ANY,
    },
    "risk": dict.fromkeys(
        (
            "max_data_age_s",
            "max_leverage",
            "kill_switch",
            "fill_settle_s",
            "order_settle_s",
            "min_liquidation_distance",
            "on_liquidation_risk",
            "maintenance_margin_rate",
            "max_consecutive_failures",
            "market_stats_refresh_s",
            "max_price_deviation",
        )
    ),
    "accounts": {
        "*": dict.fromkeys(
            (
                "exchange",
                "api_key",
                "secret",
                "password",
                "api_key_file",
                "secret_file",
                "password_file",
                "ccxt_config",
                "rate_limit_per_s",
                "testnet",
            )
        )
        | {"ccxt_config": _ANY}
    },
    "http": dict.fromkeys(("enabled", "host", "port", "dashboard")),
    "alerts": dict.fromkeys(
        ("enabled", "urls", "events", "timeout_s", "queue_size", "poll_interval_s")
    ),
    "storage": dict.fromkeys(
        ("record_every_s", "record_price_step", "record_ratio_step", "retention_days")
    ),
}


class ConfigError(Exception):
    """The configuration cannot be used; the message is one line per problem."""


class DatabaseUrlError(ValueError):
    """A database URL hedgebot cannot use; the message says what to write instead."""


def normalize_database_url(url: str) -> str:
    """``url`` with hedgebot's driver: ``postgresql://``/``postgres://`` become
    ``postgresql+asyncpg://`` and ``sqlite://`` ``sqlite+aiosqlite://``; another driver or
    backend is a :class:`DatabaseUrlError` that names the URL to write (password hidden)."""
    try:
        parsed = make_url(url)
    except Exception:  # SQLAlchemy's ArgumentError (the config stays off its exceptions)
        raise DatabaseUrlError(
            f"database_url is not a database URL; write e.g. {_EXAMPLES}"
        ) from None
    name = parsed.drivername
    if name in (SQLITE_DRIVER, POSTGRES_DRIVER):
        return url
    backend = name.partition("+")[0]
    wanted = _PLAIN.get(backend)
    if wanted is None:
        raise DatabaseUrlError(
            f"database_url uses {backend}, which hedgebot does not support; write e.g. {_EXAMPLES}"
        )
    fixed = parsed.set(drivername=wanted)
    if name == backend:
        return fixed.render_as_string(hide_password=False)
    raise DatabaseUrlError(
        f"database_url uses the driver {name!r}, which hedgebot does not ship; write "
        f"{fixed.render_as_string(hide_password=True)}"
    )


def masked_database_url(url: str) -> str:
    """``url`` with its password, if any, shown as ``***``."""
    parsed = make_url(url)
    return parsed.render_as_string(hide_password=True) if parsed.password else url


def nearest_name(name: str, known: Sequence[str]) -> str | None:
    """The known name ``name`` most likely meant: the same but for case, else the closest."""
    by_case = [k for k in known if k.casefold() == name.casefold()]
    if by_case:
        return by_case[0]
    folded = {k.casefold(): k for k in known}
    close = difflib.get_close_matches(name.casefold(), list(folded), n=1, cutoff=0.6)
    return folded[close[0]] if close else None


def unknown_pair_message(name: str, known: Sequence[str], label: str) -> str:
    """One line: the unknown pair, the nearest known one, and every known pair (``label``
    says where they come from, e.g. "configured pairs")."""
    if not known:
        return f"unknown pair {name!r}: there are no {label} yet; pass --config FILE"
    nearest = nearest_name(name, known)
    hint = f" (did you mean {nearest}?)" if nearest else ""
    return f"unknown pair {name!r}{hint}; {label}: {', '.join(sorted(known))}"


def find_config(given: Path | None, environ: Mapping[str, str] | None = None) -> Path | None:
    """The config file a command uses: ``--config``, else $HEDGEBOT_CONFIG, else the first
    of :data:`DEFAULT_CONFIG_PATHS` that exists; None when there is none."""
    if given is not None:
        return given
    named = (os.environ if environ is None else environ).get("HEDGEBOT_CONFIG")
    if named:
        return Path(named)
    return next((path for path in DEFAULT_CONFIG_PATHS if path.is_file()), None)


def walk_variable(variable: str) -> tuple[bool, str | None]:
    """Whether HEDGEBOT_A__B__C names a setting (a user's key, such as an account's name,
    matches anything) and, when it does not, the nearest variable that does (None if none
    is close)."""
    parts = variable.removeprefix(ENV_PREFIX).lower().split("__")
    done: list[str] = []
    node: Shape = SHAPE
    while parts:
        if parts[0] not in node:
            close = difflib.get_close_matches(parts[0], list(node), n=1)
            if not close:
                return False, None
            return False, ENV_PREFIX + "__".join([*done, close[0], *parts[1:]]).upper()
        child = node[parts[0]]
        done.append(parts.pop(0))
        if isinstance(child, Mapping) and "*" in child:
            if not parts:
                return True, None
            done.append(parts.pop(0))  # the user's key, e.g. the account name
            child = child["*"]
        if not isinstance(child, Mapping):
            return not parts, None  # a value ends the path
        node = child
    return True, None


def check_environment(environ: Mapping[str, str] | None = None) -> None:
    """ConfigError naming the first ``HEDGEBOT_*`` variable that sets nothing: a typo in a
    variable is an error like a typo in a key, not a silently ignored setting. Its value
    is never shown (a mistyped secret's name carries the secret)."""
    names = os.environ if environ is None else environ
    for variable in sorted(names):
        if not variable.upper().startswith(ENV_PREFIX) or variable in NON_SETTINGS_VARIABLES:
            continue
        exists, nearest = walk_variable(variable)
        if exists:
            continue
        hint = f" (did you mean {nearest}?)" if nearest else ""
        raise ConfigError(
            f"config error: environment variable {variable} sets nothing{hint}; "
            "fix its name or unset it"
        )


@dataclass(frozen=True, slots=True)
class ConfigView:
    """The database URL (hedgebot's driver) and the pairs' names the config gives."""

    database_url: str
    pair_names: tuple[str, ...]
    http_host: str | None = None  # [http] host, when set


def read_view(path: Path | None, environ: Mapping[str, str] | None = None) -> ConfigView:
    """The :class:`ConfigView` of the TOML file ``path`` (None: none) and the environment.

    ConfigError (the words :func:`bot.config.load_settings` uses) for a file that cannot
    be read, a key or variable that names no setting, or an unusable database URL."""
    env = os.environ if environ is None else environ
    check_environment(env)
    data = _read_toml(path)
    _check_keys(data, SHAPE, "")
    upper = {name.upper(): value for name, value in env.items()}
    url = upper.get(f"{ENV_PREFIX}DATABASE_URL", data.get("database_url", DEFAULT_DATABASE_URL))
    try:
        url = normalize_database_url(str(url))
    except DatabaseUrlError as exc:
        raise ConfigError(f"config error: {exc}") from None
    pairs: Any = data.get("pairs", [])
    if f"{ENV_PREFIX}PAIRS" in upper:
        try:
            pairs = json.loads(upper[f"{ENV_PREFIX}PAIRS"])
        except ValueError:
            raise ConfigError("config error: pairs: HEDGEBOT_PAIRS is not JSON") from None
    names = tuple(str(p["name"]) for p in pairs if isinstance(p, Mapping) and "name" in p)
    http = data.get("http")
    host = upper.get(
        f"{ENV_PREFIX}HTTP__HOST", http.get("host") if isinstance(http, dict) else None
    )
    return ConfigView(url, names, None if host is None else str(host))


def _read_toml(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} not found; pass an existing --config FILE")
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except (ValueError, OSError) as exc:  # tomllib.TOMLDecodeError is a ValueError
        raise ConfigError(f"config error: cannot read {path}: {exc}") from None


def _check_keys(data: Mapping[str, Any], shape: Shape, where: str) -> None:
    """ConfigError for the first key of ``data`` that ``shape`` does not know."""
    for key, value in data.items():
        location = f"{where}.{key}" if where else key
        if "*" in shape:
            child = shape["*"]
        elif key in shape:
            child = shape[key]
        else:
            raise ConfigError(
                f"config error: {location}: unknown key (value not shown); check its spelling"
            )
        if isinstance(child, Mapping) and isinstance(value, Mapping):
            _check_keys(value, child, location)
