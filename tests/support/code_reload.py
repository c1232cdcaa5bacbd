"""The code-reload scenario: a copy of the package to put on PYTHONPATH and edit, and
configs with a fast numbered writer (`tick`) and a sleeper (`idle`), so a reload can be
checked for same PIDs and every line exactly once."""

from __future__ import annotations

import shutil
from pathlib import Path

from .paths import CHILDREN, PY, ROOT

NEW_SCREEN = "\x1b[?1049h"
"""A dashboard entering the alternate screen: the new image's UI (the old one's repaints
until it leaves could match any text)."""


def config(tmp: Path, watch_code: bool = False) -> Path:
    """A 1 kHz writer and a sleeper, sampled every 0.2 s."""
    cfg = tmp / "tst-code.yaml"
    cfg.write_text(
        f"settings: {{sample_interval: 0.2, watch_code: {str(watch_code).lower()}}}\n"
        "services:\n"
        f"  tick:\n    command: [{PY}, {CHILDREN / 'counter.py'}, '0', '0.001']\n"
        "    start_time: 0\n"
        f"  idle:\n    command: [{PY}, {CHILDREN / 'sleeper.py'}]\n    start_time: 0\n")
    return cfg


def reconnect_config(tmp: Path) -> Path:
    """A writer every 5 ms and a sleeper, not sampled, runtime dir tmp/run."""
    cfg = tmp / "tst-reconnect.yaml"
    cfg.write_text(
        f"settings: {{sample_interval: 0, runtime_dir: {tmp / 'run'}}}\n"
        "services:\n"
        f"  tick:\n    command: [{PY}, {CHILDREN / 'counter.py'}, '0', '0.005']\n"
        "    start_time: 0\n"
        f"  idle:\n    command: [{PY}, {CHILDREN / 'sleeper.py'}]\n    start_time: 0\n")
    return cfg


def copy_package(tmp: Path) -> Path:
    """A copy of the package to put on PYTHONPATH and edit; returns the directory."""
    pkg = tmp / "pkg"
    shutil.copytree(ROOT / "tui_supervisor", pkg / "tui_supervisor",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return pkg
