"""The paper venue: a simulated exchange account behind the ExchangeGateway Protocol.

``venue`` is the facade (``PaperVenue``); ``quotes`` shows the market (rules, prices,
book, candles), ``fills`` fills orders, ``ledger`` keeps the account's books (balances,
positions, margin, funding), ``forced`` the closes the venue makes itself (liquidation,
expiry), ``unified`` a unified account's margin, ``rules`` holds the symbols, the price
grid and the funding calendar. The account is saved through ``bot.exchange.paper_state``.
"""

from bot.domain.paper_account import PaperAccountState, PaperAccountStore, PaperPosition
from bot.exchange.paper.forced import LIQUIDATION_PREFIX, SETTLEMENT_PREFIX
from bot.exchange.paper.ledger import (
    MAX_LEVERAGE,
    MAX_PENDING_FUNDING,
    MAX_REMEMBERED_ORDERS,
    MIN_LEVERAGE,
    AccountSummary,
)
from bot.exchange.paper.quotes import SECONDS_PER_YEAR
from bot.exchange.paper.rules import DELIVERY_TIME, funding_times, next_funding_time
from bot.exchange.paper.venue import PaperVenue

__all__ = [
    "DELIVERY_TIME",
    "LIQUIDATION_PREFIX",
    "MAX_LEVERAGE",
    "MAX_PENDING_FUNDING",
    "MAX_REMEMBERED_ORDERS",
    "MIN_LEVERAGE",
    "SECONDS_PER_YEAR",
    "SETTLEMENT_PREFIX",
    "AccountSummary",
    "PaperAccountState",
    "PaperAccountStore",
    "PaperPosition",
    "PaperVenue",
    "funding_times",
    "next_funding_time",
]
