"""hedgebot: keeps spot holdings hedged with perpetual futures."""

__version__ = "0.1.0"
