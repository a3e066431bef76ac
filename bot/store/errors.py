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
    return StoreUnavailable(database_problem(exc, location) or _plain(location, exc)[1])


def _plain(location: str, exc: BaseException) -> tuple[BaseException, str]:
    """The driver's exception behind ``exc`` and its first line, after ``location``."""
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    lines = str(cause).strip().splitlines()
    return cause, f"{location}: {lines[0] if lines else type(cause).__name__}"


# SQLSTATEs a user fixes in database_url or on the server, and what to tell them.
_SQLSTATE_HINTS = {
    "3D000": "does not exist; create it (e.g. `createdb NAME`) or fix database_url",
    "28000": "refused the login ({problem}); fix the user in database_url",
    "28P01": "refused the password; fix it in database_url",
    "42501": "refused the user's access ({problem}); grant it or use another user",
}
_SQLITE_HINTS = {
    "database is locked": "is locked by another process (waited 10 s); try again when it ends",
    "readonly database": "is read-only here; use a writable file or directory",
    "unable to open database file": "cannot be opened; check the path and its permissions",
    "disk i/o error": "hit a disk I/O error; check the disk",
}


def database_problem(exc: BaseException, location: str) -> str | None:
    """One line for a database a command cannot use (``location`` names it), with what to
    do; None when ``exc`` is not a database problem."""
    if isinstance(exc, StoreUnavailable):
        return str(exc)
    if isinstance(exc, ConnectionRefusedError):
        return f"cannot connect to {location}: connection refused; is the server running?"
    if isinstance(exc, OSError) and not isinstance(exc, DBAPIError):
        return f"cannot connect to {location}: {exc.strerror or exc}; check database_url's host"
    if not isinstance(exc, DBAPIError | PoolTimeoutError):
        return None
    cause, plain = _plain(location, exc)
    problem = plain.removeprefix(f"{location}: ")
    hint = _SQLSTATE_HINTS.get(str(getattr(cause, "sqlstate", "")))
    if hint is None:
        lowered = problem.lower()
        hint = next((h for key, h in _SQLITE_HINTS.items() if key in lowered), None)
    if hint is None:
        return plain
    return f"{location} {hint.format(problem=problem)}"
