"""Building the venues a mode asks for: the paper venue, or one ccxt client per account."""

from __future__ import annotations

from bot.clock import Clock
from bot.config import PAPER_ACCOUNT, Settings
from bot.domain.paper_account import PaperAccountStore
from bot.exchange.ccxt_gateway import CcxtGateway
from bot.exchange.feeds import PriceFeed, feed_from_config
from bot.exchange.gateway import ExchangeGateway
from bot.exchange.live_feed import LiveFeed
from bot.exchange.paper import PaperVenue


async def open_paper_venue(
    settings: Settings, store: PaperAccountStore, clock: Clock
) -> PaperVenue:
    """The paper venue, its account loaded from the store (or started from config)."""
    feed: PriceFeed
    if settings.paper.feed == "live":
        feed = LiveFeed.from_config(settings.paper, clock)
    else:
        feed = feed_from_config(settings.paper)
    return await PaperVenue.open(
        settings.paper,
        feed,
        clock,
        store,
        account=PAPER_ACCOUNT,
        leverage={p.perp_symbol: p.leverage for p in settings.pairs},
    )


async def open_gateways(
    settings: Settings, paper_store: PaperAccountStore, clock: Clock
) -> dict[str, ExchangeGateway]:
    """Every account the pairs use, by name; in paper mode the one paper account."""
    if settings.mode == "paper":
        return {PAPER_ACCOUNT: await open_paper_venue(settings, paper_store, clock)}
    used = sorted({name for pair in settings.pairs for name in settings.accounts_of(pair)})
    gateways: dict[str, ExchangeGateway] = {}
    try:
        for name in used:
            gateways[name] = CcxtGateway.from_config(
                name, settings.accounts[name], settings.mode, clock
            )
    except BaseException:
        for gateway in gateways.values():
            await gateway.close()
        raise
    return gateways
