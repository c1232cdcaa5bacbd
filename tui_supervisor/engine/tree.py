"""The processes of a service besides its main one: finding them (process group,
descendants, the marker in their environment, ancestry, and memory of what was seen),
signalling them, and waiting for them to be gone. Mixed into `Service`.

The marker alone is not enough: redis, nginx, postgres and php-fpm write their process
title over the environment block, so /proc/PID/environ no longer holds it. Ancestry
covers them: a process re-parented to the engine (it is the subreaper) left the tree of
a service whose process died. It belongs to the service whose process started before it
when it is outside the engine's own session (the engine's helpers are inside it; every
service runs in a session of its own) and no other service has claimed it. Descendants
are also remembered (`remember`) while their parent lives, so they stay known after it
dies."""

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
    name: str
    marker: str
    pid: int | None
    pgid: int | None
    daemon_pids: frozenset[int]
    _known: dict[int, int]
    """pid -> start time of processes seen to belong to the service."""
    killed_at: float | None
    """Monotonic time the main process was sent SIGKILL (for detection latency)."""
    spawn_start: int | None
    """Kernel start time of the process last spawned: an orphan started before it is not
    of this spawn."""

    def _leftovers(self) -> set[int]:
        """Live processes of this service other than the main one."""
        self.ctx.watcher.reap_orphans()
        found = self._tree()
        if self.pid is None and self.pgid is not None and proc.group_alive(self.pgid):
            found |= proc.group_members(self.pgid)
        return found

    def _tree(self) -> set[int]:
        """Known live pids of the service, besides the main process."""
        cg = self.ctx.cgroups
        if cg is not None:  # the kernel knows exactly
            return cg.procs(self.name) - {self.pid}
        out: set[int] = set()
        if self.pid is not None:
            out |= proc.descendants(self.pid)
        watcher = self.ctx.watcher
        for c in watcher.children():
            if c not in self.daemon_pids and watcher.watching(c):
                continue
            if c in self.daemon_pids or self._orphan_of_ours(c):
                out.add(c)
                out |= proc.descendants(c)
        out |= {p for p in self.daemon_pids if os.path.exists(f"/proc/{p}")}
        # Once seen, a process stays ours until it is gone: while it exits its environ
        # (our marker) is no longer readable, and its parent may already be dead.
        self._note(out)
        for p, start in tuple(self._known.items()):
            st = proc.stat(p)
            if st is None or st.state == "Z" or st.starttime != start:
                self._forget(p)
            else:
                out.add(p)
        return out

    def _orphan_of_ours(self, pid: int) -> bool:
        """An engine child nobody watches: ours by its marker, or by ancestry when its
        environment no longer says (see the module's docstring)."""
        marker = proc.read_marker(pid)
        if marker is not None:
            return marker == self.marker
        owner = self.ctx.claims.get(pid)
        if owner is not None:
            return owner == self.name
        st = proc.stat(pid)
        if st is None or st.state == "Z" or st.session == self.ctx.session:
            return False
        return self.spawn_start is not None and st.starttime >= self.spawn_start

    def _note(self, pids: set[int]) -> None:
        """Remember `pids` (pid + start time) as this service's, and claim them."""
        known, claims = self._known, self.ctx.claims
        for p in pids:
            if p not in known:
                st = proc.stat(p)
                if st is not None:
                    known[p] = st.starttime
                    claims[p] = self.name

    def _forget(self, pid: int) -> None:
        del self._known[pid]
        if self.ctx.claims.get(pid) == self.name:
            del self.ctx.claims[pid]

    def remember(self) -> None:
        """Note the live descendants of the main and daemon processes (cheap: their
        /proc children files only), so they stay known once their parent is gone."""
        roots = {p for p in (self.pid, *self.daemon_pids) if p is not None}
        if roots and self.ctx.cgroups is None:
            found: set[int] = set()
            for r in roots:
                found |= proc.descendants(r)
            self._note(found | (roots - {self.pid}))

    @staticmethod
    def _roots(pids: set[int]) -> frozenset[int]:
        """The processes of `pids` whose parent is not among them: nginx's master, not
        its workers (the daemon to watch and to signal)."""
        parents = {p: st.ppid for p in pids if (st := proc.stat(p)) is not None}
        return frozenset(p for p, pp in parents.items() if pp not in parents)

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
        cg = self.ctx.cgroups
        if sig == _signal.SIGKILL and cg is not None and cg.kill(self.name):
            return
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
