"""Start-up's margin mode and leverage on each venue's emulator, counted in requests: 50
pairs on one account read what the venue holds in a few requests whatever their number,
a fresh account gets one set per contract whose setting differs, and a restart where
everything already holds sends no set at all.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.clock import SystemClock
from bot.config import AccountConfig, Settings
from bot.exchange.ccxt_gateway import CcxtGateway
from bot.exchange.gateway import ContractSetting, FatalError
from bot.service.wiring import build_daemon
from bot.store.repository import Repository
from tests.support.builders import emulator_pair
from tests.support.emulators.binance import BinanceEmulator
from tests.support.emulators.binance._binance_models import DEFAULT_MARKETS
from tests.support.emulators.binance.binance_emulator import made_up_markets
from tests.support.emulators.bybit import BybitEmulator
from tests.support.emulators.bybit.bybit_emulator import generated_markets
from tests.support.emulators.okx import OkxEmulator
from tests.support.emulators.okx._okx_models import generate_markets
from tests.support.venue_harness import BinanceHarness, BybitHarness, Harness, OkxHarness

D = Decimal
PAIRS = 50
HEDGED = 8  # the pairs a restart test hedges in one cycle first (the cycle's own pace is
# not what these tests are about: 8 stay inside each emulator's order and book limits)


@dataclass
class Venue:
    """A venue's emulator with ``coins`` funded on spot, and the endpoints start-up uses."""

    harness: Harness
    coins: list[str]
    perp_id: Callable[[str], str]  # the venue's id of a coin's perp
    reads: frozenset[str]  # endpoints that read leverage, margin or position mode
    sets: frozenset[str]  # endpoints that set leverage or margin mode
    read_bound: int  # the most read requests start-up may send, whatever the pairs

    @property
    def log(self) -> list[tuple[str, str]]:
        return list(self.harness.emulator.request_log)


async def binance_venue() -> Venue:
    made = made_up_markets(PAIRS)
    emulator = BinanceEmulator(markets=[*DEFAULT_MARKETS, *made])
    await emulator.start()
    emulator.set_futures_balance("USDT", D(1_000_000))
    for market in made:
        emulator.set_spot_balance(market.base, D(10))
    f = "/fapi/v1"
    return Venue(
        BinanceHarness(emulator),
        [m.base for m in made],
        lambda coin: f"{coin}USDT",
        # symbolConfig: every symbol's leverage and margin type; positionSide/dual: the mode.
        frozenset({f"{f}/symbolConfig", f"{f}/positionSide/dual", "/fapi/v2/positionRisk"}),
        frozenset({f"{f}/leverage", f"{f}/marginType"}),
        2,
    )


async def bybit_venue() -> Venue:
    markets = [m for m in generated_markets(PAIRS + 20) if m.base.startswith("C")]
    both = [m for m in markets if m.spot and m.perp][:PAIRS]
    emulator = BybitEmulator(markets=markets)
    await emulator.start()
    emulator.set_balance("USDT", D(1_000_000))
    for market in both:  # about 1,000 USDT of each coin
        emulator.set_balance(market.base, (D(1000) / market.price).quantize(D("0.1")))
    return Venue(
        BybitHarness(emulator),
        [m.base for m in both],
        lambda coin: f"{coin}USDT",
        # account/info: the account's margin mode; position/list: the position mode (one
        # symbol), the open positions' leverage (by settle coin, 200 a page) and the
        # positions of the observation start-up sizes the leverage from.
        frozenset({"/v5/account/info", "/v5/position/list"}),
        frozenset({"/v5/position/set-leverage", "/v5/account/set-margin-mode"}),
        4,
    )


async def okx_venue() -> Venue:
    markets = generate_markets(PAIRS + 2)
    emulator = OkxEmulator(markets=markets, demo=True)
    await emulator.start()
    emulator.set_balance("USDT", D(1_000_000))
    coins = [m.base for m in markets if m.base.startswith("C")]
    for coin in coins:
        emulator.set_balance(coin, D(10))  # one contract of 10 coins
    a = "/api/v5/account"
    return Venue(
        OkxHarness(emulator),
        coins,
        lambda coin: f"{coin}-USDT-SWAP",
        # config: the position mode; leverage-info: 20 instruments a request.
        frozenset({f"{a}/config", f"{a}/leverage-info"}),
        frozenset({f"{a}/set-leverage"}),
        1 + -(-PAIRS // 20),
    )


VENUES = {"binance": binance_venue, "bybit": bybit_venue, "okx": okx_venue}


@pytest_asyncio.fixture(params=sorted(VENUES))
async def venue(request: pytest.FixtureRequest) -> AsyncIterator[Venue]:
    opened = await VENUES[request.param]()
    try:
        yield opened
    finally:
        await opened.harness.close()


def settings(venue: Venue, coins: list[str], **account: Any) -> Settings:
    return Settings(
        mode="testnet",
        poll_interval_s=1,
        lease_s=600,
        pairs=[emulator_pair(coin, margin_mode="isolated") for coin in coins],
        accounts={"main": venue.harness.account(**account)},
        risk={"max_data_age_s": "60", "order_settle_s": "2"},
    )


@pytest_asyncio.fixture
async def start(venue: Venue, engine: AsyncEngine) -> AsyncIterator[Any]:
    """``await start(cycles)``: build and start a daemon over every pair, run ``cycles``;
    returns the requests start-up sent, by (method, path)."""
    opened: list[Any] = []
    repository = Repository(engine, SystemClock())

    async def run(cycles: int = 0, pairs: int = PAIRS, **account: Any) -> Counter[tuple[str, str]]:
        config = settings(venue, venue.coins[:pairs], **account)
        built = await build_daemon(config, repository, SystemClock())
        opened.append(built)
        before = len(venue.log)
        await built.daemon.start()
        sent = Counter(venue.log[before:])
        cycle = await repository.last_cycle()
        for _ in range(cycles):
            cycle += 1
            report = await built.daemon.run_cycle(cycle)
            assert report.errors == {}
        return sent

    run.opened = opened  # type: ignore[attr-defined]
    yield run
    for built in opened:
        await built.close_gateways()


def count(sent: Counter[tuple[str, str]], paths: frozenset[str], method: str | None = None) -> int:
    return sum(n for (m, p), n in sent.items() if p in paths and method in (None, m))


async def test_a_fresh_account_is_read_in_a_few_requests_and_set_once_per_contract(
    venue: Venue, start: Any
) -> None:
    sent = await start()
    assert len(venue.coins) == PAIRS
    # The reads do not grow with the pairs: at most read_bound (2 to 4) for 50 pairs.
    assert count(sent, venue.reads, "GET") <= venue.read_bound
    sets = Counter(p for (m, p), n in sent.items() for _ in range(n) if p in venue.sets)
    leverage_path = min(venue.sets, key=lambda p: "leverage" not in p)
    # Every leverage differs from the venue's default: one set per contract, plus those
    # the venue answered with its rate-limit code and the gateway sent again (requests
    # granted in one window can reach the venue bunched in its next, as a loaded machine
    # or a network delay makes them; what the venue took counts once per contract).
    assert sets[leverage_path] - venue.harness.rate_limited(leverage_path) == PAIRS
    margin_sets = sum(n for p, n in sets.items() if p != leverage_path)
    # Binance: one marginType per contract; Bybit: one for the account; OKX: none (tdMode).
    assert margin_sets == {"binance": PAIRS, "bybit": 1, "okx": 0}[venue.harness.name]


async def test_a_restart_where_everything_holds_sends_no_set(venue: Venue, start: Any) -> None:
    await start(cycles=1, pairs=HEDGED)  # sets everything and opens every hedge
    assert len(venue.harness.accepted()) == HEDGED
    again = await start(pairs=HEDGED)
    assert count(again, venue.sets) == 0
    assert count(again, venue.reads, "GET") <= venue.read_bound


async def test_only_the_contracts_whose_leverage_differs_are_set(venue: Venue, start: Any) -> None:
    await start(cycles=1, pairs=HEDGED)
    changed = venue.coins[:5]
    for coin in changed:
        set_leverage(venue, coin, 3)
    # The restart comes later: the venue's per-endpoint windows no longer hold the first
    # start's sets (a new daemon's limiter cannot know of them; 10006 would be retried).
    forget_recent_requests(venue)
    again = await start(pairs=HEDGED)
    leverage_path = min(venue.sets, key=lambda p: "leverage" not in p)
    assert count(again, frozenset({leverage_path})) == len(changed)
    assert count(again, venue.sets) == len(changed)


def forget_recent_requests(venue: Venue) -> None:
    """The venue's rate-limit windows pass (Binance's emulator keeps none)."""
    emulator = venue.harness.emulator
    if isinstance(emulator, OkxEmulator):
        emulator.limiter.reset()
    elif isinstance(emulator, BybitEmulator):
        emulator.uid_limiter.reset()


def set_leverage(venue: Venue, coin: str, leverage: int) -> None:
    """The user changes a contract's leverage on the venue."""
    emulator = venue.harness.emulator
    if isinstance(emulator, OkxEmulator):
        emulator.set_leverage(venue.perp_id(coin), leverage, "isolated")
    elif isinstance(emulator, BybitEmulator):
        emulator.set_leverage(venue.perp_id(coin), D(leverage))
    else:
        emulator.set_leverage(coin, leverage)


async def test_bybit_pairs_that_disagree_on_the_account_wide_margin_mode_are_refused() -> None:
    venue = await bybit_venue()
    account = AccountConfig(**venue.harness.account())
    gateway = CcxtGateway.from_config("main", account, "testnet", SystemClock())
    a, b = (f"{coin}/USDT:USDT" for coin in venue.coins[:2])
    try:
        await gateway.load_markets([a, b])
        before = len(venue.log)
        with pytest.raises(FatalError, match="whole unified account") as refused:
            await gateway.apply_settings(
                {a: ContractSetting("isolated", D(2)), b: ContractSetting("cross", D(2))}
            )
    finally:
        await gateway.close()
        await venue.harness.close()
    assert "\n" not in str(refused.value)
    assert venue.log[before:] == []  # refused before anything is read or set


FAPI, V5, OKX = "/fapi/v1", "/v5", "/api/v5"
#: What a 2-pair start on a fresh account sends before its first cycle, by venue: the
#: markets, the position mode, one observation (the leverage is sized from the wallet),
#: what the venue holds and the sets. No history (income, executions, bills) and no
#: open orders: those come with the first cycle.
TWO_PAIR_START = {
    "binance": {
        ("GET", f"{FAPI}/exchangeInfo"): 1,
        ("GET", f"{FAPI}/leverageBracket"): 1,  # ccxt's load_markets
        ("GET", f"{FAPI}/positionSide/dual"): 1,
        ("GET", "/api/v3/account"): 1,
        ("GET", "/fapi/v3/account"): 1,
        ("GET", "/fapi/v3/positionRisk"): 1,
        ("GET", f"{FAPI}/ticker/bookTicker"): 1,
        ("GET", f"{FAPI}/premiumIndex"): 1,
        ("GET", f"{FAPI}/symbolConfig"): 1,
        ("POST", f"{FAPI}/marginType"): 2,
        ("POST", f"{FAPI}/leverage"): 2,
    },
    "bybit": {
        ("GET", f"{V5}/market/instruments-info"): 2,  # spot and linear
        ("GET", f"{V5}/position/list"): 3,  # position mode, observation, leverages
        ("GET", f"{V5}/account/wallet-balance"): 1,
        ("GET", f"{V5}/market/tickers"): 1,
        ("GET", f"{V5}/account/info"): 1,
        ("POST", f"{V5}/account/set-margin-mode"): 1,
        ("POST", f"{V5}/position/set-leverage"): 2,
    },
    "okx": {
        ("GET", f"{OKX}/public/instruments"): 1,
        ("GET", f"{OKX}/account/config"): 1,
        ("GET", f"{OKX}/account/balance"): 1,
        ("GET", f"{OKX}/account/positions"): 1,
        ("GET", f"{OKX}/market/tickers"): 1,
        ("GET", f"{OKX}/public/funding-rate"): 1,
        ("GET", f"{OKX}/account/leverage-info"): 1,
        ("POST", f"{OKX}/account/set-leverage"): 2,
    },
}


async def test_a_two_pair_start_sends_these_requests_and_its_limiter_holds_none_back(
    venue: Venue, start: Any
) -> None:
    # The account's limiter as the venue documents it (no rate_limit_per_s): Binance's
    # weight per minute, Bybit's and OKX's per endpoint. ccxt's own bucket (20 a second
    # on Binance) held the position mode (weight 30), and the first cycle's open orders
    # (40) and income (30), for about a second each.
    sent = await start(pairs=2, rate_limit_per_s=None)
    assert dict(sent) == TWO_PAIR_START[venue.harness.name]
    built = start.opened[-1]
    report = await built.daemon.run_cycle(await built.repository.last_cycle() + 1)
    assert report.errors == {}
    assert len(venue.harness.accepted()) == 2  # both hedged in the first cycle
    assert built.gateways["main"].limiter_waits == 0
