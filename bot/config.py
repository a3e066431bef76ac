"""Configuration: a TOML file, overridden by ``HEDGEBOT_…`` environment variables.

Precedence, highest first: values passed by the CLI, environment variables
(``__`` separates nesting levels: ``HEDGEBOT_PAPER__SEED=7``), the TOML file
given with ``--config``, the defaults below. Every model is frozen and rejects
unknown keys, so a typo is an error rather than a silently ignored setting.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from bot.config_view import (
    DEFAULT_DATABASE_URL,
    PAPER_ACCOUNT,
    ConfigError,
    check_environment,
    masked_database_url,
    normalize_database_url,
    unknown_pair_message,
    walk_variable,
)
from bot.domain.margin import MaintenanceTier, MaintenanceTiers, isolated_liquidation_price
from bot.domain.strategies import strategy_kind
from bot.domain.symbols import Symbol, parse_or_none

Ratio = Annotated[Decimal, Field(ge=0, le=2)]
Band = Annotated[Decimal, Field(gt=0, le=1)]
PositiveDecimal = Annotated[Decimal, Field(gt=0)]
NonNegativeDecimal = Annotated[Decimal, Field(ge=0)]
Leverage = Annotated[Decimal, Field(ge=1, le=125)]
FeeRate = Annotated[Decimal, Field(ge=0, lt=Decimal("0.1"))]
Mode = Literal["paper", "testnet", "live"]

_PAIR_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


Strategy = Literal["fixed", "outlook", "trend", "funding_carry", "basis"]
OutlookView = Literal["extremely_bullish", "cautiously_bullish", "neutral", "bearish"]
# ccxt timeframes the trend strategy accepts, with their length in seconds.
TIMEFRAMES: dict[str, int] = {
    "1m": 60,
    "3m": 180,
    "5m": 300,
    "15m": 900,
    "30m": 1800,
    "1h": 3600,
    "2h": 7200,
    "4h": 14400,
    "6h": 21600,
    "8h": 28800,
    "12h": 43200,
    "1d": 86400,
}
# A yearly rate as a fraction: 0.1 = 10 % a year.
Apr = Annotated[Decimal, Field(ge=-10, le=10)]


def _is_dated(text: str) -> bool:
    symbol = parse_or_none(text)
    return symbol is not None and symbol.is_dated


def _contract_problem(perp: Symbol, text: str, strategy: str) -> str | None:
    """Why the pair's contract cannot hedge its spot, for what hedgebot can trade: a
    contract settles in its quote (linear) or its base coin (inverse, coin-margined)."""
    if perp.settle not in (perp.base, perp.quote):
        return (
            f"perp_symbol {text!r} settles in {perp.settle}, neither its base coin nor its "
            f"quote: use '{perp.base}/{perp.quote}:{perp.quote}' (linear) or "
            f"'{perp.base}/USD:{perp.base}' (inverse, coin-margined)"
        )
    if perp.inverse and perp.is_dated:
        return (
            f"perp_symbol {text!r} is a dated inverse future: coin-margined contracts are "
            f"hedged with the perpetual only; use '{perp.base}/{perp.quote}:{perp.base}'"
        )
    if perp.inverse and strategy_kind(strategy).trades_dated_contracts:
        return (
            f"perp_symbol {text!r} is an inverse contract: strategy {strategy!r} trades "
            "linear dated futures only"
        )
    return None


class OutlookConfig(_Frozen):
    """``strategy = "outlook"``: the allocation matrix row to hedge by."""

    view: OutlookView = "neutral"


class TrendConfig(_Frozen):
    """``strategy = "trend"``: a moving-average crossover on the perp's closed candles."""

    timeframe: str = "4h"
    fast: Annotated[int, Field(ge=1, le=500)] = 10
    slow: Annotated[int, Field(ge=2, le=1000)] = 30
    ma: Literal["sma", "ema"] = "sma"
    bull_ratio: Annotated[Decimal, Field(ge=-1, le=2)] = Decimal(0)
    bear_ratio: Ratio = Decimal(1)
    # How far below 0 a ratio may go: a net long of this share of the spot, via a long perp.
    max_net_long: Annotated[Decimal, Field(ge=0, le=1)] = Decimal(0)

    @model_validator(mode="after")
    def _check(self) -> TrendConfig:
        if self.timeframe not in TIMEFRAMES:
            raise ValueError(f"timeframe {self.timeframe!r} is not one of {', '.join(TIMEFRAMES)}")
        if self.fast >= self.slow:
            raise ValueError(f"fast {self.fast} must be below slow {self.slow}")
        if self.bull_ratio < -self.max_net_long:
            raise ValueError(
                f"bull_ratio {self.bull_ratio} is a net long beyond max_net_long "
                f"{self.max_net_long}; raise max_net_long or the ratio"
            )
        return self

    @property
    def timeframe_s(self) -> int:
        return TIMEFRAMES[self.timeframe]


class FundingCarryConfig(_Frozen):
    """``strategy = "funding_carry"``: full hedge while funding pays, none when it does not."""

    entry_apr: Apr = Decimal("0.1")
    exit_apr: Apr = Decimal(0)
    # Hours between funding payments; default: the venue's (ccxt "interval"), else 8.
    funding_interval_hours: Annotated[Decimal, Field(gt=0, le=24)] | None = None

    @model_validator(mode="after")
    def _check(self) -> FundingCarryConfig:
        if self.exit_apr > self.entry_apr:
            raise ValueError(
                f"exit_apr {self.exit_apr} is above entry_apr {self.entry_apr}; "
                "exit must be at or below entry"
            )
        return self


class BasisConfig(_Frozen):
    """``strategy = "basis"``: cash-and-carry on the dated future named by ``perp_symbol``.

    Enter (hedge 1) when the annualized basis is at or above ``entry_apr``, hold to expiry.
    ``close_before_s`` before expiry the contract is closed (reduce-only); "roll" then opens
    the next contract of ``roll_to`` (in order), "close" stays out.
    """

    entry_apr: Apr = Decimal("0.05")
    at_expiry: Literal["roll", "close"] = "close"
    close_before_s: Annotated[int, Field(ge=0, le=30 * 86400)] = 3600
    roll_to: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> BasisConfig:
        if self.at_expiry == "roll" and not self.roll_to:
            raise ValueError(
                "at_expiry = 'roll' needs roll_to = ['BTC/USDT:USDT-270326', ...] (the next "
                "contracts); give them or use at_expiry = 'close'"
            )
        if self.at_expiry == "close" and self.roll_to:
            raise ValueError("roll_to is given but at_expiry is 'close'; set at_expiry = 'roll'")
        for symbol in self.roll_to:
            if not _is_dated(symbol):
                raise ValueError(
                    f"roll_to {symbol!r} is not a dated future; use 'BASE/QUOTE:SETTLE-YYMMDD'"
                )
        return self


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
    # The target ratio's source; "fixed" uses target_ratio. Each has its own table.
    strategy: Strategy = "fixed"
    outlook: OutlookConfig | None = None
    trend: TrendConfig | None = None
    funding_carry: FundingCarryConfig | None = None
    basis: BasisConfig | None = None
    # May the bot sell spot (the bearish outlook's sell-down, on the pair's spot account)?
    allow_spot_trades: bool = False
    # Where the coins it hedges are counted: the spot wallet of the spot account, and
    # "futures": the perp account's futures wallet too (coins moved there as collateral,
    # e.g. Binance's multi-assets mode). On a venue with one wallet it is counted once.
    coin_wallets: tuple[Literal["spot", "futures"], ...] = ("spot",)

    @field_validator("coin_wallets")
    @classmethod
    def _wallets_once(
        cls, wallets: tuple[Literal["spot", "futures"], ...]
    ) -> tuple[Literal["spot", "futures"], ...]:
        if not wallets or len(set(wallets)) != len(wallets):
            raise ValueError(
                f"coin_wallets {list(wallets)} must name each wallet once, at least one: "
                '["spot"], ["futures"] or ["spot", "futures"]'
            )
        return wallets

    @model_validator(mode="after")
    def _check_strategy(self) -> PairConfig:
        kind = strategy_kind(self.strategy)
        # Each strategy with parameters has a table of its name; only its own may be given.
        for table in ("outlook", "trend", "funding_carry", "basis"):
            if getattr(self, table) is not None and table != kind.name:
                raise ValueError(
                    f"pair {self.name}: [{table}] parameters given but strategy is "
                    f"{self.strategy!r}; set strategy = {table!r} or remove the table"
                )
        if kind.trades_dated_contracts:
            if not _is_dated(self.perp_symbol):
                raise ValueError(
                    f"pair {self.name}: strategy 'basis' needs a dated future as perp_symbol, "
                    f"got {self.perp_symbol!r}; use e.g. 'BTC/USDT:USDT-261225'"
                )
            base = Symbol.parse(self.perp_symbol).base
            for symbol in self.basis_params.roll_to:
                if Symbol.parse(symbol).base != base or symbol == self.perp_symbol:
                    raise ValueError(
                        f"pair {self.name}: roll_to {symbol!r} must be another {base} "
                        "dated future than perp_symbol"
                    )
        elif _is_dated(self.perp_symbol):
            raise ValueError(
                f"pair {self.name}: perp_symbol {self.perp_symbol!r} is a dated future, which "
                "only strategy 'basis' trades; use a perpetual or strategy = 'basis'"
            )
        return self

    @property
    def outlook_params(self) -> OutlookConfig:
        return self.outlook or OutlookConfig()

    @property
    def trend_params(self) -> TrendConfig:
        return self.trend or TrendConfig()

    @property
    def funding_carry_params(self) -> FundingCarryConfig:
        return self.funding_carry or FundingCarryConfig()

    @property
    def basis_params(self) -> BasisConfig:
        return self.basis or BasisConfig()

    @property
    def contract_symbols(self) -> tuple[str, ...]:
        """Every contract the pair may trade: ``perp_symbol``, then basis ``roll_to``."""
        if not strategy_kind(self.strategy).trades_dated_contracts:
            return (self.perp_symbol,)
        return (self.perp_symbol, *self.basis_params.roll_to)

    # Risk caps of this pair, in quote; None: no cap beyond max_order_notional.
    max_position_notional: PositiveDecimal | None = None
    max_daily_notional: PositiveDecimal | None = None
    # Liquidity: an order whose estimated slippage (walking the book) is above
    # max_slippage_bps is split to the part that fits, or held back until the book allows.
    on_thin_book: Literal["split", "wait"] = "split"
    # Markets below these (in quote) are not traded at all.
    min_open_interest: NonNegativeDecimal = Decimal(0)
    min_quote_volume_24h: NonNegativeDecimal = Decimal(0)

    # "band": trade when |ratio - target| > band (checked every cycle); "interval": trade
    # to the target once every rebalance_interval_s (UTC-aligned), whatever the drift.
    rebalance: Literal["band", "interval"] = "band"
    rebalance_interval_s: Annotated[int, Field(ge=1, le=30 * 86400)] = 3600

    @model_validator(mode="after")
    def _check_symbols(self) -> PairConfig:
        if not _PAIR_NAME.match(self.name):
            raise ValueError(f"name {self.name!r} must be 1-32 letters, digits, '_', '-' or '.'")
        spot = parse_or_none(self.spot_symbol)
        if spot is None or not spot.is_spot:
            raise ValueError(f"spot_symbol {self.spot_symbol!r} must look like 'BTC/USDT'")
        perp = parse_or_none(self.perp_symbol)
        if perp is None or not perp.is_contract:
            raise ValueError(f"perp_symbol {self.perp_symbol!r} must look like 'BTC/USDT:USDT'")
        if spot.base != perp.base:
            raise ValueError(
                f"perp_symbol {self.perp_symbol!r} does not hedge the base coin of "
                f"spot_symbol {self.spot_symbol!r}"
            )
        if self.max_order_notional < self.min_notional:
            raise ValueError(
                f"max_order_notional {self.max_order_notional} is below "
                f"min_notional {self.min_notional}"
            )
        problem = _contract_problem(perp, self.perp_symbol, self.strategy)
        if problem is not None:
            raise ValueError(problem)
        return self

    @property
    def spot_base(self) -> str:
        return Symbol.parse(self.spot_symbol).base


class PaperMarketConfig(_Frozen):
    """Trading rules the paper venue applies to one symbol."""

    amount_step: PositiveDecimal = Decimal("0.001")
    price_step: PositiveDecimal = Decimal("0.01")
    min_amount: NonNegativeDecimal = Decimal("0.001")
    min_notional: NonNegativeDecimal = Decimal(5)
    # What the paper venue reports for the market's liquidity gates, in quote.
    open_interest_value: NonNegativeDecimal = Decimal(1_000_000_000)
    quote_volume_24h: NonNegativeDecimal = Decimal(10_000_000_000)
    # A dated future (symbol 'BASE/QUOTE:SETTLE-YYMMDD'): its delivery time, and its basis
    # as a yearly rate: price = spot x (1 + basis_apr x days left / 365), 0 at expiry.
    expiry: AwareDatetime | None = None
    basis_apr: Apr = Decimal(0)
    # An inverse contract's face value in the quote (USD) a contract; None: 100 (Binance
    # COIN-M BTCUSD's). Its amounts are contracts: give amount_step and min_amount 1.
    contract_size: PositiveDecimal | None = None


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


class MaintenanceTierConfig(_Frozen):
    """One maintenance margin tier, as Binance's GET /fapi/v1/leverageBracket lists it
    (notionalFloor, notionalCap, maintMarginRatio, cum): a position of a notional above
    ``floor`` and up to ``cap`` keeps ``notional x rate - amount`` of margin."""

    floor: NonNegativeDecimal
    cap: PositiveDecimal | None = None  # None: the last tier, no cap
    rate: Annotated[Decimal, Field(ge=0, lt=1)]
    amount: NonNegativeDecimal = Decimal(0)


def _tiers(*rows: tuple[int, int | None, str, int]) -> tuple[MaintenanceTierConfig, ...]:
    return tuple(
        MaintenanceTierConfig(
            floor=Decimal(floor),
            cap=None if cap is None else Decimal(cap),
            rate=Decimal(rate),
            amount=Decimal(amount),
        )
        for floor, cap, rate, amount in rows
    )


def _binance_tiers() -> dict[str, tuple[MaintenanceTierConfig, ...]]:
    """BTCUSDT's tiers as Binance announced them on 2021-03-18, and ETHUSDT's of the same
    year; the amounts follow from the rates (the margin is continuous across tiers).
    Binance changes its tiers: copy the current ones from leverageBracket to follow them."""
    btc = _tiers(
        (0, 50_000, "0.004", 0),
        (50_000, 250_000, "0.005", 50),
        (250_000, 1_000_000, "0.01", 1_300),
        (1_000_000, 10_000_000, "0.025", 16_300),
        (10_000_000, 20_000_000, "0.05", 266_300),
        (20_000_000, 50_000_000, "0.1", 1_266_300),
        (50_000_000, 100_000_000, "0.125", 2_516_300),
        (100_000_000, 200_000_000, "0.15", 5_016_300),
        (200_000_000, 300_000_000, "0.25", 25_016_300),
        (300_000_000, None, "0.5", 100_016_300),
    )
    eth = _tiers(
        (0, 10_000, "0.005", 0),
        (10_000, 100_000, "0.0065", 15),
        (100_000, 500_000, "0.01", 365),
        (500_000, 1_000_000, "0.02", 5_365),
        (1_000_000, 2_000_000, "0.05", 35_365),
        (2_000_000, 5_000_000, "0.1", 135_365),
        (5_000_000, 10_000_000, "0.125", 260_365),
        (10_000_000, 20_000_000, "0.15", 510_365),
        (20_000_000, None, "0.25", 2_510_365),
    )
    return {"BTC": btc, "ETH": eth}


def _maintenance_tiers(rows: Sequence[MaintenanceTierConfig]) -> MaintenanceTiers:
    return MaintenanceTiers(
        tuple(MaintenanceTier(row.floor, row.cap, row.rate, row.amount) for row in rows)
    )


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
    # Liquidation uses Binance's formula with the maintenance margin tiers of the contract's
    # base coin (default: BTCUSDT's and ETHUSDT's, see _binance_tiers); a coin without
    # tiers keeps maintenance_margin_rate for every notional.
    maintenance_margin_rate: Annotated[Decimal, Field(gt=0, lt=Decimal("0.5"))] = Decimal("0.005")
    maintenance_tiers: dict[str, tuple[MaintenanceTierConfig, ...]] = Field(
        default_factory=_binance_tiers
    )
    funding_interval_hours: Annotated[int, Field(ge=1, le=24)] = 8
    quote_asset: str = "USDT"
    # The account's margin model. "isolated": each position holds its own margin in the
    # quote asset; "cross": the quote asset backs every position and the account is
    # liquidated as a whole; "unified": a unified (cross-collateral) account, as Bybit's,
    # where every asset held also backs them at its collateral_ratios entry (the quote
    # asset at 1, a coin not listed at 0). Pairs use the matching margin_mode.
    account: Literal["isolated", "cross", "unified"] = "isolated"
    collateral_ratios: dict[str, Annotated[Decimal, Field(ge=0, le=1)]] = Field(
        default_factory=lambda: {"BTC": Decimal("0.95"), "ETH": Decimal("0.95")}
    )
    # The coin-margin wallet (Binance COIN-M's) at the start: coins that margin inverse
    # contracts (BTC/USD:BTC), apart from the spot wallet of `balances`.
    coin_margin_balances: dict[str, NonNegativeDecimal] = Field(default_factory=dict)
    sim: SimFeedConfig = Field(default_factory=SimFeedConfig)
    replay_files: dict[str, Path] = Field(default_factory=dict)
    markets: dict[str, PaperMarketConfig] = Field(default_factory=dict)
    book_levels: Annotated[int, Field(ge=1, le=1000)] = 20
    book_level_notional: PositiveDecimal = Decimal(250000)
    default_market: PaperMarketConfig = Field(default_factory=PaperMarketConfig)
    # Separate wallets, as a classic Binance account: ``balances`` is then the spot wallet
    # (coins and quote) and ``futures_balances`` the USDT-margined futures wallet, between
    # which quote moves only by transfer (risk.on_liquidation_risk "keep" does). Off: one
    # wallet for both.
    separate_wallets: bool = False
    futures_balances: dict[str, NonNegativeDecimal] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check_replay(self) -> PaperConfig:
        if self.feed == "replay" and not self.replay_files:
            raise ValueError("feed 'replay' needs replay_files = { 'BTC/USDT:USDT' = 'btc.csv' }")
        for coin, rows in self.maintenance_tiers.items():
            try:
                _maintenance_tiers(rows)
            except ValueError as exc:
                raise ValueError(f"paper.maintenance_tiers.{coin}: {exc}") from None
        return self

    def maintenance(self, symbol: str) -> tuple[str, MaintenanceTiers]:
        """The maintenance margin tiers the paper venue liquidates ``symbol`` with, and the
        setting they come from."""
        coin = Symbol.parse(symbol).base
        rows = self.maintenance_tiers.get(coin)
        if rows:
            return f"paper.maintenance_tiers.{coin}", _maintenance_tiers(rows)
        return "paper.maintenance_margin_rate", MaintenanceTiers.flat(self.maintenance_margin_rate)


class RiskConfig(_Frozen):
    """Pre-trade limits applied to every order."""

    max_data_age_s: PositiveDecimal = Decimal(60)
    max_leverage: Leverage = Decimal(5)
    kill_switch: bool = False
    # A fill not yet in the venue's position view counts toward the hedge this long.
    fill_settle_s: Annotated[Decimal, Field(ge=0, le=3600)] = Decimal(30)
    # An order sent but unknown to the venue is called lost (never sent) after this long.
    order_settle_s: Annotated[Decimal, Field(gt=0, le=3600)] = Decimal(60)
    # Liquidation guard: when (liquidation - mark) / mark of a position falls under this,
    # act before anything else: "reduce" closes the position with reduce-only orders (the
    # hedge reopens at the current price with fresh margin), "add_margin" moves margin
    # into the isolated position until the distance is 1.5 x this again, "keep" (separate
    # spot and futures wallets) moves quote from the spot wallet, else sells a slice of
    # the coins and cuts the short alike, and returns the excess when the price falls;
    # closing stays its last resort (bot/domain/keeper.py). The pre-trade check denies
    # an order whose estimated liquidation price is this close after it.
    min_liquidation_distance: Annotated[Decimal, Field(gt=0, lt=1)] = Decimal("0.1")
    on_liquidation_risk: Literal["reduce", "add_margin", "keep"] = "reduce"
    # The venue's maintenance margin rate, one for every size, with which testnet and live
    # estimate liquidation prices (Binance's isolated formula): each pair's leverage
    # against min_liquidation_distance, the pre-trade estimate, the guard's margin top-up.
    # Default: Binance's first tier for BTC (0.4 %); larger positions and smaller coins
    # have higher tiers. Paper mode uses the paper venue's own (PaperConfig.maintenance).
    maintenance_margin_rate: Annotated[Decimal, Field(ge=0, lt=Decimal("0.5"))] = Decimal("0.004")
    # A pair pauses itself after this many consecutive rejected or failed orders.
    max_consecutive_failures: Annotated[int, Field(ge=1, le=1000)] = 3
    # Open interest and 24h volume are fetched at most this often per symbol.
    market_stats_refresh_s: Annotated[Decimal, Field(ge=0, le=86400)] = Decimal(300)
    # A pair sends nothing while its bid or ask is further than this (a fraction) from
    # the mark (the last trade when there is no position), or its book is crossed.
    max_price_deviation: Annotated[Decimal, Field(gt=0, lt=1)] = Decimal("0.05")


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


class HttpConfig(_Frozen):
    """The health, readiness and metrics endpoints (``/healthz``, ``/readyz``, ``/metrics``).

    On by default, bound to loopback: systemd, Docker's HEALTHCHECK and a local Prometheus
    can reach it, nobody else can. Nothing it serves can trade; set ``host = "0.0.0.0"``
    only where the network is yours (a compose network, a firewalled host).
    """

    enabled: bool = True
    host: str = "127.0.0.1"
    # 0 picks a free port (tests); the bound port is logged as http.listening.
    port: Annotated[int, Field(ge=0, le=65535)] = 8780
    # The read-only dashboard at /dashboard/ (and its JSON under /api/), beside the probes.
    dashboard: bool = True


AlertEvent = Literal["fill", "risk_denied", "paused", "order_failed", "stale_feed"]
ALERT_EVENTS: tuple[AlertEvent, ...] = (
    "fill",
    "risk_denied",
    "paused",
    "order_failed",
    "stale_feed",
)


class AlertsConfig(_Frozen):
    """Notifications through apprise URLs (chat, webhook, e-mail), sent in the background.

    URLs carry tokens and passwords, so they are secrets: masked in ``check-config``
    and never logged.
    """

    enabled: bool = True
    urls: list[SecretStr] = Field(default_factory=list)
    events: list[AlertEvent] = Field(default_factory=lambda: list(ALERT_EVENTS))
    # One notification may take this long before it is given up (logged, not retried).
    timeout_s: Annotated[float, Field(gt=0, le=300)] = 10.0
    # Alerts waiting to be sent; more are dropped with a log line, never block a cycle.
    queue_size: Annotated[int, Field(ge=1, le=10000)] = 100
    # How often the audit log is read for new events.
    poll_interval_s: Annotated[float, Field(gt=0, le=3600)] = 1.0


class StorageConfig(_Frozen):
    """What is stored each cycle and for how long (``[storage]``).

    A hold whose inputs have not materially changed is stored at most every
    ``record_every_s`` (a heartbeat); an order, a denial, a target, regime or quantity
    change, a price or ratio move past its step is stored at once."""

    # 0 stores every cycle's decision (as before issue 16).
    record_every_s: Annotated[float, Field(ge=0, le=86400)] = 300.0
    # A price move of this fraction since the last stored observation is stored (0.01: 1 %).
    record_price_step: Annotated[Decimal, Field(gt=0, le=1)] = Decimal("0.01")
    # A hedge ratio move of this much since the last stored decision is stored.
    record_ratio_step: Annotated[Decimal, Field(gt=0, le=2)] = Decimal("0.005")
    # The daemon prunes observations, decisions and heartbeats older than this many days
    # once a day (orders, fills, funding and transfers are kept); unset: never.
    retention_days: Annotated[float | None, Field(gt=0)] = None


def _check_unique_pairs(pairs: Sequence[PairConfig]) -> None:
    """Pair names are unique, and each perp symbol hedges one pair only."""
    names = [p.name for p in pairs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"pair names must be unique; repeated: {', '.join(duplicates)}")
    perps = [p.perp_symbol for p in pairs]
    shared = sorted({s for s in perps if perps.count(s) > 1})
    if shared:
        # Two pairs steering one position would undo each other's orders.
        raise ValueError(f"each perp_symbol may hedge one pair only; shared: {', '.join(shared)}")


class Settings(BaseSettings):
    """The whole configuration of one hedgebot process."""

    model_config = SettingsConfigDict(
        env_prefix="HEDGEBOT_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    mode: Mode = "paper"
    database_url: str = DEFAULT_DATABASE_URL

    @field_validator("database_url")
    @classmethod
    def _database_driver(cls, url: str) -> str:
        return normalize_database_url(url)

    poll_interval_s: Annotated[float, Field(gt=0, le=86400)] = 10.0
    log_format: Literal["auto", "console", "json"] = "auto"
    # Also write JSON lines to this file, rotated at log_file_max_bytes (plain runs;
    # under systemd and Docker stdout is collected and rotated for you).
    log_file: Path | None = None
    log_file_max_bytes: Annotated[int, Field(ge=1024)] = 10_000_000
    log_file_backups: Annotated[int, Field(ge=0, le=1000)] = 5
    markets_refresh_s: Annotated[float, Field(ge=60)] = 3600.0
    # Several daemons on one Postgres database lease the pairs among themselves. A lease
    # not renewed for this long is taken over; unset: three poll intervals, at least 10 s.
    lease_s: Annotated[float | None, Field(ge=1, le=86400)] = None
    pairs: list[PairConfig] = Field(default_factory=list)
    # Accounts are looked up by name; one client (and one rate limiter) per account.
    paper: PaperConfig = Field(default_factory=PaperConfig)
    risk: RiskConfig = Field(default_factory=RiskConfig)
    accounts: dict[str, AccountConfig] = Field(default_factory=dict)
    http: HttpConfig = Field(default_factory=HttpConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)

    @model_validator(mode="after")
    def _check_pairs(self) -> Settings:
        if not self.pairs:
            raise ValueError("no [[pairs]] configured; add at least one hedge pair")
        _check_unique_pairs(self.pairs)
        for pair in self.pairs:
            self._check_pair_leverage(pair)
            self._check_pair_accounts(pair)
        if self.mode != "paper":
            self._check_live_accounts()
        self._check_one_hedge_per_coin()
        self._check_add_margin_is_isolated()
        self._check_paper_margin_modes()
        if self.lease_s is not None and self.lease_s < 2 * self.poll_interval_s:
            # Renewed once a cycle: a shorter lease would lapse between two cycles.
            raise ValueError(
                f"lease_s = {self.lease_s:g} must be at least twice poll_interval_s "
                f"({self.poll_interval_s:g}); raise lease_s or lower poll_interval_s"
            )
        return self

    def maintenance(self, symbol: str) -> tuple[str, MaintenanceTiers]:
        """The maintenance margin tiers the venue liquidates ``symbol`` with, as far as the
        configuration knows them, and the setting they come from: the paper venue's own;
        on a real venue one rate, risk.maintenance_margin_rate, for every notional."""
        if self.mode == "paper":
            return self.paper.maintenance(symbol)
        rate = self.risk.maintenance_margin_rate
        return "risk.maintenance_margin_rate", MaintenanceTiers.flat(rate)

    def _check_pair_leverage(self, pair: PairConfig) -> None:
        """A fresh short at the pair's leverage opens outside the liquidation guard.

        Its liquidation price is Binance's formula with the tier of its notional: the
        pair's max_position_notional when set (the largest it may grow to, so the highest
        tier it reaches); otherwise the config does not know the size and takes the first
        tier, and the pre-trade check estimates each order's tier when it is sent.
        """
        source, tiers = self.maintenance(pair.perp_symbol)
        # A short of `notional` at entry 1 (one unit of quote per unit of base).
        notional = pair.max_position_notional or Decimal(1)
        liquidation = isolated_liquidation_price(-notional, Decimal(1), pair.leverage, tiers)
        if liquidation is None:
            return
        distance = liquidation - 1
        if distance <= self.risk.min_liquidation_distance:
            # A new position would open inside the guard and be closed at once.
            tier = tiers.tier(notional * liquidation)
            size = (
                f" for max_position_notional {pair.max_position_notional}"
                if pair.max_position_notional is not None
                else ""
            )
            raise ValueError(
                f"pair {pair.name}: leverage {pair.leverage} opens positions about "
                f"{100 * distance:.1f}% from liquidation (maintenance margin rate "
                f"{tier.rate} of {source}{size}), inside "
                f"risk.min_liquidation_distance {self.risk.min_liquidation_distance}; "
                "lower the leverage or the distance"
            )

    def _check_pair_accounts(self, pair: PairConfig) -> None:
        for leg in ("spot_account", "perp_account"):
            name = getattr(pair, leg)
            if name is not None and name not in self.accounts:
                known = ", ".join(sorted(self.accounts)) or "none configured"
                raise ValueError(
                    f"pair {pair.name}: {leg} {name!r} is not an [accounts.NAME] table "
                    f"(accounts: {known})"
                )

    def _check_live_accounts(self) -> None:
        """Testnet and live need an account; with several, every pair names its own."""
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

    def _check_one_hedge_per_coin(self) -> None:
        """One coin on one spot account is hedged by one pair.

        Each pair hedges the whole spot balance of its coin, so two pairs on the same
        balance (a USDT and a USDC perp, or a perp and a basis pair) would each short all
        of it: 1 BTC held, 2 BTC short, both reporting a full hedge.
        """
        seen: dict[tuple[str, str], str] = {}
        for pair in self.pairs:
            key = (self.accounts_of(pair)[0], pair.spot_base)
            first = seen.setdefault(key, pair.name)
            if first != pair.name:
                account, coin = key
                raise ValueError(
                    f"pairs {first} and {pair.name} both hedge {coin} on account {account}: "
                    "one coin can be hedged by one pair; remove one"
                )

    def _check_add_margin_is_isolated(self) -> None:
        """The guard's margin transfer is the venue's isolated position-margin call; the
        keeper's transfers need separate wallets of one account."""
        if self.risk.on_liquidation_risk == "keep":
            self._check_keep()
            return
        if self.risk.on_liquidation_risk != "add_margin":
            return
        cross = [p.name for p in self.pairs if p.margin_mode == "cross"]
        if cross:
            who = _pairs_use(cross)
            raise ValueError(
                "risk.on_liquidation_risk 'add_margin' moves margin into isolated positions "
                f"only, but {who} margin_mode 'cross'; "
                "set margin_mode = 'isolated' or on_liquidation_risk = 'reduce'"
            )
        inverse = [p for p in self.pairs if Symbol.parse(p.perp_symbol).inverse]
        for pair in inverse:
            if pair.leverage > 1:
                raise ValueError(
                    f"pair {pair.name}: risk.on_liquidation_risk 'add_margin' adds margin in "
                    f"the quote, but {pair.perp_symbol} is margined in "
                    f"{Symbol.parse(pair.perp_symbol).base}; set leverage = 1 (a 1x inverse "
                    "short cannot be liquidated) or on_liquidation_risk = 'reduce'"
                )

    def _check_paper_margin_modes(self) -> None:
        """The paper account margins its positions one way: the pairs' mode is its."""
        if self.mode != "paper":
            return
        account = self.paper.account
        if account == "unified" and self.paper.separate_wallets:
            raise ValueError(
                "paper.account 'unified' keeps the coins and the margin in one wallet, but "
                "paper.separate_wallets is set; set one of them"
            )
        wanted = "isolated" if account == "isolated" else "cross"
        other = [p.name for p in self.pairs if p.margin_mode != wanted]
        if other:
            who = _pairs_use(other)
            mode = "cross" if wanted == "isolated" else "isolated"
            fix = "'cross' or 'unified'" if wanted == "isolated" else "'isolated'"
            raise ValueError(
                f"paper.account {account!r} takes margin_mode {wanted!r}, but {who} "
                f"margin_mode {mode!r}; set margin_mode = {wanted!r}, or paper.account = {fix}"
            )

    def _check_keep(self) -> None:
        """``keep`` moves quote between one account's spot and futures wallets."""
        if self.mode == "paper" and not self.paper.separate_wallets:
            raise ValueError(
                "risk.on_liquidation_risk 'keep' moves quote between separate spot and "
                "futures wallets, but the paper account has one; set paper.separate_wallets "
                "= true or on_liquidation_risk = 'reduce'"
            )
        for pair in self.pairs:
            spot, perp = self.accounts_of(pair)
            if spot != perp:
                raise ValueError(
                    f"pair {pair.name}: risk.on_liquidation_risk 'keep' transfers between the "
                    f"wallets of one account, but its spot is on {spot!r} and its perp on "
                    f"{perp!r}; put both on one account or set on_liquidation_risk = 'reduce'"
                )

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

    @property
    def lease_period_s(self) -> float:
        """How long a pair lease lasts without renewal."""
        return self.lease_s if self.lease_s is not None else max(3 * self.poll_interval_s, 10.0)

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
        names = [p.name for p in self.pairs]
        raise ConfigError(unknown_pair_message(name, names, "configured pairs"))


_SECRET_FIELDS = frozenset({"api_key", "secret", "password"})


def _describe(error: Any) -> str:
    location = ""
    for part in error["loc"]:
        location += f"[{part}]" if isinstance(part, int) else (f".{part}" if location else part)
    message = str(error["msg"]).removeprefix("Value error, ")
    value = error.get("input")
    if error["type"] in {"missing"}:
        return f"{location or 'config'}: required but not set"
    # Never echo what may be a secret: a secret field's value, or an unknown key's (a
    # mistyped HEDGEBOT_ACCOUNTS__MAIN__APIKEY carries the key itself).
    if error["type"] == "extra_forbidden":
        return f"{location}: unknown key (value not shown); check its spelling"
    if error["loc"] == ("database_url",):
        return message  # names the URL itself, its password hidden
    if error["loc"] and error["loc"][-1] in _SECRET_FIELDS:
        return f"{location}: {message} (value not shown)"
    if isinstance(value, dict | list) or location == "":
        return f"{location or 'config'}: {message}"
    return f"{location} = {value!r}: {message}"


def _pairs_use(names: list[str]) -> str:
    """``pair A uses`` or ``pairs A, B use``, for a one-line config error."""
    return f"pairs {', '.join(names)} use" if len(names) > 1 else f"pair {names[0]} uses"


def paper_start_problems(settings: Settings) -> list[str]:
    """In paper mode, what would leave a pair holding forever from the first cycle: a coin
    the paper account does not hold (nothing to hedge), a settle asset it does not hold
    (no margin: every order refused), a replay feed without the pair's prices. One line
    each; empty in the other modes."""
    if settings.mode != "paper":
        return []
    paper = settings.paper
    problems = []
    for pair in settings.pairs:
        spot, perp = Symbol.parse(pair.spot_symbol), Symbol.parse(pair.perp_symbol)
        # An inverse contract's coins may sit in the coin-margin wallet, its margin must.
        coin_wallet = paper.coin_margin_balances if perp.inverse else {}
        if not paper.balances.get(spot.base) and not coin_wallet.get(spot.base):
            where = "balances or coin_margin_balances" if perp.inverse else "balances"
            problems.append(
                f"pair {pair.name}: the paper account holds no {spot.base}, so there is "
                f"nothing to hedge; add {spot.base} = <amount> to [paper] {where}"
            )
        settle = perp.settle or perp.quote
        if perp.inverse:
            margin, holder, wallet = coin_wallet, "account", "coin_margin_balances"
        elif paper.separate_wallets:
            margin, holder, wallet = paper.futures_balances, "futures wallet", "futures_balances"
        else:
            margin, holder, wallet = paper.balances, "account", "balances"
        if not margin.get(settle):
            problems.append(
                f"pair {pair.name}: the paper {holder} holds no {settle} to margin "
                f"{pair.perp_symbol}; add {settle} = <amount> to [paper] {wallet}"
            )
        if paper.feed == "replay" and pair.perp_symbol not in paper.replay_files:
            problems.append(
                f"pair {pair.name}: the replay feed has no prices for {pair.perp_symbol}; "
                f"add it to paper.replay_files"
            )
    return problems


def settings_path_exists(variable: str) -> bool:
    """Whether HEDGEBOT_A__B__C names a field of Settings (a dict's key matches anything)."""
    return walk_variable(variable)[0]


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Read the TOML file (if any) and the environment; raise ConfigError on a bad value."""
    if config_file is not None and not config_file.is_file():
        raise ConfigError(
            f"config file {str(config_file)!r} not found; pass an existing --config FILE"
        )
    check_environment()

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


MASK = "**********"
# The credential fields of a ccxt exchange (its ``requiredCredentials``).
CCXT_CREDENTIALS = frozenset(
    {
        "apiKey",
        "secret",
        "uid",
        "login",
        "password",
        "twofa",
        "privateKey",
        "walletAddress",
        "token",
    }
)


def masked_dump(settings: Settings) -> dict[str, Any]:
    """The effective configuration as JSON-able data, secrets replaced by '**********'.

    Also masked: the database password, and credentials passed through ``ccxt_config``.
    """
    dumped = settings.model_dump(mode="json")
    dumped["database_url"] = masked_database_url(settings.database_url)
    for account in dumped["accounts"].values():
        options = account["ccxt_config"]
        for key in CCXT_CREDENTIALS & set(options):
            options[key] = MASK
    return dumped
