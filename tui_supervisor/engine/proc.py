"""The OS seam: spawning, signalling, exit status and process-tree facts (Linux /proc).

Everything here is synchronous and cheap; the engine calls it from the event loop.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import hashlib
import os
import pwd
import signal
import subprocess
import sys
from dataclasses import dataclass

from tui_supervisor.engine.policies import ExitInfo

MARKER_VAR = "TUISUP_OWNER"
INSTANCE_VAR = "TUISUP_INSTANCE"
"""The runtime dir of the engine that started a process. Two engines of one config file
with other runtime (and state) dirs share the marker; the lock makes an engine the only
one of its runtime dir, so only a process with its own (or none: older versions) can be
its dead predecessor's."""
"""Environment variable set in every service: `<config_id>/<service>`. Descendants inherit
it, so a process stays attributable to its service after it leaves the process group."""

PIPE_SIZE = 1 << 20
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
F_GETPIPE_SZ = getattr(fcntl, "F_GETPIPE_SZ", 1032)
PR_SET_CHILD_SUBREAPER = 36
HAS_PIDFD = hasattr(os, "pidfd_open") and sys.platform.startswith("linux")


class SpawnError(Exception):
    """The process could not be started. `permanent` when retrying cannot help (missing
    binary, bad cwd, permission denied)."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True, slots=True)
class Spawned:
    pid: int
    stdout_fd: int
    stderr_fd: int
    started_wall: float


def instance_key(runtime_dir: os.PathLike[str] | str) -> str:
    """A short name for an engine instance (its runtime dir): INSTANCE_VAR's hash."""
    return hashlib.sha1(str(runtime_dir).encode()).hexdigest()[:8]


def marker(config_id: str, service: str) -> str:
    return f"{config_id}/{service}"


def spawn(argv: tuple[str, ...], *, cwd: str, env: dict[str, str], user: str | None,
          rlimits: tuple[tuple[str, int, int], ...] = ()) -> Spawned:
    """Start `argv` in a new session (own process group), stdin /dev/null, stdout and stderr
    on non-blocking pipes whose raw fds are returned. The engine owns reaping: no Popen
    object survives this call with a chance to wait() behind the engine's back.

    `rlimits` are set in the child before it runs the program (a program reads them at
    its start: redis sizes maxclients from nofile). That takes a `preexec_fn`, so such a
    spawn forks instead of vfork (a few ms more for a large engine); the function only
    calls setrlimit."""
    import time

    kwargs: dict[str, object] = {}
    if rlimits:
        import resource

        limits = [(getattr(resource, f"RLIMIT_{n.upper()}"),
                   (resource.RLIM_INFINITY if s < 0 else s,
                    resource.RLIM_INFINITY if h < 0 else h)) for n, s, h in rlimits]

        def set_limits() -> None:
            for res, pair in limits:
                resource.setrlimit(res, pair)

        kwargs["preexec_fn"] = set_limits
    if user is not None:
        try:
            pw = pwd.getpwnam(user)
        except KeyError:
            raise SpawnError(f"unknown user {user!r}", permanent=True) from None
        if os.geteuid() == 0:
            kwargs.update(user=pw.pw_uid, group=pw.pw_gid,
                          extra_groups=os.getgrouplist(pw.pw_name, pw.pw_gid))
        elif pw.pw_uid != os.geteuid():
            raise SpawnError(f"needs root to run as user {user!r}", permanent=True)
    try:
        p = subprocess.Popen(  # type: ignore[call-overload]
            argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, start_new_session=True, bufsize=0, close_fds=True,
            **kwargs,
        )
    except FileNotFoundError as e:
        what = "working directory" if e.filename == cwd and not os.path.isdir(cwd) else "command"
        raise SpawnError(f"{what} not found: {e.filename or argv[0]}", permanent=True) from None
    except PermissionError as e:
        raise SpawnError(f"permission denied: {e.filename or argv[0]}", permanent=True) from None
    except OSError as e:
        perm = e.errno in (errno.ENOEXEC, errno.ENOTDIR, errno.EISDIR, errno.ELOOP)
        raise SpawnError(f"cannot start {argv[0]}: {e.strerror}", permanent=perm) from None
    except subprocess.SubprocessError:  # setrlimit refused in the child
        names = ", ".join(f"{n}={s if s >= 0 else 'unlimited'}" for n, s, _ in rlimits)
        raise SpawnError(f"cannot set rlimits ({names}): not permitted", permanent=True) \
            from None
    started = time.time()
    assert p.stdout is not None and p.stderr is not None
    out, err = os.dup(p.stdout.fileno()), os.dup(p.stderr.fileno())
    p.stdout.close()
    p.stderr.close()
    p.returncode = 0  # the engine reaps this pid; keep Popen.__del__ / _cleanup off it
    for fd in (out, err):
        os.set_inheritable(fd, False)
        os.set_blocking(fd, False)
        with contextlib.suppress(OSError):  # over pipe-max-size for non-root: keep default
            fcntl.fcntl(fd, F_SETPIPE_SZ, PIPE_SIZE)
    return Spawned(p.pid, out, err, started)


def pipe_size(fd: int) -> int:
    """Capacity of a pipe in bytes (0 if unknown)."""
    try:
        return fcntl.fcntl(fd, F_GETPIPE_SZ)
    except OSError:
        return 0


def reap(pid: int) -> ExitInfo | None:
    """waitpid(pid, WNOHANG) for this pid only. None while it runs; a synthetic exit if it
    is not (or no longer) our child."""
    try:
        wpid, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return ExitInfo(None, None)
    if wpid == 0:
        return None
    return ExitInfo.from_wait_status(status)


def pidfd_open(pid: int) -> int | None:
    """A pidfd for `pid`, or None if pidfds are unavailable or the pid is gone."""
    if not HAS_PIDFD:
        return None
    try:
        return os.pidfd_open(pid)
    except ProcessLookupError:
        return None
    except OSError as e:
        if e.errno in (errno.ENOSYS, errno.EINVAL, errno.EPERM):
            return None
        raise


def signal_group(pgid: int, sig: int) -> bool:
    """Send `sig` to a process group. False if the group no longer exists."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def signal_pid(pid: int, sig: int) -> bool:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def set_subreaper() -> bool:
    """Become a child subreaper: orphaned descendants are reparented to us, not init."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def children_of(pid: int) -> set[int]:
    """Direct children of `pid` (all its threads), from /proc/PID/task/*/children."""
    out: set[int] = set()
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        data = _read(f"/proc/{pid}/task/{tid}/children")
        if data:
            out.update(int(x) for x in data.split())
    return out


def descendants(pid: int) -> set[int]:
    """All descendants of `pid` (not including it)."""
    out: set[int] = set()
    todo = [pid]
    while todo:
        for c in children_of(todo.pop()):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


@dataclass(frozen=True, slots=True)
class Stat:
    pid: int
    state: str
    ppid: int
    pgrp: int
    session: int
    starttime: int


def stat(pid: int) -> Stat | None:
    """Fields of /proc/PID/stat, or None if the process is gone."""
    data = _read(f"/proc/{pid}/stat")
    if not data:
        return None
    rparen = data.rfind(b")")
    f = data[rparen + 2:].split()
    return Stat(pid, f[0].decode(), int(f[1]), int(f[2]), int(f[3]), int(f[19]))


def read_marker(pid: int) -> str | None:
    """The service marker in a process's environment, if any."""
    return read_env(pid, MARKER_VAR)


def read_env(pid: int, name: str) -> str | None:
    """One variable of a process's environment (as it started), if readable and set."""
    data = _read(f"/proc/{pid}/environ")
    if not data:
        return None
    key = name.encode() + b"="
    for item in data.split(b"\0"):
        if item.startswith(key):
            return item[len(key):].decode(errors="replace")
    return None


def read_envs(pid: int, *names: str) -> dict[str, str]:
    """Those of `names` set in a process's environment (as it started): one read."""
    data = _read(f"/proc/{pid}/environ")
    if not data:
        return {}
    keys = {n.encode() + b"=": n for n in names}
    out: dict[str, str] = {}
    for item in data.split(b"\0"):
        key, eq, value = item.partition(b"=")
        name = keys.get(key + eq)
        if name is not None:
            out[name] = value.decode(errors="replace")
    return out


def all_pids() -> list[int]:
    try:
        return [int(n) for n in os.listdir("/proc") if n.isdigit()]
    except OSError:
        return []


def pids_with_marker(prefix: str, instance: str | None = None) -> dict[int, str]:
    """Every live process whose marker starts with `prefix` (a full /proc scan); with
    `instance`, not those another engine instance started (INSTANCE_VAR)."""
    found: dict[int, str] = {}
    me = os.getpid()
    for pid in all_pids():
        if pid == me:
            continue
        env = read_envs(pid, MARKER_VAR, INSTANCE_VAR)
        m = env.get(MARKER_VAR)
        if m is not None and m.startswith(prefix) and not (
                instance is not None and env.get(INSTANCE_VAR) not in (None, instance)):
            st = stat(pid)
            if st is not None and st.state != "Z":
                found[pid] = m
    return found


def group_members(pgid: int) -> set[int]:
    """Live (non-zombie) processes of a process group (a full /proc scan)."""
    out = set()
    for pid in all_pids():
        st = stat(pid)
        if st is not None and st.pgrp == pgid and st.state != "Z":
            out.add(pid)
    return out


def create_time(pid: int) -> int | None:
    """Kernel start time of `pid` (clock ticks since boot): with the pid, it names one
    process for ever."""
    st = stat(pid)
    return st.starttime if st else None


def group_alive(pgid: int) -> bool:
    """True while any process (a zombie included) is in the group."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return str(sig)

