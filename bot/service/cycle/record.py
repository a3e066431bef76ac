"""Record: an assessment becomes the decision row the audit log shows."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from bot.domain.models import Market, Observation
from bot.service.cycle.assess import Assessment
from bot.service.cycle.view import PairView
from bot.store.repository import DecisionRecord


def observation_inputs(observation: Observation) -> dict[str, Any]:
    """The observation as the audit log shows it (decimals as strings)."""
    position = observation.position
    return {
        "spot_qty": observation.spot_qty,
        "perp_qty": observation.perp_qty,
        "reported_perp_qty": observation.perp_qty - observation.unreflected_qty,
        "unreflected_qty": observation.unreflected_qty,
        "price": observation.price,
        "spot_price": observation.spot_price,
        "bid": observation.bid,
        "ask": observation.ask,
        "funding_rate": observation.funding_rate,
        "observed_at": observation.observed_at,
        "entry_price": position.entry_price if position else None,
        "liquidation_price": position.liquidation_price if position else None,
        "unrealized_pnl": position.unrealized_pnl if position else None,
    }


def market_steps(market: Market) -> dict[str, Decimal]:
    """The steps figures are shown at: the price tick, and a quantity step in coins."""
    return {"price": market.price_step, "quantity": market.amount_step * market.contract_size}


def decision_record(
    decision_id: str,
    view: PairView,
    assessment: Assessment,
    *,
    cycle: int,
    mode: str,
    context: dict[str, Any],
) -> DecisionRecord:
    """The decision row: the assessment with its inputs (``context``: foreign orders, the
    lease and the strategy's inputs, which other stages own)."""
    pair = view.pair
    verdict: str | None = None
    if assessment.action == "liquidity_wait":
        verdict = assessment.summary
    elif assessment.verdict is not None:
        verdict = assessment.verdict.reason
    return DecisionRecord(
        decision_id=decision_id,
        observation=assessment.observation,
        cycle=cycle,
        mode=mode,
        decision=assessment.decision,
        action=assessment.action,
        verdict=verdict,
        inputs={
            "observation": observation_inputs(assessment.observation),
            "steps": market_steps(view.market),
            "foreign_open_orders": context["foreign_open_orders"],
            "lease": context["lease"],
            "liquidity": assessment.liquidity,
            "add_margin": assessment.add_margin,
            **(
                {"move": {"kind": assessment.move[0].value, "amount": assessment.move[1]}}
                if assessment.move is not None
                else {}
            ),
            "params": {
                "target_ratio": pair.target_ratio,
                "band": pair.band,
                "min_notional": pair.min_notional,
                "max_order_notional": pair.max_order_notional,
                "leverage": pair.leverage,
                "order_type": pair.order_type,
                "max_slippage_bps": pair.max_slippage_bps,
            },
            **({"strategy": context["strategy"]} if context.get("strategy") is not None else {}),
        },
        summary=assessment.summary,
        contract_size=view.market.contract_size,
    )
