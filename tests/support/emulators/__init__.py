"""Exchange API emulators for the tests and benchmarks (not part of the bot package)."""
