"""Engine events: immutable values captured when emitted, JSON-serialisable via as_dict().

Stdlib only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any, ClassVar


@dataclass(frozen=True, slots=True)
class Event:
    kind: ClassVar[str] = "event"
    t: float
    """Wall-clock time (time.time()) of the event."""

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["kind"] = self.kind
        return d


@dataclass(frozen=True, slots=True)
class StateChanged(Event):
    kind: ClassVar[str] = "state"
    service: str
    old: str
    new: str
    pid: int | None
    reason: str
    """Why, in words: "spawned", "exit code 1", "crash loop: 5 failures in 60s", ..."""
    wanted: bool = False
    """Whether the operator (or autostart) wants the service up, as of this change."""
    crash_looping: bool = False
    """The service is marked crash-looping (retried every `backoff.max`), as of this
    change."""


@dataclass(frozen=True, slots=True)
class Exited(Event):
    kind: ClassVar[str] = "exit"
    service: str
    pid: int
    code: int | None
    signal: int | None
    requested: bool
    """The operator or a config change asked for this stop."""
    failure: bool
    uptime: float
    """Seconds the process had been up."""
    detect_latency: float | None = None
    """Seconds from the process's death to the engine noticing. Known only for deaths the
    engine caused with SIGKILL (sent → observed); None otherwise (Linux keeps no death
    time a supervisor can read)."""
    cause: str = "exit"
    """What ended: "exit" (the main process), "daemon" (the last process of a daemonized
    service; `pid` is that process, `uptime` the service's since its spawn) or "spawn"
    (the process could not be started: `pid` 0, no code or signal, see `detail`)."""
    detail: str | None = None
    """In words, when code and signal cannot say it ("cannot spawn: ...")."""


@dataclass(frozen=True, slots=True)
class Spawned(Event):
    kind: ClassVar[str] = "spawn"
    service: str
    pid: int
    auto: bool
    """A respawn by the restart policy (not a start asked for)."""
    respawn_latency: float | None = None
    """For a respawn: seconds from the exit being observed to this spawn, backoff delay
    excluded (the supervisor's own cost: leftover cleanup, fork+exec)."""


@dataclass(frozen=True, slots=True)
class HealthChanged(Event):
    """A service's health moved (issue 14: probes). `health` is what `Service.health`
    says now."""

    kind: ClassVar[str] = "health"
    service: str
    health: str | None
    """"starting" (a startup probe has not passed yet), "ready", "unready", or None (no
    probe configured, or no process)."""
    probe: str = ""
    """The probe whose result moved it: "startup", "readiness", "liveness" ("" if none)."""
    output: str = ""
    """The probe's last output or error, in words (at most 4 KiB)."""


class LogLines:
    """Output a service printed, as read in one go: complete lines, newline-terminated,
    as the segments the engine got them in. `raw`, `lines` and `count` are computed on
    first use (the engine itself never needs them)."""

    kind: ClassVar[str] = "log"
    __slots__ = ("_lines", "_raw", "offset", "segments", "service", "size", "stream", "t")

    def __init__(self, t: float, service: str, stream: str, offset: int,
                 segments: Sequence[bytes | memoryview], size: int) -> None:
        self.t = t
        self.service = service
        self.stream = stream
        """"stdout" or "stderr"."""
        self.offset = offset
        """Byte offset of the first line in the service's output (both streams, in the
        order read): a client that saw offsets up to N missed nothing before N."""
        self.segments = segments
        self.size = size
        self._raw: bytes | None = None
        self._lines: list[str] | None = None

    @property
    def raw(self) -> bytes:
        if self._raw is None:
            self._raw = b"".join(self.segments)
        return self._raw

    @property
    def lines(self) -> list[str]:
        if self._lines is None:
            lines = self.raw.decode("utf-8", "replace").split("\n")
            lines.pop()
            self._lines = lines
        return self._lines

    @property
    def count(self) -> int:
        return self.raw.count(b"\n")

    def as_dict(self) -> dict[str, Any]:
        """The wire form (`views.LogEvent`): `size` is the bytes the lines took in the
        output, so a client knows where the next line starts without re-encoding text
        (undecodable bytes were replaced when decoding)."""
        return {"kind": self.kind, "t": self.t, "service": self.service,
                "stream": self.stream, "offset": self.offset, "lines": self.lines,
                "size": self.size}

    def __repr__(self) -> str:
        return f"LogLines({self.service!r}, {self.stream!r}, offset={self.offset}, " \
            f"size={self.size})"


class Topic(StrEnum):
    """What a notice is about, for clients to act on (the message is for people: its
    wording may change, the topic and `data` do not)."""

    GENERAL = "general"
    CONFIG_CHANGED = "config_changed"
    """A watched config file changed: a reload follows. data: {"files": [names]}."""
    CONFIG_RELOADED = "config_reloaded"
    """data: {"added", "removed", "restarted", "in_place": [names], "settings": [keys]}."""
    SCALED = "scaled"
    """A replica group was scaled. data: {"group", "replicas", "started", "stopped"}."""
    CONFIG_INVALID = "config_invalid"
    """The config was not reloaded, nothing changed. data: {"errors": [str]}."""
    CODE_RELOADED = "code_reloaded"
    """A new image carries on. data: {"pid", "services", "pipes_unread_ms",
    "safe_mode": {"seconds", "why"} | None}."""
    CODE_REFUSED = "code_refused"
    """The new code failed its check, nothing changed. data: {"errors": [str]}."""
    SOURCE_WATCH = "source_watch"
    """The supervisor's own source is not followed (saves do not reload the code)."""
    CRASH_LOOP = "crash_loop"
    """A crash loop was detected, or is over. data: {"crash_looping": bool, "give_up":
    bool, ...}: crash_looping true = it is retried every backoff.max (its `backoff` state
    change says the same); give_up true = it went `fatal` (`crash_loop.give_up`); both
    false = it stayed up long enough and recovered."""
    SPAWN_FAILED = "spawn_failed"
    LIMIT_EXCEEDED = "limit_exceeded"
    """A service went over a resource limit and is restarted. data: {"limit", "value"}."""
    PROBE_FAILED = "probe_failed"
    """A liveness probe failed (or a startup probe ran out of its budget): the service
    is restarted. data: {"reason"}."""
    STOP_FAILED = "stop_failed"
    """Processes of a service outlived its stop (SIGKILL included)."""
    SUBSCRIBER_DROPPED = "subscriber_dropped"
    """This subscriber fell too far behind: its stream ends here."""
    LEFTOVERS = "leftovers"
    """A dead engine's processes found / stopped. data: {"pids": [int]} (or "alive")."""
    LOG_WRITE = "log_write"
    """A service's log file cannot be written (or reopened). data: {"path"}."""
    DISK_FULL = "disk_full"
    """A service's log file cannot be written: the disk is full (or the quota reached).
    Said once until a write works again (then `log_resumed`). data: {"path"}."""
    LOG_RESUMED = "log_resumed"
    """A log file that could not be written (`disk_full`, `log_write`) is written again.
    data: {"path", "dropped": lines not written meanwhile}."""
    LOG_ROTATION = "log_rotation"
    STATE_FILE = "state_file"
    PLATFORM = "platform"
    """A kernel feature is missing (subreaper, pidfd)."""
    METRICS = "metrics"
    """Serving /metrics, sampling resources or keeping incidents failed."""
    INTERNAL = "internal"
    """An exception inside the engine (a service's handler, a listener, an extension), or
    a state the invariant sweep found not to match the processes. The service is checked
    against its processes again and carries on; the traceback is in the engine's log.
    data: {"where": str, "error": str | None, "repairs": [str]}."""
    CONTROL = "control"
    """A control-socket request failed inside the engine."""
    REPLAY_GAP = "replay_gap"
    """(From a reconnecting client, not the engine) output written while it was away is
    not all replayed. data: {"bytes": int} when known."""


@dataclass(frozen=True, slots=True)
class Notice(Event):
    """Something the operator should read. `message` is the text consoles print; `topic`
    and `data` (JSON-native) are what clients act on."""

    kind: ClassVar[str] = "notice"
    level: str
    """"info", "warning" or "error"."""
    message: str
    service: str | None = None
    topic: str = Topic.GENERAL
    data: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "t": self.t, "level": self.level, "message": self.message,
                "service": self.service, "topic": str(self.topic),
                "data": None if self.data is None else dict(self.data)}

    def as_record(self) -> list[Any]:
        """The form a detach record keeps (`from_record` reads this and the older
        `[t, level, message, service]` of an engine before topics)."""
        return [self.t, self.level, self.message, self.service, str(self.topic), self.data]

    @classmethod
    def from_record(cls, rec: Sequence[Any]) -> Notice:
        t, level, message, service, *rest = rec
        topic = str(rest[0]) if rest else Topic.GENERAL
        data = rest[1] if len(rest) > 1 and isinstance(rest[1], dict) else None
        return cls(t, level, message, service, topic, data)


def exit_text(code: int | None, signal: int | None, detail: str | None = None) -> str:
    """An exit in words: "exit code 3", "killed by SIGKILL", or the `detail` an exit
    event carries when there was no process ("cannot spawn: ..."). `ExitInfo.describe`
    and the clients word exits with this."""
    if detail:
        return detail
    if signal is not None:
        import signal as _signal

        try:
            return f"killed by {_signal.Signals(signal).name}"
        except ValueError:
            return f"killed by signal {signal}"
    if code is None:
        return "exited (status unknown: not our child)"
    return f"exit code {code}"


AnyEvent = Event | LogLines
"""What the bus carries."""
