"""What one service's lifecycle is, as a value: state, counters, failure history, the
pids it is responsible for. Pure and JSON-serialisable; the single source of a service's
snapshot view and of its part of a handoff record (detach / adopt, code reload).

The record is frozen: `lifecycle.decide` returns a new one, and `Service` replaces its
own (`dataclasses.replace`) when it changes a field, so nobody can alter a record that
was handed to them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any, Generic, TypeVar

from tui_supervisor.engine.states import State

RECENT_FAILURES = 20
"""Failures listed in the snapshot (`recent_failures`)."""
RESTART_WINDOW = 3600.0
"""Seconds `restarts_1h` counts over."""
RESTART_TIMES = 1000
"""Respawn times kept at most (bounded memory; `restarts_1h` saturates there, far above
what any backoff allows in an hour)."""


@dataclass(frozen=True, slots=True)
class ServiceRecord:
    state: State = State.STOPPED
    reason: str = ""
    state_since: float = 0.0
    """Wall-clock time of the last state change."""
    pid: int | None = None
    """The main process, while there is one."""
    pgid: int | None = None
    """Process group of the last main process (it can outlive it)."""
    started_mono: float | None = None
    started_wall: float | None = None
    spawns: int = 0
    restarts: int = 0
    """Spawns by the restart policy."""
    restart_times: tuple[float, ...] = ()
    """Monotonic times of the respawns of the last RESTART_WINDOW (`recent_times`)."""
    failures: int = 0
    consecutive: int = 0
    """Failures since the last one that came after a quiet period (backoff's count)."""
    failure_times: tuple[float, ...] = ()
    """Monotonic times of the failures the crash-loop rule can still need."""
    recent_failures: tuple[dict[str, Any], ...] = ()
    """{"t", "reason", "starting"} of the last RECENT_FAILURES failures."""
    last_exit: dict[str, Any] | None = None
    """{"pid", "code", "signal", "t", "uptime", "text"} of the last exit."""
    wanted: bool = False
    backoff_until: float | None = None
    """Monotonic time of the scheduled respawn (in `backoff`)."""
    daemon_pids: frozenset[int] = field(default_factory=frozenset)
    """What a daemonized service is watched by."""
    operator_signal: bool = False
    """The operator signalled the current process: its exit is not a failure."""
    crash_looping: bool = False
    """A crash loop was detected and the service has not stayed up `backoff.reset_after`
    since (nor been started or stopped by hand): it is retried every `backoff.max`."""
    health: str | None = None
    """What the probes say (`Service.health`): starting, ready, unready; None: no probe
    or no process."""
    ready_since: float | None = None
    """Wall-clock time the service last became ready (None while it is not)."""

    # -- handoff ----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The record's part of `Service.detach()`: every field, JSON-native (keys as
        since v1)."""
        return {f.name: _to_json(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ServiceRecord:
        """Read a `to_dict` result, also one written by an earlier version (a code
        reload execs new code with the old code's record): a field it lacks keeps its
        default; older versions kept up to 1000 failure times whatever the threshold
        (the next failure prunes them)."""
        kw = {f.name: d[f.name] for f in fields(cls) if f.name in d}
        kw["state"] = State(kw["state"])
        kw["failure_times"] = tuple(kw.get("failure_times", ()))
        kw["recent_failures"] = tuple(kw.get("recent_failures", ()))[-RECENT_FAILURES:]
        kw["daemon_pids"] = frozenset(kw.get("daemon_pids", ()))
        kw["restart_times"] = tuple(kw.get("restart_times", ()))[-RESTART_TIMES:]
        return cls(**kw)

    # -- views ------------------------------------------------------------------------
    def up(self) -> bool:
        """A main process is running (uptime counts)."""
        return self.state in (State.STARTING, State.RUNNING, State.STOPPING) and \
            self.started_mono is not None and self.pid is not None

    def view(self, now: float) -> dict[str, Any]:
        """The record's part of `Service.snapshot()`; `now` is monotonic."""
        up = self.up()
        return {
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
            "restarts_1h": len(recent_times(self.restart_times, now)),
            "failures": self.failures,
            "consecutive_failures": self.consecutive,
            "crash_looping": self.crash_looping,
            "recent_failures": list(self.recent_failures),
            "last_exit": self.last_exit,
            "backoff_remaining": max(0.0, self.backoff_until - now)
            if self.backoff_until is not None else None,
        }

    def failed(self, wall: float, reason: str, starting: bool,
               times: tuple[float, ...]) -> ServiceRecord:
        """One more failure; `times` is the pruned failure history including it."""
        note = {"t": wall, "reason": reason, "starting": starting}
        return replace(self, failures=self.failures + 1, consecutive=self.consecutive + 1,
                       failure_times=times,
                       recent_failures=(*self.recent_failures, note)[-RECENT_FAILURES:])


def recent_times(times: tuple[float, ...], now: float, window: float = RESTART_WINDOW,
                 keep: int = RESTART_TIMES) -> tuple[float, ...]:
    """The times of `times` (ascending, monotonic) within `window` seconds before `now`,
    at most the last `keep`: what a record keeps, and what `restarts_1h` counts."""
    cut = now - window
    i = 0
    while i < len(times) and times[i] <= cut:
        i += 1
    return times[i:][-keep:]


def _to_json(value: Any) -> Any:
    if isinstance(value, State):
        return value.value
    if isinstance(value, frozenset):
        return sorted(value)
    if isinstance(value, tuple):
        return list(value)
    return value


T = TypeVar("T")


class InRecord(Generic[T]):
    """A Service attribute that lives in its record (`svc.failures` is
    `svc.rec.failures`): setting it replaces the record."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, objtype: type | None = None) -> T:
        return getattr(obj.rec, self.name)

    def __set__(self, obj: Any, value: T) -> None:
        obj.rec = replace(obj.rec, **{self.name: value})
