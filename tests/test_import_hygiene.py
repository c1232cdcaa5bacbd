"""The engine runs headless: importing it must not load the UI or the file watcher.
Checked in a subprocess, since a static import graph misses deferred imports."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("module", [
    "tui_supervisor.engine.supervisor", "tui_supervisor.engine.api", "tui_supervisor.config",
    "tui_supervisor.console",
])
def test_module_does_not_import_ui(module: str) -> None:
    code = (f"import sys, {module}; "
            "bad = sorted(m for m in ('textual', 'rich', 'watchdog') if m in sys.modules); "
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)
    assert out.stdout.strip() == ""
