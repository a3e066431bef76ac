"""Configuration: a TOML file, overridden by ``HEDGEBOT_…`` environment variables.

Precedence, highest first: values passed by the CLI, environment variables
(``__`` separates nesting levels: ``HEDGEBOT_PAPER__SEED=7``), the TOML file
given with ``--config``, the defaults below. Every model is frozen and rejects
unknown keys, so a typo is an error rather than a silently ignored setting.
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

Ratio = Annotated[Decimal, Field(ge=0, le=2)]
Band = Annotated[Decimal, Field(gt=0, le=1)]
PositiveDecimal = Annotated[Decimal, Field(gt=0)]
NonNegativeDecimal = Annotated[Decimal, Field(ge=0)]
Leverage = Annotated[Decimal, Field(ge=1, le=125)]
FeeRate = Annotated[Decimal, Field(ge=0, lt=Decimal("0.1"))]
Mode = Literal["paper", "testnet", "live"]

PAPER_ACCOUNT = "paper"
_PAIR_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")


class ConfigError(Exception):
    """The configuration cannot be used; the message is one line per problem."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PairConfig(_Frozen):
    """One hedge pair: a spot holding and the perp that hedges it."""

    name: str
    spot_symbol: str
    perp_symbol: str
    target_ratio: Ratio = Decimal(1)
    band: Band = Decimal("0.05")
    min_notional: NonNegativeDecimal = Decimal(10)
    max_order_notional: PositiveDecimal = Decimal(10000)
    leverage: Leverage = Decimal(1)
    margin_mode: Literal["isolated", "cross"] = "isolated"
    # Limit IOC orders priced max_slippage_bps beyond the touch; "market" only if asked for.
    order_type: Literal["limit_ioc", "market"] = "limit_ioc"
    max_slippage_bps: Annotated[Decimal, Field(gt=0, le=1000)] = Decimal(20)
    spot_account: str | None = None
    perp_account: str | None = None
    # "band": trade when |ratio - target| > band (checked every cycle); "interval": trade
    # to the target once every rebalance_interval_s (UTC-aligned), whatever the drift.
    rebalance: Literal["band", "interval"] = "band"
    rebalance_interval_s: Annotated[int, Field(ge=1, le=30 * 86400)] = 3600

    @model_validator(mode="after")
    def _check_symbols(self) -> PairConfig:
        if not _PAIR_NAME.match(self.name):
            raise ValueError(f"name {self.name!r} must be 1-32 letters, digits, '_', '-' or '.'")
        if "/" not in self.spot_symbol or ":" in self.spot_symbol:
            raise ValueError(f"spot_symbol {self.spot_symbol!r} must look like 'BTC/USDT'")
        if ":" not in self.perp_symbol or "/" not in self.perp_symbol:
            raise ValueError(f"perp_symbol {self.perp_symbol!r} must look like 'BTC/USDT:USDT'")
        if self.spot_base != self.perp_symbol.split("/")[0]:
            raise ValueError(
                f"perp_symbol {self.perp_symbol!r} does not hedge the base coin of "
                f"spot_symbol {self.spot_symbol!r}"
            )
        if self.max_order_notional < self.min_notional:
            raise ValueError(
                f"max_order_notional {self.max_order_notional} is below "
                f"min_notional {self.min_notional}"
            )
        return self

    @property
    def spot_base(self) -> str:
        return self.spot_symbol.split("/")[0]


class PaperMarketConfig(_Frozen):
    """Trading rules the paper venue applies to one symbol."""

    amount_step: PositiveDecimal = Decimal("0.001")
    price_step: PositiveDecimal = Decimal("0.01")
    min_amount: NonNegativeDecimal = Decimal("0.001")
    min_notional: NonNegativeDecimal = Decimal(5)


class SimFeedConfig(_Frozen):
    """The offline random-walk price feed: one step every ``step_seconds``.

    ``volatility`` is the standard deviation of a step's log-return; the defaults give
    about 5 % a day with a 2 % jump a few times a day, like a large crypto coin.
    """

    initial_prices: dict[str, PositiveDecimal] = Field(
        default_factory=lambda: {"BTC": Decimal(60000), "ETH": Decimal(3000)}
    )
    default_initial_price: PositiveDecimal = Decimal(100)
    volatility: Annotated[Decimal, Field(ge=0, le=Decimal("0.2"))] = Decimal("0.0002")
    jump_probability: Annotated[Decimal, Field(ge=0, le=1)] = Decimal("0.00005")
    jump_size: Annotated[Decimal, Field(ge=0, le=Decimal("0.5"))] = Decimal("0.02")
    initial_funding_rate: Annotated[Decimal, Field(ge=-1, le=1)] = Decimal("0.0001")
    funding_drift: Annotated[Decimal, Field(ge=0, le=Decimal("0.01"))] = Decimal("0.00002")
    step_seconds: PositiveDecimal = Decimal(1)


class PaperConfig(_Frozen):
    """The simulated venue used in paper mode."""

    balances: dict[str, NonNegativeDecimal] = Field(
        default_factory=lambda: {"BTC": Decimal(1), "ETH": Decimal(10), "USDT": Decimal(20000)}
    )
    feed: Literal["sim", "replay", "live"] = "sim"
    # feed "live": public market data (no keys) from this ccxt exchange; fills stay simulated.
    live_exchange: str = "binance"
    live_ccxt_config: dict[str, Any] = Field(default_factory=dict)
    seed: int = 42
    spread_bps: Annotated[Decimal, Field(ge=0, le=1000)] = Decimal(2)
    taker_fee_rate: FeeRate = Decimal("0.0005")
    maintenance_margin_rate: Annotated[Decimal, Field(gt=0, lt=Decimal("0.5"))] = Decimal("0.005")
    funding_interval_hours: Annotated[int, Field(ge=1, le=24)] = 8
    quote_asset: str = "USDT"
    sim: SimFeedConfig = Field(default_factory=SimFeedConfig)
    replay_files: dict[str, Path] = Field(default_factory=dict)
    markets: dict[str, PaperMarketConfig] = Field(default_factory=dict)
    book_levels: Annotated[int, Field(ge=1, le=1000)] = 20
    book_level_notional: PositiveDecimal = Decimal(250000)
    default_market: PaperMarketConfig = Field(default_factory=PaperMarketConfig)

    @model_validator(mode="after")
    def _check_replay(self) -> PaperConfig:
        if self.feed == "replay" and not self.replay_files:
            raise ValueError("feed 'replay' needs replay_files = { 'BTC/USDT:USDT' = 'btc.csv' }")
        return self


class RiskConfig(_Frozen):
    """Pre-trade limits applied to every order."""

    max_data_age_s: PositiveDecimal = Decimal(60)
    max_leverage: Leverage = Decimal(5)
    kill_switch: bool = False
    # A fill not yet in the venue's position view counts toward the hedge this long.
    fill_settle_s: Annotated[Decimal, Field(ge=0, le=3600)] = Decimal(30)
    # An order sent but unknown to the venue is called lost (never sent) after this long.
    order_settle_s: Annotated[Decimal, Field(gt=0, le=3600)] = Decimal(60)


class AccountConfig(_Frozen):
    """An exchange account reached through ccxt (testnet and live modes).

    Secrets come from the file, the environment or ``*_file`` paths (Docker and
    systemd secrets); a ``*_file`` is read at start and wins over the inline value.
    """

    exchange: str
    api_key: SecretStr | None = None
    secret: SecretStr | None = None
    password: SecretStr | None = None
    api_key_file: Path | None = None
    secret_file: Path | None = None
    password_file: Path | None = None
    ccxt_config: dict[str, Any] = Field(default_factory=dict)
    # Requests per second through this account's limiter; default: ccxt's documented rate.
    rate_limit_per_s: Annotated[Decimal, Field(gt=0, le=1000)] | None = None
    # testnet mode: "auto" uses demo trading where ccxt offers it, else the sandbox.
    testnet: Literal["auto", "sandbox", "demo"] = "auto"

    @model_validator(mode="before")
    @classmethod
    def _read_secret_files(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for name in ("api_key", "secret", "password"):
            path = data.get(f"{name}_file")
            if path:
                try:
                    data[name] = Path(path).read_text(encoding="utf-8").strip()
                except OSError as exc:
                    raise ValueError(
                        f"{name}_file {str(path)!r} cannot be read: {exc.strerror}"
                    ) from None
        return data

    @model_validator(mode="after")
    def _check_exchange(self) -> AccountConfig:
        if not re.fullmatch(r"[a-z0-9]+", self.exchange):
            raise ValueError(f"exchange {self.exchange!r} must be a ccxt id such as 'binance'")
        return self


class Settings(BaseSettings):
    """The whole configuration of one hedgebot process."""

    model_config = SettingsConfigDict(
        env_prefix="HEDGEBOT_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    mode: Mode = "paper"
    database_url: str = "sqlite+aiosqlite:///hedgebot.db"
    poll_interval_s: Annotated[float, Field(gt=0, le=86400)] = 10.0
    log_format: Literal["auto", "console", "json"] = "auto"
    markets_refresh_s: Annotated[float, Field(ge=60)] = 3600.0
    pairs: list[PairConfig] = Field(default_factory=list)
    # Accounts are looked up by name; one client (and one rate limiter) per account.
    paper: PaperConfig = Field(default_factory=PaperConfig)
    risk: RiskConfig = Field(default_factory=RiskConfig)
    accounts: dict[str, AccountConfig] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check_pairs(self) -> Settings:
        if not self.pairs:
            raise ValueError("no [[pairs]] configured; add at least one hedge pair")
        names = [p.name for p in self.pairs]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"pair names must be unique; repeated: {', '.join(duplicates)}")
        perps = [p.perp_symbol for p in self.pairs]
        shared = sorted({s for s in perps if perps.count(s) > 1})
        if shared:
            # Two pairs steering one position would undo each other's orders.
            raise ValueError(
                f"each perp_symbol may hedge one pair only; shared: {', '.join(shared)}"
            )
        for pair in self.pairs:
            for leg in ("spot_account", "perp_account"):
                name = getattr(pair, leg)
                if name is not None and name not in self.accounts:
                    known = ", ".join(sorted(self.accounts)) or "none configured"
                    raise ValueError(
                        f"pair {pair.name}: {leg} {name!r} is not an [accounts.NAME] table "
                        f"(accounts: {known})"
                    )
        if self.mode != "paper":
            if not self.accounts:
                raise ValueError(
                    f"mode {self.mode!r} needs at least one [accounts.NAME] table with an exchange"
                )
            if len(self.accounts) > 1:
                unnamed = [
                    p.name for p in self.pairs if p.spot_account is None or p.perp_account is None
                ]
                if unnamed:
                    raise ValueError(
                        f"with several accounts each pair names spot_account and perp_account; "
                        f"missing on: {', '.join(unnamed)}"
                    )
        if not self.database_url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError(
                f"database_url {self.database_url!r} must start with "
                "'sqlite+aiosqlite://' or 'postgresql+asyncpg://'"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls),
            file_secret_settings,
        )

    def accounts_of(self, pair: PairConfig) -> tuple[str, str]:
        """The (spot, perp) account names of a pair; the only account when unnamed."""
        if self.mode == "paper":
            return PAPER_ACCOUNT, PAPER_ACCOUNT
        only = next(iter(self.accounts))
        return pair.spot_account or only, pair.perp_account or only

    def pair(self, name: str) -> PairConfig:
        """The pair called ``name``; ConfigError when there is none."""
        for pair in self.pairs:
            if pair.name == name:
                return pair
        known = ", ".join(p.name for p in self.pairs)
        raise ConfigError(f"unknown pair {name!r}; configured pairs: {known}")


def _describe(error: Any) -> str:
    location = ""
    for part in error["loc"]:
        location += f"[{part}]" if isinstance(part, int) else (f".{part}" if location else part)
    message = str(error["msg"]).removeprefix("Value error, ")
    value = error.get("input")
    if error["type"] in {"missing"}:
        return f"{location or 'config'}: required but not set"
    if isinstance(value, dict | list) or location == "":
        return f"{location or 'config'}: {message}"
    return f"{location} = {value!r}: {message}"


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Read the TOML file (if any) and the environment; raise ConfigError on a bad value."""
    if config_file is not None and not config_file.is_file():
        raise ConfigError(
            f"config file {str(config_file)!r} not found; pass an existing --config FILE"
        )

    class _FromFile(Settings):
        model_config = SettingsConfigDict(toml_file=config_file)

    try:
        return _FromFile(**overrides)
    except ValidationError as exc:
        lines = [f"config error: {_describe(err)}" for err in exc.errors()]
        raise ConfigError("\n".join(lines)) from None
    except (ValueError, OSError) as exc:
        # tomllib.TOMLDecodeError is a ValueError
        raise ConfigError(f"config error: cannot read {config_file}: {exc}") from None


def masked_dump(settings: Settings) -> dict[str, Any]:
    """The effective configuration as JSON-able data, secrets replaced by '**********'."""
    return settings.model_dump(mode="json")
