"""Pure logic of a subscription that outlives its connection (no I/O): when to retry,
and which log lines a new subscription must replay so none is lost or shown twice.

Log positions are byte offsets in a service's output, carried across code reloads. A
live log event gives the exact offset of its first line and its size in bytes (its text
was decoded: undecodable bytes were replaced, so the text does not tell the size); the
`logs` verb gives the exact offset of every line. So the last event seen is remembered as
(offset of its first line, number of lines, where it ends), and replay starts right after
it in the history.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from tui_supervisor.engine.views import LogEvent, LogLine, SnapshotEvent


@dataclass(frozen=True, slots=True)
class Reconnect:
    """How a subscription rides out the engine going away: retry after `first_delay`,
    growing by `factor` up to `max_delay`, while the config's lock names a live process;
    give up when it does not (the engine stopped) or after `give_up_after` seconds in
    any case. A code reload's socket is back within about 0.2-0.6 s; a refused connect
    costs microseconds, so the first retries come often."""

    first_delay: float = 0.05
    factor: float = 1.5
    max_delay: float = 1.0
    give_up_after: float = 30.0
    replay_lines: int = 10_000
    """Most lines per service asked back from the engine to fill the gap."""


def delays(policy: Reconnect) -> Iterator[float]:
    """0.05, 0.075, 0.11, ... 1, 1, ... (seconds between attempts)."""
    d = policy.first_delay
    while True:
        yield d
        d = min(d * policy.factor, policy.max_delay)


@dataclass(slots=True)
class Mark:
    """The last output of one service a subscriber was given."""

    offset: int
    """Exact offset of the first line of the last log event (or the snapshot's
    `log_offset` when none came yet)."""
    lines: int = 0
    """Lines in that event (0: `offset` itself is the next line to give)."""
    end: int = 0
    """Where the next line starts (offset + size)."""
    exact: bool = True
    """`end` is known, not estimated (an engine older than the `size` field sends
    none: the text's size is the estimate, wrong where bytes were not UTF-8)."""


def _text_size(lines: list[str]) -> int:
    return sum(len(t.encode()) + 1 for t in lines)


@dataclass(slots=True)
class LogMarks:
    """Per service, how far its output went to the subscriber."""

    marks: dict[str, Mark] = field(default_factory=dict)

    def from_snapshot(self, snap: SnapshotEvent) -> None:
        """The subscriber has every line before the snapshot's `log_offset`s (a first
        snapshot, or a new subscription's once the gap is replayed)."""
        self.marks = {s["name"]: Mark(int(s.get("log_offset") or 0), 0,
                                      int(s.get("log_offset") or 0))
                      for s in snap.get("services") or [] if "name" in s}

    def saw(self, ev: LogEvent) -> None:
        """A log event was given to the subscriber."""
        off, lines, size = int(ev["offset"]), ev["lines"], ev.get("size")
        if size is None:  # an engine from before `size` (upgraded under a running one)
            self.marks[ev["service"]] = Mark(off, len(lines), off + _text_size(lines),
                                             not any("\ufffd" in t for t in lines))
        else:
            self.marks[ev["service"]] = Mark(off, len(lines), off + int(size))

    def gaps(self, snap: SnapshotEvent) -> list[str]:
        """Services that wrote more than the subscriber got before `snap` (a new
        subscription's first item) was taken."""
        out = []
        for s in snap.get("services") or []:
            m = self.marks.get(s.get("name"))
            if m is not None and (int(s.get("log_offset") or 0) != m.end or not m.exact):
                out.append(s["name"])
        return out

    def replay(self, service: str, history: list[LogLine], upto: int
               ) -> tuple[list[LogEvent], int]:
        """From the `logs` lines of `service` (oldest first), the log events to give so
        that it is complete up to offset `upto`, and how many bytes before the first
        of them could not be replayed (no longer in the engine's memory; 0 normally)."""
        m = self.marks[service]
        mine = sorted((x for x in history if x.get("service") == service),
                      key=lambda x: x["offset"])
        start = next((i + m.lines for i, x in enumerate(mine) if x["offset"] == m.offset),
                     None)
        lost = 0
        if start is None:  # the last line seen is gone from the ring: by where it ended
            start = next((i for i, x in enumerate(mine) if x["offset"] >= m.end), len(mine))
            oldest = mine[0]["offset"] if mine else upto
            lost = max(0, min(oldest, upto) - m.end)
        picked = [x for x in mine[start:] if x["offset"] < upto]
        events: list[LogEvent] = [
            {"kind": "log", "t": x["t"], "service": service, "stream": x["stream"],
             "offset": x["offset"], "lines": [x["text"]],
             "size": x.get("size", _text_size([x["text"]])), "replayed": True}
            for x in picked]
        return events, lost
