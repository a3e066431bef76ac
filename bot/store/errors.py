"""The store's own errors: callers outside ``bot/store/`` never see SQLAlchemy's.

* ``StoreUnavailable``: the database cannot be reached or cannot serve the request now
  (connection refused or dropped, disk I/O, locked past its busy timeout, pool
  exhausted). Nothing was stored by the failed call. The daemon skips the cycle (no
  intent can be stored, so nothing is sent) and tries again at the next one.

A duplicate key (``IntegrityError``) is not an outage and is not translated.
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError


class StoreUnavailable(Exception):
    """The database is down or cannot answer now; retry later."""


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc``, raised while talking to the database, means it is unavailable:
    a driver error other than a constraint violation, a pool timeout, or an OS-level
    connection failure (asyncpg raises ``ConnectionRefusedError`` as it is)."""
    if isinstance(exc, IntegrityError):
        return False
    return isinstance(exc, DBAPIError | PoolTimeoutError | OSError)


def unavailable(location: str, exc: BaseException) -> StoreUnavailable:
    """A one-line ``StoreUnavailable`` naming the database and the driver's complaint
    (its first line: never the SQL, its parameters or the URL)."""
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    lines = str(cause).strip().splitlines()
    problem = lines[0] if lines else type(cause).__name__
    return StoreUnavailable(f"{location}: {problem}")
