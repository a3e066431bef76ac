"""Building the venue a mode asks for."""

from __future__ import annotations

from bot.clock import Clock
from bot.config import Settings
from bot.exchange.feeds import feed_from_config
from bot.exchange.paper import PaperVenue
from bot.store.repository import Repository

PAPER_ACCOUNT = "paper"


async def open_paper_venue(settings: Settings, repository: Repository, clock: Clock) -> PaperVenue:
    """The paper venue, its account loaded from the database (or started from config)."""
    feed = feed_from_config(settings.paper)
    return await PaperVenue.open(
        settings.paper,
        feed,
        clock,
        repository,
        account=PAPER_ACCOUNT,
        leverage={p.perp_symbol: p.leverage for p in settings.pairs},
    )
