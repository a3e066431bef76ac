"""Prometheus metrics of one daemon, fed from each cycle's report.

Every :class:`DaemonMetrics` owns its registry (never the process-global one), so two
daemons in one process — or two tests — do not see each other's numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Protocol, runtime_checkable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from bot.domain.controls import PairControl, paused_reason
from bot.domain.risk import liquidation_distance
from bot.exchange.gateway import ExchangeGateway
from bot.service.daemon import CycleReport

# Cycles are a handful of exchange round trips: tens of milliseconds to tens of seconds.
CYCLE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


@runtime_checkable
class CountsLimiterWaits(Protocol):
    """A gateway that counts the requests its rate limiter held back (the ccxt gateway)."""

    limiter_waits: int


class _LimiterWaits(Collector):
    """Reads each account's limiter wait count at scrape time."""

    def __init__(self) -> None:
        self.gateways: Mapping[str, ExchangeGateway] = {}

    def collect(self) -> Iterable[Metric]:
        family = CounterMetricFamily(
            "hedgebot_limiter_waits",
            "Requests the account's rate limiter held back before sending.",
            labels=["account"],
        )
        for account, gateway in sorted(self.gateways.items()):
            if isinstance(gateway, CountsLimiterWaits):
                family.add_metric([account], gateway.limiter_waits)
        yield family


class DaemonMetrics:
    """The daemon's metrics; a CycleObserver."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.cycle_duration = Histogram(
            "hedgebot_cycle_duration_seconds",
            "Wall time of one cycle over every pair.",
            buckets=CYCLE_BUCKETS,
            registry=r,
        )
        self.cycles = Counter(
            "hedgebot_cycles", "Cycles run, by outcome (ok, errors).", ["outcome"], registry=r
        )
        self.last_cycle_ok = Gauge(
            "hedgebot_last_successful_cycle_timestamp_seconds",
            "Unix time at which the last cycle without errors ended.",
            registry=r,
        )
        self._define_pair_metrics(r)
        self._define_error_and_money_metrics(r)
        self._with_distance: set[str] = set()
        self._limiter = _LimiterWaits()
        r.register(self._limiter)

    def _define_pair_metrics(self, r: CollectorRegistry) -> None:
        self.hedge_ratio = Gauge(
            "hedgebot_hedge_ratio",
            "Hedge ratio (short perp / spot) seen by the last decision.",
            ["pair"],
            registry=r,
        )
        self.target_ratio = Gauge(
            "hedgebot_target_ratio", "Target hedge ratio of the pair.", ["pair"], registry=r
        )
        self.band = Gauge(
            "hedgebot_band_ratio",
            "Band around the target inside which the ratio is left alone.",
            ["pair"],
            registry=r,
        )
        self.liquidation_distance = Gauge(
            "hedgebot_liquidation_distance_ratio",
            "How far the mark may move against the hedge before liquidation, as a fraction "
            "of the mark (absent without a position).",
            ["pair"],
            registry=r,
        )
        self.paused = Gauge(
            "hedgebot_pair_paused",
            "1 while the pair is paused (by `hedgebot pause` or by itself), else 0; "
            "read from the database at scrape time.",
            ["pair"],
            registry=r,
        )
        self.drift = Gauge(
            "hedgebot_drift_base_qty",
            "Hedge drift in base units (target x spot - hedge); positive: under-hedged.",
            ["pair"],
            registry=r,
        )
        self.decisions = Counter(
            "hedgebot_decisions",
            "Decisions by action (none, order, denied, waiting).",
            ["pair", "action"],
            registry=r,
        )
        self.orders = Counter(
            "hedgebot_orders",
            "Orders sent, by outcome (filled, partially_filled, canceled, rejected, unknown…).",
            ["pair", "outcome"],
            registry=r,
        )

    def _define_error_and_money_metrics(self, r: CollectorRegistry) -> None:
        self.database_up = Gauge(
            "hedgebot_database_up",
            "1 when the database answered a ping at scrape time, else 0.",
            registry=r,
        )
        self.pair_errors = Counter(
            "hedgebot_pair_errors", "Cycles in which a pair failed.", ["pair"], registry=r
        )
        self.exchange_errors = Counter(
            "hedgebot_exchange_errors",
            "Exchange errors that failed a cycle step, by class (RetryableError, RejectedError…).",
            ["error_class"],
            registry=r,
        )
        # Gauges, not counters: funding and fees can be negative (paid / rebates).
        self.fees = Gauge(
            "hedgebot_fees_paid",
            "Trading fees paid since the process started, in the fee asset.",
            ["pair", "asset"],
            registry=r,
        )
        self.funding = Gauge(
            "hedgebot_funding_net",
            "Funding received (positive) or paid (negative) since the process started.",
            ["pair", "asset"],
            registry=r,
        )

    def watch_gateways(self, gateways: Mapping[str, ExchangeGateway]) -> None:
        """Report these accounts' limiter waits."""
        self._limiter.gateways = gateways

    def cycle_started(self, cycle: int) -> None:
        """Nothing to count until the cycle ends."""

    def cycle_finished(self, report: CycleReport, duration_s: float) -> None:
        """Count what one cycle saw and did."""
        self.cycle_duration.observe(duration_s)
        self.cycles.labels("errors" if report.errors else "ok").inc()
        if not report.errors:
            self.last_cycle_ok.set_to_current_time()
        for record in report.decisions:
            decision = record.decision
            if decision.ratio is not None:
                self.hedge_ratio.labels(decision.pair).set(float(decision.ratio))
            self.target_ratio.labels(decision.pair).set(float(decision.target_ratio))
            self.band.labels(decision.pair).set(float(decision.band))
            self.drift.labels(decision.pair).set(float(decision.drift_qty))
            self._set_distance(decision.pair, liquidation_distance(record.observation))
            self.decisions.labels(decision.pair, record.action).inc()
        for pair, execution in report.executions:
            self.orders.labels(pair, execution.status.value).inc()
            result = execution.result
            if result is not None and result.fee:
                self.fees.labels(pair, result.fee_asset or "").inc(float(result.fee))
        for pair in report.errors:
            self.pair_errors.labels(pair).inc()
        for error_class in report.exchange_errors:
            self.exchange_errors.labels(error_class).inc()
        for pair, payment in report.funding:
            self.funding.labels(pair, payment.asset).inc(float(payment.amount))

    def _set_distance(self, pair: str, distance: Decimal | None) -> None:
        """The pair's liquidation distance; no sample at all without a position."""
        if distance is not None:
            self.liquidation_distance.labels(pair).set(float(distance))
            self._with_distance.add(pair)
        elif pair in self._with_distance:
            self.liquidation_distance.remove(pair)
            self._with_distance.discard(pair)

    def scraped(
        self, pairs: Sequence[str], database_up: bool, controls: Mapping[str, PairControl] | None
    ) -> None:
        """What is read at scrape time: the database's answer and, when it answered,
        which pairs are paused."""
        self.database_up.set(1 if database_up else 0)
        if controls is not None:
            for pair in pairs:
                self.paused.labels(pair).set(0 if paused_reason(controls, pair) is None else 1)

    def render(self) -> bytes:
        """The registry in Prometheus' text format."""
        return generate_latest(self.registry)
