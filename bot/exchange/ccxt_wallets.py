"""Transfers between an account's spot and USDⓈ-M futures wallets through ccxt.

Binance: ``transfer`` is ``POST /sapi/v1/asset/transfer`` (type ``MAIN_UMFUTURE``: spot ->
futures, ``UMFUTURE_MAIN``: back) and its history ``GET /sapi/v1/asset/transfer`` (one type
per request, the last 6 months). Binance keeps no client id there, so a transfer whose
answer was lost is matched by asset, amount, route and time
(``margin_transfers.match_wallet_transfer``). The amount is refused here when ccxt would
round it before sending (the look-up matches the exact amount).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from bot.domain.margin_transfers import FUTURES_WALLET, SPOT_WALLET, WalletTransfer
from bot.exchange.ccxt_client import CcxtCalls
from bot.exchange.ccxt_margin import refuse_rounded
from bot.exchange.ccxt_parse import dec, ms_time
from bot.exchange.gateway import OrderRejectedError

# Binance's transfer types, both ways between the spot (MAIN) and USDⓈ-M (UMFUTURE) wallets.
TYPES = {
    (SPOT_WALLET, FUTURES_WALLET): "MAIN_UMFUTURE",
    (FUTURES_WALLET, SPOT_WALLET): "UMFUTURE_MAIN",
}


def transfer_type(source: str, destination: str) -> str:
    """Binance's ``type`` of a transfer from ``source`` to ``destination``."""
    kind = TYPES.get((source, destination))
    if kind is None:
        raise OrderRejectedError(f"transfer from {source!r} to {destination!r}: unknown wallets")
    return kind


async def transfer(
    calls: CcxtCalls, client: Any, asset: str, amount: Decimal, source: str, destination: str
) -> None:
    """Send the transfer once (never retried: a repeat would move it twice)."""
    kind = transfer_type(source, destination)
    refuse_rounded(
        calls,
        "transfer",
        amount,
        lambda: client.currency_to_precision(asset, str(amount)),
        f"transfer of {amount} {asset} is finer than the currency's precision",
    )
    await calls.call(
        "transfer",
        client.transfer,
        asset,
        float(amount),
        "spot" if source == SPOT_WALLET else "linear",
        "spot" if destination == SPOT_WALLET else "linear",
        {"type": kind},
        retry=False,
        for_order=True,
    )


async def transfers(
    calls: CcxtCalls, client: Any, asset: str, since: datetime
) -> list[WalletTransfer]:
    """Both ways' transfers of ``asset`` since ``since``, oldest first (two requests)."""
    found: list[WalletTransfer] = []
    for (source, destination), kind in TYPES.items():
        raw = await calls.call(
            "fetch_transfers",
            client.fetch_transfers,
            asset,
            int(since.timestamp() * 1000),
            None,
            {"type": kind},
        )
        found.extend(wallet_transfers(raw, asset, source, destination))
    return sorted(found, key=lambda t: t.at)


def wallet_transfers(
    raw: Sequence[Any], asset: str, source: str, destination: str
) -> list[WalletTransfer]:
    """ccxt's transfer entries as domain values (confirmed ones; the amount from the venue's
    own string in ``info`` where it has one)."""
    listed = []
    for item in raw:
        info = item.get("info") or {}
        at = ms_time(item.get("timestamp"))
        status = str(info.get("status") or item.get("status") or "").upper()
        if at is None or status not in ("CONFIRMED", "OK") or item.get("currency") != asset:
            continue
        amount = dec(info.get("amount") or item["amount"])
        listed.append(WalletTransfer(asset, abs(amount), source, destination, at))
    return listed
