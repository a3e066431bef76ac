"""A steady cycle's requests on each venue's emulator through the real ccxt client: one
request per distinct endpoint per account, the same for 2 pairs as for 10, and of each
whole-market answer (every symbol of a type) only the pairs' rows are parsed, to the
values ccxt's own calls give for them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.clock import FakeClock, SystemClock
from bot.config import AccountConfig, Settings
from bot.exchange.ccxt_gateway import CcxtGateway
from bot.exchange.ccxt_parse import funding_rates, tickers
from bot.exchange.rate_poll import FUNDING_RATE_POLL
from bot.service.wiring import build_daemon
from bot.store.repository import Repository
from tests.support import builders
from tests.support.emulators.binance import BinanceEmulator
from tests.support.emulators.binance._binance_models import DEFAULT_MARKETS, EmulatedMarket
from tests.support.emulators.bybit import BybitEmulator
from tests.support.emulators.okx import OkxEmulator
from tests.support.venue_harness import BinanceHarness, BybitHarness, Harness, OkxHarness

D = Decimal
NOW = datetime(2026, 1, 1, tzinfo=UTC)
#: Ten coins listed with a spot pair and a perpetual on every emulator below (Bybit's
#: generated list makes C0001 spot-only and C0002 perp-only).
COINS = ["BTC", "ETH", "C0000", "C0003", "C0004", "C0005", "C0006", "C0007", "C0008", "C0009"]
LISTED = 60  # spot pairs and perpetuals each: many more than the pairs use
PERP_BTC = "BTC/USDT:USDT"

#: The requests of a steady (holding, inside the band) cycle, whatever the pairs.
STEADY: dict[str, Counter[tuple[str, str]]] = {
    "binance": Counter(
        {
            ("GET", "/api/v3/account"): 1,  # the spot wallet
            ("GET", "/fapi/v3/account"): 1,  # the USDⓈ-M wallet
            ("GET", "/fapi/v3/positionRisk"): 1,
            ("GET", "/fapi/v1/ticker/bookTicker"): 1,  # bid/ask
            # funding (/fapi/v1/premiumIndex): once a minute, FUNDING_READS below
        }
    ),
    "bybit": Counter(
        {
            ("GET", "/v5/account/wallet-balance"): 1,  # spot coins and margin: one wallet
            ("GET", "/v5/position/list"): 1,
            ("GET", "/v5/market/tickers"): 1,  # bid/ask and funding
        }
    ),
    "okx": Counter(
        {
            ("GET", "/api/v5/account/balance"): 1,  # spot coins and margin: one account
            ("GET", "/api/v5/account/positions"): 1,
            ("GET", "/api/v5/market/tickers"): 1,
            # funding (/public/funding-rate: not in OKX's tickers): once a minute, below
        }
    ),
}

#: The funding rates' own request, where the tickers do not carry them: read in the
#: first cycle, then once per ``FUNDING_RATE_POLL`` (a steady cycle inside it has none).
FUNDING_READS: dict[str, Counter[tuple[str, str]]] = {
    "binance": Counter({("GET", "/fapi/v1/premiumIndex"): 1}),
    "bybit": Counter(),
    "okx": Counter({("GET", "/api/v5/public/funding-rate"): 1}),
}

#: Of which the market data: the contracts' tickers and funding rates.
QUOTES: dict[str, Counter[tuple[str, str]]] = {
    "binance": Counter(
        {("GET", "/fapi/v1/ticker/bookTicker"): 1, ("GET", "/fapi/v1/premiumIndex"): 1}
    ),
    "bybit": Counter({("GET", "/v5/market/tickers"): 1}),
    "okx": Counter(
        {("GET", "/api/v5/market/tickers"): 1, ("GET", "/api/v5/public/funding-rate"): 1}
    ),
}


def emulated(name: str) -> Harness:
    if name == "binance":
        made_up = [
            EmulatedMarket(base=f"C{i:04d}", price=D(100), tick_size=D("0.01"), level_qty=D(1000))
            for i in range(LISTED - 2)
        ]
        return BinanceHarness(BinanceEmulator(markets=[*DEFAULT_MARKETS, *made_up]))
    if name == "bybit":
        return BybitHarness(BybitEmulator(markets=LISTED))
    return OkxHarness(OkxEmulator(markets=LISTED, demo=True))


@pytest_asyncio.fixture(params=["binance", "bybit", "okx"])
async def venue(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    """A venue's emulator listing LISTED spot pairs and perpetuals, every coin funded."""
    harness = emulated(request.param)
    await harness.emulator.start()
    harness.fund(margin=D(10_000_000))
    for coin in COINS[1:]:
        amount = D(10) if coin == "ETH" else D(50)
        if isinstance(harness, BinanceHarness):
            harness.emulator.set_spot_balance(coin, amount)
        else:
            harness.emulator.set_balance(coin, amount)
    try:
        yield harness
    finally:
        await harness.close()


def pair(coin: str) -> dict[str, Any]:
    return builders.pair(coin, band="0.05", max_order_notional="10000000", leverage="2")


def requests_since(venue: Harness, start: int) -> Counter[tuple[str, str]]:
    return Counter(venue.emulator.request_log[start:])


@pytest.mark.parametrize("pairs", [2, 10])
async def test_a_steady_cycle_asks_each_endpoint_once_per_account_whatever_the_pairs(
    venue: Harness, engine: AsyncEngine, pairs: int
) -> None:
    settings = Settings(
        mode="testnet",
        pairs=[pair(c) for c in COINS[:pairs]],
        accounts={"main": venue.account()},
        risk={"max_data_age_s": "30", "order_settle_s": "1"},
    )
    built = await build_daemon(settings, Repository(engine, SystemClock()), SystemClock())
    try:
        await built.daemon.start()
        for cycle in (1, 2):  # the hedging orders, then the look at them
            report = await built.daemon.run_cycle(cycle)
            assert report.errors == {}
        start = len(venue.emulator.request_log)
        report = await built.daemon.run_cycle(3)
        assert report.errors == {}
        assert set(report.actions.values()) == {"none"}  # holding, inside the band
        assert requests_since(venue, start) == STEADY[venue.name]
    finally:
        await built.close_gateways()


async def gateway_of(
    venue: Harness, symbols: list[str], clock: FakeClock | None = None
) -> CcxtGateway:
    account = AccountConfig.model_validate(venue.account())
    gateway = CcxtGateway.from_config("main", account, "testnet", clock or SystemClock())
    await gateway.load_markets(symbols)
    return gateway


def counting(client: Any, method: str) -> list[str]:
    """Records the symbol of every row ccxt's ``method`` parses on ``client``."""
    parsed: list[str] = []
    original: Callable[..., Any] = getattr(client, method)

    def wrapper(row: Any, market: Any = None) -> Any:
        result = original(row, market)
        parsed.append(result["symbol"])
        return result

    setattr(client, method, wrapper)
    return parsed


async def unified_tickers(client: Any, symbols: list[str]) -> Any:
    """ccxt's bid/ask: bookTicker where ccxt has ``fetchBidsAsks``, else its tickers."""
    if client.has.get("fetchBidsAsks"):
        return await client.fetch_bids_asks(symbols)
    return await client.fetch_tickers(symbols)


def untimed(values: Mapping[str, Any]) -> dict[str, Any]:
    """The values without the time of their answer (two requests, two times)."""
    return {symbol: replace(value, timestamp=NOW) for symbol, value in values.items()}


async def test_only_the_pairs_rows_are_parsed_to_ccxts_own_values(venue: Harness) -> None:
    perps = ["BTC/USDT:USDT", "C0005/USDT:USDT"]
    gateway = await gateway_of(venue, perps)
    client = gateway._client
    try:
        # What ccxt's unified calls answer (each parses every listed contract).
        expected_tickers = await unified_tickers(client, perps)
        expected_funding = await client.fetch_funding_rates(perps)
        parsed_tickers = counting(client, "parse_ticker")
        parsed_funding = counting(client, "parse_funding_rate")
        start = len(venue.emulator.request_log)

        raw_tickers, raw_funding = await gateway.venue.contract_quotes(perps)

        assert sorted(parsed_tickers) == sorted(perps)
        assert sorted(parsed_funding) == sorted(perps)
        assert requests_since(venue, start) == QUOTES[venue.name]
        assert untimed(tickers(raw_tickers, perps, NOW)) == untimed(
            tickers(expected_tickers, perps, NOW)
        )
        assert untimed(funding_rates(raw_funding, perps, NOW)) == untimed(
            funding_rates(expected_funding, perps, NOW)
        )
        volatile = {"timestamp", "datetime", "info"}
        for symbol in perps:
            for got, want in ((raw_tickers, expected_tickers), (raw_funding, expected_funding)):
                mine = {k: v for k, v in got[symbol].items() if k not in volatile}
                assert mine == {k: v for k, v in want[symbol].items() if k not in volatile}
    finally:
        await gateway.close()


async def test_contract_quotes_through_the_gateway_are_its_tickers_and_funding(
    venue: Harness,
) -> None:
    perps = ["ETH/USDT:USDT", "C0000/USDT:USDT"]
    gateway = await gateway_of(venue, perps)
    try:
        quotes, funding = await gateway.fetch_contract_quotes(perps)
        assert set(quotes) == set(funding) == set(perps)
        separate = await gateway.fetch_tickers(perps)
        assert {s: (t.bid, t.ask) for s, t in quotes.items()} == {
            s: (t.bid, t.ask) for s, t in separate.items()
        }
        rates = await gateway.fetch_funding_rates(perps)
        assert {s: f.rate for s, f in funding.items()} == {s: f.rate for s, f in rates.items()}
    finally:
        await gateway.close()


async def test_the_gateways_tickers_and_funding_parse_the_asked_symbols_only(
    venue: Harness,
) -> None:
    perps = ["ETH/USDT:USDT", "C0003/USDT:USDT"]
    gateway = await gateway_of(venue, perps)
    client = gateway._client
    try:
        parsed_tickers = counting(client, "parse_ticker")
        parsed_funding = counting(client, "parse_funding_rate")
        assert set(await gateway.fetch_tickers(perps)) == set(perps)
        assert set(await gateway.fetch_funding_rates(perps)) == set(perps)
        # Of the LISTED contracts each answer holds, the asked ones only.
        assert sorted(parsed_tickers) == sorted(perps)
        assert sorted(parsed_funding) == sorted(perps)
    finally:
        await gateway.close()


#: The query naming one symbol's row, per market-data endpoint asked for one perpetual.
ONE_ROW = {
    "binance": {
        "/fapi/v1/ticker/bookTicker": {"symbol": "ETHUSDT"},
        "/fapi/v1/premiumIndex": {"symbol": "ETHUSDT"},
    },
    "bybit": {"/v5/market/tickers": {"category": "linear", "symbol": "ETHUSDT"}},
    "okx": {
        "/api/v5/market/tickers": {"instType": "SWAP"},  # /market/ticker is another endpoint
        "/api/v5/public/funding-rate": {"instId": "ETH-USDT-SWAP"},
    },
}


async def test_one_perpetual_asks_its_own_row_with_the_same_request(venue: Harness) -> None:
    perp = "ETH/USDT:USDT"
    gateway = await gateway_of(venue, [perp])
    client = gateway._client
    try:
        expected_ticker = (await unified_tickers(client, [perp]))[perp]
        expected_rate = await client.fetch_funding_rate(perp)
        start = len(venue.emulator.request_log)

        raw_tickers, raw_funding = await gateway.venue.contract_quotes([perp])

        assert requests_since(venue, start) == QUOTES[venue.name]
        asked = dict(
            zip(
                (path for _, path in venue.emulator.request_log[start:]),
                venue.emulator.request_queries[start:],
                strict=True,
            )
        )
        assert asked == ONE_ROW[venue.name]
        assert raw_tickers[perp]["bid"] == expected_ticker["bid"]
        assert raw_tickers[perp]["ask"] == expected_ticker["ask"]
        assert raw_funding[perp]["fundingRate"] == expected_rate["fundingRate"]
        assert raw_funding[perp]["fundingTimestamp"] == expected_rate["fundingTimestamp"]
    finally:
        await gateway.close()


@pytest.mark.parametrize(
    "perps", [["BTC/USDT:USDT", "NOPE/USDT:USDT"], ["NOPE/USDT:USDT"]], ids=["two", "one"]
)
async def test_a_symbol_the_venue_does_not_list_is_absent_and_the_others_stand(
    venue: Harness, perps: list[str]
) -> None:
    gateway = await gateway_of(venue, ["BTC/USDT:USDT"])
    try:
        quotes, funding = await gateway.fetch_contract_quotes(perps)
        listed = {s for s in perps if s.startswith("BTC")}
        assert set(quotes) == set(funding) == listed
        assert set(await gateway.fetch_tickers(perps)) == listed
        assert set(await gateway.fetch_funding_rates(perps)) == listed
    finally:
        await gateway.close()


async def test_the_funding_rates_are_read_once_a_poll_and_the_tickers_every_observation(
    venue: Harness,
) -> None:
    perps = ["BTC/USDT:USDT", "C0000/USDT:USDT"]
    clock = FakeClock(datetime.now(UTC))
    gateway = await gateway_of(venue, [*perps, "ETH/USDT:USDT"], clock)
    tickers_only = QUOTES[venue.name] - FUNDING_READS[venue.name]
    poll_s = FUNDING_RATE_POLL.total_seconds()
    try:
        start = len(venue.emulator.request_log)
        _, first = await gateway.fetch_contract_quotes(perps)
        assert requests_since(venue, start) == QUOTES[venue.name]
        venue.settle_funding(D("0.0007"))  # BTC's rate moves at the venue

        clock.advance(poll_s - 1)
        start = len(venue.emulator.request_log)
        _, within = await gateway.fetch_contract_quotes(perps)
        assert requests_since(venue, start) == tickers_only
        # Bybit's rates come with its tickers: each read is the venue's newest.
        assert (
            within == first if FUNDING_READS[venue.name] else within[PERP_BTC].rate == D("0.0007")
        )

        clock.advance(1)
        start = len(venue.emulator.request_log)
        _, after = await gateway.fetch_contract_quotes(perps)
        assert requests_since(venue, start) == QUOTES[venue.name]
        assert after[PERP_BTC].rate == D("0.0007")
        assert set(after) == set(perps)

        # A symbol the last read did not ask for is read at once, with the others.
        start = len(venue.emulator.request_log)
        _, grown = await gateway.fetch_contract_quotes([*perps, "ETH/USDT:USDT"])
        assert requests_since(venue, start) == QUOTES[venue.name]
        assert set(grown) == {*perps, "ETH/USDT:USDT"}
    finally:
        await gateway.close()
