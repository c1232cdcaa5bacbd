"""The engine's own process, forked off the shell's job: in the background (`run
--detach`), or under the dashboard (the shell's job then only waits), and how the engine
leaves its terminal once the dashboard has gone."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tui_supervisor.engine.runtime import make_dirs, stdio_to
from tui_supervisor.runner.engine import print_error

LEFT = b"left\n"
"""Engine → waiting parent: the UI is gone, the engine goes on headless."""
DETACH_TIMEOUT = 60.0


def detach(log: Path) -> tuple[int | None, int | None]:
    """Fork the engine into its own session, stdio to `log`. In the parent: (exit code,
    None) once the child listens on its socket (or failed); in the child: (None, fd) where
    the child reports "ok" or its error."""
    try:
        make_dirs(log.parent)  # the state dir: 0700 if we make it
        log_fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    except OSError as e:
        print_error(f"cannot start: {log}: {e.strerror}")
        return 1, None
    sys.stdout.flush()
    sys.stderr.flush()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.setsid()
        stdio_to(log_fd)
        os.close(log_fd)
        return None, w
    os.close(w)
    os.close(log_fd)
    got = b""
    deadline = time.monotonic() + DETACH_TIMEOUT
    while not got.endswith(b"\n") and time.monotonic() < deadline:
        if select.select([r], [], [], max(0.0, deadline - time.monotonic()))[0]:
            chunk = os.read(r, 4096)
            if not chunk:
                break
            got += chunk
    os.close(r)
    if got == b"ok\n":
        print(f"started (pid {pid}); output in {log}")
        return 0, None
    if got:
        print_error(got.decode(errors="replace").strip())
    else:
        print_error(f"the engine (pid {pid}) did not start; see {log}")
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    return 1, None


def fork_engine(engine: Callable[[int], int], cfg_path: Path, log: Path) -> int:
    """Run `engine(parent_fd)` in a child that owns the terminal (the dashboard), while
    this process waits in the shell's job; returns the exit code for the shell."""
    sys.stdout.flush()
    sys.stderr.flush()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the engine
        os.close(r)
        code = 1
        try:
            code = engine(w)
        except KeyboardInterrupt:
            code = 130
        finally:
            os._exit(code)
    os.close(w)
    return _wait_for_engine(pid, r, cfg_path, log)


def _wait_for_engine(pid: int, r: int, cfg_path: Path, log: Path) -> int:
    """The parent: forward SIGTERM and the terminal's hang-up (when this process leads
    the session, as under `ssh host tui-supervisor`, only it is told), ignore SIGINT
    (the engine's UI reads keys raw), exit when the engine exits or says the UI is gone."""
    hung_up = False

    def forward(sig: int, _frame: Any) -> None:
        nonlocal hung_up
        if sig == signal.SIGHUP:
            if hung_up:
                return
            hung_up = True
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, forward)
    signal.signal(signal.SIGTERM, forward)
    got = b""
    while True:
        try:
            ready = select.select([r], [], [], 1.0)[0]
        except InterruptedError:
            continue
        if ready:
            chunk = os.read(r, 4096)
            got += chunk
            if got.startswith(LEFT):
                with contextlib.suppress(OSError):  # the terminal may be gone
                    print(f"tui-supervisor: the engine goes on headless (pid {pid}); "
                          f"`tui-supervisor attach -c {cfg_path}` brings the dashboard "
                          f"back, its output is in {log}", flush=True)
                return 0
            if not chunk:
                break
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return _exit_code(status)
    _, status = os.waitpid(pid, 0)
    return _exit_code(status)


def _exit_code(status: int) -> int:
    """The engine's exit code, or 128 + the signal that killed it (as a shell says)."""
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code


def leave_terminal(log: Path) -> None:
    """Own session (the terminal's hang-up no longer reaches us), stdio to the log."""
    with contextlib.suppress(OSError):
        os.setsid()
    with contextlib.suppress(OSError):
        make_dirs(log.parent)  # the state dir: 0700 if we make it
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        stdio_to(fd)
        os.close(fd)


def tell_parent_left(parent_fd: int | None) -> None:
    """Let the waiting parent exit (the shell gets its prompt back)."""
    if parent_fd is not None:
        with contextlib.suppress(OSError):
            os.write(parent_fd, LEFT)
            os.close(parent_fd)
