"""Spot as collateral: a venue's account-level margin as the USD-settled contracts' own.

On a unified or multi-currency margin account (Bybit's cross UTA, OKX's account level 3)
every coin backs the USDT/USDC contracts at the venue's haircut, so their free margin
and equity are the account's figures in USD (USD taken as the stable coins' unit), not
the USDT row's. Both venues return those figures in the same balance answer as the
coins, so reading them costs no request; this maps them onto the stable coins' rows, as
the paper unified account reports its quote asset.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from bot.domain.models import ZERO, Balance

#: The settle coins of linear contracts: on such an account their margin is the account's.
USD_SETTLED = frozenset({"USDT", "USDC"})


def with_account_margin(
    balances: Mapping[str, Balance], available: Decimal, equity: Decimal
) -> dict[str, Balance]:
    """``balances`` with USDT's (and any other stable coin's held) ``free`` the account's
    available margin and ``equity`` its margin equity; ``total`` stays the coin's own."""
    result = dict(balances)
    for asset in {"USDT", *(a for a in USD_SETTLED if a in result)}:
        total = result[asset].total if asset in result else ZERO
        result[asset] = Balance(asset, available, total, equity)
    return result
