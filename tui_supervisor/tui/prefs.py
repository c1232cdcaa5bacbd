"""The dashboard's remembered choices (the theme, the pane sizes per terminal size class):
one small JSON file of the user's, `$XDG_CONFIG_HOME/tui-supervisor/ui.json` (default
`~/.config/...`), or `TUISUP_UI_PREFS` when set (the tests point it at a tmp dir).

The UI must never fail over it: an unreadable or malformed file reads as empty (said once
in `problem`), and a write that fails is skipped (said once). Writes are atomic (a temp
file in the same folder, then rename) and only of this file: nothing else is touched.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def prefs_path(environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    if env.get("TUISUP_UI_PREFS"):
        return Path(env["TUISUP_UI_PREFS"])
    base = env.get("XDG_CONFIG_HOME") or os.path.join(
        env.get("HOME") or os.path.expanduser("~"), ".config")
    return Path(base) / "tui-supervisor" / "ui.json"


def size_class(width: int, height: int) -> str:
    """"small" (up to 100 columns or 30 rows, e.g. 80x24), "large" (from 180x50, e.g.
    200x60), else "medium" (e.g. 140x45): each remembers its own layout."""
    if width < 100 or height < 30:
        return "small"
    if width >= 180 and height >= 50:
        return "large"
    return "medium"


class Prefs:
    """A dict of JSON values kept in a file; `set` writes it at once."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        """None: kept in memory only (tests, or a file that cannot be had)."""
        self.data: dict[str, Any] = {}
        self.problem: str | None = None
        """The last read or write that failed, in one line (shown once by the UI)."""
        if path is not None:
            self._load(path)

    def _load(self, path: Path) -> None:
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return
        except (OSError, ValueError) as e:
            self.problem = f"UI preferences in {path} ignored: {e}"
            return
        if isinstance(data, dict):
            self.data = data
        else:
            self.problem = f"UI preferences in {path} ignored: not a JSON object"

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def set(self, key: str, value: Any) -> None:
        if self.data.get(key) == value:
            return
        self.data[key] = value
        self.save()

    def save(self) -> None:
        if self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".ui.", dir=self.path.parent)
            try:
                with os.fdopen(fd, "w") as f:
                    json.dump(self.data, f, indent=1, sort_keys=True)
                os.replace(tmp, self.path)
            except BaseException:
                os.unlink(tmp)
                raise
        except OSError as e:
            self.problem = f"UI preferences not saved to {self.path}: {e}"


def load_prefs() -> Prefs:
    return Prefs(prefs_path())
