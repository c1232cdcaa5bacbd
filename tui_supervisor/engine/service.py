"""One supervised service: its state machine and restart logic. Its process tree is
handled by `tree.ProcessTree`, its output by `output.ServiceOutput` (mixed in).

Only `_set_state` changes `state`; it checks the transition table and emits the event.
Time-based moves (start rule, backoff, stop timeout) are timers/tasks tagged with an
epoch, so a timer armed for an earlier state can never act on a later one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tui_supervisor.config.schema import ServiceSpec
from tui_supervisor.engine import proc
from tui_supervisor.engine.bus import EventBus
from tui_supervisor.engine.events import Exited, Spawned, StateChanged
from tui_supervisor.engine.logs import LineSplitter, LogFile, LogRing
from tui_supervisor.engine.output import ServiceOutput
from tui_supervisor.engine.policies import (
    ExitInfo,
    backoff_delay,
    crash_loop,
    is_clean,
    is_failure,
    should_restart,
)
from tui_supervisor.engine.reaper import ChildWatcher
from tui_supervisor.engine.states import (
    SIGNALLABLE_STATES,
    STARTABLE_STATES,
    TRANSITIONS,
    InvalidTransition,
    State,
)
from tui_supervisor.engine.tree import ProcessTree


@dataclass
class EngineContext:
    """What a service needs from its engine."""

    loop: asyncio.AbstractEventLoop
    bus: EventBus
    watcher: ChildWatcher
    log_dir: Path
    config_id: str
    changed: Callable[[], None]
    """Called after anything worth persisting changed (pids, states)."""
    rand: Callable[[], float] = random.random


class Service(ProcessTree, ServiceOutput):
    def __init__(self, spec: ServiceSpec, ctx: EngineContext) -> None:
        self.spec = spec
        self.ctx = ctx
        self.name = spec.name
        self.marker = proc.marker(ctx.config_id, spec.name)
        self.state = State.STOPPED
        self.reason = ""
        self.pid: int | None = None
        self.pgid: int | None = None
        self.started_mono: float | None = None
        self.started_wall: float | None = None
        self.state_since = time.time()
        self.spawns = 0
        self.restarts = 0
        self.failures = 0
        self.consecutive = 0
        self.failure_times: deque[float] = deque(maxlen=1000)
        self.recent_failures: deque[dict[str, Any]] = deque(maxlen=20)
        self.last_exit: dict[str, Any] | None = None
        self.wanted = False
        self.backoff_until: float | None = None
        self.daemon_pids: set[int] = set()
        self._known: dict[int, int] = {}
        """pid -> start time of processes seen to belong to the service (see _tree)."""
        self.operator_signal = False
        self.killed_at: float | None = None
        self._exit_seen: float | None = None
        """Monotonic time the last exit nobody asked for was observed (respawn latency)."""
        self._respawn_delay = 0.0
        self.pipes: dict[int, tuple[str, LineSplitter]] = {}
        self._paused: dict[int, asyncio.TimerHandle] = {}
        self._pausable: set[int] = set()
        self.ring = LogRing(spec.log.ring_lines)
        self.log_file = LogFile(ctx.log_dir / f"{spec.name}.log", spec.log.max_bytes,
                                spec.log.backups)
        self._log_error_reported = False
        self._epoch = 0
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop_task: asyncio.Task[None] | None = None
        self._stopping = False

    # -- state ------------------------------------------------------------------------
    def _set_state(self, new: State, reason: str) -> None:
        old = self.state
        if new is not old and new not in TRANSITIONS[old]:
            raise InvalidTransition(f"{self.name}: {old.value} -> {new.value} ({reason})")
        self._epoch += 1
        self.state = new
        self.reason = reason
        self.state_since = time.time()
        if new is not State.BACKOFF:
            self.backoff_until = None
        self.ctx.bus.emit(StateChanged(self.state_since, self.name, old.value, new.value,
                                       self.pid, reason, self.wanted))
        self.ctx.changed()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _cancel_task(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._task = None

    # -- operator actions -------------------------------------------------------------
    def start(self, reason: str = "started by operator") -> bool:
        """Start if not running. A manual start clears backoff and crash-loop history.
        Leftovers of an earlier process are stopped first: never two copies."""
        if self.state is not State.BACKOFF and self.state not in STARTABLE_STATES:
            return False
        self.wanted = True
        busy = self._task is not None and not self._task.done()
        self._cancel_task()
        self._cancel_timer()
        self.consecutive = 0
        self.failure_times.clear()
        if busy and self._leftovers():
            self._task = asyncio.ensure_future(self._start_after_cleanup(reason))
        else:
            self._spawn(reason)
        return True

    async def _start_after_cleanup(self, reason: str) -> None:
        await self._kill_tree(self.spec.stop.signal, self.spec.stop.timeout)
        if self.state is State.BACKOFF or self.state in STARTABLE_STATES:
            self._task = None
            self._spawn(reason)

    async def stop(self, reason: str = "stopped by operator") -> None:
        """Stop the whole process tree: stop signal to the group, SIGKILL after the
        timeout, sweep what is left. Returns once nothing of the service is alive."""
        self.wanted = False
        if self._stop_task is not None and not self._stop_task.done():
            await asyncio.shield(self._stop_task)
            return
        if self.state in (State.EXITED, State.FATAL):
            if self._task is not None:  # leftovers of the exited process are being cleared
                await asyncio.shield(self._task)
            return
        if self.state is State.STOPPED:
            return
        self._stop_task = asyncio.ensure_future(self._do_stop(reason))
        await asyncio.shield(self._stop_task)

    async def restart(self) -> None:
        await self.stop("restarting by operator")
        self.start()

    def send_signal(self, sig: int) -> bool:
        """Deliver `sig` to the main process (or the daemonized processes)."""
        if self.state not in SIGNALLABLE_STATES:
            return False
        self.operator_signal = True
        targets = [self.pid] if self.pid is not None else sorted(self.daemon_pids)
        if sig == signal.SIGKILL and self.pid is not None and self.killed_at is None:
            self.killed_at = time.monotonic()
        return any(proc.signal_pid(p, sig) for p in targets)

    async def _do_stop(self, reason: str) -> None:
        self._cancel_timer()
        self._cancel_task()
        self._stopping = True
        try:
            if self.state in (State.EXITED, State.FATAL, State.STOPPED):
                # it ended on its own between the request and now (a crash loop): only
                # its leftovers are left to clear; the state says how it ended
                await self._kill_tree(self.spec.stop.signal, self.spec.stop.timeout)
                return
            if self.state is not State.STOPPING:
                self._set_state(State.STOPPING, reason)
            ok = await self._kill_tree(self.spec.stop.signal, self.spec.stop.timeout)
            if not ok:
                self._notice("error", f"could not stop every process: {self._describe_tree()}")
            self._set_state(State.STOPPED, reason)
        finally:
            self._stopping = False

    # -- spawning ---------------------------------------------------------------------
    def _spawn(self, why: str, *, auto: bool = False) -> None:
        """Start a process; `auto` marks a respawn by the restart policy (counted in
        `restarts`), as opposed to a start asked for."""
        self._cancel_timer()
        if self.pgid is not None and not proc.group_alive(self.pgid):
            self.ctx.watcher.sessions.discard(self.pgid)
        env = dict(self.spec.env)
        env[proc.MARKER_VAR] = self.marker
        try:
            s = proc.spawn(self.spec.argv, cwd=str(self.spec.cwd), env=env, user=self.spec.user)
        except proc.SpawnError as e:
            self.pid = None
            self._exit_seen = time.monotonic()
            self._set_state(State.STARTING, why)
            self._notice("error", f"cannot spawn: {e}")
            if e.permanent:
                self._set_state(State.FATAL, str(e))
            else:
                self._after_exit(ExitInfo(None, None), was_starting=True, requested=False,
                                 reason=str(e))
            return
        latency = None
        if auto and self._exit_seen is not None:
            latency = max(0.0, time.monotonic() - self._exit_seen - self._respawn_delay)
        self._exit_seen, self.killed_at = None, None
        self.pid = self.pgid = s.pid
        self.ctx.watcher.sessions.add(s.pid)
        self.restarts += auto
        self.spawns += 1
        self.started_mono = time.monotonic()
        self.started_wall = s.started_wall
        self.operator_signal = False
        self._add_pipe(s.stdout_fd, "stdout")
        self._add_pipe(s.stderr_fd, "stderr")
        self.ctx.watcher.watch(s.pid, self._on_main_exit)
        self.ctx.bus.emit(Spawned(s.started_wall, self.name, s.pid, auto, latency))
        self._set_state(State.STARTING, why)
        self._arm_start_timer(self.spec.start_time)

    def _arm_start_timer(self, delay: float) -> None:
        if delay <= 0:
            self._set_state(State.RUNNING, "started")
            return
        epoch = self._epoch
        self._timer = self.ctx.loop.call_later(delay, self._started, epoch)

    def _started(self, epoch: int) -> None:
        self._timer = None
        if epoch == self._epoch and self.state is State.STARTING:
            self._set_state(State.RUNNING, f"up for {self.spec.start_time:g}s")

    # -- exits ------------------------------------------------------------------------
    def _on_main_exit(self, pid: int, exit: ExitInfo) -> None:
        if pid != self.pid:
            return
        now = time.monotonic()
        uptime = now - (self.started_mono or now)
        detect = now - self.killed_at if self.killed_at is not None else None
        self.killed_at, self._exit_seen = None, now
        self.pid = None
        self._cancel_timer()
        was_starting = self.state is State.STARTING
        if (self.state is State.RUNNING and uptime - self.spec.start_time
                >= self.spec.backoff.reset_after):
            self.consecutive = 0
        requested = self._stopping or self.state is State.STOPPING
        self.last_exit = {"pid": pid, "code": exit.code, "signal": exit.signal,
                          "t": time.time(), "uptime": uptime, "text": exit.describe()}
        leftovers = set() if requested else self._leftovers()
        daemonized = bool(leftovers) and is_clean(exit, self.spec.success_codes)
        failure = not daemonized and is_failure(
            exit, self.spec.success_codes, was_starting=was_starting,
            requested=requested or self.operator_signal)
        self._drain_pipes()  # its last lines first: they explain the exit
        self.ctx.bus.emit(Exited(time.time(), self.name, pid, exit.code, exit.signal,
                                 requested, failure, uptime, detect))
        if requested:
            return  # the stop task finishes the job
        self._after_exit(exit, was_starting=was_starting, requested=self.operator_signal,
                         reason=exit.describe(), leftovers=leftovers)

    def _after_exit(self, exit: ExitInfo, *, was_starting: bool, requested: bool,
                    reason: str, leftovers: set[int] | None = None) -> None:
        """Decide what follows an exit nobody asked for (or an operator signal)."""
        if leftovers is None:
            leftovers = self._leftovers()
        if leftovers and is_clean(exit, self.spec.success_codes):
            self._track_daemon(leftovers, f"main process {exit.describe()}")
            return
        failure = is_failure(exit, self.spec.success_codes, was_starting=was_starting,
                             requested=requested)
        now = time.monotonic()
        if failure:
            self.failures += 1
            self.consecutive += 1
            self.failure_times.append(now)
            self.recent_failures.append({"t": time.time(), "reason": reason,
                                         "starting": was_starting})
        restart = self.wanted and should_restart(self.spec.restart, exit,
                                                 self.spec.success_codes, requested=False)
        if failure and restart and crash_loop(self.spec.crash_loop, self.failure_times, now):
            cl = self.spec.crash_loop
            self._set_state(State.FATAL, f"crash loop: {cl.max_failures} failures in "
                            f"{cl.window:g}s (last: {reason})")
            self._notice("error", f"crash loop, giving up: {self.reason}")
            self._start_cleanup(leftovers)
        elif restart:
            delay = backoff_delay(self.spec.backoff, self.consecutive, self.ctx.rand()) \
                if failure else 0.0
            self.backoff_until = now + delay
            self._respawn_delay = delay
            self._set_state(State.BACKOFF, f"{reason}; restarting in {delay:.2f}s")
            if delay <= 0 and not leftovers:
                self._spawn("respawned", auto=True)
            else:
                self._task = asyncio.ensure_future(self._respawn_later(leftovers))
        else:
            self._set_state(State.EXITED, reason)
            self._start_cleanup(leftovers)

    async def _respawn_later(self, leftovers: bool) -> None:
        epoch = self._epoch
        if leftovers:
            await self._kill_tree(self.spec.stop.signal, self.spec.stop.timeout)
        if self.backoff_until is not None:
            await asyncio.sleep(max(0.0, self.backoff_until - time.monotonic()))
        if epoch == self._epoch and self.state is State.BACKOFF:
            self._task = None
            self._spawn("respawned", auto=True)

    def _start_cleanup(self, leftovers: bool) -> None:
        if leftovers:
            self._task = asyncio.ensure_future(self._cleanup())

    async def _cleanup(self) -> None:
        try:
            await self._kill_tree(self.spec.stop.signal, self.spec.stop.timeout)
        finally:
            self._task = None

    # -- daemonized -------------------------------------------------------------------
    def _track_daemon(self, pids: set[int], why: str) -> None:
        self.daemon_pids = set(pids) or self.daemon_pids
        for p in self.daemon_pids:
            self.ctx.watcher.watch(p, self._on_daemon_exit)
        shown = ", ".join(map(str, sorted(self.daemon_pids)[:5]))
        if len(self.daemon_pids) > 5:
            shown += ", ..."
        if self.state is not State.DAEMONIZED:
            self._set_state(State.DAEMONIZED, f"{why}; still running: pid {shown}")

    def _on_daemon_exit(self, pid: int, exit: ExitInfo) -> None:
        self.daemon_pids.discard(pid)
        if self.daemon_pids or self.state is not State.DAEMONIZED:
            return
        rest = self._leftovers()
        if rest:
            self._track_daemon(rest, "")
            return
        self.last_exit = {"pid": pid, "code": exit.code, "signal": exit.signal,
                          "t": time.time(), "uptime": None, "text": exit.describe()}
        self._after_exit(exit, was_starting=False, requested=self.operator_signal,
                         reason=f"daemon {exit.describe()}")

    def update_spec(self, spec: ServiceSpec) -> None:
        """Take a new spec in place (policy, backoff, limits); the process is untouched."""
        self.spec = spec
        self.ring.resize(spec.log.ring_lines)
        self.log_file.max_bytes = spec.log.max_bytes
        self.log_file.backups = spec.log.backups

    # -- views ------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        now = time.monotonic()
        up = self.state in (State.STARTING, State.RUNNING, State.STOPPING) and \
            self.started_mono is not None and self.pid is not None
        return {
            "name": self.name,
            "state": self.state.value,
            "reason": self.reason,
            "state_since": self.state_since,
            "pid": self.pid,
            "daemon_pids": sorted(self.daemon_pids),
            "wanted": self.wanted,
            "started_at": self.started_wall if up else None,
            "uptime": (now - self.started_mono) if up and self.started_mono else None,
            "spawns": self.spawns,
            "restarts": self.restarts,
            "failures": self.failures,
            "consecutive_failures": self.consecutive,
            "recent_failures": list(self.recent_failures),
            "last_exit": self.last_exit,
            "backoff_remaining": max(0.0, self.backoff_until - now)
            if self.backoff_until is not None else None,
            "log_file": str(self.log_file.path),
            "log_offset": self.ring.next_offset,
            "command": list(self.spec.argv),
            "cwd": str(self.spec.cwd),
            "restart_policy": self.spec.restart.value,
            "crash_loop": {"max_failures": self.spec.crash_loop.max_failures,
                           "window": self.spec.crash_loop.window},
        }

    # -- detach / adopt ---------------------------------------------------------------
    def detach(self) -> dict[str, Any]:
        """Stop watching (timers, pipes, pidfds) and return everything needed to carry on
        in another engine: pids, pipe fds and partial lines, counters, ring."""
        self._cancel_timer()
        for t in (self._task, self._stop_task):
            if t is not None and not t.done():
                t.cancel()
        for handle in self._paused.values():
            handle.cancel()
        self._paused.clear()
        for fd in self.pipes:
            self.ctx.loop.remove_reader(fd)
        for p in {self.pid, *self.daemon_pids} - {None}:
            self.ctx.watcher.unwatch(p)  # type: ignore[arg-type]
        self.log_file.close()
        now = time.monotonic()
        start_left = None
        if self.state is State.STARTING and self.started_mono is not None:
            start_left = max(0.0, self.spec.start_time - (now - self.started_mono))
        return {
            "name": self.name, "state": self.state.value, "reason": self.reason,
            "state_since": self.state_since, "pid": self.pid, "pgid": self.pgid,
            "started_mono": self.started_mono, "started_wall": self.started_wall,
            "spawns": self.spawns, "restarts": self.restarts, "failures": self.failures,
            "consecutive": self.consecutive, "failure_times": list(self.failure_times),
            "recent_failures": list(self.recent_failures), "last_exit": self.last_exit,
            "wanted": self.wanted, "backoff_until": self.backoff_until,
            "start_left": start_left, "daemon_pids": sorted(self.daemon_pids),
            "cleanup": self._task is not None, "operator_signal": self.operator_signal,
            "pipes": [{"fd": fd, "stream": st, "partial": sp.partial.decode("latin-1")}
                      for fd, (st, sp) in self.pipes.items()],
            "ring": {"next_offset": self.ring.next_offset, "lines": self.ring.tail()},
            "argv": list(self.spec.argv), "cwd": str(self.spec.cwd),
            "log_path": str(self.log_file.path), "log_max_bytes": self.log_file.max_bytes,
            "log_backups": self.log_file.backups,
        }

    def adopt(self, rec: dict[str, Any]) -> None:
        """Take over a record made by `detach` (same process, or after an exec)."""
        self.state = State(rec["state"])
        self.reason = rec["reason"]
        self.state_since = rec["state_since"]
        self.pid, self.pgid = rec["pid"], rec["pgid"]
        self.started_mono, self.started_wall = rec["started_mono"], rec["started_wall"]
        self.spawns, self.restarts = rec["spawns"], rec["restarts"]
        self.failures, self.consecutive = rec["failures"], rec["consecutive"]
        self.failure_times.extend(rec["failure_times"])
        self.recent_failures.extend(rec["recent_failures"])
        self.last_exit, self.wanted = rec["last_exit"], rec["wanted"]
        self.backoff_until = rec["backoff_until"]
        self.daemon_pids = set(rec["daemon_pids"])
        self.operator_signal = rec["operator_signal"]
        self.ring = LogRing(self.spec.log.ring_lines, rec["ring"]["lines"],
                            rec["ring"]["next_offset"])
        if self.pgid is not None:
            self.ctx.watcher.sessions.add(self.pgid)
        for p in rec["pipes"]:
            fd = p["fd"]
            os.set_inheritable(fd, False)
            os.set_blocking(fd, False)
            self._add_pipe(fd, p["stream"], p["partial"].encode("latin-1"))
        if self.pid is not None:
            self.ctx.watcher.watch(self.pid, self._on_main_exit)
        for d in self.daemon_pids:
            self.ctx.watcher.watch(d, self._on_daemon_exit)
        self._resume(rec)

    def _resume(self, rec: dict[str, Any]) -> None:
        s = self.state
        if s is State.STARTING and self.pid is not None:
            self._arm_start_timer(rec["start_left"] or 0.0)
        elif s is State.BACKOFF:
            self._task = asyncio.ensure_future(self._respawn_later(bool(self._leftovers())))
        elif s is State.STOPPING:
            self._stop_task = asyncio.ensure_future(self._do_stop(self.reason))
        elif s in (State.EXITED, State.FATAL) and rec["cleanup"]:
            self._start_cleanup(True)

    def close(self) -> None:
        """Release file descriptors (after the service is stopped)."""
        for fd in tuple(self.pipes):
            with contextlib.suppress(KeyError, OSError):
                self._close_pipe(fd)
        self.log_file.close()
