"""Where things are: the repository, the test interpreter, the child programs."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
"""The repository (what PYTHONPATH points engines at unless a test gives a copy)."""
PY = sys.executable
CHILDREN = ROOT / "tests" / "children"
"""Small programs the tests supervise (sleeper, counter, crash, ...)."""
