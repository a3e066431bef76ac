"""The hedging loop: observe, decide, check, execute, record — for every pair, each cycle."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import structlog
from ulid import ULID

from bot.clock import Clock
from bot.config import PairConfig, Settings
from bot.domain.models import (
    ZERO,
    Balance,
    FundingRate,
    HedgeParams,
    Market,
    Observation,
    Position,
    Ticker,
)
from bot.domain.rebalance import decide
from bot.domain.risk import RiskLimits, Verdict, check
from bot.exchange.gateway import ExchangeGateway, GatewayError
from bot.execution.executor import Executor
from bot.store.repository import Repository, StoredOrder

log = structlog.get_logger(__name__)

MAX_CONCURRENT_PAIRS = 8


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One account's state, fetched once per cycle for every pair on it."""

    balances: Mapping[str, Balance]
    positions: Mapping[str, Position]
    tickers: Mapping[str, Ticker]
    funding: Mapping[str, FundingRate]


@dataclass(slots=True)
class CycleReport:
    cycle: int
    actions: dict[str, str] = field(default_factory=dict)  # pair -> action
    errors: dict[str, str] = field(default_factory=dict)  # pair -> error


def observation_inputs(observation: Observation) -> dict[str, Any]:
    """The observation as the audit log shows it (decimals as strings)."""
    position = observation.position
    return {
        "spot_qty": observation.spot_qty,
        "perp_qty": observation.perp_qty,
        "price": observation.price,
        "bid": observation.bid,
        "ask": observation.ask,
        "funding_rate": observation.funding_rate,
        "observed_at": observation.observed_at,
        "entry_price": position.entry_price if position else None,
        "liquidation_price": position.liquidation_price if position else None,
        "unrealized_pnl": position.unrealized_pnl if position else None,
    }


class HedgeDaemon:
    """Runs the cycle for every configured pair on one venue."""

    def __init__(
        self,
        settings: Settings,
        repository: Repository,
        gateway: ExchangeGateway,
        clock: Clock,
        executor: Executor | None = None,
    ) -> None:
        self._settings = settings
        self._repo = repository
        self._gateway = gateway
        self._clock = clock
        self._executor = executor or Executor(repository)
        self._markets: dict[str, Market] = {}
        self._pairs: Sequence[PairConfig] = settings.pairs
        # Pairs overlap their venue waits, but hundreds at once only queue on the
        # database and starve its driver thread of the GIL; a few at a time is faster.
        self._pair_slots = asyncio.Semaphore(MAX_CONCURRENT_PAIRS)

    @property
    def _perp_symbols(self) -> list[str]:
        return [p.perp_symbol for p in self._pairs]

    async def start(self) -> None:
        """Load the markets and record the start."""
        self._markets = dict(await self._gateway.load_markets(self._perp_symbols))
        missing = [s for s in self._perp_symbols if s not in self._markets]
        if missing:
            raise GatewayError(f"the venue has no market {', '.join(missing)}")
        for pair in self._pairs:
            await self._gateway.set_leverage(pair.perp_symbol, pair.leverage)
        await self._repo.append_audit(
            "daemon.start",
            f"hedgebot started in {self._settings.mode} mode with "
            f"{len(self._pairs)} pair(s): {', '.join(p.name for p in self._pairs)}",
            {
                "mode": self._settings.mode,
                "venue": self._gateway.name,
                "pairs": [p.name for p in self._pairs],
                "poll_interval_s": self._settings.poll_interval_s,
            },
        )
        log.info("daemon.started", mode=self._settings.mode, pairs=len(self._pairs))

    async def stop(self, reason: str) -> None:
        """Record the stop; the caller closes the venue and the database."""
        await self._repo.append_audit(
            "daemon.stop", f"hedgebot stopped: {reason}", {"reason": reason}
        )
        log.info("daemon.stopped", reason=reason)

    async def _observe(self) -> Snapshot:
        symbols = self._perp_symbols
        balances = await self._gateway.fetch_balances()
        positions = await self._gateway.fetch_positions(symbols)
        tickers = await self._gateway.fetch_tickers(symbols)
        funding = await self._gateway.fetch_funding_rates(symbols)
        return Snapshot(balances, positions, tickers, funding)

    async def _collect_funding(self) -> None:
        by_symbol = {p.perp_symbol: p.name for p in self._pairs}
        for payment in await self._gateway.fetch_funding_payments(self._perp_symbols):
            pair = by_symbol.get(payment.symbol)
            if pair is not None:
                await self._repo.record_funding(pair, self._gateway.name, payment)

    async def run_cycle(self, cycle: int) -> CycleReport:
        """One cycle over every pair; one pair's failure does not stop the others."""
        report = CycleReport(cycle)
        structlog.contextvars.bind_contextvars(cycle=cycle)
        try:
            # Resolve orders of unknown outcome first, so the snapshot includes their fills.
            now = self._clock.now()
            pending = await self._executor.resolve_unresolved(self._gateway, now)
            snapshot = await self._observe()
            await self._collect_funding()
        except GatewayError as exc:
            reason = f"observing the venue failed: {exc}"
            log.warning("cycle.observe_failed", error=str(exc))
            await self._repo.append_audit("cycle.observe_failed", reason, {"error": str(exc)})
            report.errors = {p.name: reason for p in self._pairs}
            return report
        finally:
            structlog.contextvars.unbind_contextvars("cycle")
        outcomes = await asyncio.gather(
            *(
                self._run_pair(pair, snapshot, cycle, pending.get(pair.name, []))
                for pair in self._pairs
            ),
            return_exceptions=True,
        )
        for pair, outcome in zip(self._pairs, outcomes, strict=True):
            if isinstance(outcome, asyncio.CancelledError):
                raise outcome
            if isinstance(outcome, BaseException):
                report.errors[pair.name] = f"{type(outcome).__name__}: {outcome}"
            else:
                report.actions[pair.name] = outcome
        return report

    async def _run_pair(
        self, pair: PairConfig, snapshot: Snapshot, cycle: int, pending: list[StoredOrder]
    ) -> str:
        structlog.contextvars.bind_contextvars(pair=pair.name, cycle=cycle)
        try:
            async with self._pair_slots:
                return await self._pair_cycle(pair, snapshot, cycle, pending)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("pair.failed", error=str(exc))
            try:
                await self._repo.append_audit(
                    "pair.error",
                    f"cycle {cycle} failed: {type(exc).__name__}: {exc}",
                    {"error": str(exc), "type": type(exc).__name__, "cycle": cycle},
                    pair=pair.name,
                )
            except Exception as audit_exc:
                log.error("audit.write_failed", error=str(audit_exc))
            raise

    def observe_pair(self, pair: PairConfig, snapshot: Snapshot) -> Observation:
        """The pair's slice of an account snapshot."""
        ticker = snapshot.tickers[pair.perp_symbol]
        spot = snapshot.balances.get(pair.spot_base)
        position = snapshot.positions.get(pair.perp_symbol)
        funding = snapshot.funding.get(pair.perp_symbol)
        return Observation(
            pair=pair.name,
            spot_symbol=pair.spot_symbol,
            perp_symbol=pair.perp_symbol,
            spot_qty=spot.total if spot else ZERO,
            perp_qty=position.qty if position else ZERO,
            price=position.mark_price if position else ticker.mid,
            bid=ticker.bid,
            ask=ticker.ask,
            funding_rate=funding.rate if funding else ZERO,
            observed_at=ticker.timestamp,
            position=position,
        )

    def _risk_limits(self, pair: PairConfig, snapshot: Snapshot) -> RiskLimits:
        quote = pair.perp_symbol.split(":")[1]
        balance = snapshot.balances.get(quote)
        unrealized = sum((p.unrealized_pnl for p in snapshot.positions.values()), ZERO)
        risk = self._settings.risk
        return RiskLimits(
            max_data_age_s=risk.max_data_age_s,
            max_leverage=risk.max_leverage,
            pair_leverage=pair.leverage,
            kill_switch=risk.kill_switch,
            max_order_notional=pair.max_order_notional,
            account_equity=(balance.total + unrealized) if balance else None,
        )

    async def _pair_cycle(
        self, pair: PairConfig, snapshot: Snapshot, cycle: int, pending: list[StoredOrder]
    ) -> str:
        now = self._clock.now()
        observation = self.observe_pair(pair, snapshot)
        params = HedgeParams(
            target_ratio=pair.target_ratio,
            band=pair.band,
            min_notional=pair.min_notional,
            max_order_notional=pair.max_order_notional,
        )
        decision = decide(observation, params, self._markets[pair.perp_symbol])
        decision_id = str(ULID.from_datetime(now))
        structlog.contextvars.bind_contextvars(decision_id=decision_id)
        verdict: Verdict | None = None
        action = decision.action
        if decision.intent is not None and pending:
            action = "waiting"
            summary = (
                f"{decision.reason}; waiting: order {pending[0].client_order_id} "
                "is not resolved yet"
            )
        elif decision.intent is not None:
            verdict = check(
                decision.intent,
                observation,
                self._risk_limits(pair, snapshot),
                now,
                self._markets[pair.perp_symbol].contract_size,
            )
            action = "order" if verdict.approved else "denied"
            summary = decision.reason if verdict.approved else f"denied: {verdict.reason}"
        else:
            summary = decision.reason
        await self._repo.record_decision(
            decision_id,
            observation,
            cycle,
            self._settings.mode,
            decision,
            action,
            None if verdict is None else verdict.reason,
            {
                "observation": observation_inputs(observation),
                "params": {
                    "target_ratio": params.target_ratio,
                    "band": params.band,
                    "min_notional": params.min_notional,
                    "max_order_notional": params.max_order_notional,
                    "leverage": pair.leverage,
                },
            },
            summary,
        )
        log.info("pair.decided", action=action, ratio=_fmt(decision.ratio), reason=summary)
        if action != "order" or decision.intent is None:
            return action
        execution = await self._executor.execute(
            pair.name, decision_id, decision.intent, self._gateway
        )
        log.info(
            "order.done",
            client_order_id=execution.client_order_id,
            status=execution.status.value,
            reason=execution.reason,
        )
        return f"order {execution.status.value}"

    async def run(
        self, stop: asyncio.Event, max_cycles: int | None = None, first_cycle: int = 1
    ) -> int:
        """Run cycles at a fixed cadence until ``stop`` is set; returns cycles run."""
        interval = self._settings.poll_interval_s
        done = 0
        cycle = first_cycle
        while not stop.is_set():
            started = time.monotonic()
            report = await self.run_cycle(cycle)
            done += 1
            if report.errors:
                log.warning("cycle.errors", cycle=cycle, errors=report.errors)
            if max_cycles is not None and done >= max_cycles:
                break
            cycle += 1
            elapsed = time.monotonic() - started
            await self._clock.wait_or_stop(max(interval - elapsed, 0.0), stop)
        return done


def _fmt(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.4f}"
