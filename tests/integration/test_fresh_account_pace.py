"""A fresh Binance account of 200 pairs is set up and hedged in its first cycle inside one
minute's request weight (2,400, of which the limiter uses 90 %), so no request waits for
the next minute: a new order takes no request weight (it counts in the order windows),
and an IOC order's own answer (``newOrderRespType`` RESULT) is its outcome, with no look-up
after it. The emulator counts the documented weights and refuses what is over."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.clock import SystemClock
from bot.config import Settings
from bot.service.wiring import build_daemon
from bot.store.repository import Repository
from tests.support.builders import emulator_pair
from tests.support.emulators.binance import BinanceEmulator
from tests.support.emulators.binance._binance_models import DEFAULT_MARKETS
from tests.support.emulators.binance.binance_emulator import made_up_markets
from tests.support.venue_harness import BinanceHarness

D = Decimal
PAIRS = 200
SPOT = D(10)  # coins of each pair at 100: a hedge of 1,000 USDT


async def test_a_fresh_200_pair_binance_account_is_hedged_in_one_cycle_inside_a_minute_s_weight(
    engine: AsyncEngine,
) -> None:
    made = made_up_markets(PAIRS)
    emulator = BinanceEmulator(markets=[*DEFAULT_MARKETS, *made])
    await emulator.start()
    harness = BinanceHarness(emulator)
    emulator.set_futures_balance("USDT", D(10_000_000))
    for market in made:
        emulator.set_spot_balance(market.base, SPOT)
    settings = Settings(
        mode="testnet",
        poll_interval_s=1,
        lease_s=600,
        pairs=[emulator_pair(m.base, margin_mode="isolated") for m in made],
        # the venue's own limits, not the harness's fast test pace
        accounts={"main": harness.account(rate_limit_per_s=None)},
        risk={"max_data_age_s": "60", "order_settle_s": "2"},
    )
    repository = Repository(engine, SystemClock())
    built = await build_daemon(settings, repository, SystemClock())
    try:
        await built.daemon.start()
        report = await built.daemon.run_cycle(await repository.last_cycle() + 1)
        waits = sum(gateway.limiter_waits for gateway in built.gateways.values())
    finally:
        await built.close_gateways()
        await harness.close()
    assert report.errors == {}
    assert [m.base for m in made if emulator.position(f"{m.base}/USDT:USDT") != -SPOT] == []
    # every contract set up once (leverage and margin type differ from the venue's)
    assert emulator.requests_to("/fapi/v1/leverage", "POST") == PAIRS
    assert emulator.requests_to("/fapi/v1/marginType", "POST") == PAIRS
    # one order a pair, its outcome from its own answer: no GET /fapi/v1/order after it
    assert emulator.requests_to("/fapi/v1/order", "POST") == PAIRS
    assert emulator.requests_to("/fapi/v1/order", "GET") == 0
    # nothing held back for the next minute, nothing the venue refused
    assert waits == 0
    assert emulator.fapi_limits.refused == []
    assert emulator.fapi_limits.used_weight <= 2160
    stored = await repository.orders()
    assert len(stored) == PAIRS
    assert all(o.fee > 0 for o in stored)  # the fills' fees were read from their trades
