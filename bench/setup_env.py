"""Create (or check) supervisord's own venv at bench/.venv-supervisord. Stdlib only.

Usage: python3 bench/setup_env.py [--force]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
VENV = BENCH_DIR / ".venv-supervisord"
REQUIREMENT = "supervisor>=4.3,<4.4"


def supervisord_bin(venv: Path = VENV) -> Path:
    return venv / "bin" / "supervisord"


def installed_version(venv: Path = VENV) -> str | None:
    exe = supervisord_bin(venv)
    if not exe.exists():
        return None
    out = subprocess.run([str(exe), "--version"], capture_output=True, text=True, check=False)
    version = out.stdout.strip()
    return version if out.returncode == 0 and version.startswith("4.3") else None


def ensure(*, force: bool = False, python: str = sys.executable, quiet: bool = False) -> str:
    """Make sure bench/.venv-supervisord holds supervisor 4.3.x; return its version."""
    if not force and (version := installed_version()):
        return version
    if VENV.exists():
        shutil.rmtree(VENV)
    if not quiet:
        print(f"creating {VENV} with {REQUIREMENT} ...", file=sys.stderr)
    subprocess.run([python, "-m", "venv", str(VENV)], check=True)
    pip = [str(VENV / "bin" / "python"), "-m", "pip", "install", "--quiet",
           "--disable-pip-version-check"]
    subprocess.run([*pip, REQUIREMENT], check=True)
    version = installed_version()
    if version is None:
        raise RuntimeError(f"supervisord was not installed correctly in {VENV}")
    return version


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--force", action="store_true", help="recreate the venv from scratch")
    args = p.parse_args()
    print(f"supervisord {ensure(force=args.force)} in {VENV}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
