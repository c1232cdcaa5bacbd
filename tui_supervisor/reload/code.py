"""Code reload by exec handoff (DESIGN.md §2, RELOAD-NOTES.md): check the new code, hand
the engine's state to a new image of this same process, and pick it up there.

The process keeps its PID, so the services stay its children; their pipes are inherited
(marked inheritable for the exec only), the detach record goes through a 0600 file whose
path is in TUISUP_HANDOFF (popped at start-up so services never see it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any

HANDOFF_VAR = "TUISUP_HANDOFF"
START_CWD = os.getcwd()
"""Where the process started: `python -m` and relative paths resolve against it."""
PACKAGE = Path(__file__).resolve().parent.parent
PREFLIGHT_IMPORT = "import tui_supervisor.cli, tui_supervisor.tui.app, tui_supervisor.metrics"
PREFLIGHT_TIMEOUT = 30.0


def compile_errors(root: Path = PACKAGE) -> list[str]:
    """Every .py under `root` compiled in memory: "file:line: message" for each failure."""
    errors = []
    for path in sorted(root.rglob("*.py")):
        try:
            compile(path.read_bytes(), str(path), "exec", dont_inherit=True)
        except SyntaxError as e:
            errors.append(f"{e.filename}:{e.lineno}: {e.msg}")
        except (OSError, ValueError) as e:
            errors.append(f"{path}: {e}")
    return errors


async def preflight() -> str | None:
    """None if the code on disk compiles and imports in a fresh interpreter; else why not
    (the last lines of its stderr)."""
    errors = await asyncio.get_running_loop().run_in_executor(None, compile_errors)
    if errors:
        return "; ".join(errors[:5])
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", PREFLIGHT_IMPORT, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, cwd=START_CWD)
    try:
        _, err = await asyncio.wait_for(proc.communicate(), PREFLIGHT_TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return f"importing the new code took over {PREFLIGHT_TIMEOUT:g}s"
    if proc.returncode:
        lines = err.decode(errors="replace").strip().splitlines()
        return " | ".join(lines[-3:]) or f"import failed (exit {proc.returncode})"
    return None


def record_fds(record: dict[str, Any]) -> list[int]:
    """The fds a detach record refers to (service pipes, the lock)."""
    fds = [p["fd"] for s in record.get("services", []) for p in s.get("pipes", [])]
    if record.get("lock_fd") is not None:
        fds.append(record["lock_fd"])
    parent = (record.get("host") or {}).get("parent_fd")
    if parent is not None:
        fds.append(parent)
    return fds


def handoff_mode() -> str | None:
    """"hosted" if this process is the new image of a dashboard's engine, "headless" for
    a headless one, None if it is no code reload (the record stays for `take_handoff`)."""
    path = os.environ.get(HANDOFF_VAR)
    if not path:
        return None
    try:
        with open(path) as f:
            return str((json.load(f).get("host") or {}).get("mode") or "headless")
    except (OSError, ValueError):
        return "headless"


def exec_self(record: dict[str, Any], runtime_dir: Path) -> OSError:
    """Write the record, exec this program again; returns only if the exec failed (the
    caller then adopts the record in-process: services are never dropped)."""
    path = runtime_dir / "handoff.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(record, f)
    fds = record_fds(record)
    for x in fds:
        os.set_inheritable(x, True)
    os.environ[HANDOFF_VAR] = str(path)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.chdir(START_CWD)
        os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])
    except OSError as e:
        os.environ.pop(HANDOFF_VAR, None)
        for x in fds:
            with contextlib.suppress(OSError):
                os.set_inheritable(x, False)
        return e
    raise AssertionError("unreachable")  # pragma: no cover


def take_handoff() -> dict[str, Any] | None:
    """The predecessor's record, if this process is a new image of a code reload."""
    path = os.environ.pop(HANDOFF_VAR, None)
    if not path:
        return None
    try:
        with open(path) as f:
            record: dict[str, Any] = json.load(f)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
    return record
