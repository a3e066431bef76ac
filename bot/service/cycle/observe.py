"""Observe: the markets' trading rules, one snapshot per account, the funding paid.

Requests grow with accounts, not pairs: one balance, one positions and one tickers request
per account (and one funding request where the venue's tickers carry no funding rate) serve
every pair on it, and all accounts are asked at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import structlog

from bot.clock import Clock
from bot.config import PairConfig
from bot.domain.models import Balance, FundingPayment, FundingRate, Market, Position, Ticker
from bot.domain.strategies import strategy_kind
from bot.exchange.gateway import ExchangeGateway, GatewayError
from bot.service.basis import live_contracts
from bot.service.cycle.accounts import Accounts
from bot.service.errors import ServiceSetupError
from bot.store.repository import Repository

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class AccountSnapshot:
    """One account's state, fetched once per cycle for every pair on it."""

    balances: Mapping[str, Balance] = field(default_factory=dict)  # spot wallet
    margin: Mapping[str, Balance] = field(default_factory=dict)  # perp wallet
    positions: Mapping[str, Position] = field(default_factory=dict)
    tickers: Mapping[str, Ticker] = field(default_factory=dict)
    funding: Mapping[str, FundingRate] = field(default_factory=dict)
    spot_tickers: Mapping[str, Ticker] = field(default_factory=dict)  # basis pairs' spot
    one_wallet: bool = False  # the spot and the perp wallet are one (a unified account)


class ObserveStage:
    """Owns the loaded markets; fetches every account's snapshot and funding payments."""

    def __init__(
        self, accounts: Accounts, repository: Repository, clock: Clock, refresh_s: float
    ) -> None:
        self._accounts = accounts
        self._repo = repository
        self._clock = clock
        self._refresh_s = refresh_s
        self._markets: dict[str, Market] = {}
        self._loaded_at = 0.0

    @property
    def markets(self) -> Mapping[str, Market]:
        return self._markets

    def live_contracts(self, pairs: Sequence[PairConfig], account: str) -> list[str]:
        """The live perps or dated contracts of ``pairs`` traded on ``account``."""
        return _live_contracts(self._accounts, account, pairs, self._markets, self._clock.now())

    def listed_contracts(self, pairs: Sequence[PairConfig], account: str) -> list[str]:
        """The live contracts of ``pairs`` on ``account`` whose market is loaded: a symbol
        the venue stopped listing is left out of requests (naming it would fail the request
        for every pair on the account); its pair errors when its view is built."""
        return [s for s in self.live_contracts(pairs, account) if s in self._markets]

    async def _load_account(
        self, account: str, gateway: ExchangeGateway, reload: bool
    ) -> tuple[list[str], Mapping[str, Market]]:
        """The symbols the account's pairs need, and the markets its venue lists of them;
        ``reload`` asks the exchange again rather than its client's cache."""
        symbols = _symbols_of(self._accounts, account, self._markets, self._clock.now())
        if not symbols:
            return [], {}
        return symbols, await gateway.load_markets(symbols, reload=reload)

    async def load_markets(self) -> None:
        """Trading rules of every symbol a pair trades or prices, from its account (at
        start: a symbol the venue does not list is a :class:`ServiceSetupError`)."""
        self._markets.update(await load_listed_markets(self._accounts, self._clock))
        self._loaded_at = time.monotonic()

    async def refresh_markets(self) -> None:
        """Reload the markets from the exchanges once they are ``markets_refresh_s`` old. A
        reload that fails keeps the markets loaded before (audited; tried again at the next
        refresh); a symbol the venue no longer lists is dropped, so only its pair errors."""
        if time.monotonic() - self._loaded_at < self._refresh_s:
            return
        self._loaded_at = time.monotonic()
        for account, gateway in self._accounts.gateways.items():
            try:
                symbols, markets = await self._load_account(account, gateway, reload=True)
            except GatewayError as exc:
                reason = (
                    f"reloading account {account}'s markets failed, kept the loaded ones: {exc}"
                )
                log.warning("markets.refresh_failed", account=account, error=str(exc))
                await self._repo.append_audit(
                    "markets.refresh_failed", reason, {"account": account, "error": str(exc)}
                )
                continue
            self._markets.update(markets)
            missing = [s for s in symbols if s not in markets]
            for symbol in missing:
                self._markets.pop(symbol, None)
            if missing:
                log.warning("markets.unlisted", account=account, symbols=missing)

    async def _observe_account(
        self, account: str, gateway: ExchangeGateway, pairs: Sequence[PairConfig]
    ) -> AccountSnapshot:
        perps = self.listed_contracts(pairs, account)
        spots = self._accounts.spots_on(account, pairs)
        balances: Mapping[str, Balance] = {}
        if spots:
            balances = await gateway.fetch_balances()
        # Basis pairs price their spot leg: one more tickers request, only when there are any.
        priced = sorted(
            {
                p.spot_symbol
                for p in spots
                if strategy_kind(p.strategy).needs_spot_price and p.spot_symbol in self._markets
            }
        )
        spot_tickers = await gateway.fetch_tickers(priced) if priced else {}
        if not perps:
            return AccountSnapshot(balances=balances, spot_tickers=spot_tickers)
        margin = await gateway.fetch_margin_balances()
        positions = await gateway.fetch_positions(perps)
        tickers, funding = await gateway.fetch_contract_quotes(perps)
        return AccountSnapshot(
            balances, margin, positions, tickers, funding, spot_tickers, gateway.one_wallet
        )

    async def snapshots(self, pairs: Sequence[PairConfig]) -> dict[str, AccountSnapshot]:
        """One snapshot per account for ``pairs`` (its requests grow with accounts)."""
        gateways = self._accounts.gateways
        taken = await asyncio.gather(
            *(self._observe_account(name, gw, pairs) for name, gw in gateways.items())
        )
        return dict(zip(gateways, taken, strict=True))

    async def collect_funding(
        self, pairs: Sequence[PairConfig]
    ) -> list[tuple[str, FundingPayment]]:
        """Store the funding payments the venues report; returns the new ones."""

        async def collect(
            account: str, gateway: ExchangeGateway
        ) -> list[tuple[str, FundingPayment]]:
            by_symbol = {
                p.perp_symbol: p.name
                for p in self._accounts.perps_on(account, pairs)
                if p.perp_symbol in self._markets
            }
            if not by_symbol:
                return []
            payments = await gateway.fetch_funding_payments(list(by_symbol))
            # One transaction for all of them (many after an outage, or in a backtest); the
            # venue's cursor moves only once it committed: a failed write loses nothing.
            new = await self._repo.record_fundings(
                account, [(by_symbol[p.symbol], p) for p in payments if p.symbol in by_symbol]
            )
            if payments:
                await gateway.commit_funding()
            return new

        return await self._accounts.each(collect)


def _live_contracts(
    accounts: Accounts,
    account: str,
    pairs: Sequence[PairConfig],
    markets: Mapping[str, Market],
    now: datetime,
) -> list[str]:
    return [
        symbol
        for p in accounts.perps_on(account, pairs)
        for symbol in live_contracts(p, markets, now)
    ]


def _symbols_of(
    accounts: Accounts, account: str, markets: Mapping[str, Market], now: datetime
) -> list[str]:
    """Every perp or live dated contract traded on the account, every spot it may sell,
    and every spot that prices a basis pair held on it."""
    pairs = accounts.pairs
    symbols = _live_contracts(accounts, account, pairs, markets, now)
    spots = accounts.spots_on(account, pairs)
    symbols += [p.spot_symbol for p in spots if p.allow_spot_trades]
    symbols += [p.spot_symbol for p in spots if strategy_kind(p.strategy).needs_spot_price]
    return list(dict.fromkeys(symbols))


async def load_listed_markets(accounts: Accounts, clock: Clock) -> dict[str, Market]:
    """The markets of every symbol a pair trades or prices, from its account. A symbol the
    venue does not list is the config's mistake: :class:`ServiceSetupError` naming it and
    its pairs (run before anything is written, so a typo refuses the start)."""
    loaded: dict[str, Market] = {}
    for account, gateway in accounts.gateways.items():
        symbols = _symbols_of(accounts, account, loaded, clock.now())
        if not symbols:
            continue
        markets = await gateway.load_markets(symbols)
        missing = [s for s in symbols if s not in markets]
        if missing:
            raise ServiceSetupError(_unlisted(accounts.pairs, account, missing))
        loaded.update(markets)
    return loaded


def _unlisted(pairs: Sequence[PairConfig], account: str, missing: Sequence[str]) -> str:
    names = [p.name for p in pairs if {p.spot_symbol, *p.contract_symbols} & set(missing)]
    return (
        f"account {account} lists no market {', '.join(missing)} "
        f"({'pair' if len(names) == 1 else 'pairs'} {', '.join(names)}); check the pair's "
        "symbols in the config (ccxt's unified form, e.g. BTC/USDT:USDT for a USDT perpetual)"
    )
