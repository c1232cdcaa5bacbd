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


def test_the_boot_guard_runs_on_the_standard_library_alone() -> None:
    """safe.py is exec'd as a file when the package may be broken: run as a script with
    the package unimportable, it must load without importing anything but the stdlib."""
    from pathlib import Path

    import tui_supervisor.reload.safe as safe

    code = ("import sys, runpy; sys.modules['tui_supervisor'] = None; "
            "before = set(sys.modules); "
            f"runpy.run_path({str(Path(safe.__file__))!r}, run_name='boot'); "
            "print(sorted(m for m in set(sys.modules) - before if m.split('.')[0] not in "
            "sys.stdlib_module_names))")
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
