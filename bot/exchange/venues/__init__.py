"""One small module per venue behind one interface (``base.CcxtVenue``), chosen by the
ccxt exchange id; any other exchange takes the generic path (``generic``)."""

from __future__ import annotations

from bot.exchange.venues.base import CcxtVenue, NotModified
from bot.exchange.venues.binance import BinanceVenue
from bot.exchange.venues.bybit import BybitVenue
from bot.exchange.venues.generic import GenericVenue
from bot.exchange.venues.okx import OkxVenue

VENUES: tuple[type[CcxtVenue], ...] = (BinanceVenue, BybitVenue, OkxVenue)


def venue_class(exchange_id: str) -> type[CcxtVenue]:
    """The venue module of a ccxt exchange id; the generic path for any other."""
    for venue in VENUES:
        if exchange_id in venue.exchange_ids:
            return venue
    return GenericVenue


__all__ = [
    "VENUES",
    "BinanceVenue",
    "BybitVenue",
    "CcxtVenue",
    "GenericVenue",
    "NotModified",
    "OkxVenue",
    "venue_class",
]
