"""Each service in a cgroup of its own (cgroup v2), where the engine may create them.

The kernel then says exactly which processes are a service's (`cgroup.procs`, whatever
they did: double fork, setsid, a process title written over the environment), stops
them all at once (`cgroup.kill`) and counts their CPU (`cpu.stat`), without any /proc
scan. The tree is `<the engine's cgroup>/tuisup-<config_id>/<service>`: made by the
engine, removed by it when empty; nothing else in the hierarchy is touched.

When the engine may: `cgroups: on` in the settings, or `auto` (the default) when its own
cgroup is the root of a cgroup namespace (a container's) or was delegated to it (systemd
`Delegate=yes` marks the directory with a `trusted.delegate` or `user.delegate`
attribute) and it can write there. Elsewhere the engine attributes processes by their
marker and by ancestry (engine/tree.py) and says so (`status`, the engine view).

A child is put in its cgroup race-free: the engine moves itself into the service's
cgroup, forks (the child is born inside: it cannot fork before being moved), and moves
back. Both moves are single writes of our own pid.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PREFIX = "tuisup-"


def _own_cgroup() -> str | None:
    """The engine's cgroup v2 path (`0::/path` in /proc/self/cgroup)."""
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            if line.startswith("0::"):
                return line[3:] or "/"
    except OSError:
        pass
    return None


def _v2_mount() -> Path | None:
    """Where the cgroup v2 hierarchy is mounted (unified, or hybrid's `unified`)."""
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        left, _, right = line.partition(" - ")
        if right.split(" ", 1)[0] == "cgroup2":
            return Path(left.split()[4])
    return None


def _delegated(path: Path) -> bool:
    for attr in ("trusted.delegate", "user.delegate"):
        with contextlib.suppress(OSError, AttributeError):
            if os.getxattr(path, attr) == b"1":
                return True
    return False


@dataclass
class Cgroups:
    """The engine's cgroup subtree: one directory per service."""

    base: Path
    """The engine's own cgroup (where it returns after each spawn)."""
    group: Path
    """`base/tuisup-<config_id>`: ours."""
    _memory: bool | None = None

    @classmethod
    def detect(cls, mode: str, config_id: str, instance: str = "",
               keep: str | None = None) -> tuple[Cgroups | None, str]:
        """The subtree to use, or None and why not (for `status` and README).

        `instance` tells apart engines of one config file with other runtime dirs (two
        demos in two terminals): one subtree each, so one never signals or counts the
        other's processes. `keep`: the subtree a detach record names (a code reload
        keeps the one its services are in, whatever this code would call it)."""
        if mode == "off":
            return None, "off in the settings"
        mount, own = _v2_mount(), _own_cgroup()
        if mount is None or own is None:
            return None, "no cgroup v2 hierarchy"
        base = mount / own.lstrip("/")
        if mode == "auto" and own != "/" and not _delegated(base):
            return None, f"cgroup {own} is not delegated to the supervisor (Delegate=yes)"
        group = base / f"{PREFIX}{config_id}{'-' + instance if instance else ''}"
        if keep and Path(keep).parent == base and Path(keep).is_dir():
            group = Path(keep)
        try:
            group.mkdir(mode=0o755, exist_ok=True)
        except OSError as e:
            return None, f"cannot create {group}: {e.strerror}"
        if not os.access(group / "cgroup.procs", os.W_OK):
            return None, f"cannot write {group}/cgroup.procs"
        return cls(base, group), f"cgroup v2 at {group}"

    def path(self, service: str) -> Path:
        return self.group / f"svc-{service}"  # never a control file's name

    def make(self, service: str) -> Path:
        p = self.path(service)
        p.mkdir(mode=0o755, exist_ok=True)
        return p

    @contextlib.contextmanager
    def inside(self, service: str) -> Iterator[None]:
        """Run the block (a fork) with the engine in `service`'s cgroup."""
        target = self.make(service)
        _write(target / "cgroup.procs", "0")
        try:
            yield
        finally:
            _write(self.base / "cgroup.procs", "0")

    def procs(self, service: str) -> set[int]:
        """Live processes of the service (the kernel drops exited ones at their exit)."""
        try:
            data = (self.path(service) / "cgroup.procs").read_bytes()
        except OSError:
            return set()
        return {int(x) for x in data.split()}

    def kill(self, service: str) -> bool:
        """SIGKILL every process of the service at once (`cgroup.kill`, Linux ≥ 5.14);
        False where that file is missing (the caller signals each pid)."""
        try:
            _write(self.path(service) / "cgroup.kill", "1")
            return True
        except OSError:
            return False

    def memory_controller(self) -> bool:
        """Whether services' cgroups can have `memory.max` (the memory controller is
        given to our group and enabled for its children; tried once)."""
        if self._memory is None:
            self._memory = False
            try:
                if "memory" in (self.group / "cgroup.controllers").read_text().split():
                    _write(self.group / "cgroup.subtree_control", "+memory")
                    self._memory = True
            except OSError:
                pass
        return self._memory

    def set_memory_max(self, service: str, limit: int | None) -> bool:
        """The kernel's own guard under `limits.memory` (the sampler's check stays:
        it words the incident); False where the controller is not ours."""
        if not self.memory_controller():
            return False
        try:
            _write(self.make(service) / "memory.max", "max" if limit is None else str(limit))
            return True
        except OSError:
            return False

    def oom_kills(self, service: str) -> int:
        """Processes of the service the kernel killed at its memory.max so far."""
        try:
            for line in (self.path(service) / "memory.events").read_text().splitlines():
                if line.startswith("oom_kill "):
                    return int(line.split()[1])
        except (OSError, ValueError):
            pass
        return 0

    def cpu_usec(self, service: str) -> int | None:
        try:
            for line in (self.path(service) / "cpu.stat").read_text().splitlines():
                if line.startswith("usage_usec "):
                    return int(line.split()[1])
        except (OSError, ValueError):
            pass
        return None

    def remove(self, service: str) -> None:
        """Remove the service's cgroup if it is empty (it stays while processes live)."""
        with contextlib.suppress(OSError):
            self.path(service).rmdir()

    def close(self) -> None:
        """Remove the subtree: the services' (empty) cgroups, then the group."""
        with contextlib.suppress(OSError):
            for child in self.group.iterdir():
                if child.is_dir():
                    with contextlib.suppress(OSError):
                        child.rmdir()
            self.group.rmdir()


def _write(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, text.encode())
    except OSError as e:
        if e.errno != errno.EINTR:
            raise
        os.write(fd, text.encode())
    finally:
        os.close(fd)
