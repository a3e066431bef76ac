"""How the Bybit emulator checks a request before it runs: signature, limits, routes.

- Signing (v5 HMAC): ``X-BAPI-SIGN`` is hex HMAC-SHA256, keyed by the secret, of
  ``timestamp + apiKey + recvWindow + payload``, where the payload is the query string
  as sent (GET) or the JSON body as sent (POST). The timestamp must fall in
  ``[server time - recvWindow, server time + 1000 ms)`` (10002); an unknown key is
  10003, a wrong signature 10004, missing headers 10001 "openapi sign params error!".
- Per-UID limits: each private path allows ``limit`` requests per rolling second
  (10006 "Too many visits!" past it); every private answer carries
  ``X-Bapi-Limit``, ``X-Bapi-Limit-Status`` (what is left) and
  ``X-Bapi-Limit-Reset-Timestamp``.
- Per-IP limit: ``600`` requests per 5 s; past it every request is answered HTTP 403
  "access too frequent" for ``ban_s`` seconds (Bybit: at least 10 minutes).
"""

from __future__ import annotations

import hashlib
import hmac
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.support.emulators.bybit._bybit_models import BybitError

Handler = Callable[[dict[str, Any], "RequestContext"], Any]
READ_LIMIT = 50
WRITE_LIMIT = 10
DEFAULT_RECV_WINDOW = 5000
FUTURE_TOLERANCE_MS = 1000
ENVIRONMENTS = {"": "mainnet", "/testnet": "testnet", "/demo": "demo"}


@dataclass
class RequestContext:
    """Per-request flags set by injected faults, and the order a request created."""

    partial: Any = None
    order: Any = None


@dataclass(frozen=True)
class Route:
    """One emulated endpoint; ``limit`` is its per-UID requests per second."""

    handler: Handler
    signed: bool
    creates_order: bool = False
    limit: int = READ_LIMIT


def split_environment(path: str) -> tuple[str, str]:
    """``/testnet/v5/...`` → (``testnet``, ``/v5/...``); no prefix is mainnet."""
    for prefix, name in ENVIRONMENTS.items():
        if prefix and (path == prefix or path.startswith(prefix + "/")):
            return name, path[len(prefix) :]
    return "mainnet", path


def verify_signature(
    headers: Any,
    payload: str,
    credentials: dict[str, str],
    now_ms: int,
) -> None:
    """Check Bybit's v5 HMAC headers against ``credentials`` (key → secret)."""
    key = headers.get("X-BAPI-API-KEY", "")
    stamp = headers.get("X-BAPI-TIMESTAMP", "")
    sign = headers.get("X-BAPI-SIGN", "")
    if not key or not stamp or not sign:
        raise BybitError(
            10001,
            f"empty value: apiTimestamp[{stamp}] apiKey[{key}] apiSignature[{sign}]: "
            "openapi sign params error!",
        )
    secret = credentials.get(key)
    if secret is None:
        raise BybitError(10003, "API key is invalid.")
    recv = headers.get("X-BAPI-RECV-WINDOW", str(DEFAULT_RECV_WINDOW))
    try:
        stamp_ms, window = int(stamp), int(recv)
    except ValueError:
        raise BybitError(10001, "params error: timestamp or recv_window invalid") from None
    if not now_ms - window <= stamp_ms < now_ms + FUTURE_TOLERANCE_MS:
        raise BybitError(
            10002,
            "invalid request, please check your server timestamp or recv_window param. "
            f"req_timestamp[{stamp_ms}],server_timestamp[{now_ms}],recv_window[{window}]",
        )
    origin = f"{stamp}{key}{recv}{payload}"
    expected = hmac.new(secret.encode(), origin.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, sign):
        raise BybitError(10004, f"error sign! origin_string[{origin}]")


@dataclass
class UidLimiter:
    """Rolling one-second windows per path; ``limits`` overrides a route's own limit."""

    limits: dict[str, int] = field(default_factory=dict)
    _seen: dict[str, deque[int]] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)  # the path of each 10006 answer

    def take(self, path: str, default: int, now_ms: int) -> dict[str, str]:
        """Count a request; its X-Bapi-Limit headers, or 10006 with them when over."""
        limit = self.limits.get(path, default)
        seen = self._seen.setdefault(path, deque())
        while seen and seen[0] <= now_ms - 1000:
            seen.popleft()
        if len(seen) >= limit:
            headers = self.headers(limit, 0, seen[0] + 1000)
            self.refused.append(path)
            raise LimitExceeded(headers)
        seen.append(now_ms)
        return self.headers(limit, limit - len(seen), now_ms)

    def reset(self) -> None:
        """Forget every counted request (as if the windows had passed)."""
        self._seen.clear()

    @staticmethod
    def headers(limit: int, left: int, reset_ms: int) -> dict[str, str]:
        """The three X-Bapi-Limit headers."""
        return {
            "X-Bapi-Limit": str(limit),
            "X-Bapi-Limit-Status": str(left),
            "X-Bapi-Limit-Reset-Timestamp": str(reset_ms),
        }


class LimitExceeded(Exception):
    """A per-UID limit was hit; carries the headers to answer with."""

    def __init__(self, headers: dict[str, str]) -> None:
        super().__init__("10006 Too many visits!")
        self.headers = headers


@dataclass
class IpLimiter:
    """``limit`` requests per ``window_s`` per IP, then a ban of ``ban_s`` seconds."""

    limit: int = 600
    window_s: float = 5.0
    ban_s: float = 600.0
    banned_until: float = 0.0
    _seen: deque[float] = field(default_factory=deque)

    def allow(self, now: float) -> bool:
        """Count a request; False while banned (the request that breaks the limit bans)."""
        if now < self.banned_until:
            return False
        while self._seen and self._seen[0] <= now - self.window_s:
            self._seen.popleft()
        self._seen.append(now)
        if len(self._seen) > self.limit:
            self.banned_until = now + self.ban_s
            self._seen.clear()
            return False
        return True
