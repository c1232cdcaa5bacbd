"""Reloading: the config when its files change (and, later, the code itself)."""
