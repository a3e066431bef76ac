"""Any other ccxt exchange: ccxt's unified calls as documented, and a start-up check.

hedgebot has no module for the venue, so nothing says that ccxt can look an order up by
its client id there, the one thing a lost answer needs. At start the check asks ccxt for
an order id that was never used: a venue that understands the question answers "not
found"; one that needs the venue's own id (ccxt ``ArgumentsRequired``, ``NotSupported``,
a refused parameter) is refused in one line before any order is sent.
"""

from __future__ import annotations

from typing import ClassVar

from bot.exchange.gateway import FatalError, GatewayError
from bot.exchange.venues.base import CcxtVenue

PROBE_CLIENT_ID = "hbprobe0never0sent"


class GenericVenue(CcxtVenue):
    """A ccxt exchange without a venue module."""

    label: ClassVar[str] = "generic ccxt"

    async def check_capabilities(self, contract: str | None) -> None:
        """ccxt's calls, then a look-up of a client id that was never sent."""
        await super().check_capabilities(contract)
        if contract is None:
            return
        try:
            found = await self.find_order(contract, PROBE_CLIENT_ID)
        except GatewayError as exc:
            raise FatalError(
                f"exchange {self.client.id!r}: looking an order up by its client id failed "
                f"({exc}), so a lost order answer could not be resolved; hedgebot supports "
                "binance, bybit and okx"
            ) from exc
        if found is not None:
            raise FatalError(
                f"exchange {self.client.id!r}: a look-up by a client id never sent found an "
                "order, so ccxt ignores the client id there; hedgebot supports binance, "
                "bybit and okx"
            )
