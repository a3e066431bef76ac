"""What OKX checks before it runs a request: the signature headers and the rate limits.

Signing, as OKX verifies it: ``OK-ACCESS-SIGN`` is
``base64(HMAC-SHA256(secret, timestamp + METHOD + requestPath + body))`` where the
request path carries the query string of a GET and ``body`` is the raw JSON of a POST;
``OK-ACCESS-TIMESTAMP`` is ISO 8601 UTC with milliseconds (``2026-12-01T18:30:00.123Z``)
and must be within 30 s of the server clock; ``OK-ACCESS-PASSPHRASE`` is the one the key
was made with. A demo-trading key answers only with ``x-simulated-trading: 1`` and a
live key only without it (50101).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from tests.support.emulators.okx._okx_models import RATE_LIMIT_MSG, OkxError

MAX_SKEW_S = 30.0
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


@dataclass(frozen=True)
class Credentials:
    """The one API key the emulated account has."""

    api_key: str = "okx-emulator-key"
    secret: str = "okx-emulator-secret"
    passphrase: str = "okx-emulator-passphrase"
    demo: bool = False


def sign(secret: str, prehash: str) -> str:
    """OKX's signature of a prehash string."""
    digest = hmac.new(secret.encode(), prehash.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def _auth_error(code: str, msg: str) -> OkxError:
    return OkxError(code, msg, 401)


def _parse_timestamp(raw: str) -> float:
    if len(raw) != 24 or not raw.endswith("Z"):
        raise _auth_error("50112", "Invalid OK-ACCESS-TIMESTAMP")
    try:
        parsed = datetime.strptime(raw, TIMESTAMP_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise _auth_error("50112", "Invalid OK-ACCESS-TIMESTAMP") from None
    return parsed.timestamp()


def authenticate(
    headers: Mapping[str, str],
    method: str,
    path_qs: str,
    body: str,
    now_s: float,
    creds: Credentials,
) -> None:
    """Raise OKX's error for the first check a signed request fails."""
    required = (
        ("OK-ACCESS-KEY", "50103"),
        ("OK-ACCESS-SIGN", "50106"),
        ("OK-ACCESS-TIMESTAMP", "50107"),
        ("OK-ACCESS-PASSPHRASE", "50104"),
    )
    for name, code in required:
        if not headers.get(name):
            raise _auth_error(code, f'Request header "{name}" can not be empty.')
    stamp = headers["OK-ACCESS-TIMESTAMP"]
    if abs(now_s - _parse_timestamp(stamp)) > MAX_SKEW_S:
        raise _auth_error("50102", "Timestamp request expired")
    if headers["OK-ACCESS-KEY"] != creds.api_key:
        raise _auth_error("50111", "Invalid OK-ACCESS-KEY")
    if (headers.get("x-simulated-trading") == "1") != creds.demo:
        raise _auth_error("50101", "APIKey does not match current environment.")
    if headers["OK-ACCESS-PASSPHRASE"] != creds.passphrase:
        raise _auth_error("50105", 'Request header "OK-ACCESS-PASSPHRASE" incorrect.')
    expected = sign(creds.secret, stamp + method + path_qs + body)
    if not hmac.compare_digest(expected, headers["OK-ACCESS-SIGN"]):
        raise _auth_error("50113", "Invalid Sign")


class RateLimiter:
    """Sliding windows per endpoint and scope: ``ip`` (one client here), ``user``, or
    ``inst`` (user and instrument: each instId of a batch counts once per order)."""

    def __init__(self) -> None:
        self.enabled = True
        self.overrides: dict[str, tuple[int, float]] = {}
        self._hits: dict[tuple[str, str], deque[float]] = {}
        self.refused: list[str] = []  # the path of each request answered 50011

    def check(
        self, path: str, limit: int, window_s: float, keys: Iterable[str], now: float
    ) -> None:
        """Count one hit per key; 50011 (HTTP 429) and nothing counted when over."""
        if not self.enabled:
            return
        limit, window_s = self.overrides.get(path, (limit, window_s))
        windows = []
        counts: dict[str, int] = {}
        for key in keys:
            counts[key] = counts.get(key, 0) + 1
        for key, count in counts.items():
            hits = self._hits.setdefault((path, key), deque())
            while hits and hits[0] <= now - window_s:
                hits.popleft()
            if len(hits) + count > limit:
                self.refused.append(path)
                raise OkxError("50011", RATE_LIMIT_MSG, 429)
            windows.append((hits, count))
        for hits, count in windows:
            hits.extend([now] * count)

    def reset(self) -> None:
        """Forget every counted request."""
        self._hits.clear()

    def forget(self, path: str) -> None:
        """Forget the requests counted on ``path``."""
        self._hits = {key: hits for key, hits in self._hits.items() if key[0] != path}
