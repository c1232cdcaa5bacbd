"""The typed shape of everything that crosses `SupervisorAPI`: snapshots, the items of a
subscription, replies. TypedDicts, so the values stay plain JSON-native dicts (what the
control socket sends and tests read) while mypy checks both ends.

Keys a layer above the engine adds (metrics: `reliability`, `latency`, `resources`,
`incidents` per service; `latency`, `resources`, `prometheus` on the engine) are
NotRequired: an engine without that layer leaves them out. Stdlib only.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict


class LastExit(TypedDict):
    pid: int
    code: int | None
    signal: int | None
    t: float
    uptime: float | None
    text: str


class RecentFailure(TypedDict):
    t: float
    """Wall-clock time of the failure."""
    reason: str
    starting: bool
    """It failed to start (exited while `starting`)."""


class CrashLoopView(TypedDict):
    max_failures: int
    window: float
    give_up: bool


class ServiceView(TypedDict):
    """One service in a snapshot (config order)."""

    name: str
    state: str
    """A `states.State` value."""
    reason: str
    state_since: float
    pid: int | None
    daemon_pids: list[int]
    wanted: bool
    started_at: float | None
    uptime: float | None
    spawns: int
    restarts: int
    restarts_1h: NotRequired[int]
    """Respawns by the restart policy in the last hour."""
    failures: int
    consecutive_failures: int
    crash_looping: bool
    """A crash loop was detected and it has not stayed up since: retried every
    `backoff.max` (`state` is `backoff`, `starting` or `running` meanwhile)."""
    internal_errors: int
    """Exceptions inside the engine's handling of this service (each contained: logged,
    said once, the service checked against its processes)."""
    recent_failures: list[RecentFailure]
    last_exit: LastExit | None
    backoff_remaining: float | None
    log_file: str
    log_offset: int
    """Byte offset just after the last line kept: every later log event starts here or
    after."""
    command: list[str]
    cwd: str
    restart_policy: str
    crash_loop: CrashLoopView
    group: NotRequired[str | None]
    """The `replicas:` service this is a copy of (`web` for `web-2`); None: a plain one."""
    replica: NotRequired[int | None]
    """The copy's number (0-based); None for a plain service."""
    reliability: NotRequired[dict[str, Any]]
    latency: NotRequired[dict[str, Any]]
    resources: NotRequired[dict[str, Any]]
    incidents: NotRequired[dict[str, Any]]
    health: NotRequired[str | None]
    """"starting", "ready", "unready", or None (no probe, or no process) (issue 14)."""
    health_output: NotRequired[str]
    """The last probe output (at most 4 KiB)."""
    probes: NotRequired[dict[str, dict[str, Any]]]
    """Per configured probe (startup, readiness, liveness): {"kind", "passing",
    "failures" (consecutive), "last_duration", "failures_total"}."""
    ready_since: NotRequired[float | None]
    """Wall-clock time it last became ready (None while it is not)."""
    depends_on: NotRequired[list[dict[str, Any]]]
    """`[{"name", "condition", "met"}]`: its dependencies and whether each holds now."""


class EngineView(TypedDict):
    pid: int
    version: str
    config: str
    config_id: str
    host: NotRequired[str]
    """The engine's host name (`socket.gethostname()`; older engines: absent)."""
    started_at: float
    uptime: float
    reloads: int
    reload_failures: int
    config_error: NotRequired[str | None]
    """Why the last config reload was refused; None once one applied (older engines:
    absent)."""
    last_reload_seconds: float | None
    pidfd: bool
    processes: NotRequired[str]
    """How a service's processes are known: "cgroup v2 at PATH", or "marker and
    ancestry (why not cgroups)"."""
    latency: NotRequired[dict[str, Any]]
    resources: NotRequired[dict[str, Any]]
    prometheus: NotRequired[dict[str, Any]]


class Snapshot(TypedDict):
    engine: EngineView
    services: list[ServiceView]


# -- subscription items (`events.*.as_dict()`, plus the first item and a client's own) --
class StateEvent(TypedDict):
    kind: Literal["state"]
    t: float
    service: str
    old: str
    new: str
    pid: int | None
    reason: str
    wanted: bool
    crash_looping: bool


class ExitEvent(TypedDict):
    kind: Literal["exit"]
    t: float
    service: str
    pid: int
    code: int | None
    signal: int | None
    requested: bool
    failure: bool
    uptime: float
    detect_latency: float | None
    cause: Literal["exit", "daemon", "spawn"]
    """What ended: the main process, the last daemonized one, or a spawn that failed
    (pid 0, no code or signal)."""
    detail: str | None
    """The words for an exit with no status ("cannot spawn: ...")."""


class SpawnEvent(TypedDict):
    kind: Literal["spawn"]
    t: float
    service: str
    pid: int
    auto: bool
    respawn_latency: float | None


class LogEvent(TypedDict):
    kind: Literal["log"]
    t: float
    service: str
    stream: str
    """"stdout" or "stderr"."""
    offset: int
    """Byte offset of the first line in the service's output."""
    lines: list[str]
    size: int
    """Bytes the lines took (newlines included): the next line starts at offset + size."""
    replayed: NotRequired[bool]
    """Set by a reconnecting client on lines written while it was away."""


class NoticeEvent(TypedDict):
    kind: Literal["notice"]
    t: float
    level: str
    message: str
    service: str | None
    topic: str
    """An `events.Topic` value."""
    data: dict[str, Any] | None


class SnapshotEvent(TypedDict):
    """A subscription's first item (and, for a reconnecting client, the first after each
    reconnect)."""

    kind: Literal["snapshot"]
    engine: EngineView
    services: list[ServiceView]
    notices: list[NoticeEvent]
    """The engine's last notices before it, oldest first."""


class SafeModeInfo(TypedDict):
    """An engine in safe mode (reload/safe.py), as a client tells it."""

    pid: int | None
    seconds: float | None
    """How long it has been in safe mode."""
    why: str | None
    """How the new code failed."""
    services: int | None
    summary: str
    """One line: "in safe mode for 0.3 min (pid 42): the new code failed at start-up
    (why)"."""


class ConnectionEvent(TypedDict):
    """A reconnecting client's own item: its link to the engine went, came back, or was
    given up on."""

    kind: Literal["connection"]
    t: float
    state: Literal["lost", "restored", "gave_up"]
    message: str
    safe_mode: NotRequired[SafeModeInfo]
    """("lost") the engine is alive in safe mode: its new code failed at start-up."""
    pid: NotRequired[int | None]
    same_engine: NotRequired[bool]
    down: NotRequired[float]


EngineEvent = StateEvent | ExitEvent | SpawnEvent | LogEvent | NoticeEvent
EventView = EngineEvent | SnapshotEvent | ConnectionEvent
"""Any item of `SupervisorAPI.subscribe`."""


class LogLine(TypedDict):
    """One line of `SupervisorAPI.logs`."""

    service: str
    offset: int
    t: float
    stream: str
    text: str
    size: int
    """Bytes of the line in the output, newline included."""


# -- replies ----------------------------------------------------------------------------
class ServiceOutcome(TypedDict):
    """What a start, stop or restart did to one service."""

    name: str
    outcome: Literal["started", "already running", "stopped", "already stopped",
                     "restarted", "waiting", "error"]
    ok: bool
    """False: it did not happen (`error`: the spawn failed; then `reason` says why)."""
    state: str
    reason: str
    dependency_of: NotRequired[list[str]]
    """A start: this service was started because these (asked for) depend on it."""
    dependent_of: NotRequired[list[str]]
    """A stop: this service was stopped first because it depends on these (asked for)."""


class StartResult(TypedDict):
    """ok: every service asked for runs now. `started`: those a process was spawned for
    (kept for older clients); `services`: each one's outcome, in the order asked (an
    older engine leaves it out)."""

    ok: bool
    started: list[str]
    services: NotRequired[list[ServiceOutcome]]


class StopResult(TypedDict):
    ok: bool
    stopped: list[str]
    services: NotRequired[list[ServiceOutcome]]


class RestartResult(TypedDict):
    """A rolling restart (one service at a time, each up before the next) that failed
    has ok False, `error` saying why, and `untouched`: those it did not restart."""

    ok: bool
    restarted: list[str]
    services: NotRequired[list[ServiceOutcome]]
    error: NotRequired[str]
    untouched: NotRequired[list[str]]


class ScaleResult(TypedDict):
    """`scale(group, n)`: `replicas` copies now; `started`/`stopped`: the copies added
    (and started) and removed (highest-numbered first). ok False: nothing changed,
    `error` says why."""

    ok: bool
    group: str
    replicas: int
    started: list[str]
    stopped: list[str]
    error: NotRequired[str]


class ShutdownResult(TypedDict):
    """`shutdown`: the engine stops every service, then exits. `pid`: the engine's
    process (gone once the shutdown is done); `stopping`: the services that were up."""

    ok: bool
    pid: int
    stopping: list[str]
    error: NotRequired[str]


class SignalResult(TypedDict):
    ok: bool
    signal: str


class ReloadResult(TypedDict):
    """A config reload: {"ok": True, added, removed, restarted, in_place} or {"ok":
    False, "errors": [...]} (nothing changed)."""

    ok: bool
    added: NotRequired[list[str]]
    removed: NotRequired[list[str]]
    restarted: NotRequired[list[str]]
    in_place: NotRequired[list[str]]
    settings: NotRequired[list[str]]
    """The `settings` keys that changed (an older engine's reply has none)."""
    errors: NotRequired[list[str]]


class ReopenLogsResult(TypedDict):
    """`reopen_logs`: the files opened again, and why others could not be (each one
    line); ok when there are none of those."""

    ok: bool
    reopened: list[str]
    errors: list[str]


class CodeReloadResult(TypedDict):
    ok: bool
    errors: NotRequired[list[str]]
