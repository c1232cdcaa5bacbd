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


class LogLines:
    """Lines a service printed, as read in one go. Carries the raw newline-terminated
    bytes; `lines` decodes them on first use (the engine itself never needs to)."""

    kind: ClassVar[str] = "log"
    __slots__ = ("_lines", "count", "raw", "seq", "service", "stream", "t")

    def __init__(self, t: float, service: str, stream: str, seq: int, raw: bytes,
                 count: int) -> None:
        self.t = t
        self.service = service
        self.stream = stream
        """"stdout" or "stderr"."""
        self.seq = seq
        """Sequence number of the first line; the service's lines are numbered 1, 2, ..."""
        self.raw = raw
        self.count = count
        self._lines: list[str] | None = None

    @property
    def lines(self) -> list[str]:
        if self._lines is None:
            lines = self.raw.decode("utf-8", "replace").split("\n")
            lines.pop()
            self._lines = lines
        return self._lines

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "t": self.t, "service": self.service,
                "stream": self.stream, "seq": self.seq, "lines": self.lines}

    def __repr__(self) -> str:
        return f"LogLines({self.service!r}, {self.stream!r}, seq={self.seq}, n={self.count})"


@dataclass(frozen=True, slots=True)
class Notice(Event):
    kind: ClassVar[str] = "notice"
    level: str
    """"info", "warning" or "error"."""
    message: str
    service: str | None = None


AnyEvent = Event | LogLines
"""What the bus carries."""
