"""The pre-trade risk gate: approve or deny one order intent, with the reason (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from bot.domain.models import ONE, Observation, OrderIntent, Side


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """Limits one pair's orders are checked against; equity None skips the exposure check."""

    max_data_age_s: Decimal
    max_leverage: Decimal
    pair_leverage: Decimal
    kill_switch: bool
    max_order_notional: Decimal
    account_equity: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """The gate's answer; a denied intent is never sent."""

    approved: bool
    reason: str


def _seconds(delta: timedelta) -> Decimal:
    # From the integer parts, so the age is exact rather than a float.
    return Decimal(delta.days * 86400 + delta.seconds) + Decimal(delta.microseconds).scaleb(-6)


def check(
    intent: OrderIntent,
    observation: Observation,
    limits: RiskLimits,
    now: datetime,
    contract_size: Decimal = ONE,
) -> Verdict:
    """Approve ``intent`` or deny it, naming the value and the limit it broke.

    Reduce-only orders skip the leverage and notional checks (they only cut risk) but
    not the kill switch or the stale-data check.
    """
    if limits.kill_switch:
        return Verdict(False, "kill switch is on")
    age = _seconds(now - observation.observed_at)
    if age > limits.max_data_age_s:
        return Verdict(
            False, f"observation is {age:.1f}s old > max_data_age_s {limits.max_data_age_s}"
        )
    if intent.reduce_only:
        return Verdict(True, "reduce-only order: only cuts risk")
    if limits.pair_leverage > limits.max_leverage:
        return Verdict(
            False, f"pair leverage {limits.pair_leverage} > max_leverage {limits.max_leverage}"
        )
    base_qty = intent.amount * contract_size
    notional = base_qty * intent.reference_price
    if notional > limits.max_order_notional:
        return Verdict(
            False,
            f"order notional {notional:.2f} > max_order_notional {limits.max_order_notional}",
        )
    if limits.account_equity is not None:
        signed = -base_qty if intent.side is Side.SELL else base_qty
        exposure = abs(observation.perp_qty + signed) * observation.price
        cap = limits.account_equity * limits.max_leverage
        if exposure > cap:
            return Verdict(
                False,
                f"position notional after the order {exposure:.2f} > equity "
                f"{limits.account_equity:.2f} x max_leverage {limits.max_leverage} = {cap:.2f}",
            )
    return Verdict(True, f"order notional {notional:.2f} within limits")
