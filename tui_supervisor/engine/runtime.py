"""Per-config runtime files: the one-engine lock (runtime dir) and the state file (state
dir) that lets the next start find a hard-killed engine's leftovers."""

from __future__ import annotations

import contextlib
import fcntl
import grp
import json
import os
import pwd
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


def make_dirs(path: Path) -> bool:
    """Create `path` and whatever is missing above it, each 0700 (they are ours: nobody
    else needs them); never change a directory that exists. True if `path` was made."""
    missing = []
    p = path
    while not os.path.lexists(p) and p != p.parent:
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        with contextlib.suppress(FileExistsError):  # (made meanwhile: checked by the caller)
            os.mkdir(d, 0o700)
    return bool(missing)


def ensure_private_dir(path: Path) -> None:
    """Make the runtime dir (and what is missing above it) 0700, or check existing ones:
    the dir itself must be ours and closed to others (it holds the control socket, the
    lock and the code-reload files); its parent must be ours or root's, and others must
    not be able to rename the dir away (the fallback parent lives in /tmp, where anybody
    could have made it first). Changes the mode of nothing: RuntimeDirError says why and
    how to fix it."""
    make_dirs(path)
    parent = path.parent
    for st in (os.lstat(parent), os.stat(parent)):  # a symlink, then what it leads to
        if st.st_uid not in (0, os.getuid()):
            raise RuntimeDirError(f"{parent}: owned by uid {st.st_uid}, not by us")
    why = others_can_write(os.stat(parent), True)
    if why:
        raise RuntimeDirError(f"{parent} {why}: they could replace the runtime dir "
                              f"{path.name}; choose another runtime_dir")
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise RuntimeDirError(f"{path}: not a directory (a symlink?)")
    if st.st_uid != os.getuid():
        raise RuntimeDirError(f"{path}: owned by uid {st.st_uid}, not by us")
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        what = "replace" if mode & 0o022 else "reach"
        raise RuntimeDirError(f"{path}: mode {mode:04o} lets other users {what} the control "
                              f"socket; chmod 700 {path} or choose another runtime_dir")


def others_can_write(st: os.stat_result, is_dir: bool) -> str | None:
    """Why users other than us (and root) can change this file or directory, or None."""
    if st.st_uid not in (0, os.getuid()):
        return f"is owned by uid {st.st_uid}"
    if is_dir and st.st_mode & 0o1000:  # sticky, like /tmp: others cannot replace ours
        return None
    if st.st_mode & 0o002:
        return "is writable by other users"
    if st.st_mode & 0o020 and not _private_group(st):
        try:
            name = grp.getgrgid(st.st_gid).gr_name
        except KeyError:
            name = str(st.st_gid)
        return f"is writable by group {name}"
    return None


def _private_group(st: os.stat_result) -> bool:
    """The owner's own group with nobody else in it (umask 002 with user private groups,
    as Debian and Ubuntu set it up): group-writable then means nothing more."""
    try:
        group, owner = grp.getgrgid(st.st_gid), pwd.getpwuid(st.st_uid)
    except KeyError:
        return False
    return (group.gr_name == owner.pw_name and owner.pw_gid == st.st_gid
            and not group.gr_mem)


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
    """Atomic write (tmp + rename), 0600; the state dir made 0700 if missing."""
    make_dirs(path.parent)
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
