"""Per-config runtime files: the one-engine lock (runtime dir) and the state file (state
dir) that lets the next start find a hard-killed engine's leftovers."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import stat
from pathlib import Path
from typing import Any


class AlreadyRunning(Exception):
    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        who = f"pid {pid}" if pid else "pid unknown"
        super().__init__(f"already running ({who}) — use attach")


class RuntimeDirError(Exception):
    pass


def ensure_private_dir(path: Path) -> None:
    """Create `path` and its parent (0700) or check existing ones are ours and closed to
    others (the fallback parent lives in /tmp, where anybody could have made it first)."""
    for i, p in enumerate((path.parent, path)):
        p.mkdir(exist_ok=True, mode=0o700, parents=i == 0)
        st = os.lstat(p)
        if not stat.S_ISDIR(st.st_mode):
            raise RuntimeDirError(f"{p}: not a directory (a symlink?)")
        if st.st_uid != os.getuid():
            raise RuntimeDirError(f"{p}: owned by uid {st.st_uid}, not by us")
        if stat.S_IMODE(st.st_mode) & 0o077:
            os.chmod(p, 0o700)


class EngineLock:
    """An flock on `<runtime_dir>/engine.lock`, held for the engine's life (and kept across
    an exec: the fd can be made inheritable and re-adopted)."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self.fd = fd

    @classmethod
    def acquire(cls, runtime_dir: Path) -> EngineLock:
        ensure_private_dir(runtime_dir)
        path = runtime_dir / "engine.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = read_lock_pid(path)
            os.close(fd)
            raise AlreadyRunning(pid) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        return cls(path, fd)

    @classmethod
    def adopt(cls, path: Path, fd: int) -> EngineLock:
        os.set_inheritable(fd, False)
        return cls(path, fd)

    def release(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.ftruncate(self.fd, 0)
            os.close(self.fd)
            self.fd = -1


def read_lock_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip() or 0) or None
    except (OSError, ValueError):
        return None


def engine_running(runtime_dir: Path) -> int | None:
    """The pid of the engine holding this config's lock, or None."""
    path = runtime_dir / "engine.lock"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return read_lock_pid(path) or -1
    finally:
        os.close(fd)
    return None


def write_state(path: Path, data: dict[str, Any]) -> None:
    """Atomic write (tmp + rename), 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, json.dumps(data).encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)


def read_state(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def stdio_to(fd: int) -> None:
    """stdin from /dev/null, stdout and stderr to `fd` (an engine leaving its terminal)."""
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(null)


def _is_that_file(fd: int, path: Path) -> bool:
    """Is `fd` the file at `path`, or that file renamed in its directory (`engine.log.1`,
    `engine.log-20250101`) or removed since? Its /proc link still says which it was."""
    try:
        link = os.readlink(f"/proc/self/fd/{fd}").removesuffix(" (deleted)")
    except OSError:
        return False
    where, name = os.path.split(link)
    return where == os.path.realpath(path.parent) and name.startswith(path.name)


def reopen_stdio(path: Path, *, if_moved: bool = False) -> bool:
    """Point stdout and stderr, those that write to the log file at `path` (the engine's
    own log, which it opened when it left its terminal) or to it renamed or removed since,
    at `path` again (created 0600 if missing). `if_moved`: only if it was renamed or
    removed. True if one was; False if they write elsewhere (a terminal, a pipe, the
    operator's own file: not ours to touch). OSError if `path` cannot be opened."""
    try:
        st = os.stat(path)
        at_path: tuple[int, int] | None = (st.st_dev, st.st_ino)
    except OSError:
        at_path = None
    fds = []
    for fd in (1, 2):
        try:
            fst = os.fstat(fd)
        except OSError:
            continue
        if not stat.S_ISREG(fst.st_mode):
            continue
        if (fst.st_dev, fst.st_ino) == at_path:
            if not if_moved:
                fds.append(fd)
        elif _is_that_file(fd, path):
            fds.append(fd)
    if not fds:
        return False
    new = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    try:
        for fd in fds:
            os.dup2(new, fd)
    finally:
        os.close(new)
    return True
