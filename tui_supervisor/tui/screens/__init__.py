"""Screens of the TUI pushed over the main one (help, ...)."""
