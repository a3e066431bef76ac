"""The outlook strategy: the playbook's allocation matrix (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any, ClassVar, Self

from bot.domain.models import ONE, ZERO
from bot.domain.strategies.base import (
    PairSpec,
    SetTarget,
    Strategy,
    Target,
    TargetInputs,
    TargetOverride,
)
from bot.domain.strategies.base import (
    pct as _pct,
)
from bot.domain.strategies.base import (
    qty_text as _qty,
)

HALF = Decimal("0.5")


class Outlook(StrEnum):
    """The allocation matrix's market outlooks."""

    EXTREMELY_BULLISH = "extremely_bullish"
    CAUTIOUSLY_BULLISH = "cautiously_bullish"
    NEUTRAL = "neutral"
    BEARISH = "bearish"


# Share of the spot notional hedged with a short perp, per outlook (the playbook's matrix).
OUTLOOK_RATIOS: dict[Outlook, Decimal] = {
    Outlook.EXTREMELY_BULLISH: ZERO,
    Outlook.CAUTIOUSLY_BULLISH: Decimal("0.3"),
    Outlook.NEUTRAL: Decimal("0.7"),
    Outlook.BEARISH: ONE,
}
# Bearish also sells the spot down to this share of the holding (when spot trades are allowed).
BEARISH_SPOT_KEEP = HALF


def outlook(
    view: Outlook,
    spot_trades_allowed: bool,
    spot_qty: Decimal = ZERO,
    reference: Decimal | None = None,
    sold: Decimal = ZERO,
    coin: str = "",
) -> Target:
    """The allocation matrix: hedge 0, 30 % or 70 %; bearish sells spot to 50 % and hedges
    100 % of the spot held meanwhile (the shell hedges what each sell leaves).

    The bearish sell-down keeps half of ``reference``, the spot held when the view turned
    bearish (``spot_qty`` when no reference is passed): it sells down to that level once
    rather than halving an ever smaller balance each cycle. ``sold`` is what our spot sells
    have filled since the reference was taken: the sale never exceeds the reference's other
    half in total, even when a balance read lags a fill. The returned target carries the
    reference for the next call; ``coin`` names the spot coin in the reason. Without spot
    trades the bearish outlook hedges 100 % of the spot held and says that the sell-down
    was skipped.
    """
    ratio = OUTLOOK_RATIOS[view]
    inputs: dict[str, Any] = {"outlook": view.value, "spot_trades_allowed": spot_trades_allowed}
    if view is not Outlook.BEARISH:
        return Target("outlook", ratio, f"outlook {view.value}: hedge {_pct(ratio)}", inputs=inputs)
    if spot_trades_allowed:
        held_at_turn = spot_qty if reference is None else reference
        keep = held_at_turn * BEARISH_SPOT_KEEP
        sell = max(min(spot_qty - keep, held_at_turn - keep - sold), ZERO)
        inputs.update(
            sell_down_reference=held_at_turn, spot_keep_qty=keep, spot_sold=sold, spot_sell_qty=sell
        )
        unit = f" {coin}" if coin else ""
        if sell > ZERO:
            why = (
                f"outlook bearish: sell {_qty(sell)}{unit} spot down to {_pct(BEARISH_SPOT_KEEP)} "
                f"of {_qty(held_at_turn)}{unit} (reference), hedging 100% of the rest meanwhile"
            )
        else:
            why = (
                f"outlook bearish: spot {_qty(spot_qty)}{unit} is at or under "
                f"{_pct(BEARISH_SPOT_KEEP)} of {_qty(held_at_turn)}{unit} (reference); hedge 100%"
            )
        return Target(
            "outlook",
            ratio,
            why,
            inputs=inputs,
            spot_sell_qty=sell,
            sell_down_reference=held_at_turn,
        )
    return Target(
        "outlook",
        ratio,
        "outlook bearish: hedge 100% of the spot held; spot sell-down skipped "
        "(the pair does not allow spot trades)",
        inputs=inputs,
        sell_down_skipped=True,
    )


@dataclass(frozen=True, slots=True)
class OutlookStrategy(Strategy):
    """``strategy = "outlook"``: the view's row of the matrix; set-target changes the view."""

    name: ClassVar[str] = "outlook"
    static_target: ClassVar[bool] = True
    set_target: ClassVar[SetTarget | None] = SetTarget.OUTLOOK

    view: Outlook
    spot_trades_allowed: bool
    coin: str = ""

    @classmethod
    def from_pair(cls, pair: PairSpec, override: TargetOverride | None = None) -> Self:
        view = pair.outlook_params.view
        if override is not None and override.outlook is not None:
            view = override.outlook
        return cls(Outlook(view), pair.allow_spot_trades, pair.spot_base)

    def highest_ratio(self) -> Decimal:
        return max(OUTLOOK_RATIOS.values())

    def target(self, inputs: TargetInputs) -> Target:
        return outlook(
            self.view,
            self.spot_trades_allowed,
            inputs.observation.spot_qty,
            inputs.sell_down_reference,
            inputs.sold,
            self.coin,
        )

    @property
    def sells_spot(self) -> bool:
        return self.spot_trades_allowed

    @property
    def selling_down(self) -> bool:
        return self.spot_trades_allowed and self.view is Outlook.BEARISH

    def uses_override(self, override: TargetOverride | None) -> bool:
        return override is not None and override.outlook is not None
