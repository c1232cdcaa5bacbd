"""One supervised service: the OS and asyncio side of its lifecycle. What follows an
exit is decided by `lifecycle.decide` (pure); this class observes the exits, carries out
the effects and runs the timers. Its state lives in one `record.ServiceRecord`, the
source of its snapshot view and of its handoff record. Its process tree is handled by
`tree.ProcessTree`, its output by `output.ServiceOutput` (mixed in).

Only `_set_state` changes `state`; it checks the transition table and emits the event.
Time-based moves (start rule, backoff, stop timeout) are timers/tasks tagged with an
epoch, so a timer armed for an earlier state can never act on a later one.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import os
import random
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tui_supervisor.config.schema import ServiceSpec
from tui_supervisor.engine import proc
from tui_supervisor.engine.bus import EventBus
from tui_supervisor.engine.cgroups import Cgroups
from tui_supervisor.engine.events import HealthChanged, Spawned, StateChanged, Topic
from tui_supervisor.engine.health import health_of
from tui_supervisor.engine.lifecycle import (
    Cleanup,
    DaemonGone,
    Effect,
    Emit,
    LifecycleEvent,
    MainExit,
    Now,
    OperatorSignal,
    Respawn,
    SetState,
    SpawnFailed,
    StayedUp,
    Tell,
    WatchDaemons,
    decide,
    stay_up_time,
)
from tui_supervisor.engine.logs import LineSplitter, LogFile, LogRing
from tui_supervisor.engine.output import ServiceOutput
from tui_supervisor.engine.policies import ExitInfo
from tui_supervisor.engine.probing import ServiceProbes
from tui_supervisor.engine.reaper import ChildWatcher
from tui_supervisor.engine.record import InRecord, ServiceRecord, recent_times
from tui_supervisor.engine.repair import STOP_ROUNDS, Repair, contained
from tui_supervisor.engine.states import (
    ENDED_STATES,
    SIGNALLABLE_STATES,
    STARTABLE_STATES,
    TRANSITIONS,
    WAITABLE_STATES,
    InvalidTransition,
    State,
)
from tui_supervisor.engine.tree import ProcessTree

PROBED_STATES = frozenset({State.STARTING, State.RUNNING, State.DAEMONIZED})
"""A service's probes run while it is in one of these (they stop at its exit or stop)."""
PROBE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Upper bounds (seconds) of the probe duration histogram's buckets."""


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
    claims: dict[int, str] = field(default_factory=dict)
    """pid -> the service a process outside its tree was attributed to (tree.py)."""
    session: int = field(default_factory=lambda: os.getsid(0))
    """The engine's session: its own helper processes; never a service's."""
    cgroups: Cgroups | None = None
    """A cgroup per service, where the engine may create them (engine/cgroups.py)."""
    runtime_dir: Path | None = None
    """Where the services' NOTIFY_SOCKETs are made (None: the log directory)."""


class Service(ProcessTree, ServiceOutput):
    state = InRecord[State]()
    reason = InRecord[str]()
    state_since = InRecord[float]()
    pid = InRecord[int | None]()
    pgid = InRecord[int | None]()
    started_mono = InRecord[float | None]()
    started_wall = InRecord[float | None]()
    spawns = InRecord[int]()
    restarts = InRecord[int]()
    failures = InRecord[int]()
    consecutive = InRecord[int]()
    failure_times = InRecord[tuple[float, ...]]()
    recent_failures = InRecord[tuple[dict[str, Any], ...]]()
    last_exit = InRecord[dict[str, Any] | None]()
    wanted = InRecord[bool]()
    backoff_until = InRecord[float | None]()
    daemon_pids = InRecord[frozenset[int]]()
    operator_signal = InRecord[bool]()
    crash_looping = InRecord[bool]()
    ready_since = InRecord[float | None]()

    def __init__(self, spec: ServiceSpec, ctx: EngineContext) -> None:
        self.spec = spec
        self.ctx = ctx
        self.name = spec.name
        self.marker = proc.marker(ctx.config_id, spec.name)
        self.rec = ServiceRecord(state_since=time.time())
        self._known: dict[int, int] = {}
        """pid -> start time of processes seen to belong to the service (see _tree)."""
        self.killed_at: float | None = None
        self.spawn_start: int | None = None
        self._exit_seen: float | None = None
        """Monotonic time the last exit nobody asked for was observed (respawn latency)."""
        self._respawn_delay = 0.0
        self.pipes: dict[int, tuple[str, LineSplitter]] = {}
        self._paused: dict[int, asyncio.TimerHandle] = {}
        self._pausable: set[int] = set()
        self.ring = LogRing(spec.log.ring_lines)
        self.log_file = LogFile(ctx.log_dir / f"{spec.name}.log", spec.log.max_bytes,
                                spec.log.backups)
        self._epoch = 0
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop_task: asyncio.Task[None] | None = None
        self._stopping = False
        self._ending: str | None = None
        """Why the engine is ending the processes (a limit), until the exit it causes."""
        self._end_task: asyncio.Task[None] | None = None
        self._oom_kills: int | None = None
        """The cgroup's oom_kill count at the spawn, where memory.max guards it."""
        self.spawn_error: str | None = None
        """Why the last spawn failed (None: it did not, or none was tried yet)."""
        self.repair = Repair(self)
        """Fault containment and the check against the processes (`repair.py`)."""
        self.health_output = ""
        """The last probe output (at most 4 KiB)."""
        self.probe_stats: dict[str, dict[str, Any]] = {}
        """Per probe, across spawns: {"kind", "failures", "duration": histogram}
        (Prometheus' counter and histogram; `probes_view`)."""

    # -- health (issue 14) -------------------------------------------------------------
    @property
    def health(self) -> str | None:
        """"starting" (a startup probe has not passed yet), "ready" (readiness passes),
        "unready" (up, readiness fails), or None (no probe, or no process). Each change
        is a `HealthChanged` event on the bus."""
        p = self.probes
        return None if p is None else health_of(p.health, p.tracks)

    @property
    def ready(self) -> bool | None:
        """Whether a readiness probe passes (None: the service has no readiness probe)."""
        if self.spec.health.readiness is None:
            return None
        p = self.probes
        return p is not None and p.tracks["readiness"].passing is True

    @property
    def log_ready(self) -> bool:
        """A `log` probe has matched a line since the current spawn."""
        return self.probes is not None and self.probes.log_ready

    def _health_moved(self, probe: str, output: str) -> None:
        """After a probe result (or a start/stop of the probes): publish a change."""
        if probe:
            self.health_output = output
        now = self.health
        if now == self.rec.health:
            return
        since = (self.ready_since or time.time()) if now == "ready" else None
        self.rec = replace(self.rec, health=now, ready_since=since)
        self.ctx.bus.emit(HealthChanged(time.time(), self.name, now, probe, output))
        self.ctx.changed()

    def _probe_result(self, name: str, kind: str, ok: bool, duration: float | None) -> None:
        st = self.probe_stats.get(name)
        if st is None or st["kind"] != kind:
            st = self.probe_stats[name] = {
                "kind": kind, "failures": 0, "duration": {
                    "buckets": list(PROBE_BUCKETS), "counts": [0] * (len(PROBE_BUCKETS) + 1),
                    "sum": 0.0}}
        st["failures"] += not ok
        if duration is not None:
            h = st["duration"]
            h["sum"] += duration
            h["counts"][bisect.bisect_left(PROBE_BUCKETS, duration)] += 1

    def _start_probes(self, probes: ServiceProbes | None,
                      spawned: float | None = None) -> None:
        self.probes = probes
        if probes is not None:
            probes.start(spawned)

    def _stop_probes(self) -> None:
        p, self.probes = self.probes, None
        if p is not None:
            p.close()
            self._health_moved("", "")

    def probes_view(self) -> dict[str, dict[str, Any]]:
        """Per configured probe: {"kind", "passing", "failures" (consecutive),
        "last_duration", "failures_total", "duration" (a histogram: "buckets" bounds,
        per-bucket "counts" with +Inf last, "sum"; None before the first check)}."""
        p = self.probes
        out = {}
        for name, spec in self.spec.health.probes().items():
            track = p.tracks.get(name) if p is not None else None
            out[name] = {"kind": spec.kind,
                         "passing": track.passing if track is not None else None,
                         "failures": track.failures if track is not None else 0,
                         "last_duration": track.duration if track is not None else None,
                         "failures_total": self.probe_stats.get(name, {}).get("failures", 0),
                         "duration": self.probe_stats.get(name, {}).get("duration")}
        return out

    # -- state ------------------------------------------------------------------------
    def _set_state(self, new: State, reason: str) -> None:
        old = self.state
        if new is not old and new not in TRANSITIONS[old]:
            raise InvalidTransition(f"{self.name}: {old.value} -> {new.value} ({reason})")
        self._epoch += 1
        since = time.time()
        self.rec = replace(self.rec, state=new, reason=reason, state_since=since,
                           backoff_until=self.backoff_until if new is State.BACKOFF else None)
        if new not in PROBED_STATES and self.probes is not None:
            self._stop_probes()  # (before StateChanged: no probe acts on a later state)
        self.ctx.bus.emit(StateChanged(since, self.name, old.value, new.value,
                                       self.pid, reason, self.wanted, self.crash_looping))
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
        busy = self._task is not None and not self._task.done()
        self.spawn_error = None  # (this start's spawn says, once tried)
        self._cancel_task()
        self._cancel_timer()
        self.rec = replace(self.rec, wanted=True, consecutive=0, failure_times=(),
                           crash_looping=False)
        if busy and self._leftovers():
            self._task = asyncio.ensure_future(self._start_after_cleanup(reason))
        else:
            self._spawn(reason)
        return True

    def wait(self, reason: str) -> bool:
        """Wait for dependencies (`waiting`, wanted, no process) instead of starting; a
        waiting one only takes the new reason. False when a process is up or going."""
        if self.state is State.WAITING:
            if reason != self.reason:  # the same wait, a new reason (state_since kept)
                self.rec = replace(self.rec, reason=reason, wanted=True)
                self.ctx.bus.emit(StateChanged(time.time(), self.name, "waiting", "waiting",
                                               None, reason, True, self.crash_looping))
                self.ctx.changed()
            return True
        if self.state not in WAITABLE_STATES:
            return False
        self.spawn_error = None
        self._cancel_timer()  # (a backoff respawn sees the new epoch and does nothing)
        self.rec = replace(self.rec, wanted=True, consecutive=0, failure_times=(),
                           crash_looping=False)
        self._set_state(State.WAITING, reason)
        return True

    def give_up_waiting(self, reason: str) -> None:
        """A dependency's `timeout` passed: `fatal`, until started again."""
        if self.state is State.WAITING:
            self._set_state(State.FATAL, reason)

    async def spawned(self, timeout: float) -> None:
        """Wait (at most `timeout`) for a start's spawn that waits for the leftovers of an
        earlier process to be cleared first (else the spawn has happened already)."""
        task = self._task
        if task is not None and not task.done():
            await asyncio.wait({task}, timeout=timeout)

    @contained("start after cleanup")
    async def _start_after_cleanup(self, reason: str) -> None:
        await self._kill_tree(self.spec.stop.signal, self.spec.stop.timeout)
        if self.state is State.BACKOFF or self.state in STARTABLE_STATES:
            self._task = None
            self._spawn(reason)

    async def stop(self, reason: str = "stopped by operator") -> None:
        """Stop the whole process tree: stop signal to the group, SIGKILL after the
        timeout, sweep what is left. Returns once nothing of the service is alive."""
        self.rec = replace(self.rec, wanted=False, crash_looping=False)
        if self._stop_task is not None and not self._stop_task.done():
            await self._stopped()
            return
        if self.state in (State.EXITED, State.COMPLETED, State.FATAL, State.WAITING):
            if self._task is not None:  # leftovers of the exited process are being cleared
                await asyncio.shield(self._task)
            if self.state is State.WAITING:  # (a start may have come during the cleanup)
                self._set_state(State.STOPPED, reason)
            return
        if self.state is State.STOPPED:
            return
        self._stop_task = asyncio.ensure_future(self._do_stop(reason))
        await self._stopped()

    async def _stopped(self) -> None:
        """Wait for the stop under way, and for the one it is retried by after a fault."""
        for _ in range(STOP_ROUNDS):
            task = self._stop_task
            if task is None or task.done():
                return
            await asyncio.shield(task)

    def end_for(self, why: str, data: dict[str, Any] | None = None,
                topic: str = "limit") -> bool:
        """End the processes for `why` (a resource limit exceeded): the exit that follows
        is a failure with that reason, and the restart policy applies. False if the
        service is not up, or is already being ended or stopped."""
        if self.state not in (State.STARTING, State.RUNNING, State.DAEMONIZED) \
                or self._ending is not None or self._stopping:
            return False
        self._ending = why
        self._notice("warning", f"{why}: restarting it", data=data,
                     topic=Topic.PROBE_FAILED if topic == "probe" else Topic.LIMIT_EXCEEDED)
        self._end_task = asyncio.ensure_future(self._end())
        return True

    @contained("limit end")
    async def _end(self) -> None:
        try:
            await self._kill_tree(self.spec.stop.signal, self.spec.stop.timeout)
        finally:
            self._end_task = None

    async def restart(self) -> None:
        await self.stop("restarting by operator")
        self.start()

    def send_signal(self, sig: int) -> bool:
        """Deliver `sig` to the main process (or the daemonized processes)."""
        if self.state not in SIGNALLABLE_STATES:
            return False
        self._decide(OperatorSignal())
        targets = [self.pid] if self.pid is not None else sorted(self.daemon_pids)
        if sig == signal.SIGKILL and self.pid is not None and self.killed_at is None:
            self.killed_at = time.monotonic()
        return any(proc.signal_pid(p, sig) for p in targets)

    @contained("stop")
    async def _do_stop(self, reason: str) -> None:
        self._cancel_timer()
        self._cancel_task()
        self._stopping = True
        try:
            if self.state in ENDED_STATES:
                # it ended on its own between the request and now (a crash loop): only
                # its leftovers are left to clear; the state says how it ended
                await self._kill_tree(self.spec.stop.signal, self.spec.stop.timeout)
                return
            if self.state is not State.STOPPING:
                self._set_state(State.STOPPING, reason)
            ok = await self._kill_tree(self.spec.stop.signal, self.spec.stop.timeout)
            if not ok:
                self._notice("error", f"could not stop every process: {self._describe_tree()}",
                             topic=Topic.STOP_FAILED)
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
        if self.ctx.runtime_dir is not None:
            env[proc.INSTANCE_VAR] = str(self.ctx.runtime_dir)
        self.spawn_error = None
        self._stop_probes()
        probes = ServiceProbes(self) if self.spec.health.probes() else None
        if probes is not None:
            env.update(probes.env())
        try:
            s = self._spawn_in_cgroup(env)
        except proc.SpawnError as e:
            if probes is not None:
                probes.close()
            self.spawn_error = str(e)
            self.pid = None
            self._exit_seen = time.monotonic()
            self._set_state(State.STARTING, why)
            self._decide(SpawnFailed(str(e), e.permanent))
            return
        latency = None
        if auto and self._exit_seen is not None:
            latency = max(0.0, time.monotonic() - self._exit_seen - self._respawn_delay)
        self._exit_seen, self.killed_at, self._ending = None, None, None
        self.spawn_start = proc.create_time(s.pid)
        r, now = self.rec, time.monotonic()
        times = recent_times((*r.restart_times, now) if auto else r.restart_times, now)
        self.rec = replace(r, pid=s.pid, pgid=s.pid, restarts=r.restarts + auto,
                           restart_times=times, spawns=r.spawns + 1, started_mono=now,
                           started_wall=s.started_wall, operator_signal=False)
        self.ctx.watcher.sessions.add(s.pid)
        self._add_pipe(s.stdout_fd, "stdout")
        self._add_pipe(s.stderr_fd, "stderr")
        self.ctx.watcher.watch(s.pid, self._on_main_exit)
        self.ctx.bus.emit(Spawned(s.started_wall, self.name, s.pid, auto, latency))
        self._set_state(State.STARTING, why)
        self._start_probes(probes)
        self._arm_start_timer(self.spec.start_time)

    def _spawn_in_cgroup(self, env: dict[str, str]) -> proc.Spawned:
        cg = self.ctx.cgroups
        if cg is not None:
            try:
                cg.make(self.name)
                if cg.set_memory_max(self.name, self.spec.limits.memory):
                    self._oom_kills = cg.oom_kills(self.name)
                with cg.inside(self.name):
                    return proc.spawn(self.spec.argv, cwd=str(self.spec.cwd), env=env,
                                      user=self.spec.user, rlimits=self.spec.rlimits)
            except OSError as e:  # the subtree went away: say so, run without it
                self._notice("warning", f"cannot use cgroup {cg.path(self.name)}: "
                             f"{e.strerror}; processes found by ancestry instead",
                             topic=Topic.PLATFORM, data={"feature": "cgroups"})
                self.ctx.cgroups = None
        return proc.spawn(self.spec.argv, cwd=str(self.spec.cwd), env=env, user=self.spec.user,
                          rlimits=self.spec.rlimits)

    def _arm_start_timer(self, delay: float) -> None:
        if delay <= 0:
            self._set_state(State.RUNNING, "started")
            self._arm_stay_up_timer()
            return
        epoch = self._epoch
        self._timer = self.ctx.loop.call_later(delay, self._started, epoch)

    @contained("start timer")
    def _started(self, epoch: int) -> None:
        self._timer = None
        if epoch == self._epoch and self.state is State.STARTING:
            self._set_state(State.RUNNING, f"up for {self.spec.start_time:g}s")
            self._arm_stay_up_timer()

    def _arm_stay_up_timer(self) -> None:
        """Once up `start_time + reset_after`, its failures are forgotten (a crash loop is
        over): a timer, so the mark goes when it recovers, not at its next exit."""
        if self.state is not State.RUNNING or self.started_mono is None or \
                not (self.consecutive or self.crash_looping):
            return
        left = stay_up_time(self.spec) - (time.monotonic() - self.started_mono)
        self._timer = self.ctx.loop.call_later(max(0.0, left), self._stayed_up, self._epoch)

    @contained("stay-up timer")
    def _stayed_up(self, epoch: int) -> None:
        self._timer = None
        if epoch == self._epoch:
            self._decide(StayedUp())

    # -- exits: observed here, decided by lifecycle.decide, carried out by _apply ------
    @contained("exit callback")
    def _on_main_exit(self, pid: int, exit: ExitInfo) -> None:
        if pid != self.pid:
            return
        now = time.monotonic()
        uptime = now - (self.started_mono or now)
        detect = now - self.killed_at if self.killed_at is not None else None
        self.killed_at, self._exit_seen = None, now
        self.pid = None
        self._cancel_timer()
        requested = self._stopping or self.state is State.STOPPING
        leftovers = frozenset() if requested else self._roots(self._leftovers())
        self._drain_pipes()  # its last lines first: they explain the exit
        # when requested, the stop task finishes the job
        ended_by, self._ending = self._ending or self._killed_at_memory_max(), None
        self._decide(MainExit(pid, exit, uptime, requested, leftovers, detect, ended_by))

    def _killed_at_memory_max(self) -> str | None:
        cg, before = self.ctx.cgroups, self._oom_kills
        limit = self.spec.limits.memory
        if cg is None or before is None or limit is None or cg.oom_kills(self.name) <= before:
            return None
        self._oom_kills = cg.oom_kills(self.name)
        return f"memory limit {limit / (1 << 20):.0f} MB reached: killed by the kernel"

    @contained("daemon exit callback")
    def _on_daemon_exit(self, pid: int, exit: ExitInfo) -> None:
        self.daemon_pids = self.daemon_pids - {pid}
        if self.daemon_pids or self.state is not State.DAEMONIZED:
            return
        ended_by, self._ending = self._ending, None
        self._decide(DaemonGone(pid, exit, self._roots(self._leftovers()), ended_by))

    def _decide(self, event: LifecycleEvent) -> None:
        try:
            now = Now(time.monotonic(), time.time())
            self.rec, effects = decide(self.rec, event, self.spec, now, self.ctx.rand())
            for effect in effects:
                self._apply(effect)
        except Exception as e:  # a bug here must not leave the service unsupervised
            self.repair.contain("lifecycle decision", e, event=event)

    def _apply(self, effect: Effect) -> None:
        if isinstance(effect, Emit):
            self.ctx.bus.emit(effect.event)
        elif isinstance(effect, SetState):
            self._set_state(effect.state, effect.reason)
        elif isinstance(effect, WatchDaemons):
            for p in effect.pids:
                self.ctx.watcher.watch(p, self._on_daemon_exit)
        elif isinstance(effect, Respawn):
            self._respawn_delay = effect.delay
            if effect.delay <= 0 and not effect.clear:
                self._spawn("respawned", auto=True)
            else:
                self._task = asyncio.ensure_future(self._respawn_later(effect.clear))
        elif isinstance(effect, Cleanup):
            self._task = asyncio.ensure_future(self._cleanup())
        elif isinstance(effect, Tell):
            self._notice(effect.level, effect.message, topic=effect.topic, data=effect.data)

    def _give_up(self, e: Exception) -> None:
        """The last resort, when even `_fallback` failed: say it, and be `fatal` (a
        manual start recovers) rather than `running` with no process."""
        why = f"internal error after an exit: {type(e).__name__}: {e}"
        self._notice("error", f"{why}; giving up on it until it is started again",
                     topic=Topic.INTERNAL)
        if State.FATAL in TRANSITIONS[self.state]:
            with contextlib.suppress(Exception):
                self._set_state(State.FATAL, why)
                if self._leftovers():
                    self._task = asyncio.ensure_future(self._cleanup())

    @contained("backoff timer")
    async def _respawn_later(self, leftovers: bool) -> None:
        epoch = self._epoch
        if leftovers:
            await self._kill_tree(self.spec.stop.signal, self.spec.stop.timeout)
        if self.backoff_until is not None:
            await asyncio.sleep(max(0.0, self.backoff_until - time.monotonic()))
        if epoch == self._epoch and self.state is State.BACKOFF:
            self._task = None
            self._spawn("respawned", auto=True)

    @contained("cleanup")
    async def _cleanup(self) -> None:
        try:
            await self._kill_tree(self.spec.stop.signal, self.spec.stop.timeout)
        finally:
            self._task = None

    def update_spec(self, spec: ServiceSpec) -> None:
        """Take a new spec in place (policy, backoff, limits, probes); the process is
        untouched. Changed probes start again at once (a notify probe added now gets its
        NOTIFY_SOCKET at the next spawn: the process's environment is set)."""
        probes_changed = spec.health != self.spec.health
        self.spec = spec
        if probes_changed:
            self._stop_probes()
            if self.state in PROBED_STATES and spec.health.probes():
                self._start_probes(ServiceProbes(self), self.started_mono)
        if self.ctx.cgroups is not None:
            self.ctx.cgroups.set_memory_max(self.name, spec.limits.memory)
        self.ring.resize(spec.log.ring_lines)
        self.log_file.max_bytes = spec.log.max_bytes
        self.log_file.backups = spec.log.backups

    # -- views ------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return {
            "name": self.name,
            **self.rec.view(time.monotonic()),
            "log_file": str(self.log_file.path),
            "log_offset": self.ring.next_offset,
            "command": list(self.spec.argv),
            "group": self.spec.group,
            "replica": self.spec.replica,
            "cwd": str(self.spec.cwd),
            "restart_policy": self.spec.restart.value,
            "internal_errors": self.repair.internal_errors,
            "health": self.rec.health,
            "health_output": self.health_output,
            "probes": self.probes_view(),
            "ready_since": self.ready_since,
            "crash_loop": {"max_failures": self.spec.crash_loop.max_failures,
                           "window": self.spec.crash_loop.window,
                           "give_up": self.spec.crash_loop.give_up},
        }

    # -- detach / adopt ---------------------------------------------------------------
    def detach(self) -> dict[str, Any]:
        """Stop watching (timers, pipes, pidfds) and return everything needed to carry on
        in another engine: the record, pipe fds and partial lines, the ring."""
        self._cancel_timer()
        probes = self.probes.handoff() if self.probes is not None else None
        self.probes = None  # the new image starts its own (timers restart)
        for t in (self._task, self._stop_task, self._end_task):
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
        start_left = None
        if self.state is State.STARTING and self.started_mono is not None:
            start_left = max(0.0, self.spec.start_time - (time.monotonic() - self.started_mono))
        return {
            "name": self.name, **self.rec.to_dict(),
            "start_left": start_left, "cleanup": self._task is not None,
            "pipes": [{"fd": fd, "stream": st, "partial": sp.partial.decode("latin-1")}
                      for fd, (st, sp) in self.pipes.items()],
            "ring": {"next_offset": self.ring.next_offset, "lines": self.ring.tail()},
            "argv": list(self.spec.argv), "cwd": str(self.spec.cwd),
            "log_path": str(self.log_file.path), "log_max_bytes": self.log_file.max_bytes,
            "log_backups": self.log_file.backups,
            "probes": probes, "health_output": self.health_output,
            "probe_stats": self.probe_stats,
        }

    def adopt(self, rec: dict[str, Any]) -> None:
        """Take over a record made by `detach` (same process, or after an exec)."""
        self.rec = ServiceRecord.from_dict(rec)
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
        live = {p for p in (self.pid, *self.daemon_pids) if p is not None}
        starts = [t for t in map(proc.create_time, live) if t is not None]
        self.spawn_start = min(starts, default=None)
        self.remember()
        self._resume(rec)
        self._resume_probes(rec)

    def _resume_probes(self, rec: dict[str, Any]) -> None:
        """Probes of a process adopted from an earlier image: its results kept (health,
        ready_since), its timers started again; the NOTIFY_SOCKET made at the same path."""
        self.health_output = str(rec.get("health_output", ""))
        if isinstance(rec.get("probe_stats"), dict):
            self.probe_stats = rec["probe_stats"]
        if self.state not in PROBED_STATES or not self.spec.health.probes():
            self.rec = replace(self.rec, health=None, ready_since=None)
            notify = (rec.get("probes") or {}).get("notify")
            if isinstance(notify, dict):  # not needed any more: close it, remove its file
                with contextlib.suppress(OSError, KeyError, TypeError, ValueError):
                    os.close(int(notify["fd"]))
                    if notify.get("path"):
                        os.unlink(notify["path"])
            return
        handed = rec.get("probes") if isinstance(rec.get("probes"), dict) else None
        probes = ServiceProbes(self, handed)
        if handed is not None:
            probes.restore(handed)
        self._start_probes(probes, self.started_mono)

    def _resume(self, rec: dict[str, Any]) -> None:
        s = self.state
        if s is State.STARTING and self.pid is not None:
            self._arm_start_timer(rec["start_left"] or 0.0)
        elif s is State.RUNNING:
            self._arm_stay_up_timer()
        elif s is State.BACKOFF:
            self._task = asyncio.ensure_future(self._respawn_later(bool(self._leftovers())))
        elif s is State.STOPPING:
            self._stop_task = asyncio.ensure_future(self._do_stop(self.reason))
        elif s in (State.EXITED, State.COMPLETED, State.FATAL) and rec["cleanup"]:
            self._task = asyncio.ensure_future(self._cleanup())

    def close(self) -> None:
        """Release file descriptors (after the service is stopped)."""
        for fd in tuple(self.pipes):
            with contextlib.suppress(KeyError, OSError):
                self._close_pipe(fd)
        self.log_file.close()
