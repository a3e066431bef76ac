"""Replay a recorded price path through the daemon's own cycle on the paper venue."""
