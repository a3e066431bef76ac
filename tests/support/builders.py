"""Settings and daemons for the tests, built the way ``hedgebot run`` builds them.

``open_daemon`` goes through the service layer's composition root
(:func:`bot.service.wiring.build_daemon`), so a test's daemon has the same gateways, the
same paper venue (its leverage from the pairs) and the same wiring as the real one; a
test only swaps the price feed or the venue class.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

from bot.clock import Clock
from bot.config import Settings
from bot.exchange.feeds import PriceFeed
from bot.exchange.paper import PaperVenue
from bot.service.daemon import HedgeDaemon
from bot.service.wiring import build_daemon
from bot.store.repository import Repository

if TYPE_CHECKING:
    from tests.support.emulators.binance import BinanceEmulator

V = TypeVar("V", bound=PaperVenue)

BALANCES = {"BTC": "1", "USDT": "100000"}


def pair(name: str = "BTC", target: str = "1", **extra: Any) -> dict[str, Any]:
    """A linear USDT pair ``name`` hedged at ``target``: band 2 %, 5x, no practical cap."""
    return {
        "name": name,
        "spot_symbol": f"{name}/USDT",
        "perp_symbol": f"{name}/USDT:USDT",
        "target_ratio": target,
        "band": "0.02",
        "max_order_notional": "1000000",
        "leverage": "5",
        **extra,
    }


def settings(
    pairs: Sequence[Mapping[str, Any]],
    risk: Mapping[str, Any] | None = None,
    **paper: Any,
) -> Settings:
    """Paper mode on ``pairs``, a 10 s cycle; ``paper`` overrides the paper venue's config
    (1 BTC and 100,000 USDT, no spread, unless given)."""
    paper_config = {"balances": BALANCES, "spread_bps": "0", **paper}
    return Settings.model_validate(
        {"pairs": list(pairs), "paper": paper_config, "risk": risk or {}, "poll_interval_s": 10}
    )


async def open_daemon(
    config: Settings,
    repository: Repository,
    clock: Clock,
    feed: PriceFeed,
    venue_class: type[V] = PaperVenue,  # type: ignore[assignment]
) -> tuple[HedgeDaemon, V]:
    """A started paper daemon over ``repository`` on ``feed``, and its venue."""
    built = await build_daemon(config, repository, clock, feed=feed, venue_class=venue_class)
    await built.daemon.start()
    return built.daemon, cast(V, built.venue)


def emulator_pair(name: str = "BTC", **extra: Any) -> dict[str, Any]:
    """A linear USDT pair ``name`` on the Binance emulator, hedged at 1: band 2 %, 2x."""
    return {
        "name": name,
        "spot_symbol": f"{name}/USDT",
        "perp_symbol": f"{name}/USDT:USDT",
        "target_ratio": "1",
        "band": "0.02",
        "max_order_notional": "200000",
        "leverage": "2",
        **extra,
    }


def emulator_settings(
    emulator: BinanceEmulator,
    pairs: Sequence[Mapping[str, Any]],
    risk: Mapping[str, Any] | None = None,
) -> Settings:
    """Testnet mode on one account ``main`` of the Binance emulator (its ccxt client times
    out after 1 s); ``risk`` on top of data 30 s old at most and an unknown order called
    lost after 1 s (the emulator answers or drops at once)."""
    return Settings.model_validate(
        {
            "mode": "testnet",
            "poll_interval_s": 1,
            "pairs": list(pairs),
            "accounts": {
                "main": {
                    "exchange": "binance",
                    "api_key": "test-key",
                    "secret": "test-secret",
                    "ccxt_config": {**emulator.ccxt_config(), "timeout": 1000},
                    "rate_limit_per_s": "500",
                }
            },
            "risk": {"max_data_age_s": "30", "order_settle_s": "1", **(risk or {})},
        }
    )
