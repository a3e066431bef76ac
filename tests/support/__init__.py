"""Shared test support: builders of settings and daemons (see ``builders``)."""
