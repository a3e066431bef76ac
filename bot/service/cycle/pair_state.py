"""Pair state: which pairs this daemon runs this cycle and what holds them back.

Leases (several daemons share one database, each pair has one holder), pauses and
today's traded notional (read once per cycle), consecutive failures (K in a row pause the
pair), and basis pairs whose every contract has expired (done, said once).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import structlog

from bot.clock import Clock
from bot.config import PairConfig, Settings
from bot.domain.controls import ALL_PAIRS, PairControl, paused_reason
from bot.domain.models import ZERO, Market
from bot.domain.words import plural, utc_time
from bot.service.basis import live_contracts
from bot.store.instance import runs_alone
from bot.store.leases import Lease, fair_share
from bot.store.repository import Repository

log = structlog.get_logger(__name__)

# The longest a refused spot sell's next try waits (the back-off doubles up to it).
SALE_RETRY_MAX = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class Claim:
    """One claim's outcome: the pairs run this cycle and those newly taken over."""

    active: Sequence[PairConfig]
    taken: Sequence[str]


class PairState:
    """Owns the leases, pauses, failure counts and finished contracts of the pairs."""

    def __init__(
        self,
        settings: Settings,
        repository: Repository,
        clock: Clock,
        markets: Mapping[str, Market],
        instance_id: str,
    ) -> None:
        self._settings = settings
        self._repo = repository
        self._clock = clock
        self._markets = markets
        self.instance_id = instance_id
        self._pairs: Sequence[PairConfig] = settings.pairs
        self._leases: dict[str, Lease] = {}
        self.lease_period = timedelta(seconds=settings.lease_period_s)
        # An intent is stored only with a third of the lease still ahead, and sent only
        # before the lease, as renewed, could have lapsed by this daemon's own clock.
        self.lease_margin = self.lease_period / 3
        self._leases_renewed_at = float("-inf")
        # When the last claim succeeded by the injected clock (None: claim at the next
        # cycle), and whether that claim left this daemon short of its fair share.
        self._claimed_at: datetime | None = None
        self._short = True
        # On SQLite, and for a paper daemon, the caller holds the only-daemon lock: a
        # lease someone else holds was left by a dead process and is taken at once.
        self._alone = runs_alone(settings.database_url, settings.mode)
        self._controls: dict[str, PairControl] = {}
        self._traded_today: dict[str, Decimal] = {}
        self._failures: dict[str, int] = {}  # consecutive rejected or failed orders per pair
        self._sale_missed: set[str] = set()  # pairs whose last spot sell did not fill in full
        # Consecutive refused spot sells per pair, and when the last one was refused.
        self._sale_refusals: dict[str, tuple[int, datetime]] = {}
        self._finished: set[str] = set()  # basis pairs whose contracts have all expired
        self._unannounced: list[PairConfig] = []  # audited by the next cycle

    # Leases ------------------------------------------------------------------------------

    def claim_due(self) -> bool:
        """Whether this cycle claims: at the first cycle, after a lost lease, while short
        of the fair share, and once a quarter of the lease period has passed since the
        last claim by either clock (monotonic, or the injected one).

        Why a quarter is safe: a cycle that does not claim starts less than ``P/4``
        after the last renewal, so its intents are checked (``check_lease``, under the
        row's lock) at most ``P/4 + one cycle`` after it: the lease still has
        ``3P/4 - one cycle`` left, more than the margin ``P/3`` while a cycle takes
        less than ``5P/12``; a slower one is refused by ``check_lease`` or ``send_by``
        (from the last renewal, as before), never sent unsafely. A pair another daemon
        gives back, or whose holder died, is taken at this daemon's next claim: up to
        ``P/4`` later than when every cycle claimed (at once while short of its share)."""
        if self._short or self._claimed_at is None:
            return True
        quarter = self.lease_period / 4
        return (
            time.monotonic() - self._leases_renewed_at >= quarter.total_seconds()
            or self._clock.now() - self._claimed_at >= quarter
        )

    async def renew(self) -> Claim:
        """Claim when due (``claim_due``); otherwise run the pairs of the last claim."""
        if self.claim_due():
            return await self.claim()
        return Claim(self.unfinished([p for p in self._pairs if p.name in self._leases]), ())

    async def claim(self) -> Claim:
        """Renew, take over and give back pair leases."""
        names = sorted(p.name for p in self._pairs)
        self._claimed_at = None  # a failed claim is retried at the next cycle
        # Taken before the claim: the renewal counts from no later than its start.
        started, started_at = time.monotonic(), self._clock.now()
        held, plan, live = await self._repo.claim_leases(
            self.instance_id, names, self.lease_period, alone=self._alone
        )
        self._leases_renewed_at = started
        self._claimed_at = started_at
        self._short = len(held) < fair_share(len(names), 1 if self._alone else live)
        self._leases = held
        taken = [t.pair for t in plan.take]
        if taken:
            log.info("lease.acquired", pairs=taken, live_daemons=live)
        if plan.give_back:
            log.info("lease.released", pairs=plan.give_back, live_daemons=live)
        return Claim(self.unfinished([p for p in self._pairs if p.name in held]), taken)

    def lease(self, pair: str) -> Lease | None:
        return self._leases.get(pair)

    def lease_inputs(self, pair: str) -> dict[str, Any] | None:
        """The lease as a decision's inputs show it."""
        lease = self._leases.get(pair)
        return None if lease is None else {"holder": lease.holder, "token": lease.token}

    def send_by(self) -> float:
        """The monotonic time after which the renewed leases could have lapsed."""
        return self._leases_renewed_at + (self.lease_period - self.lease_margin).total_seconds()

    def lost(self, pair: str) -> None:
        """Another daemon holds the pair now: the next cycle claims again."""
        self._leases.pop(pair, None)
        self._claimed_at = None

    async def release(self) -> None:
        """Give back every lease (they lapse by themselves if this fails)."""
        try:
            await self._repo.release_leases(self.instance_id)
        except Exception as exc:
            log.warning("lease.release_failed", error=str(exc))
        self._leases = {}
        self._claimed_at = None

    def skipped(self) -> set[str]:
        """The pairs another daemon holds: their orders are not this daemon's to resolve."""
        return {p.name for p in self._pairs} - set(self._leases)

    # Pauses, caps and failures -------------------------------------------------------------

    async def load_risk_state(
        self, now: datetime, controls: Mapping[str, PairControl] | None = None
    ) -> None:
        """Pauses (read each cycle, so `hedgebot pause` acts on the next one; ``controls``
        when the caller read them already) and, when a pair caps it, this UTC day's
        traded notional per pair."""
        self._controls = (
            dict(controls) if controls is not None else await self._repo.pair_controls()
        )
        if any(p.max_daily_notional is not None for p in self._pairs):
            midnight = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
            self._traded_today = await self._repo.traded_notional_since(midnight)

    async def restore_failures(self) -> None:
        """Rejections before a restart still count toward the automatic pause (a refused
        spot sell does not)."""
        limit = self._settings.risk.max_consecutive_failures
        spots = sorted({p.spot_symbol for p in self._pairs})
        self._failures = await self._repo.trailing_rejections(limit, spots)

    def paused(self, pair: str) -> str | None:
        return paused_reason(self._controls, pair)

    def traded_today(self, pair: str) -> Decimal:
        """Contracts traded on the pair this UTC day (when a pair caps it)."""
        return self._traded_today.get(pair, ZERO)

    def auto_paused(self, active: Sequence[PairConfig]) -> dict[str, str]:
        """The held pairs that paused themselves (after failed orders), with the reason."""
        result: dict[str, str] = {}
        for pair in active:
            for key in (pair.name, ALL_PAIRS):
                control = self._controls.get(key)
                if control is not None and control.paused and control.source == "auto":
                    result[pair.name] = control.reason
        return result

    def succeeded(self, pair: str) -> None:
        self._failures.pop(pair, None)

    async def failed(self, pair: str, reason: str) -> None:
        """Count a rejected or failed order; pause the pair after K in a row."""
        count = self._failures.get(pair, 0) + 1
        limit = self._settings.risk.max_consecutive_failures
        self._failures[pair] = count
        if count < limit:
            return
        self._failures.pop(pair, None)  # a resume starts the count afresh
        why = (
            f"{count} consecutive orders rejected or failed "
            f"(max_consecutive_failures {limit}); last: {reason}"
        )
        log.warning("pair.auto_paused", pair=pair, reason=why)
        await self._repo.set_pair_paused(pair, True, why, source="auto")

    def spot_sell_done(self, pair: str, filled: bool, refused: bool = False) -> None:
        """A sell-down's spot sell was answered: ``filled`` (or its outcome is yet to be
        looked up), or not (refused, failed, or partly filled). Refusals do not count
        toward the automatic pause; they hold the next spot sells back (``sale_held``)."""
        if filled:
            self._sale_missed.discard(pair)
        else:
            self._sale_missed.add(pair)
        if refused:
            count = self._sale_refusals.get(pair, (0, self._clock.now()))[0] + 1
            self._sale_refusals[pair] = (count, self._clock.now())
        else:
            self._sale_refusals.pop(pair, None)

    def sale_held(self, pair: str, now: datetime) -> str | None:
        """Why the pair's spot sell waits this cycle, or None. After ``n`` refusals in a
        row the next sell is tried ``poll_interval_s x 2^(n-1)`` after the last (at most
        ``SALE_RETRY_MAX``): a venue that refuses every sale (a key without spot
        trading, coins the account cannot sell) is not sent an order every cycle."""
        refused = self._sale_refusals.get(pair)
        if refused is None:
            return None
        count, at = refused
        wait = min(
            timedelta(seconds=self._settings.poll_interval_s) * 2 ** min(count - 1, 30),
            SALE_RETRY_MAX,
        )
        if now >= at + wait:
            return None
        return (
            f"spot sell held back after {plural(count, 'refusal')} in a row; next try "
            f"at {utc_time(at + wait)}"
        )

    def sale_missed(self, pair: str) -> bool:
        """True when the pair's last spot sell did not fill in full: the next hedge covers
        all the spot held rather than what the next sell would leave."""
        return pair in self._sale_missed

    # Finished contracts --------------------------------------------------------------------

    def unfinished(self, pairs: Sequence[PairConfig]) -> list[PairConfig]:
        """The pairs with a contract left to trade: a basis pair whose every contract has
        expired is done (its position settled at expiry) and is skipped, said once."""
        now = self._clock.now()
        kept = []
        for pair in pairs:
            if live_contracts(pair, self._markets, now):
                kept.append(pair)
            elif pair.name not in self._finished:
                self._finished.add(pair.name)
                self._unannounced.append(pair)
                log.warning(
                    "pair.contracts_expired",
                    pair=pair.name,
                    contracts=list(pair.contract_symbols),
                    hint="add roll_to contracts or remove the pair",
                )
        return kept

    async def audit_finished(self) -> None:
        """Say once that a basis pair's last contract has expired and it is no longer run."""
        while self._unannounced:
            pair = self._unannounced.pop(0)
            await self._repo.append_audit(
                "strategy.contracts_expired",
                f"every contract of pair {pair.name} has expired "
                f"({', '.join(pair.contract_symbols)}): nothing left to hedge; add roll_to "
                "contracts or remove the pair",
                {"contracts": list(pair.contract_symbols)},
                pair=pair.name,
            )
