"""The service layer's one error a user fixes (cheap to import: the CLI catches it)."""

from __future__ import annotations


class ServiceSetupError(Exception):
    """The daemon, its database, endpoints or alerts cannot start as configured; the
    message is one line."""
