"""Read-only market checks before an order grows a position: the market's size and depth.

The market gate denies a market whose open interest or 24h volume is under the pair's
minimum; the liquidity step walks the order book and sends the order, a part of it that
fits ``max_slippage_bps`` (split), or nothing this cycle (wait). Nothing here writes.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from bot.config import PairConfig
from bot.domain.liquidity import estimate_slippage, largest_amount_within
from bot.domain.models import ZERO, Market, MarketStats, OrderIntent
from bot.domain.quantize import amount_problem
from bot.domain.risk import Verdict
from bot.exchange.gateway import ExchangeGateway

ORDER_BOOK_DEPTH = 50


class MarketChecks:
    """Owns the market figures fetched for the gate (refreshed every few minutes)."""

    def __init__(self, stats_refresh: timedelta) -> None:
        self._refresh = stats_refresh
        self._stats: dict[str, tuple[datetime, MarketStats]] = {}

    async def gate(
        self, pair: PairConfig, gateway: ExchangeGateway, now: datetime
    ) -> Verdict | None:
        """A denial when the market's open interest or 24h volume is under the pair's
        minimum; the figures are fetched at most every ``market_stats_refresh_s``."""
        if pair.min_open_interest <= ZERO and pair.min_quote_volume_24h <= ZERO:
            return None
        cached = self._stats.get(pair.perp_symbol)
        if cached is None or now - cached[0] >= self._refresh:
            cached = (now, await gateway.fetch_market_stats(pair.perp_symbol))
            self._stats[pair.perp_symbol] = cached
        stats = cached[1]
        floors = (
            (
                "open interest",
                "min_open_interest",
                stats.open_interest_value,
                pair.min_open_interest,
            ),
            (
                "24h quote volume",
                "min_quote_volume_24h",
                stats.quote_volume_24h,
                pair.min_quote_volume_24h,
            ),
        )
        for label, key, value, floor in floors:
            if floor <= ZERO:
                continue
            if value is None:
                return Verdict(
                    False, f"the venue reports no {label} for {pair.perp_symbol}: not traded"
                )
            if value < floor:
                return Verdict(
                    False,
                    f"{pair.perp_symbol} {label} {value:.0f} < {key} {floor}: market not traded",
                )
        return None

    async def liquidity(
        self, pair: PairConfig, gateway: ExchangeGateway, intent: OrderIntent, market: Market
    ) -> tuple[OrderIntent | None, dict[str, Any], str]:
        """Walk the book for the order: send it, a part that fits ``max_slippage_bps``
        (split), or nothing this cycle (wait); the book is fetched only here."""
        book = await gateway.fetch_order_book(intent.symbol, ORDER_BOOK_DEPTH)
        estimate = estimate_slippage(book, intent.side, intent.amount)
        limit = pair.max_slippage_bps
        info: dict[str, Any] = {"amount": intent.amount, "max_slippage_bps": limit}
        if estimate is None:
            info["action"] = "wait"
            return None, info, "liquidity: the order book is empty, waiting"
        info.update(
            touch=estimate.touch,
            average_price=estimate.average_price,
            slippage_bps=estimate.slippage_bps.quantize(Decimal("0.01")),
            book_depth=estimate.available,
        )
        if estimate.complete and estimate.slippage_bps <= limit:
            info["action"] = "send"
            return intent, info, ""
        what = (
            f"liquidity: {intent.amount:f} would fill about {estimate.slippage_bps:.1f} bps "
            f"from the touch > max_slippage_bps {limit}"
            if estimate.complete
            else f"liquidity: the book shows {estimate.available:f}, less than {intent.amount:f}"
        )
        if pair.on_thin_book == "wait":
            info["action"] = "wait"
            return None, info, f"{what}: waiting for a deeper book (on_thin_book wait)"
        fit = min(
            largest_amount_within(book, intent.side, limit, market.amount_step), intent.amount
        )
        problem = amount_problem(fit, intent.reference_price, market, pair.min_notional)
        if problem is not None:
            info["action"] = "wait"
            return None, info, f"{what}: the part that fits is too small ({problem}), waiting"
        info.update(action="split", sent=fit)
        return (
            replace(intent, amount=fit),
            info,
            f"{what}: sending {fit:f} now, the rest in later cycles (on_thin_book split)",
        )
