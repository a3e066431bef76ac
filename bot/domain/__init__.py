"""The pure core: no I/O, no asyncio, no clock reads; Decimal money only."""
