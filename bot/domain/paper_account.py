"""The paper venue's account, its JSON form, and the port it is saved through.

Pure: plain data, no I/O, no clock reads; money is ``Decimal``. The state has a JSON
form (decimals as strings, so nothing is rounded). ``PaperAccountStore`` is the port
the paper venue saves through; the store implements it (one row per paper account,
each filled order in a row of its own, so a save costs the same after a million
orders as after one), and ``InMemoryPaperAccountStore`` keeps it in the process.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from bot.domain.margin_transfers import MarginChange, WalletTransfer
from bot.domain.models import Fill, FundingPayment, OrderResult, OrderStatus, Side

ZERO = Decimal(0)


@dataclass(slots=True)
class PaperPosition:
    """An isolated-margin perp position of the paper account."""

    symbol: str
    qty: Decimal  # signed base quantity, negative = short
    entry_price: Decimal
    leverage: Decimal
    margin: Decimal  # quote locked as isolated margin


@dataclass(slots=True)
class PaperAccountState:
    balances: dict[str, Decimal] = field(default_factory=dict)
    positions: dict[str, PaperPosition] = field(default_factory=dict)
    fees_paid: Decimal = ZERO
    funding_total: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    last_funding_at: datetime | None = None
    # Recent orders by client order id: a cache; the store keeps every order apart.
    orders: dict[str, OrderResult] = field(default_factory=dict)
    pending_funding: list[FundingPayment] = field(default_factory=list)
    feed_state: dict[str, Any] = field(default_factory=dict)
    trade_seq: int = 0
    # The margin history (additions to isolated positions), where a transfer whose answer
    # was lost is looked up; kept 30 days by the paper venue, as Binance keeps them.
    margin_changes: list[MarginChange] = field(default_factory=list)
    # The coin-margin wallet (each coin's wallet balance, locked margin included) and its
    # inverse positions, whose ``qty`` is the signed face value in USD and ``margin`` coins.
    coin_margin: dict[str, Decimal] = field(default_factory=dict)
    inverse_positions: dict[str, PaperPosition] = field(default_factory=dict)
    # Separate wallets (PaperConfig.separate_wallets): the spot wallet (coins and quote);
    # ``balances`` is then the futures wallet. None: one wallet for both.
    spot_wallet: dict[str, Decimal] | None = None
    # Transfers between the wallets, with our client ids (kept as the margin history is).
    transfers: list[WalletTransfer] = field(default_factory=list)


class PaperAccountStore(Protocol):
    """Where the paper venue keeps its account between runs."""

    async def load_paper_account(self, name: str) -> PaperAccountState | None:
        """Return the saved state, or None for a new account."""
        ...

    async def save_paper_account(
        self, name: str, state: PaperAccountState, new_orders: Sequence[OrderResult] = ()
    ) -> None:
        """Persist the state and the orders filled since the last save, atomically."""
        ...

    async def load_paper_order(self, name: str, client_order_id: str) -> OrderResult | None:
        """An order the account ever filled, by client order id."""
        ...


class InMemoryPaperAccountStore:
    """A PaperAccountStore that lives as long as the process (tests, plan)."""

    def __init__(self) -> None:
        self._saved: dict[str, str] = {}
        self._orders: dict[tuple[str, str], str] = {}

    async def load_paper_account(self, name: str) -> PaperAccountState | None:
        raw = self._saved.get(name)
        return None if raw is None else state_from_json(raw)

    async def save_paper_account(
        self, name: str, state: PaperAccountState, new_orders: Sequence[OrderResult] = ()
    ) -> None:
        self._saved[name] = state_to_json(state)
        for order in new_orders:
            self._orders[(name, order.client_order_id)] = order_to_json(order)

    async def load_paper_order(self, name: str, client_order_id: str) -> OrderResult | None:
        raw = self._orders.get((name, client_order_id))
        return None if raw is None else order_from_json(raw)


def _dt(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _parse_dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _dec(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _parse_dec(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def _fill_to_dict(fill: Fill) -> dict[str, Any]:
    return {
        "trade_id": fill.trade_id,
        "symbol": fill.symbol,
        "side": fill.side.value,
        "amount": str(fill.amount),
        "price": str(fill.price),
        "fee": str(fill.fee),
        "fee_asset": fill.fee_asset,
        "timestamp": fill.timestamp.isoformat(),
    }


def _fill_from_dict(raw: dict[str, Any]) -> Fill:
    return Fill(
        trade_id=raw["trade_id"],
        symbol=raw["symbol"],
        side=Side(raw["side"]),
        amount=Decimal(raw["amount"]),
        price=Decimal(raw["price"]),
        fee=Decimal(raw["fee"]),
        fee_asset=raw["fee_asset"],
        timestamp=datetime.fromisoformat(raw["timestamp"]),
    )


def _order_to_dict(order: OrderResult) -> dict[str, Any]:
    return {
        "client_order_id": order.client_order_id,
        "exchange_order_id": order.exchange_order_id,
        "symbol": order.symbol,
        "side": order.side.value,
        "status": order.status.value,
        "amount": str(order.amount),
        "filled": str(order.filled),
        "average_price": _dec(order.average_price),
        "fee": str(order.fee),
        "fee_asset": order.fee_asset,
        "fills": [_fill_to_dict(f) for f in order.fills],
        "reason": order.reason,
    }


def _order_from_dict(raw: dict[str, Any]) -> OrderResult:
    return OrderResult(
        client_order_id=raw["client_order_id"],
        exchange_order_id=raw["exchange_order_id"],
        symbol=raw["symbol"],
        side=Side(raw["side"]),
        status=OrderStatus(raw["status"]),
        amount=Decimal(raw["amount"]),
        filled=Decimal(raw["filled"]),
        average_price=_parse_dec(raw["average_price"]),
        fee=Decimal(raw["fee"]),
        fee_asset=raw["fee_asset"],
        fills=tuple(_fill_from_dict(f) for f in raw["fills"]),
        reason=raw["reason"],
    )


def _funding_to_dict(payment: FundingPayment) -> dict[str, Any]:
    return {
        "symbol": payment.symbol,
        "amount": str(payment.amount),
        "asset": payment.asset,
        "rate": str(payment.rate),
        "position_qty": str(payment.position_qty),
        "mark_price": str(payment.mark_price),
        "timestamp": payment.timestamp.isoformat(),
    }


def _funding_from_dict(raw: dict[str, Any]) -> FundingPayment:
    return FundingPayment(
        symbol=raw["symbol"],
        amount=Decimal(raw["amount"]),
        asset=raw["asset"],
        rate=Decimal(raw["rate"]),
        position_qty=Decimal(raw["position_qty"]),
        mark_price=Decimal(raw["mark_price"]),
        timestamp=datetime.fromisoformat(raw["timestamp"]),
    )


def _margin_change_to_dict(change: MarginChange) -> dict[str, Any]:
    return {
        "symbol": change.symbol,
        "amount": str(change.amount),
        "asset": change.asset,
        "added": change.added,
        "at": change.at.isoformat(),
    }


def _margin_change_from_dict(raw: dict[str, Any]) -> MarginChange:
    return MarginChange(
        symbol=raw["symbol"],
        amount=Decimal(raw["amount"]),
        asset=raw["asset"],
        added=bool(raw["added"]),
        at=datetime.fromisoformat(raw["at"]),
    )


def _position_to_dict(position: PaperPosition) -> dict[str, Any]:
    return {
        "symbol": position.symbol,
        "qty": str(position.qty),
        "entry_price": str(position.entry_price),
        "leverage": str(position.leverage),
        "margin": str(position.margin),
    }


def _position_from_dict(raw: dict[str, Any]) -> PaperPosition:
    return PaperPosition(
        symbol=raw["symbol"],
        qty=Decimal(raw["qty"]),
        entry_price=Decimal(raw["entry_price"]),
        leverage=Decimal(raw["leverage"]),
        margin=Decimal(raw["margin"]),
    )


def _transfer_to_dict(transfer: WalletTransfer) -> dict[str, Any]:
    return {
        "asset": transfer.asset,
        "amount": str(transfer.amount),
        "source": transfer.source,
        "destination": transfer.destination,
        "at": transfer.at.isoformat(),
        "client_id": transfer.client_id,
    }


def _transfer_from_dict(raw: dict[str, Any]) -> WalletTransfer:
    return WalletTransfer(
        asset=raw["asset"],
        amount=Decimal(raw["amount"]),
        source=raw["source"],
        destination=raw["destination"],
        at=datetime.fromisoformat(raw["at"]),
        client_id=raw.get("client_id"),
    )


def state_to_json(state: PaperAccountState) -> str:
    """Serialize exactly: every decimal becomes its string."""
    return json.dumps(
        {
            "balances": {k: str(v) for k, v in state.balances.items()},
            "positions": {s: _position_to_dict(p) for s, p in state.positions.items()},
            "coin_margin": {k: str(v) for k, v in state.coin_margin.items()},
            "inverse_positions": {
                s: _position_to_dict(p) for s, p in state.inverse_positions.items()
            },
            "fees_paid": str(state.fees_paid),
            "funding_total": str(state.funding_total),
            "realized_pnl": str(state.realized_pnl),
            "last_funding_at": _dt(state.last_funding_at),
            "pending_funding": [_funding_to_dict(p) for p in state.pending_funding],
            "feed_state": state.feed_state,
            "trade_seq": state.trade_seq,
            "margin_changes": [_margin_change_to_dict(c) for c in state.margin_changes],
            "spot_wallet": (
                None
                if state.spot_wallet is None
                else {k: str(v) for k, v in state.spot_wallet.items()}
            ),
            "transfers": [_transfer_to_dict(t) for t in state.transfers],
        },
        sort_keys=True,
    )


def state_from_json(raw: str) -> PaperAccountState:
    """Inverse of state_to_json."""
    data = json.loads(raw)
    return PaperAccountState(
        balances={k: Decimal(v) for k, v in data["balances"].items()},
        positions={s: _position_from_dict(p) for s, p in data["positions"].items()},
        # Absent from accounts saved before the paper venue had a coin-margin wallet.
        coin_margin={k: Decimal(v) for k, v in data.get("coin_margin", {}).items()},
        inverse_positions={
            s: _position_from_dict(p) for s, p in data.get("inverse_positions", {}).items()
        },
        fees_paid=Decimal(data["fees_paid"]),
        funding_total=Decimal(data["funding_total"]),
        realized_pnl=Decimal(data["realized_pnl"]),
        last_funding_at=_parse_dt(data["last_funding_at"]),
        pending_funding=[_funding_from_dict(p) for p in data["pending_funding"]],
        feed_state=data["feed_state"],
        trade_seq=int(data["trade_seq"]),
        # Absent from accounts saved before the paper venue kept a margin history.
        margin_changes=[_margin_change_from_dict(c) for c in data.get("margin_changes", [])],
        # Absent from accounts saved before the paper venue could keep separate wallets.
        spot_wallet=(
            None
            if data.get("spot_wallet") is None
            else {k: Decimal(v) for k, v in data["spot_wallet"].items()}
        ),
        transfers=[_transfer_from_dict(t) for t in data.get("transfers", [])],
    )


def order_to_json(order: OrderResult) -> str:
    """One order, exactly (decimals as strings)."""
    return json.dumps(_order_to_dict(order), sort_keys=True)


def order_from_json(raw: str) -> OrderResult:
    """Inverse of order_to_json."""
    return _order_from_dict(json.loads(raw))
