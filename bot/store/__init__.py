"""Persistence: SQLAlchemy tables, the repository and the audit log."""
