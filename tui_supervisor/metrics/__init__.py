"""Metrics: pure computations over engine events (no I/O, injected clock)."""
