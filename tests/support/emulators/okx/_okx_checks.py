"""What OKX's order service checks of one order before it matches: the instrument, side,
type, size and price, the trade mode and position side, and the client order id.

Each check raises ``OrderRejected`` with OKX's ``sCode``/``sMsg``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from tests.support.emulators.binance._binance_models import is_multiple
from tests.support.emulators.okx._okx_models import ZERO, EmulatedOrder, Instrument, OrderRejected

CLIENT_ID = re.compile(r"^[A-Za-z0-9]{1,32}$")
ORDER_TYPES = ("market", "limit", "post_only", "fok", "ioc", "optimal_limit_ioc")
ACCOUNT_MODE_MSG = "You can't complete this request under your current account mode."


def flag(raw: Any) -> bool:
    """A JSON boolean, or ``"true"``."""
    return raw is True or (isinstance(raw, str) and raw.lower() == "true")


def positive(raw: Any, name: str) -> Decimal:
    """A positive decimal field: 50014 when absent, 51000 when not a positive number."""
    if raw is None or raw == "":
        raise OrderRejected("50014", f"Parameter {name} can not be empty.")
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        raise OrderRejected("51000", f"Parameter {name} error") from None
    if not value.is_finite() or value <= 0:
        raise OrderRejected("51000", f"Parameter {name} error")
    return value


def shape(inst: Instrument, item: Mapping[str, Any]) -> tuple[str, str, Decimal, Decimal]:
    """Side, ordType, sz (a multiple of lotSz, at least minSz) and px (on the tick)."""
    if inst.market.state != "live":
        raise OrderRejected("51022", "Instrument suspended.")
    side = item.get("side")
    if side not in ("buy", "sell"):
        raise OrderRejected("51000", "Parameter side error")
    ord_type = item.get("ordType")
    if ord_type not in ORDER_TYPES:
        raise OrderRejected("51000", "Parameter ordType error")
    size = positive(item.get("sz"), "sz")
    if not is_multiple(size, inst.lot):
        raise OrderRejected("51121", "Order quantity must be a multiple of the lot size.")
    if size < inst.min_size:
        raise OrderRejected("51020", "Your order should meet or exceed the minimum order amount.")
    price = ZERO
    if ord_type not in ("market", "optimal_limit_ioc"):
        price = positive(item.get("px"), "px")
        if not is_multiple(price, inst.market.tick_sz):
            raise OrderRejected("51000", "Parameter px error")
    return str(side), str(ord_type), size, price


def modes(
    inst: Instrument, item: Mapping[str, Any], acct_lv: str, pos_mode: str
) -> tuple[str, str]:
    """tdMode (``cash`` for spot; ``cross``/``isolated`` for contracts) and posSide
    (``net`` in net mode; ``long``/``short``, required, in long/short mode)."""
    td_mode = item.get("tdMode")
    if not td_mode:
        raise OrderRejected("50014", "Parameter tdMode can not be empty.")
    if td_mode not in ("cross", "isolated", "cash"):
        raise OrderRejected("51000", "Parameter tdMode error")
    if not inst.is_contract:
        if td_mode != "cash":  # spot margin trading is not emulated
            raise OrderRejected("51000", "Parameter tdMode error")
        return td_mode, ""
    if acct_lv == "1":
        raise OrderRejected("51010", ACCOUNT_MODE_MSG)
    if td_mode == "cash":
        raise OrderRejected("51000", "Parameter tdMode error")
    pos_side = item.get("posSide") or ""
    if pos_mode == "net_mode":
        if pos_side not in ("", "net"):
            raise OrderRejected("51000", "Parameter posSide error")
        return td_mode, "net"
    if pos_side not in ("long", "short"):
        raise OrderRejected("51000", "Parameter posSide error")
    return td_mode, str(pos_side)


def client_id(item: Mapping[str, Any], orders: Iterable[EmulatedOrder], scope: str) -> str:
    """clOrdId: 1-32 letters and digits, not held by a live order (``scope`` ``open``)
    or by any order (``all``)."""
    cl_id = str(item.get("clOrdId") or "")
    if not cl_id:
        return ""
    if not CLIENT_ID.match(cl_id):
        raise OrderRejected("51000", "Parameter clOrdId error")
    if any(o.cl_ord_id == cl_id and (scope == "all" or o.is_open) for o in orders):
        raise OrderRejected("51016", "Duplicated clOrdId")
    return cl_id
