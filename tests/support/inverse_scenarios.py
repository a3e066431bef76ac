"""The daemon hedging coins with a venue's BTC inverse perpetual (``BTC/USD:BTC``) through
the real ccxt client on that venue's emulator: one scenario per property, run by
``tests/integration/test_daemon_<venue>_inverse.py`` (Bybit, OKX) and
``test_daemon_binance_coinm.py`` over the venue's harness (``tests.support.venue_harness``).

Where the venues differ, the harness says so, not the scenario: where the coins sit
(Bybit's unified account and OKX's trading account hold them in the one wallet that
margins the short; Binance's user moves them from spot to the COIN-M wallet first), what
the pair needs (``inverse_pair``: cross margin on OKX and Binance), how a lost order's
look-ups fail.

1 BTC hedged 1x: the first cycles bring the ratio into the band; through +100 % and
-50 % the USD value of the coins holds within fees and funding, nothing is sent twice,
the ratio is back in the band after each cycle; a restart finds an order of unknown
outcome by its client id; funding is recorded once, in the coin.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.clock import SystemClock
from bot.config import AccountConfig, Settings
from bot.domain.models import Market
from bot.exchange.ccxt_gateway import CcxtGateway
from bot.store.repository import Repository
from tests.support.daemon_stack import DaemonStack, daemon_stacks
from tests.support.venue_harness import Harness, open_harness

D = Decimal
INVERSE = "BTC/USD:BTC"
BAND = D("0.02")
COINS = D("1.002")  # the coins; a thousandth or two beside the short pays its fees
START = D(60000)
FUNDING_RATE = D("0.0001")  # the emulators' default, received by a short
Start = Callable[..., Awaitable[DaemonStack]]


def settings(venue: Harness, **pair: str) -> Settings:
    """One pair hedging the account's BTC with the inverse perpetual, target 1, as the
    venue needs it (``venue.inverse_pair()``); ``pair`` overrides."""
    return Settings.model_validate(
        {
            "mode": "testnet",
            "poll_interval_s": 1,
            "pairs": [
                {
                    "name": "BTC-coin",
                    "spot_symbol": "BTC/USDT",
                    "perp_symbol": INVERSE,
                    "target_ratio": "1",
                    "band": str(BAND),
                    "min_notional": "0",
                    "max_order_notional": "200000",
                    "leverage": "2",
                    **venue.inverse_pair(),
                    **pair,
                }
            ],
            "accounts": {"main": venue.account()},
            "risk": {"max_data_age_s": "30", "order_settle_s": "1", "max_leverage": "5"},
        }
    )


@dataclass(frozen=True)
class InverseVenue:
    """A venue's harness, funded with ``COINS`` BTC (where the venue hedges them) and no
    USDT, and ``start(settings=None)``, which builds and starts a daemon on it (a restart
    after the first), with the pair of :func:`settings` unless ``settings`` is given."""

    harness: Harness
    start: Start


@asynccontextmanager
async def inverse_venue(name: str, engine: AsyncEngine, **pair: str) -> AsyncIterator[InverseVenue]:
    """Venue ``name``'s emulator listing its BTC inverse perpetual, with the daemon's
    ``start``; ``pair`` overrides the pair's settings (e.g. ``margin_mode``)."""
    venue = await open_harness(name, inverse=True)
    venue.fund_inverse(COINS)
    try:
        async with daemon_stacks(Repository(engine, SystemClock())) as start:

            async def build(given: Settings | None = None) -> DaemonStack:
                return await start(given or settings(venue, **pair))

            yield InverseVenue(venue, build)
    finally:
        await venue.close()


@asynccontextmanager
async def keyed_gateway(venue: Harness) -> AsyncIterator[CcxtGateway]:
    """A gateway on the venue's account, as the daemon builds it (closed after)."""
    account = AccountConfig(**venue.account())
    gateway = CcxtGateway.from_config("main", account, "testnet", SystemClock())
    try:
        yield gateway
    finally:
        await gateway.close()


async def loaded_markets(venue: Harness, *symbols: str) -> tuple[Mapping[str, Market], bool]:
    """The venue's markets of ``symbols`` as a keyed gateway loads them, and whether it
    reads one wallet for spot and margin."""
    async with keyed_gateway(venue) as gateway:
        return await gateway.load_markets(symbols), gateway.one_wallet


def ratio(venue: Harness, price: Decimal) -> Decimal:
    """The short's USD face over the USD value of the coins the pair hedges."""
    return venue.inverse_face() / (venue.coin_equity() * price)


def sent_once(venue: Harness) -> Counter[str]:
    """The inverse orders' client ids, each asserted accepted once."""
    ids = Counter(venue.inverse_accepted())
    assert all(count == 1 for count in ids.values()), ids
    return ids


async def never_liquidated(stack: DaemonStack, price: Decimal) -> None:
    """The venue's liquidation price of the short, as the daemon reads it: none, or
    beyond ten times ``price``."""
    position = (await stack.gateway.fetch_positions([INVERSE]))[INVERSE]
    liquidation = position.liquidation_price
    assert liquidation is None or liquidation > 10 * price, (price, liquidation)


async def keeps_its_usd_value_through_a_rally_and_a_crash(setup: InverseVenue) -> None:
    """+50 %, +100 %, back, -25 %, -50 %: the ratio in the band after each cycle, the
    coins' USD value within what the unhedged coins and the fees can move it (0.1 %),
    one order (the short never cut), never liquidated."""
    start, venue = setup.start, setup.harness
    stack = await start()
    assert await stack.cycles(2) == [{}, {}]
    # Counted once: about 60,000 USD of face for the 1.002 BTC, not twice as much.
    assert abs(ratio(venue, START) - 1) <= BAND, venue.inverse_face()
    hedged_face = venue.inverse_face()
    start_usd = venue.coin_equity() * START
    seen = []
    for price in (D(90000), D(120000), D(90000), D(60000), D(45000), D(30000)):
        venue.set_price(price)
        assert await stack.cycles(1) == [{}]
        assert abs(ratio(venue, price) - 1) <= BAND, (price, ratio(venue, price))
        await never_liquidated(stack, price)
        seen.append((price, venue.coin_equity() * price))
        venue.emulator.settle_funding()  # a short receives a positive rate, in BTC
    fees = venue.inverse_fees()
    for price, usd in seen:
        # Unhedged: what the short's face leaves of the coins, plus the fees, in USD at
        # the worst price seen.
        allowed = (abs(COINS * START - hedged_face) / START + fees) * max(price, START)
        assert abs(usd - start_usd) <= allowed, (price, usd, start_usd, allowed)
        assert abs(usd - start_usd) / start_usd < D("0.001"), (price, usd)
    assert venue.inverse_face() == hedged_face  # one order: the short was never cut
    ids = sent_once(venue)
    assert len(ids) == 1, ids
    stored = {o.client_order_id for o in await stack.repository.orders()}
    assert set(ids) <= stored
    assert venue.coin_equity() > 0


async def finds_an_order_of_unknown_outcome_after_a_restart(setup: InverseVenue) -> str:
    """The user adds half a coin; the next order executes but its answer and look-ups
    are lost; a restart finds it by its client id (returned) and sends nothing again."""
    start, venue = setup.start, setup.harness
    stack = await start()
    assert await stack.cycles(2) == [{}, {}]  # hedged
    first = venue.inverse_accepted()
    venue.add_inverse_coins(D("0.5"))
    venue.lose_next_inverse_order_and_its_lookups()
    await stack.cycles(1)
    unknown = [o for o in await stack.repository.orders() if o.status == "unknown"]
    assert len(unknown) == 1
    assert len(venue.inverse_accepted()) == len(first) + 1  # the venue executed it
    venue.clear_faults()
    restarted = await start()
    assert await restarted.cycles(2) == [{}, {}]  # the first looks it up
    assert not await restarted.repository.unresolved_orders()
    client_id = unknown[0].client_order_id
    found = [o for o in await restarted.repository.orders() if o.client_order_id == client_id]
    assert [o.status for o in found] == ["filled"]
    sent_once(venue)
    assert abs(ratio(venue, START) - 1) <= BAND
    return client_id


async def steady_cycle_requests(setup: InverseVenue) -> Counter[tuple[str, str]]:
    """The requests of a cycle that holds inside the band, once hedged."""
    start, venue = setup.start, setup.harness
    stack = await start()
    assert await stack.cycles(2) == [{}, {}]  # the hedging order, then the look at it
    first = len(venue.emulator.request_log)
    assert await stack.cycles(1) == [{}]
    return Counter(venue.emulator.request_log[first:])


async def records_funding_once_in_the_coin(setup: InverseVenue) -> None:
    """One settlement on the hedged short: received in BTC, recorded once."""
    start, venue = setup.start, setup.harness
    stack = await start()
    stack.gateway.funding_poll = timedelta(0)
    await stack.cycles(2)
    venue.emulator.settle_funding()  # the short's face at a 0.0001 rate: BTC received
    await stack.cycles(2)
    [event] = await stack.repository.audit_events(kind="funding")
    assert event.summary.startswith("funding received")
    received = venue.inverse_face() / START * FUNDING_RATE
    assert abs(await stack.repository.funding_total("BTC-coin") - received) < D("1e-12")
    assert "BTC" in event.summary
