"""GET /v5/market/risk-limit: the risk limit tiers of the linear contracts.

hedgebot does not call it; freqtrade loads every symbol's tiers at start (ccxt's
``fetch_leverage_tiers``, following ``nextPageCursor``) for its liquidation estimates.
Each contract lists ``TIERS`` tiers: the first at the market's maximum leverage and
maintenance margin rate, each next one with a larger risk limit, a lower maximum
leverage and a higher maintenance margin, as Bybit lists them.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tests.support.emulators._common import fmt
from tests.support.emulators.bybit._bybit_book import Book
from tests.support.emulators.bybit._bybit_engine import Params
from tests.support.emulators.bybit._bybit_market_api import page
from tests.support.emulators.bybit._bybit_models import EmulatedMarket, params_error

TIERS = 3
FIRST_LIMIT = Decimal(2_000_000)  # USDT of position value in the first tier
PAGE_ROWS = 1000


def tiers(symbol: str, market: EmulatedMarket) -> list[dict[str, Any]]:
    """The tiers of one contract, lowest risk first."""
    rows = []
    for n in range(1, TIERS + 1):
        initial = Decimal(n) / market.max_leverage
        rows.append(
            {
                "id": n,
                "symbol": symbol,
                "riskLimitValue": fmt(FIRST_LIMIT * n),
                "maintenanceMargin": fmt(market.maint_margin_ratio * n),
                "initialMargin": fmt(initial),
                "isLowestRisk": 1 if n == 1 else 0,
                "maxLeverage": f"{Decimal(1) / initial:.2f}",
                "mmDeduction": "" if n == 1 else fmt(FIRST_LIMIT * market.maint_margin_ratio),
            }
        )
    return rows


def risk_limit(book: Book, params: Params) -> Any:
    """One page of tiers: every linear contract's, or the ``symbol``'s."""
    category = book.check_category(params.get("category") or "linear")
    if category != "linear":
        raise params_error("params error: category only support linear or inverse")
    symbol = params.get("symbol")
    if symbol:
        chosen = [book.instrument(category, symbol, public=True)]
    else:
        chosen = list(book.instruments[category].values())
    rows = [row for inst in chosen for row in tiers(inst.symbol, inst.market)]
    chunk, cursor = page(rows, params, PAGE_ROWS, PAGE_ROWS)
    return {"category": category, "list": chunk, "nextPageCursor": cursor}
