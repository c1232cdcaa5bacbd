"""The dashboard's theme: Textual's own picker (the palette's "Theme" command) chooses it;
the choice is kept in the UI preferences (prefs.py, key "theme") and restored at start."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

THEME_KEY = "theme"


def saved_theme(saved: Any, available: Collection[str]) -> tuple[str | None, str | None]:
    """(the theme to start with, or None for Textual's default; what is wrong with the
    saved one, in one line, or None). An unknown or malformed name is ignored, not fatal
    (a theme of a newer Textual, a hand edit)."""
    if saved is None:
        return None, None
    if isinstance(saved, str) and saved in available:
        return saved, None
    return None, f"UI preferences: unknown theme {saved!r} ignored"
