"""One steering surface over each venue's emulator, so that one scenario runs on every
venue: fund the account, move the price and the spot balance, read the true position (in
coins), the accepted orders, inject each fault class where that venue would answer it,
and trade as the user beside the daemon.

``HARNESSES`` names them; ``open_harness(name)`` starts one (stopped by ``close()``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tests.support.emulators.binance import BinanceEmulator
from tests.support.emulators.binance._binance_coinm import DEFAULT_COINM_MARKETS
from tests.support.emulators.binance._binance_models import Fault as BinanceFault
from tests.support.emulators.binance.binance_emulator import ccxt_client as binance_client
from tests.support.emulators.bybit import BybitEmulator
from tests.support.emulators.bybit import Fault as BybitFault
from tests.support.emulators.bybit._bybit_models import EmulatedMarket
from tests.support.emulators.bybit.bybit_emulator import ccxt_client as bybit_client
from tests.support.emulators.okx import OkxEmulator
from tests.support.emulators.okx._okx_models import Fault as OkxFault
from tests.support.emulators.okx.okx_emulator import ccxt_client as okx_client

D = Decimal
COIN = "BTC"
PERP = "BTC/USDT:USDT"
SPOT = "BTC/USDT"
ONE_BTC = D(1)
MARGIN = D(100000)


@dataclass(frozen=True)
class Accepted:
    """An order the venue accepted: client id, side, reduce-only, type (lower case)."""

    client_order_id: str
    side: str
    reduce_only: bool
    order_type: str


@dataclass(frozen=True)
class FaultCase:
    """One fault class as this venue answers it: ``inject()`` arms it once."""

    name: str
    inject: Callable[[], None]
    refuses_order: bool = False  # the order itself is refused (audited as rejected)
    accepts_order: bool = False  # executed, its answer lost: found by client id


class Harness:
    """The common part: an emulator with ``set_price``, ``inject``, ``position_view_lag_s``."""

    name = ""
    exchange = ""
    emulator: Any

    def account(self, **extra: Any) -> dict[str, Any]:
        """``[accounts.main]`` for this venue, reaching the emulator in testnet mode."""
        raise NotImplementedError

    def fund(self, spot: Decimal = ONE_BTC, margin: Decimal = MARGIN) -> None:
        raise NotImplementedError

    def set_spot(self, amount: Decimal) -> None:
        raise NotImplementedError

    def set_price(self, price: Decimal) -> None:
        self.emulator.set_price(COIN, price)

    def position(self) -> Decimal:
        """The true (unlagged) BTC perp position in coins, signed."""
        raise NotImplementedError

    def accepted(self) -> list[Accepted]:
        raise NotImplementedError

    def rate_limited(self, path: str) -> int:
        """How many requests to ``path`` the venue answered with its rate-limit code."""
        return 0

    def faults(self) -> list[FaultCase]:
        raise NotImplementedError

    async def user_buy_back(self, amount: Decimal) -> None:
        """The user closes ``amount`` BTC of the short through their own client."""
        raise NotImplementedError

    def lose_next_order_and_its_lookups(self) -> None:
        """The next order executes but its answer is lost, and so are the look-ups that
        follow in that cycle: the order is stored with an unknown outcome."""
        raise NotImplementedError

    async def enable_hedge_mode(self) -> None:
        """Switch the account to hedge mode (separate long and short positions)."""
        raise NotImplementedError

    def settle_funding(self, rate: Decimal) -> None:
        """Pay funding at ``rate`` on the open BTC perp position now."""
        raise NotImplementedError

    @property
    def lag_s(self) -> float:
        return float(self.emulator.position_view_lag_s)

    @lag_s.setter
    def lag_s(self, value: float) -> None:
        self.emulator.position_view_lag_s = value

    def clear_faults(self) -> None:
        self.emulator.clear_faults()

    async def close(self) -> None:
        await self.emulator.stop()

    # -- the inverse (coin-margined) perpetual, where the venue lists one --------------

    def inverse_pair(self) -> dict[str, str]:
        """What an inverse pair's settings need on this venue (e.g. its margin mode)."""
        return {}

    def fund_inverse(self, coins: Decimal) -> None:
        """Put ``coins`` BTC where the account hedges them with the inverse perpetual
        (here the one wallet), and no USDT."""
        self.fund(coins, D(0))

    def add_inverse_coins(self, amount: Decimal) -> None:
        """The user adds ``amount`` BTC where ``fund_inverse`` put the coins."""
        self.set_spot(D(self.emulator.balance(COIN)) + amount)

    def lose_next_inverse_order_and_its_lookups(self) -> None:
        """``lose_next_order_and_its_lookups`` for an inverse order."""
        self.lose_next_order_and_its_lookups()

    def inverse_face(self) -> Decimal:
        """The true BTC inverse short's face value in USD (positive for a short)."""
        raise NotImplementedError

    def coin_equity(self) -> Decimal:
        """The BTC the pair hedges, as the venue holds them, with the inverse short's
        unrealized PnL."""
        raise NotImplementedError

    def inverse_accepted(self) -> list[str]:
        """Client ids of the inverse orders the venue accepted, in order."""
        raise NotImplementedError

    def inverse_fees(self) -> Decimal:
        """The BTC the inverse orders paid in fees."""
        raise NotImplementedError


class BinanceHarness(Harness):
    """Spot and USDⓈ-M wallets apart; COIN-M's (``BTCUSD_PERP``, 100 USD contracts) a
    third, where the user moves the coins from spot before hedging them inverse."""

    name = "binance"
    exchange = "binance"
    COINM_ID = "BTCUSD_PERP"

    def __init__(self, emulator: BinanceEmulator) -> None:
        self.emulator = emulator

    def account(self, **extra: Any) -> dict[str, Any]:
        return {
            "exchange": "binance",
            "api_key": "test-key",
            "secret": "test-secret",
            "ccxt_config": {**self.emulator.ccxt_config(), "timeout": 1000},
            "rate_limit_per_s": "500",
            **extra,
        }

    def fund(self, spot: Decimal = ONE_BTC, margin: Decimal = MARGIN) -> None:
        self.emulator.set_spot_balance(COIN, spot)
        self.emulator.set_futures_balance("USDT", margin)

    def set_spot(self, amount: Decimal) -> None:
        self.emulator.set_spot_balance(COIN, amount)

    def position(self) -> Decimal:
        return D(self.emulator.position(PERP))

    def accepted(self) -> list[Accepted]:
        return [
            Accepted(
                e.client_order_id or "",
                (e.side or "").lower(),
                bool(e.reduce_only),
                (e.type or "").lower(),
            )
            for e in self.emulator.order_log
            if e.outcome == "accepted" and e.venue == "futures"
        ]

    def rate_limited(self, path: str) -> int:
        limits = (self.emulator.fapi_limits, self.emulator.dapi_limits)
        return sum(1 for lim in limits for _, p, _ in lim.refused if p == path)

    def faults(self) -> list[FaultCase]:
        e, order = self.emulator, {"path": "/fapi/v1/order", "method": "POST"}
        return [
            FaultCase("429-on-order", lambda: e.inject(BinanceFault.RATE_LIMIT, **order), True),
            FaultCase("5xx-on-order", lambda: e.inject(BinanceFault.SERVER_ERROR, **order)),
            FaultCase(
                "timeout-after-accept",
                lambda: e.inject(BinanceFault.TIMEOUT, accept=True, delay_s=1.5, **order),
                accepts_order=True,
            ),
            FaultCase(
                "timeout-before-accept",
                lambda: e.inject(BinanceFault.TIMEOUT, delay_s=1.5, **order),
            ),
            FaultCase(
                "dropped-answer",
                lambda: e.inject(BinanceFault.DROP_AFTER_ACCEPT),
                accepts_order=True,
            ),
            FaultCase("partial-fill", lambda: e.inject(BinanceFault.PARTIAL_FILL, fraction="0.4")),
            FaultCase(
                "rejected",
                lambda: e.inject(
                    BinanceFault.REJECT, code=-2019, msg="Margin is insufficient.", **order
                ),
                True,
            ),
        ]

    async def enable_hedge_mode(self) -> None:
        self.emulator.set_dual_side_position(True)

    def settle_funding(self, rate: Decimal) -> None:
        self.emulator.set_funding_rate(COIN, rate)
        self.emulator.settle_funding()

    def lose_next_order_and_its_lookups(self) -> None:
        self.emulator.inject(BinanceFault.DROP_AFTER_ACCEPT)
        self.emulator.inject(
            BinanceFault.SERVER_ERROR, path="/fapi/v1/order", method="GET", count=50
        )

    def inverse_pair(self) -> dict[str, str]:
        # Cross: the whole COIN-M wallet margins the short, which a 1x hedge never
        # exhausts (isolated 1x needs the fee beside the coins; isolated 2x is
        # liquidated near twice the entry).
        return {"margin_mode": "cross"}

    def fund_inverse(self, coins: Decimal) -> None:
        self.emulator.set_coinm_balance(COIN, coins)  # moved spot -> COIN-M by the user

    def add_inverse_coins(self, amount: Decimal) -> None:
        self.emulator.set_coinm_balance(COIN, self.emulator.coinm_balance(COIN) + amount)

    def lose_next_inverse_order_and_its_lookups(self) -> None:
        self.emulator.inject(BinanceFault.DROP_AFTER_ACCEPT)
        self.emulator.inject(
            BinanceFault.SERVER_ERROR, path="/dapi/v1/order", method="GET", count=50
        )

    def inverse_face(self) -> Decimal:
        contract = self.emulator.coinm.by_id[self.COINM_ID].contract_size
        return -D(self.emulator.coinm_position(self.COINM_ID)) * D(contract)

    def coin_equity(self) -> Decimal:
        """COIN-M's margin balance (wallet + the short's PnL) and the coins left in spot:
        the pair hedges both."""
        return D(self.emulator.coinm_equity(COIN)) + D(self.emulator.spot_balance(COIN))

    def inverse_accepted(self) -> list[str]:
        return [
            e.client_order_id or ""
            for e in self.emulator.order_log
            if e.outcome == "accepted" and e.venue == "coinm"
        ]

    def inverse_fees(self) -> Decimal:
        orders = (o for o in self.emulator.orders() if o.venue == "coinm")
        return sum((f.commission for o in orders for f in o.fills), D(0))

    async def user_buy_back(self, amount: Decimal) -> None:
        async with binance_client(self.emulator) as user:
            await user.load_markets()
            await user.create_order(
                PERP, "market", "buy", float(amount), None, {"reduceOnly": True}
            )


class BybitHarness(Harness):
    """A unified trading account: spot coins and contract margin in one wallet."""

    name = "bybit"
    exchange = "bybit"

    def __init__(self, emulator: BybitEmulator) -> None:
        self.emulator = emulator

    def account(self, **extra: Any) -> dict[str, Any]:
        return {
            "exchange": "bybit",
            "api_key": "k",
            "secret": "s",
            "ccxt_config": {**self.emulator.ccxt_config(), "timeout": 1000},
            "rate_limit_per_s": "500",
            **extra,
        }

    def fund(self, spot: Decimal = ONE_BTC, margin: Decimal = MARGIN) -> None:
        self.emulator.set_balance(COIN, spot)
        self.emulator.set_balance("USDT", margin)

    def set_spot(self, amount: Decimal) -> None:
        self.emulator.set_balance(COIN, amount)

    def position(self) -> Decimal:
        return D(self.emulator.position("BTCUSDT"))

    def rate_limited(self, path: str) -> int:
        return int(self.emulator.uid_limiter.refused.count(path))

    def accepted(self) -> list[Accepted]:
        return [
            Accepted(
                e.order_link_id or "",
                (e.side or "").lower(),
                e.reduce_only,
                (e.order_type or "").lower(),
            )
            for e in self.emulator.order_log
            if e.outcome == "accepted" and e.category == "linear"
        ]

    def faults(self) -> list[FaultCase]:
        e, create = self.emulator, {"path": "/v5/order/create"}
        return [
            FaultCase(
                "429-on-order",
                lambda: e.inject(BybitFault.SERVER_ERROR, status=429, body="", **create),
                True,
            ),
            FaultCase("10006-on-order", lambda: e.inject(BybitFault.RATE_LIMIT, **create), True),
            FaultCase(
                "10006-on-positions",
                lambda: e.inject(BybitFault.RATE_LIMIT, path="/v5/position/list"),
            ),
            FaultCase(
                "403-ip-limit", lambda: e.inject(BybitFault.IP_BAN, path="/v5/market/tickers")
            ),
            FaultCase("5xx-on-order", lambda: e.inject(BybitFault.SERVER_ERROR, **create)),
            FaultCase(
                "10016-on-order",
                lambda: e.inject(
                    BybitFault.SERVER_ERROR, code=10016, msg="Internal system error.", **create
                ),
            ),
            FaultCase(
                "timeout-after-accept",
                lambda: e.inject(BybitFault.TIMEOUT, accept=True, delay_s=1.5, **create),
                accepts_order=True,
            ),
            FaultCase(
                "timeout-before-accept", lambda: e.inject(BybitFault.TIMEOUT, delay_s=1.5, **create)
            ),
            FaultCase(
                "dropped-answer", lambda: e.inject(BybitFault.DROP_AFTER_ACCEPT), accepts_order=True
            ),
            FaultCase("partial-fill", lambda: e.inject(BybitFault.PARTIAL_FILL, fraction="0.4")),
            FaultCase("rejected", lambda: e.inject(BybitFault.REJECT, **create), True),
        ]

    async def enable_hedge_mode(self) -> None:
        async with bybit_client(self.emulator) as user:
            await user.load_markets()
            await user.set_position_mode(True, PERP)

    def settle_funding(self, rate: Decimal) -> None:
        self.emulator.set_funding_rate(COIN, rate)
        self.emulator.settle_funding()

    def lose_next_order_and_its_lookups(self) -> None:
        self.emulator.inject(BybitFault.DROP_AFTER_ACCEPT)
        for path in ("/v5/order/realtime", "/v5/order/history"):
            self.emulator.inject(BybitFault.SERVER_ERROR, path=path, count=50)

    def inverse_face(self) -> Decimal:
        return -D(self.emulator.position("BTCUSD"))  # contracts of 1 USD

    def coin_equity(self) -> Decimal:
        return D(self.emulator.coin_equity(COIN))

    def inverse_accepted(self) -> list[str]:
        return [
            e.order_link_id or ""
            for e in self.emulator.order_log
            if e.outcome == "accepted" and e.category == "inverse"
        ]

    def inverse_fees(self) -> Decimal:
        return sum((f.fee for o in self.emulator.orders() for f in o.fills), D(0))

    async def user_buy_back(self, amount: Decimal) -> None:
        async with bybit_client(self.emulator) as user:
            await user.load_markets()
            await user.create_order(
                PERP, "market", "buy", float(amount), None, {"reduceOnly": True}
            )


class OkxHarness(Harness):
    """A trading account (one wallet, net mode); its perp counts contracts of 0.01 BTC."""

    name = "okx"
    exchange = "okx"
    CONTRACT = D("0.01")

    def __init__(self, emulator: OkxEmulator) -> None:
        self.emulator = emulator

    def account(self, **extra: Any) -> dict[str, Any]:
        config = self.emulator.ccxt_config()
        return {
            "exchange": "okx",
            "api_key": config.pop("apiKey"),
            "secret": config.pop("secret"),
            "password": config.pop("password"),
            "ccxt_config": {**config, "timeout": 1000},
            "rate_limit_per_s": "500",
            **extra,
        }

    def fund(self, spot: Decimal = ONE_BTC, margin: Decimal = MARGIN) -> None:
        self.emulator.set_balance(COIN, spot)
        self.emulator.set_balance("USDT", margin)

    def set_spot(self, amount: Decimal) -> None:
        self.emulator.set_balance(COIN, amount)

    def position(self) -> Decimal:
        return D(self.emulator.position("BTC-USDT-SWAP")) * self.CONTRACT

    def rate_limited(self, path: str) -> int:
        return int(self.emulator.limiter.refused.count(path))

    def accepted(self) -> list[Accepted]:
        # OKX names a limit IOC order's type "ioc".
        kinds = {"ioc": "limit", "fok": "limit"}
        return [
            Accepted(
                e.cl_ord_id or "",
                (e.side or "").lower(),
                e.reduce_only,
                kinds.get(e.ord_type or "", e.ord_type or ""),
            )
            for e in self.emulator.order_log
            if e.outcome == "accepted" and (e.inst_id or "").endswith("-SWAP")
        ]

    def faults(self) -> list[FaultCase]:
        e = self.emulator
        order = {"path": "/api/v5/trade/batch-orders", "method": "POST"}
        return [
            FaultCase("429-on-order", lambda: e.inject(OkxFault.RATE_LIMIT, **order), True),
            FaultCase(
                "429-on-positions",
                lambda: e.inject(OkxFault.RATE_LIMIT, path="/api/v5/account/positions"),
            ),
            FaultCase("5xx-on-order", lambda: e.inject(OkxFault.SERVER_ERROR, **order)),
            FaultCase(
                "timeout-after-accept",
                lambda: e.inject(OkxFault.TIMEOUT, accept=True, delay_s=1.5, **order),
                accepts_order=True,
            ),
            FaultCase(
                "timeout-before-accept", lambda: e.inject(OkxFault.TIMEOUT, delay_s=1.5, **order)
            ),
            FaultCase(
                "dropped-answer", lambda: e.inject(OkxFault.DROP_AFTER_ACCEPT), accepts_order=True
            ),
            FaultCase("partial-fill", lambda: e.inject(OkxFault.PARTIAL_FILL, fraction="0.4")),
            FaultCase("rejected", lambda: e.inject(OkxFault.REJECT), True),
        ]

    async def enable_hedge_mode(self) -> None:
        self.emulator.set_position_mode("long_short_mode")

    def inverse_pair(self) -> dict[str, str]:
        # Cross: every coin of the account stands behind the short and no price
        # liquidates it; isolated, at the 2x the opening fee needs, OKX would liquidate
        # it at 2 x entry x (1 - mmr), about 119,500.
        return {"margin_mode": "cross"}

    def settle_funding(self, rate: Decimal) -> None:
        self.emulator.set_funding_rate("BTC-USDT-SWAP", rate)
        self.emulator.settle_funding()

    def lose_next_order_and_its_lookups(self) -> None:
        # The venue module looks the id up once before sending (OKX takes a done order's
        # id again): that look-up passes, the ones after the lost answer hit the limit.
        self.emulator.inject(OkxFault.DROP_AFTER_ACCEPT)
        self.emulator.limiter.forget("/api/v5/trade/order")  # earlier look-ups
        self.emulator.set_rate_limit("/api/v5/trade/order", 1, 3600)

    def clear_faults(self) -> None:
        self.emulator.clear_faults()
        self.emulator.limiter.overrides.pop("/api/v5/trade/order", None)

    INVERSE_ID = "BTC-USD-SWAP"
    INVERSE_FACE = D(100)  # USD per contract (ctVal)

    def inverse_face(self) -> Decimal:
        return -D(self.emulator.position(self.INVERSE_ID)) * self.INVERSE_FACE

    def coin_equity(self) -> Decimal:
        return D(self.emulator.equity(COIN))

    def inverse_accepted(self) -> list[str]:
        return [
            e.cl_ord_id or ""
            for e in self.emulator.order_log
            if e.outcome == "accepted" and e.inst_id == self.INVERSE_ID
        ]

    def inverse_fees(self) -> Decimal:
        orders = self.emulator.orders()
        return -sum((o.fee for o in orders if o.inst.inst_id == self.INVERSE_ID), D(0))

    async def user_buy_back(self, amount: Decimal) -> None:
        async with okx_client(self.emulator, sandbox=True) as user:
            await user.load_markets()
            contracts = float(amount / self.CONTRACT)
            # The hedge is an isolated position (the pairs' default margin mode).
            params = {"reduceOnly": True, "marginMode": "isolated"}
            await user.create_order(PERP, "market", "buy", contracts, None, params)


HARNESSES = ("binance", "bybit", "okx")
_CLASSES: dict[str, type[Harness]] = {
    "binance": BinanceHarness,
    "bybit": BybitHarness,
    "okx": OkxHarness,
}


def fault_names(name: str) -> list[str]:
    """The fault classes venue ``name`` is tested with (for test parametrization)."""
    unstarted = _CLASSES[name].__new__(_CLASSES[name])
    unstarted.emulator = None
    return [case.name for case in unstarted.faults()]


async def open_harness(name: str, *, inverse: bool = False) -> Harness:
    """A started emulator of venue ``name`` behind its harness (close() stops it);
    ``inverse``: Bybit lists its BTC inverse perpetual too, Binance its COIN-M
    perpetuals (OKX always lists them)."""
    harness: Harness
    if name == "binance":
        binance = BinanceEmulator(coinm_markets=DEFAULT_COINM_MARKETS if inverse else ())
        await binance.start()
        harness = BinanceHarness(binance)
    elif name == "bybit":
        bybit = BybitEmulator(
            markets=[EmulatedMarket(base=COIN, inverse=True)] if inverse else None
        )
        await bybit.start()
        harness = BybitHarness(bybit)
    elif name == "okx":
        okx = OkxEmulator(demo=True)
        await okx.start()
        harness = OkxHarness(okx)
    else:
        raise ValueError(f"no harness for {name!r}")
    return harness
