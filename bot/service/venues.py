"""Building the venues a mode asks for: the paper venue, or one ccxt client per account.

ccxt (``bot.exchange.ccxt_gateway``, ``bot.exchange.live_feed``) is imported only where a
ccxt client is built: ``import ccxt.async_support`` costs about 0.6 s and 80 MB, which the
paper daemon on simulated prices does not need. The paper venue and its price feeds
(``bot.exchange.paper``, ``bot.exchange.feeds``) are likewise imported only in paper mode.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.clock import Clock
from bot.config import Settings
from bot.config_view import PAPER_ACCOUNT
from bot.domain.paper_account import PaperAccountStore
from bot.exchange.gateway import ExchangeGateway

if TYPE_CHECKING:
    from bot.exchange.feeds import PriceFeed
    from bot.exchange.paper import PaperVenue


async def open_paper_venue(
    settings: Settings,
    store: PaperAccountStore,
    clock: Clock,
    *,
    feed: PriceFeed | None = None,
    venue_class: type[PaperVenue] | None = None,
) -> PaperVenue:
    """The paper venue, its account loaded from the store (or started from config).

    ``feed`` replaces the config's price source (a backtest's recorded path, a test's
    hand-set prices); ``venue_class`` a subclass of the venue (tests inject faults)."""
    from bot.exchange.feeds import feed_from_config
    from bot.exchange.paper import PaperVenue

    if feed is None:
        if settings.paper.feed == "live":
            from bot.exchange.live_feed import LiveFeed  # ccxt loads only for a live feed

            feed = LiveFeed.from_config(settings.paper, clock)
        else:
            feed = feed_from_config(settings.paper)
    return await (venue_class or PaperVenue).open(
        settings.paper,
        feed,
        clock,
        store,
        account=PAPER_ACCOUNT,
        leverage={p.perp_symbol: p.leverage for p in settings.pairs},
    )


async def open_gateways(
    settings: Settings,
    paper_store: PaperAccountStore,
    clock: Clock,
    *,
    feed: PriceFeed | None = None,
    venue_class: type[PaperVenue] | None = None,
) -> dict[str, ExchangeGateway]:
    """Every account the pairs use, by name; in paper mode the one paper account
    (``feed`` and ``venue_class`` as for :func:`open_paper_venue`)."""
    if settings.mode == "paper":
        venue = await open_paper_venue(
            settings, paper_store, clock, feed=feed, venue_class=venue_class
        )
        return {PAPER_ACCOUNT: venue}
    return await open_exchange_gateways(settings, clock)


async def open_exchange_gateways(settings: Settings, clock: Clock) -> dict[str, ExchangeGateway]:
    """Testnet or live: a ccxt gateway for every account the pairs use, by name."""
    from bot.exchange.ccxt_gateway import CcxtGateway

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
