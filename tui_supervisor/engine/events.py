"""Engine events: immutable values captured when emitted, JSON-serialisable via as_dict().

Stdlib only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
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
    """Seconds from the process's death to the engine noticing (None if unknown)."""


@dataclass(frozen=True, slots=True)
class LogLines(Event):
    kind: ClassVar[str] = "log"
    service: str
    stream: str
    """"stdout" or "stderr"."""
    seq: int
    """Sequence number of the first line; the service's lines are numbered 1, 2, ..."""
    lines: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Notice(Event):
    kind: ClassVar[str] = "notice"
    level: str
    """"info", "warning" or "error"."""
    message: str
    service: str | None = None
