"""The paper account's spot and futures wallets, when they are separate (pure books).

With ``PaperConfig.separate_wallets`` the account is a classic Binance one: the spot
wallet (``PaperAccountState.spot_wallet``: the coins and their quote) and the
USDT-margined futures wallet (``PaperAccountState.balances``: margin, PnL, funding,
fees of perp trades) are apart; quote moves between them only by ``transfer``, each
remembered with its client id (``transfers``, kept as long as the margin history), so a
transfer whose answer was lost is found by its id. Without it there is one wallet and
``spot`` is that wallet, as before.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from bot.domain.margin_transfers import FUTURES_WALLET, SPOT_WALLET, WalletTransfer
from bot.domain.models import ZERO, Balance
from bot.domain.paper_account import PaperAccountState
from bot.exchange.gateway import OrderRejectedError

TRANSFER_HISTORY = timedelta(days=30)  # as long as Binance lists them (and the margin history)


def separate(state: PaperAccountState) -> bool:
    return state.spot_wallet is not None


def spot_wallet(state: PaperAccountState) -> dict[str, Decimal]:
    """The wallet spot orders trade from: its own, or the one wallet of the account."""
    return state.balances if state.spot_wallet is None else state.spot_wallet


def spot_balances(state: PaperAccountState) -> dict[str, Balance]:
    """The separate spot wallet's balances (nothing is locked there: orders fill at once)."""
    return {a: Balance(asset=a, free=v, total=v) for a, v in spot_wallet(state).items()}


def transfer(
    state: PaperAccountState,
    futures_free: Decimal,
    asset: str,
    amount: Decimal,
    source: str,
    destination: str,
    client_id: str,
    now: datetime,
) -> None:
    """Move ``amount`` of ``asset`` from ``source`` to ``destination`` (``spot`` or
    ``futures``) and remember it; OrderRejectedError (nothing changed) when the wallets are
    not separate, the id was used, or the source has not ``amount`` free (``futures_free``:
    the futures wallet's, margin locked in positions excluded)."""
    if state.spot_wallet is None:
        raise OrderRejectedError("the paper account has one wallet: nothing to transfer")
    if {source, destination} != {SPOT_WALLET, FUTURES_WALLET}:
        raise OrderRejectedError(f"transfer from {source!r} to {destination!r}: unknown wallets")
    if amount <= ZERO:
        raise OrderRejectedError(f"transfer amount must be positive, got {amount:f}")
    if any(t.client_id == client_id for t in state.transfers):
        raise OrderRejectedError(f"transfer {client_id} was made before")
    spot = state.spot_wallet
    free = spot.get(asset, ZERO) if source == SPOT_WALLET else futures_free
    if amount > free:
        raise OrderRejectedError(
            f"transfer of {amount:f} {asset} from {source}: {free:f} free there"
        )
    sign = Decimal(1) if source == SPOT_WALLET else Decimal(-1)
    spot[asset] = spot.get(asset, ZERO) - sign * amount
    state.balances[asset] = state.balances.get(asset, ZERO) + sign * amount
    kept = now - TRANSFER_HISTORY
    state.transfers[:] = [t for t in state.transfers if t.at >= kept]
    state.transfers.append(WalletTransfer(asset, amount, source, destination, now, client_id))


def transfers_since(state: PaperAccountState, asset: str, since: datetime) -> list[WalletTransfer]:
    """The remembered transfers of ``asset`` since ``since``, oldest first."""
    return [t for t in state.transfers if t.asset == asset and t.at >= since]
