"""Turning order intents into orders, exactly once."""
