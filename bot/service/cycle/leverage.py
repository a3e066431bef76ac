"""The leverage each pair starts with: the lowest whose margin fits its perp wallet."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal

from bot.config import PairConfig
from bot.domain.margin import lowest_leverage
from bot.domain.models import ZERO, Market, settle_asset
from bot.service.cycle.accounts import Accounts
from bot.service.cycle.observe import AccountSnapshot
from bot.service.cycle.view import observe_pair, on_its_contract
from bot.service.targets import TargetSource

# Leverage at start covers the hedge's margin with this much of the wallet, leaving room
# for fees and price moves.
MARGIN_HEADROOM = Decimal("0.9")


def start_leverages(
    pairs: Sequence[PairConfig],
    accounts: Accounts,
    snapshots: Mapping[str, AccountSnapshot],
    markets: Mapping[str, Market],
    targets: TargetSource,
    now: datetime,
) -> dict[str, Decimal]:
    """Per pair, the lowest leverage whose margin on the hedge (its highest target x spot,
    or the position if larger) fits in its perp wallet; the pair's ``leverage`` is the cap."""
    result: dict[str, Decimal] = {}
    for account in accounts.gateways:
        on_account = accounts.perps_on(account, pairs)
        needs: dict[str, Decimal] = {}
        for pair in on_account:
            contract = on_its_contract(pair, accounts, snapshots, markets, now)[0]
            observation = observe_pair(contract, accounts, snapshots, markets)
            hedge = max(
                targets.highest_ratio(pair) * observation.spot_qty, abs(observation.perp_qty)
            )
            settle = settle_asset(pair.perp_symbol)
            needs[settle] = needs.get(settle, ZERO) + hedge * observation.price
        for pair in on_account:
            settle = settle_asset(pair.perp_symbol)
            wallet = snapshots[account].margin.get(settle)
            available = wallet.total * MARGIN_HEADROOM if wallet else ZERO
            result[pair.name] = lowest_leverage(needs[settle], available, pair.leverage)
    return result
