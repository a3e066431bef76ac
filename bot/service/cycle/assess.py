"""Assess: target → decide → liquidation guard (once) → risk gate → liquidity.

Reads the venue (candles, tickers, market figures, the book) but writes nothing there:
the order or margin transfer it settles on is sent by the send stage.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from bot.config import PairConfig, Settings
from bot.domain.inverse import moves_with_price
from bot.domain.margin import MaintenanceTiers
from bot.domain.margin_cap import MarginBudget
from bot.domain.margin_transfers import MoveKind
from bot.domain.models import (
    ZERO,
    Decision,
    HedgeParams,
    Market,
    Observation,
    OrderIntent,
    Side,
    settle_asset,
)
from bot.domain.quantize import amount_problem, ioc_limit_price, round_down
from bot.domain.rebalance import (
    decide,
    held,
    holds_while_unchanged,
    interval_slot,
    interval_start,
    wait_for_interval,
)
from bot.domain.risk import (
    GuardAction,
    RiskLimits,
    Verdict,
    check,
    check_margin_transfer,
    check_spot_sell,
    liquidation_guard,
)
from bot.domain.strategies import Target, strategy_kind
from bot.domain.symbols import Symbol
from bot.execution.executor import OrderPlan
from bot.service.cycle.accounts import Accounts
from bot.service.cycle.keeper import keeper_action
from bot.service.cycle.market_checks import MarketChecks
from bot.service.cycle.pair_state import PairState
from bot.service.cycle.spot_quotes import SpotQuotes
from bot.service.cycle.view import PairView, SymbolUnavailable, ticker_of
from bot.service.targets import TargetSource

FOREVER = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Assessment:
    """What the daemon would do for a pair now, and why."""

    pair: str
    observation: Observation
    decision: Decision
    verdict: Verdict | None
    # none | order | denied | waiting | liquidity_wait | add_margin (and the keeper's
    # remove_margin | to_futures | to_spot)
    action: str
    summary: str
    order: OrderPlan | None = None
    target: Target | None = None
    add_margin: Decimal | None = None  # the liquidation guard moves this much margin in
    # The collateral keeper's other transfer (out of the position, between the wallets).
    move: tuple[MoveKind, Decimal] | None = None
    then: tuple[tuple[MoveKind, Decimal], ...] = ()  # its next transfers, each once done
    liquidity: Mapping[str, Any] | None = None  # the book walk, when one was made
    # The bearish sell-down's spot sell sent beside this order (its own decision).
    spot_sell: Assessment | None = None
    market: Market | None = None  # the traded contract's rules (steps to show figures at)


class AssessStage:
    """Owns the memoised holds, the interval slots reached and the quiet horizons."""

    def __init__(
        self,
        settings: Settings,
        accounts: Accounts,
        targets: TargetSource,
        pair_state: PairState,
    ) -> None:
        self._settings = settings
        self._accounts = accounts
        self._targets = targets
        self._pair_state = pair_state
        self._checks = MarketChecks(timedelta(seconds=float(settings.risk.market_stats_refresh_s)))
        self._spot_quotes = SpotQuotes(accounts)
        # Interval rebalancing: the last interval in which each pair reached its target,
        # and that target (a new one is acted on at once, whatever the strategy).
        self._interval_done: dict[str, tuple[int, Decimal]] = {}
        # A hold that depends on quantities and params alone is reused while they stay the
        # same, rather than decided again (see quiet_until, which the backtest relies on).
        self._held: dict[str, tuple[tuple[Any, ...], Decision]] = {}
        # Per pair, until when its last cycle's hold would repeat (absent: no promise).
        self._quiet: dict[str, datetime] = {}
        # The risk checks' view of the venue: per contract its maintenance margin tiers,
        # per pair the leverage set at start (new margin is locked at it).
        self._tiers: dict[str, MaintenanceTiers] = {}
        self._leverages: dict[str, Decimal] = {}

    async def assess(self, view: PairView, now: datetime) -> Assessment:
        """:meth:`_assess`, with the contract's rules the figures are shown at."""
        assessment = await self._assess(view, now)
        return replace(assessment, market=view.market)

    async def _assess(self, view: PairView, now: datetime) -> Assessment:
        """Target, decision, guard, risk and liquidity for one pair; sends nothing.

        While a bearish sell-down is due, its spot sell (``spot_sell``, its own decision) goes
        in the same cycle as the hedge, which covers the spot the sell leaves: the spot held
        is never left unhedged while the sale goes on in parts."""
        pair, observation = view.pair, view.observation
        target = await self._targets.target_for(
            pair,
            observation,
            self._accounts.perp_gateway(pair),
            now,
            next_contract=view.next_contract,
            taker_fee=view.market.taker_fee,
        )
        params = HedgeParams(
            target_ratio=target.ratio,
            band=pair.band,
            min_notional=pair.min_notional,
            max_order_notional=pair.max_order_notional,
        )
        if view.price_problem is not None:
            return self._bad_quotes(view, params, target, view.price_problem)
        risk = self._settings.risk
        if risk.on_liquidation_risk == "keep":
            keeping = (self._maintenance(view.market.symbol), self._leverages.get(view.pair.name))
            guard = await keeper_action(view, risk, self._spot_quotes, self._accounts, *keeping)
        else:
            guard = liquidation_guard(
                observation,
                risk.min_liquidation_distance,
                risk.on_liquidation_risk,
                view.market,
                view.free_margin,
                self._maintenance(view.market.symbol),
            )
        if guard is not None and guard.sale is not None:
            sale: Assessment | None = self._keeper_sale(view, params, guard.sale, now)
        else:
            sale = None if guard is not None else await self._spot_sell(view, params, target, now)
        sold = sale.order.intent if sale is not None and sale.order is not None else None
        missed = sold is not None and self._pair_state.sale_missed(pair.name)
        decision = self._decide(_after_sale(view, None if missed else sold), params, now)
        decision = replace(
            decision, reason=f"{target.reason}; {decision.reason}{_hedged(view, sold, missed)}"
        )
        assessment = await self._check(view, decision, guard, now, sold)
        if sale is None:
            return replace(assessment, target=target)
        if sold is not None:
            return replace(assessment, target=target, spot_sell=replace(sale, target=target))
        # A denied or skipped sell-down does not hold the hedge back.
        summary = f"spot sell {sale.summary}; {assessment.summary}"
        return replace(assessment, target=target, summary=summary)

    def _keeper_sale(
        self, view: PairView, params: HedgeParams, intent: OrderIntent, now: datetime
    ) -> Assessment:
        """The keeper's spot sale (its own decision), beside the cut of the short: the spot
        sell's risk gate, then the order plan."""
        observation, base = view.observation, view.pair.spot_base
        reason = f"collateral keeper: sell {intent.amount:f} {base} beside the cut"
        decision = replace(held(observation, params, reason), action="order", intent=intent)
        verdict = check_spot_sell(intent, observation, self.risk_limits(view), now)
        if not verdict.approved:
            summary = f"denied: {verdict.reason}"
            return Assessment(view.pair.name, observation, decision, verdict, "denied", summary)
        plan = self._order_plan(view, intent)
        return Assessment(view.pair.name, observation, decision, verdict, "order", reason, plan)

    def _bad_quotes(
        self, view: PairView, params: HedgeParams, target: Target, problem: str
    ) -> Assessment:
        """Quotes that cannot price an order hold the pair: nothing is decided on them
        (not even the liquidation guard's order), and the denial says why."""
        decision = held(view.observation, params, "no order on these quotes")
        decision = replace(decision, reason=f"{target.reason}; {decision.reason}")
        verdict = Verdict(False, problem)
        return Assessment(
            view.pair.name,
            view.observation,
            decision,
            verdict,
            "denied",
            f"denied: {problem}",
            target=target,
        )

    def risk_limits(self, view: PairView, sold: OrderIntent | None = None) -> RiskLimits:
        """The risk gate's limits for the pair; ``sold`` is a spot sell going beside the
        order checked (it counts toward the daily notional)."""
        pair = view.pair
        beside = sold.notional if sold is not None else ZERO
        risk = self._settings.risk
        return RiskLimits(
            max_data_age_s=risk.max_data_age_s,
            max_leverage=risk.max_leverage,
            pair_leverage=pair.leverage,
            kill_switch=risk.kill_switch,
            max_order_notional=pair.max_order_notional,
            account_equity=view.account_equity,
            paused=self._pair_state.paused(pair.name),
            max_position_notional=pair.max_position_notional,
            max_daily_notional=pair.max_daily_notional,
            daily_traded_notional=self._pair_state.traded_today(pair.name)
            * view.market.contract_size
            + beside,
            min_liquidation_distance=risk.min_liquidation_distance,
            maintenance=self._estimated_with(view),
            venue_leverage=self._leverages.get(pair.name),
        )

    def use_leverages(self, leverages: Mapping[str, Decimal]) -> None:
        """The leverage set on each pair's contracts at start."""
        self._leverages.update(leverages)

    def _estimated_with(self, view: PairView) -> MaintenanceTiers | None:
        """The tiers the pre-trade check estimates liquidation prices with; None where the
        isolated linear formula does not apply: cross margin (the whole wallet backs the
        position) and inverse contracts (margined in the base coin)."""
        symbol = view.market.symbol
        if view.pair.margin_mode != "isolated" or Symbol.parse(symbol).inverse:
            return None
        return self._maintenance(symbol)

    def _maintenance(self, symbol: str) -> MaintenanceTiers:
        tiers = self._tiers.get(symbol)
        if tiers is None:
            tiers = self._tiers[symbol] = self._settings.maintenance(symbol)[1]
        return tiers

    async def _spot_sell(
        self, view: PairView, params: HedgeParams, target: Target, now: datetime
    ) -> Assessment | None:
        """The bearish sell-down's spot sell this cycle: at most ``max_order_notional`` and
        the free spot (coins locked in open orders cannot be sold), the rest in later cycles.
        None when there is nothing worth selling; action "none" when the spot symbol cannot
        be traded this cycle (the hedge goes ahead all the same)."""
        pair, observation = view.pair, view.observation
        if not pair.allow_spot_trades or target.spot_sell_qty <= ZERO:
            return None
        account = self._accounts.spot_account(pair)
        base = decide(observation, params, view.market)
        held = self._pair_state.sale_held(pair.name, now)
        if held is not None:  # the hedge goes ahead all the same, over all the spot held
            return Assessment(pair.name, observation, base, None, "none", f"not sold: {held}")
        try:
            market = view.market_of(pair.spot_symbol)
            tickers = await self._spot_quotes.tickers(pair)
            price = ticker_of(pair.spot_symbol, tickers, account).bid
        except SymbolUnavailable as exc:
            summary = f"not sold this cycle: {exc}"
            return Assessment(pair.name, observation, base, None, "none", summary)
        wanted = min(target.spot_sell_qty, view.spot_free)
        amount = round_down(min(wanted, pair.max_order_notional / price), market.amount_step)
        if amount_problem(amount, price, market, pair.min_notional) is not None:
            return None  # dust (or nothing free): not worth an order; the hedge covers it
        intent = OrderIntent(pair.spot_symbol, Side.SELL, amount, False, price)
        notes = []
        if wanted < target.spot_sell_qty:
            notes.append(f"{view.spot_free:f} {pair.spot_base} free, the rest locked in orders")
        if amount < target.spot_sell_qty:
            notes.append("the rest in later cycles")
        note = f" ({'; '.join(notes)})" if notes else ""
        reason = (
            f"{target.reason}; selling {amount:f} {pair.spot_base} on {pair.spot_symbol}"
            f"{note}, the hedge of the rest beside it"
        )
        decision = replace(base, action="order", reason=reason, intent=intent)
        if view.pending:
            summary = f"{reason}; waiting: {_unresolved(view)}"
            return Assessment(pair.name, observation, decision, None, "waiting", summary)
        verdict = check_spot_sell(intent, observation, self.risk_limits(view), now)
        if not verdict.approved:
            summary = f"denied: {verdict.reason}"
            return Assessment(pair.name, observation, decision, verdict, "denied", summary)
        plan = self._order_plan(view, intent)
        if plan.price is not None:
            reason += f"; IOC limit {plan.price}"
        return Assessment(pair.name, observation, decision, verdict, "order", reason, plan)

    async def _check(
        self,
        view: PairView,
        decision: Decision,
        guard: GuardAction | None,
        now: datetime,
        sold: OrderIntent | None = None,
    ) -> Assessment:
        """The guard's action replaces the rebalance; then the risk gate, the market and
        the book (``sold``: the spot sell going beside it)."""
        observation = view.observation
        if guard is not None:
            decision = replace(
                decision,
                action="order" if guard.intent is not None else "none",
                reason=f"liquidation guard: {guard.reason}",
                intent=guard.intent,
            )
        assessment = _as_decided(view.pair.name, observation, decision)
        if guard is not None and guard.intent is not None and guard.moves:
            # A sale and cut: its transfers follow the orders (``then``, each once done).
            assessment = replace(assessment, then=guard.moves)
        if guard is not None and guard.add_margin is not None:
            move = (MoveKind.ADD_MARGIN, guard.add_margin)
            assessment = self._margin_transfer(view, assessment, move, now)
        elif guard is not None and guard.moves and guard.intent is None:
            assessment = self._margin_transfer(view, assessment, guard.moves[0], now)
            if assessment.move is not None or assessment.add_margin is not None:
                assessment = replace(assessment, then=guard.moves[1:])
        elif decision.intent is not None and view.pending:
            summary = f"{decision.reason}; waiting: {_unresolved(view)}"
            assessment = replace(assessment, action="waiting", summary=summary)
        elif decision.intent is not None:
            assessment = await self._order(view, assessment, decision.intent, guard, now, sold)
        if observation.unreflected_qty != ZERO:
            assessment = replace(
                assessment,
                summary=f"{assessment.summary} (counting {observation.unreflected_qty} "
                "filled, not yet in the position)",
            )
        return assessment

    def _margin_transfer(
        self,
        view: PairView,
        assessment: Assessment,
        move: tuple[MoveKind, Decimal],
        now: datetime,
    ) -> Assessment:
        if view.pending_margin:
            transfer = view.pending_margin[0].client_id
            summary = (
                f"{assessment.summary}; waiting: margin transfer {transfer} is not resolved yet"
            )
            return replace(assessment, action="waiting", summary=summary)
        verdict = check_margin_transfer(view.observation, self.risk_limits(view), now)
        if verdict.approved:
            kind, amount = move
            if kind is MoveKind.ADD_MARGIN:
                return replace(assessment, verdict=verdict, action=kind.value, add_margin=amount)
            return replace(assessment, verdict=verdict, action=kind.value, move=move)
        summary = f"{assessment.summary}; denied: {verdict.reason}"
        return replace(assessment, verdict=verdict, action="denied", summary=summary)

    async def _order(
        self,
        view: PairView,
        assessment: Assessment,
        intent: OrderIntent,
        guard: GuardAction | None,
        now: datetime,
        sold: OrderIntent | None = None,
    ) -> Assessment:
        """The risk gate, then (growing a position) the market gate and (not the guard's
        urgent order) the book."""
        pair = view.pair
        gateway = self._accounts.perp_gateway(pair)
        limits = self.risk_limits(view, sold)
        verdict = check(intent, view.observation, limits, now, view.market.contract_size)
        if verdict.approved and not intent.reduce_only:
            verdict = await self._checks.gate(pair, gateway, now) or verdict
        if not verdict.approved:
            summary = f"denied: {verdict.reason}"
            if guard is not None:
                summary = f"{assessment.decision.reason}; denied: {verdict.reason}"
            return replace(assessment, verdict=verdict, action="denied", summary=summary)
        summary = assessment.summary
        sent: OrderIntent | None = intent
        liquidity: dict[str, Any] | None = None
        if guard is None:
            # The guard's order is urgent: it is not held back for a thin book.
            sent, liquidity, note = await self._checks.liquidity(pair, gateway, intent, view.market)
            if note:
                summary += f"; {note}"
        if sent is None:
            return replace(
                assessment,
                verdict=verdict,
                action="liquidity_wait",
                summary=summary,
                liquidity=liquidity,
            )
        plan = self._order_plan(view, sent)
        if plan.price is not None:
            summary += f"; IOC limit {plan.price}"
        return replace(
            assessment,
            verdict=verdict,
            action="order",
            summary=summary,
            order=plan,
            liquidity=liquidity,
        )

    def _order_plan(self, view: PairView, intent: OrderIntent) -> OrderPlan:
        pair = view.pair
        if pair.order_type == "market":
            return OrderPlan(intent=intent, order_type="market", price=None)
        market = view.market_of(intent.symbol)
        price = ioc_limit_price(
            intent.side, intent.reference_price, pair.max_slippage_bps, market.price_step
        )
        return OrderPlan(intent=intent, order_type="limit", price=price)

    def _decide(self, view: PairView, params: HedgeParams, now: datetime) -> Decision:
        """The rebalance policy of the pair: the band every cycle, or the target once an
        interval; a price-independent hold is reused while its inputs are unchanged."""
        pair, observation = view.pair, view.observation
        margin = margin_budget(view, self._leverages.get(pair.name))
        if pair.rebalance == "interval":
            slot = interval_slot(now, pair.rebalance_interval_s)
            if self._interval_done.get(pair.name) == (slot, params.target_ratio):
                next_at = interval_start(slot + 1, pair.rebalance_interval_s)
                return wait_for_interval(observation, params, next_at)
            # Due: trade to the target itself (the min notional still applies).
            return decide(observation, replace(params, band=ZERO), view.market, margin)
        key = (observation.spot_qty, observation.perp_qty, params)
        held = self._held.get(pair.name)
        if held is not None and held[0] == key:
            return held[1]
        decision = decide(observation, params, view.market, margin)
        if holds_while_unchanged(decision, observation.spot_qty):
            self._held[pair.name] = (key, decision)
        return decision

    # Quiet horizons (the backtest skips the cycles that would only repeat holds) ---------

    def new_cycle(self) -> None:
        self._quiet.clear()
        self._spot_quotes.new_cycle()

    def note_hold(self, pair: PairConfig, assessment: Assessment, now: datetime) -> None:
        """Remember until when this pair's hold repeats while its quantities stay the same."""
        horizon = self._hold_horizon(pair, assessment, now)
        if horizon > now:
            self._quiet[pair.name] = horizon

    def forget_holds(self) -> None:
        """The holds could not be recorded: promise nothing."""
        self._quiet.clear()

    def _hold_horizon(self, pair: PairConfig, assessment: Assessment, now: datetime) -> datetime:
        if assessment.action != "none" or assessment.spot_sell is not None:
            return now
        if pair.rebalance == "interval":
            # At the target: done until the next interval, whatever the strategy.
            slot = interval_slot(now, pair.rebalance_interval_s)
            self._interval_done[pair.name] = (slot, assessment.decision.target_ratio)
            if not _static_target(pair):
                return now  # its target may move with the market: no quiet promise
            return interval_start(slot + 1, pair.rebalance_interval_s)
        if not _static_target(pair) or moves_with_price(pair.perp_symbol):
            return now
        if holds_while_unchanged(assessment.decision, assessment.observation.spot_qty):
            return FOREVER
        return now

    def quiet_until(self, pair_count: int) -> datetime | None:
        """Until when further cycles would only repeat the last cycle's holds (every one of
        ``pair_count`` pairs promised one); None otherwise."""
        if len(self._quiet) != pair_count:
            return None
        return min(self._quiet.values())


def _as_decided(pair: str, observation: Observation, decision: Decision) -> Assessment:
    """The assessment of ``decision`` before the gates; "denied" (nothing is sent) where the
    policy found that the free margin cannot pay the smallest order."""
    if decision.action == "denied":
        verdict = Verdict(False, decision.reason)
        summary = f"denied: {decision.reason}"
        return Assessment(pair, observation, decision, verdict, "denied", summary)
    return Assessment(pair, observation, decision, None, decision.action, decision.reason)


def margin_budget(view: PairView, venue_leverage: Decimal | None) -> MarginBudget | None:
    """What pays the initial margin of an order that grows the position: the perp
    wallet's free margin (an inverse contract's in its coin), at the leverage the venue
    locks new margin at (else the pair's), with the taker fee; None where the venue
    reports no free margin (not capped)."""
    free, symbol = view.free_margin, view.market.symbol
    if free is None:
        return None
    leverage = venue_leverage or view.pair.leverage
    fee = view.market.taker_fee or ZERO
    slippage = view.pair.max_slippage_bps  # the IOC limit, where the venue may check it
    if Symbol.parse(symbol).inverse:  # the view counts the coins at this price
        price = view.observation.price
        return MarginBudget(free / price, settle_asset(symbol), leverage, fee, price, slippage)
    return MarginBudget(free, settle_asset(symbol), leverage, fee, slippage_bps=slippage)


def _after_sale(view: PairView, sold: OrderIntent | None) -> PairView:
    """The view as the hedge sees it: the spot a sell going this cycle leaves."""
    if sold is None:
        return view
    observation = view.observation
    return replace(
        view, observation=replace(observation, spot_qty=observation.spot_qty - sold.amount)
    )


def _hedged(view: PairView, sold: OrderIntent | None, missed: bool) -> str:
    """What the hedge covers while a spot sell goes beside it."""
    if sold is None:
        return ""
    if missed:
        return " (hedging all the spot held: the last spot sell did not fill in full)"
    left = view.observation.spot_qty - sold.amount
    return f" (hedging the {left:f} {view.pair.spot_base} left after this cycle's spot sell)"


def _unresolved(view: PairView) -> str:
    return f"order {view.pending[0].client_order_id} is not resolved yet"


def _static_target(pair: PairConfig) -> bool:
    """Whether the pair's target ratio depends on its configuration alone (a fixed ratio
    or an outlook view), not on market data.

    A pair whose strategy reads prices or funding is not: its holds are re-decided every
    cycle, and the backtest does not skip them."""
    return strategy_kind(pair.strategy).static_target
