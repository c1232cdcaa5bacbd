"""Exit detection and reaping for every child of the engine process.

One `ChildWatcher` per event loop (engines in one process share it). Each watched pid gets
a pidfd read by the loop (no polling, no thread); where pidfds are missing, SIGCHLD wakes
a sweep that calls waitpid(pid, WNOHANG) for each watched pid only. Never waitpid(-1): that
would steal statuses of children adopted across an exec, or of someone else's Popen.

As a child subreaper the engine also inherits orphaned descendants of its services. On
SIGCHLD, zombie children that nobody watches are reaped when they belong to a service
session (or lead a session/group of their own, as a daemon's intermediate fork does).
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import Callable

from tui_supervisor.engine import proc
from tui_supervisor.engine.policies import ExitInfo

ExitCallback = Callable[[int, ExitInfo], None]


class ChildWatcher:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._callbacks: dict[int, ExitCallback] = {}
        self._pidfds: dict[int, int] = {}
        self._polled: set[int] = set()
        self.sessions: set[int] = set()
        """Sessions/groups of services; zombies in them are ours to reap."""
        self.exempt: set[int] = set()
        """Children spawned for other purposes (not ours to reap)."""
        self.users = 0
        self._sigchld = False
        self._children: set[int] | None = None
        self.pidfd = proc.HAS_PIDFD

    # -- registry ---------------------------------------------------------------------
    def install(self) -> None:
        """Listen to SIGCHLD (for orphans, and for exits where pidfds are missing)."""
        self.users += 1
        if self._sigchld or threading.current_thread() is not threading.main_thread():
            return
        try:
            self.loop.add_signal_handler(signal.SIGCHLD, self._on_sigchld)
            self._sigchld = True
        except (RuntimeError, ValueError, NotImplementedError):
            pass

    def uninstall(self) -> None:
        self.users -= 1
        if self.users <= 0 and self._sigchld:
            self.loop.remove_signal_handler(signal.SIGCHLD)
            self._sigchld = False
            _WATCHERS.pop(self.loop, None)

    def watch(self, pid: int, cb: ExitCallback) -> None:
        """Call `cb(pid, exit)` once `pid` has exited (and was reaped if it is our child).
        Works the same for a child just spawned and one adopted after an exec."""
        self.unwatch(pid)
        self._callbacks[pid] = cb
        fd = proc.pidfd_open(pid) if self.pidfd else None
        if fd is not None:
            self._pidfds[pid] = fd
            self.loop.add_reader(fd, self._on_pidfd, pid)
            return
        self._polled.add(pid)
        # already gone (zombie or not our child): report on the next loop turn
        self.loop.call_soon(self._poll_one, pid)

    def unwatch(self, pid: int) -> None:
        self._callbacks.pop(pid, None)
        self._polled.discard(pid)
        fd = self._pidfds.pop(pid, None)
        if fd is not None:
            self.loop.remove_reader(fd)
            os.close(fd)

    def watching(self, pid: int) -> bool:
        return pid in self._callbacks

    def children(self) -> set[int]:
        """The engine's direct children, read from /proc at most once per event-loop
        iteration (stopping 200 services asks for them hundreds of times)."""
        if self._children is None:
            self._children = proc.children_of(os.getpid())
            self.loop.call_soon(self._forget_children)
        return self._children

    def _forget_children(self) -> None:
        self._children = None

    # -- events -----------------------------------------------------------------------
    def _on_pidfd(self, pid: int) -> None:
        fd = self._pidfds.pop(pid, None)
        if fd is not None:
            self.loop.remove_reader(fd)
            os.close(fd)
        status = proc.reap(pid)
        if status is None:  # cannot happen for a pidfd that fired; be safe: fall back
            self._polled.add(pid)
            return
        self._fire(pid, status)

    def _poll_one(self, pid: int) -> None:
        if pid not in self._polled:
            return
        status = proc.reap(pid)
        if status is None and not os.path.exists(f"/proc/{pid}"):
            status = ExitInfo(None, None)
        if status is not None:
            self._polled.discard(pid)
            self._fire(pid, status)

    def _fire(self, pid: int, status: ExitInfo) -> None:
        cb = self._callbacks.pop(pid, None)
        if cb is not None:
            cb(pid, status)

    def _on_sigchld(self) -> None:
        self._children = None
        for pid in tuple(self._polled):
            self._poll_one(pid)
        self.reap_orphans()

    def reap_orphans(self) -> int:
        """Reap zombie children that belong to services but are not watched."""
        n = 0
        for pid in self.children():
            if pid in self._callbacks or pid in self.exempt:
                continue
            st = proc.stat(pid)
            if st is None or st.state != "Z":
                continue
            if (st.session in self.sessions or st.pgrp in self.sessions
                    or st.session == pid or st.pgrp == pid):
                try:
                    os.waitpid(pid, os.WNOHANG)
                    n += 1
                except ChildProcessError:
                    pass
        return n


_WATCHERS: dict[asyncio.AbstractEventLoop, ChildWatcher] = {}


def get_watcher(loop: asyncio.AbstractEventLoop | None = None) -> ChildWatcher:
    loop = loop or asyncio.get_running_loop()
    w = _WATCHERS.get(loop)
    if w is None:
        w = _WATCHERS[loop] = ChildWatcher(loop)
    return w
