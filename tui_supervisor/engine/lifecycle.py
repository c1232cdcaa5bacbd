"""What follows an exit, decided in one pure place.

`decide(record, event, spec, now, rand)` takes a service's record and something that
happened to its processes, and returns the next record and the effects: plain values
that `Service` carries out in order (it owns the OS and asyncio side: timers, pipes,
pidfds, epochs). No clock, no OS, no randomness but what is passed in.

State moves are effects (`SetState`), not record fields decide changes: the Service
applies them one by one through its single state setter, so each transition is checked
and announced in the order decided (an `Exited` is seen while the service is still in
the state it died in). Every exit that counts emits exactly one `Exited`, so the
FAILURES column and the metrics built on `Exited` (reliability, incidents) agree.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from tui_supervisor.config.schema import RestartPolicy, ServiceSpec
from tui_supervisor.engine.events import Exited, Topic
from tui_supervisor.engine.policies import (
    ExitInfo,
    backoff_delay,
    capped_delay,
    crash_loop,
    is_clean,
    is_completion,
    is_failure,
    recent_failures,
    should_restart,
)
from tui_supervisor.engine.record import ServiceRecord
from tui_supervisor.engine.states import State


@dataclass(frozen=True, slots=True)
class Now:
    """The clocks, read once by the caller."""

    mono: float
    wall: float


# -- events --------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class MainExit:
    """The main process ended."""

    pid: int
    exit: ExitInfo
    uptime: float
    requested: bool
    """A stop was asked for (the stop in progress finishes the job)."""
    leftovers: frozenset[int]
    """Other processes of the service still alive (empty when `requested`)."""
    detect_latency: float | None = None
    ended_by: str | None = None
    """The engine ended it (a resource limit): a failure whatever the exit, said so."""


@dataclass(frozen=True, slots=True)
class DaemonGone:
    """The last watched process of a daemonized service ended."""

    pid: int
    exit: ExitInfo
    leftovers: frozenset[int]
    """Processes of the service found still alive: after a clean exit (a daemon's
    intermediate fork), the daemon now, watched instead; after a crash (a master
    killed, its workers left), stopped before the service is started again."""
    ended_by: str | None = None
    """As `MainExit.ended_by`."""


@dataclass(frozen=True, slots=True)
class SpawnFailed:
    """The process could not be started (the service is `starting`)."""

    error: str
    permanent: bool
    """Retrying cannot help (missing executable, unknown user)."""


@dataclass(frozen=True, slots=True)
class OperatorSignal:
    """The operator signalled the service: the exit that follows is not a failure."""


@dataclass(frozen=True, slots=True)
class StayedUp:
    """The service has been `running` for `start_time + backoff.reset_after` (a timer):
    its failures so far no longer count towards the backoff, and a crash loop is over."""


LifecycleEvent = MainExit | DaemonGone | SpawnFailed | OperatorSignal | StayedUp
"""A failed liveness probe will be one more: a failure without an exit yet."""


# -- effects -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Emit:
    event: Exited


@dataclass(frozen=True, slots=True)
class SetState:
    state: State
    reason: str


@dataclass(frozen=True, slots=True)
class WatchDaemons:
    """Watch these pids (the record's `daemon_pids`) for their exit."""

    pids: frozenset[int]


@dataclass(frozen=True, slots=True)
class Respawn:
    """Spawn again after `delay` seconds, once the leftovers are gone if `clear`."""

    delay: float
    clear: bool


@dataclass(frozen=True, slots=True)
class Cleanup:
    """Stop what is left of the service (its state says how it ended)."""


@dataclass(frozen=True, slots=True)
class Tell:
    """A notice about the service."""

    level: Literal["info", "warning", "error"]
    message: str
    topic: Topic = Topic.GENERAL
    data: dict[str, Any] | None = None


Effect = Emit | SetState | WatchDaemons | Respawn | Cleanup | Tell

SHOWN_PIDS = 5
"""Daemon pids named in the state reason."""


# -- the decision --------------------------------------------------------------------
def decide(rec: ServiceRecord, event: LifecycleEvent, spec: ServiceSpec, now: Now,
           rand: float) -> tuple[ServiceRecord, list[Effect]]:
    """The next record and what to do. `rand` in [0, 1) places the backoff jitter."""
    if isinstance(event, OperatorSignal):
        return replace(rec, operator_signal=True), []
    if isinstance(event, MainExit):
        return _main_exit(rec, event, spec, now, rand)
    if isinstance(event, DaemonGone):
        return _daemon_gone(rec, event, spec, now, rand)
    if isinstance(event, StayedUp):
        return _stayed_up(rec, spec, now)
    return _spawn_failed(rec, event, spec, now, rand)


def stay_up_time(spec: ServiceSpec) -> float:
    """Seconds from a spawn after which a service still up has recovered."""
    return spec.start_time + spec.backoff.reset_after


def _stayed_up(rec: ServiceRecord, spec: ServiceSpec,
               now: Now) -> tuple[ServiceRecord, list[Effect]]:
    up_for = now.mono - rec.started_mono if rec.started_mono is not None else 0.0
    if rec.state is not State.RUNNING or up_for < stay_up_time(spec) or \
            (rec.consecutive == 0 and not rec.crash_looping):
        return rec, []  # a timer of an earlier process, or nothing to forget
    effects: list[Effect] = []
    if rec.crash_looping:
        effects.append(Tell("info", f"recovered from its crash loop: up {up_for:.0f}s",
                            Topic.CRASH_LOOP, {"crash_looping": False}))
    return replace(rec, consecutive=0, crash_looping=False), effects


def _main_exit(rec: ServiceRecord, ev: MainExit, spec: ServiceSpec, now: Now,
               rand: float) -> tuple[ServiceRecord, list[Effect]]:
    consecutive = rec.consecutive
    if rec.state is State.RUNNING and \
            ev.uptime - spec.start_time >= spec.backoff.reset_after:
        consecutive = 0  # it ran well long enough: the next failure is a first one
    last_exit = {"pid": ev.pid, "code": ev.exit.code, "signal": ev.exit.signal,
                 "t": now.wall, "uptime": ev.uptime, "text": ev.exit.describe()}
    rec = replace(rec, pid=None, consecutive=consecutive, last_exit=last_exit,
                  crash_looping=rec.crash_looping and consecutive > 0)
    if ev.requested:
        return rec, [Emit(Exited(now.wall, spec.name, ev.pid, ev.exit.code, ev.exit.signal,
                                 True, False, ev.uptime, ev.detect_latency))]
    return _after_exit(rec, spec, now, rand, _Ending(
        ev.exit, was_starting=rec.state is State.STARTING, requested=rec.operator_signal,
        reason=ev.ended_by or ev.exit.describe(), leftovers=ev.leftovers, pid=ev.pid,
        uptime=ev.uptime, detect_latency=ev.detect_latency, cause="exit",
        detail=ev.ended_by, forced=ev.ended_by is not None))


def _daemon_gone(rec: ServiceRecord, ev: DaemonGone, spec: ServiceSpec, now: Now,
                 rand: float) -> tuple[ServiceRecord, list[Effect]]:
    if rec.state is not State.DAEMONIZED:
        return rec, []  # a stop is clearing them: it says how the service ended
    handed_over = ev.exit == ExitInfo(None, None) or is_clean(ev.exit, spec.success_codes)
    if ev.leftovers and handed_over and ev.ended_by is None:  # passed on: watch those
        return _track(rec, ev.leftovers, "")
    last_exit = {"pid": ev.pid, "code": ev.exit.code, "signal": ev.exit.signal,
                 "t": now.wall, "uptime": None, "text": ev.exit.describe()}
    rec = replace(rec, daemon_pids=frozenset(), last_exit=last_exit)
    uptime = now.mono - rec.started_mono if rec.started_mono is not None else 0.0
    return _after_exit(rec, spec, now, rand, _Ending(
        ev.exit, was_starting=False, requested=rec.operator_signal,
        reason=ev.ended_by or f"daemon {ev.exit.describe()}", leftovers=ev.leftovers,
        pid=ev.pid, uptime=max(0.0, uptime), cause="daemon", detail=ev.ended_by,
        forced=ev.ended_by is not None))


def _spawn_failed(rec: ServiceRecord, ev: SpawnFailed, spec: ServiceSpec, now: Now,
                  rand: float) -> tuple[ServiceRecord, list[Effect]]:
    said: list[Effect] = [Tell("error", f"cannot spawn: {ev.error}", Topic.SPAWN_FAILED)]
    ending = _Ending(ExitInfo(None, None), was_starting=True, requested=False,
                     reason=ev.error, leftovers=frozenset(), pid=0, uptime=0.0,
                     cause="spawn", detail=f"cannot spawn: {ev.error}")
    if not ev.permanent:
        rec, effects = _after_exit(rec, spec, now, rand, ending)
        return rec, said + effects
    # a failed start like any other (counted, an Exited), but retrying cannot help
    rec = _count_failure(rec, spec, now, ending)
    return rec, [*said, Emit(_exited(spec, now, ending, failure=True)),
                 SetState(State.FATAL, ev.error)]


@dataclass(frozen=True, slots=True)
class _Ending:
    """An exit nobody asked for (or one after an operator signal), from any source."""

    exit: ExitInfo
    was_starting: bool
    requested: bool
    """The operator signalled it (not a failure; the restart policy still applies)."""
    reason: str
    leftovers: frozenset[int]
    pid: int
    uptime: float
    cause: str
    detect_latency: float | None = None
    detail: str | None = None
    forced: bool = False
    """Ended by the engine (a limit): a failure whatever the exit status."""


def _exited(spec: ServiceSpec, now: Now, e: _Ending, *, failure: bool) -> Exited:
    return Exited(now.wall, spec.name, e.pid, e.exit.code, e.exit.signal, False, failure,
                  e.uptime, e.detect_latency, cause=e.cause, detail=e.detail)


def _count_failure(rec: ServiceRecord, spec: ServiceSpec, now: Now,
                   e: _Ending) -> ServiceRecord:
    times = recent_failures(spec.crash_loop, (*rec.failure_times, now.mono), now.mono)
    return rec.failed(now.wall, e.reason, e.was_starting, times)


def _after_exit(rec: ServiceRecord, spec: ServiceSpec, now: Now, rand: float,
                e: _Ending) -> tuple[ServiceRecord, list[Effect]]:
    codes = spec.success_codes
    daemonized = bool(e.leftovers) and is_clean(e.exit, codes) and not e.forced
    completed = not daemonized and not e.forced and is_completion(spec.restart, e.exit, codes)
    failure = e.forced or (not daemonized and not completed and is_failure(
        e.exit, codes, was_starting=e.was_starting, requested=e.requested))
    effects: list[Effect] = [Emit(_exited(spec, now, e, failure=failure))]
    if daemonized:  # it forked into the background and its parent finished
        rec, more = _track(rec, e.leftovers, f"main process {e.exit.describe()}")
        return rec, effects + more
    if completed:  # a job that is done: no longer wanted, so never counted as down
        rec = replace(rec, wanted=False, consecutive=0, crash_looping=False)
        return rec, [*effects, SetState(State.COMPLETED, e.reason)]
    if failure:
        rec = _count_failure(rec, spec, now, e)
        if e.was_starting and is_clean(e.exit, codes) and rec.consecutive == 1:
            effects.append(_job_hint(spec, e))
    restart = rec.wanted and ((e.forced and spec.restart is not RestartPolicy.NEVER)
                              or should_restart(spec.restart, e.exit, codes, requested=False))
    cl = spec.crash_loop
    looping = failure and restart and crash_loop(cl, rec.failure_times, now.mono)
    why = f"crash loop: {cl.max_failures} failures in {cl.window:g}s (last: {e.reason})"
    if looping and cl.give_up:
        effects += [SetState(State.FATAL, why), Tell("error", f"crash loop, giving up: {why}",
                                                     Topic.CRASH_LOOP, _loop_data(spec, True))]
        if e.leftovers:
            effects.append(Cleanup())
    elif restart:
        reason, said = e.reason, []
        if looping and not rec.crash_looping:  # said once: the mark holds until it recovers
            rec, reason = replace(rec, crash_looping=True), why
            said = [Tell("error", f"{why}; retrying every {spec.backoff.max:g}s until it "
                         f"stays up {stay_up_time(spec):g}s", Topic.CRASH_LOOP,
                         _loop_data(spec, False))]
        if rec.crash_looping and failure:  # it fails whatever we do: try at the cap only
            delay = capped_delay(spec.backoff, rand)
        else:
            delay = backoff_delay(spec.backoff, rec.consecutive, rand) if failure else 0.0
        rec = replace(rec, backoff_until=now.mono + delay)
        effects += [SetState(State.BACKOFF, f"{reason}; restarting in {delay:.2f}s"), *said,
                    Respawn(delay, clear=bool(e.leftovers))]
    else:
        effects.append(SetState(State.EXITED, e.reason))
        if e.leftovers:
            effects.append(Cleanup())
    return rec, effects


def _job_hint(spec: ServiceSpec, e: _Ending) -> Tell:
    """Said at the first of a run of clean exits before `start_time` under `restart:
    always` (each a failed start: the policy says the service should keep running)."""
    return Tell("warning", f"{e.reason} before start_time ({spec.start_time:g}s): a failed "
                "start under restart: always; a run-once job wants restart: never or "
                "on-failure (then a clean exit is `completed`)")


def _loop_data(spec: ServiceSpec, give_up: bool) -> dict[str, Any]:
    cl = spec.crash_loop
    return {"crash_looping": not give_up, "give_up": give_up,
            "max_failures": cl.max_failures, "window": cl.window,
            "retry_every": None if give_up else spec.backoff.max}


def _track(rec: ServiceRecord, pids: frozenset[int],
           why: str) -> tuple[ServiceRecord, list[Effect]]:
    rec = replace(rec, daemon_pids=pids or rec.daemon_pids)
    effects: list[Effect] = [WatchDaemons(rec.daemon_pids)]
    if rec.state is not State.DAEMONIZED:
        shown = ", ".join(map(str, sorted(rec.daemon_pids)[:SHOWN_PIDS]))
        if len(rec.daemon_pids) > SHOWN_PIDS:
            shown += ", ..."
        effects.append(SetState(State.DAEMONIZED, f"{why}; still running: pid {shown}"))
    return rec, effects
