"""tui-supervisor: a process supervisor that lives in your terminal."""

__version__ = "0.1.0"
