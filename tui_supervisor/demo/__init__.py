"""The packaged demo: `tui-supervisor demo` runs config.example.yaml from here.

The services are small stdlib-only scripts in this package, so the demo runs anywhere
Python does.
"""

from __future__ import annotations

from pathlib import Path


def demo_config_path() -> Path:
    return Path(__file__).with_name("config.example.yaml")
