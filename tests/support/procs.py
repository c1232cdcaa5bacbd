"""Processes of this test run: found by the marker the engine gives its services, or by
PID; alive or not; ended by PID.

Every process the run spawns inherits RUN_VAR, so concurrent runs (two worktrees) leave
each other's processes alone."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import uuid
from pathlib import Path
from typing import Any

from tui_supervisor.engine import proc

TEST_PREFIX = "tst-"
"""Config ids (and so service markers) of test configs start with it."""
RUN_VAR = "TUISUP_TEST_RUN"
RUN_ID = os.environ.setdefault(RUN_VAR, uuid.uuid4().hex)


def _other_run(pid: int) -> bool:
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False
    key = f"{RUN_VAR}=".encode()
    for item in env.split(b"\0"):
        if item.startswith(key):
            return item[len(key):].decode() != RUN_ID
    return False  # no run id at all: assume it is ours


def marked_pids(prefix: str = TEST_PREFIX) -> dict[int, str]:
    """Marked processes of this test run (not those of a concurrent run)."""
    return {p: m for p, m in proc.pids_with_marker(prefix).items() if not _other_run(p)}


def kill_marked(prefix: str = TEST_PREFIX) -> list[int]:
    pids = marked_pids(prefix)
    for pid in pids:
        proc.signal_pid(pid, signal.SIGKILL)
    reap_zombie_children()
    return sorted(pids)


def reap_zombie_children() -> None:
    for pid in proc.children_of(os.getpid()):
        st = proc.stat(pid)
        if st is not None and st.state == "Z":
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)


def alive(pid: int) -> bool:
    """Running (a zombie is not)."""
    st = proc.stat(pid)
    return st is not None and st.state != "Z"


def terminate(p: subprocess.Popen[Any], timeout: float = 30) -> int | None:
    """SIGTERM a process a test started, SIGKILL if it is not gone within `timeout`;
    its exit code, None if it had to be killed."""
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
    try:
        return p.wait(timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        return None


def runs_config(pid: int, cfg: Path) -> bool:
    """`pid` is alive and has `cfg` on its command line (an engine of that config: a
    recorded PID that was reused since is not)."""
    import psutil

    try:
        return alive(pid) and str(cfg) in psutil.Process(pid).cmdline()
    except psutil.Error:
        return False


def kill_engines(cfg: Path) -> None:
    """Whatever still runs this config (an engine that did not answer): SIGKILL."""
    import psutil

    for p in psutil.process_iter(["cmdline"]):
        if str(cfg) in (p.info["cmdline"] or []) and p.pid != os.getpid():
            with contextlib.suppress(psutil.Error):
                p.kill()
