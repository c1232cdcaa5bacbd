"""The processes of a service besides its main one: finding them (process group,
descendants, the marker in their environment, and memory of what was seen), signalling
them, and waiting for them to be gone. Mixed into `Service`."""

from __future__ import annotations

import asyncio
import os
import signal as _signal
import time
from typing import TYPE_CHECKING

from tui_supervisor.engine import proc

if TYPE_CHECKING:
    from tui_supervisor.engine.service import EngineContext

KILL_WAIT = 5.0
"""Seconds to wait for the tree to vanish after SIGKILL before reporting it."""


class ProcessTree:
    ctx: EngineContext
    marker: str
    pid: int | None
    pgid: int | None
    daemon_pids: frozenset[int]
    _known: dict[int, int]
    """pid -> start time of processes seen to belong to the service."""
    killed_at: float | None
    """Monotonic time the main process was sent SIGKILL (for detection latency)."""

    def _leftovers(self) -> set[int]:
        """Live processes of this service other than the main one."""
        self.ctx.watcher.reap_orphans()
        found = self._tree()
        if self.pid is None and self.pgid is not None and proc.group_alive(self.pgid):
            found |= proc.group_members(self.pgid)
        return found

    def _tree(self) -> set[int]:
        """Known live pids of the service, besides the main process."""
        out: set[int] = set()
        if self.pid is not None:
            out |= proc.descendants(self.pid)
        watcher = self.ctx.watcher
        for c in watcher.children():
            if c not in self.daemon_pids and watcher.watching(c):
                continue
            if c in self.daemon_pids or proc.read_marker(c) == self.marker:
                out.add(c)
                out |= proc.descendants(c)
        out |= {p for p in self.daemon_pids if os.path.exists(f"/proc/{p}")}
        # Once seen, a process stays ours until it is gone: while it exits its environ
        # (our marker) is no longer readable, and its parent may already be dead.
        known = self._known
        for p in out:
            if p not in known:
                st = proc.stat(p)
                if st is not None:
                    known[p] = st.starttime
        for p, start in tuple(known.items()):
            st = proc.stat(p)
            if st is None or st.state == "Z" or st.starttime != start:
                del known[p]
            else:
                out.add(p)
        return out

    def _alive(self) -> bool:
        """Cheap while the main process lives; scans for leftovers after it exited."""
        return self.pid is not None or bool(self._leftovers())

    def _signal_tree(self, sig: int) -> None:
        if sig == _signal.SIGKILL and self.pid is not None and self.killed_at is None:
            self.killed_at = time.monotonic()
        if self.pgid is not None:
            proc.signal_group(self.pgid, sig)
        if self.pid is not None:
            proc.signal_pid(self.pid, sig)
        for p in self._tree():
            proc.signal_pid(p, sig)

    def kill_now(self) -> None:
        """SIGKILL the whole tree at once (the stop in progress then completes)."""
        if self.pid is not None or self.pgid is not None:
            self._signal_tree(_signal.SIGKILL)

    def _describe_tree(self) -> str:
        pids = sorted(self._tree() | ({self.pid} if self.pid else set()))
        return ", ".join(map(str, pids)) or f"process group {self.pgid}"

    async def _kill_tree(self, sig: int, timeout: float) -> bool:
        """Signal the tree, wait up to `timeout`, SIGKILL it, wait for it to vanish."""
        if not self._alive():
            return True
        self._signal_tree(sig)
        if sig != _signal.SIGCONT:
            self._signal_tree(_signal.SIGCONT)  # a stopped process must see the signal
        for phase_timeout, last in ((timeout, False), (KILL_WAIT, True)):
            deadline = time.monotonic() + phase_timeout
            pause = 0.001
            while time.monotonic() < deadline:
                await asyncio.sleep(pause)
                pause = min(pause * 2, 0.05)
                if not self._alive():
                    return True
            if last:
                break
            self._signal_tree(_signal.SIGKILL)
        return not self._alive()
