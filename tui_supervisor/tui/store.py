"""What the UI knows about the engine, built from a snapshot and the events after it (the
`SupervisorAPI.subscribe` stream). Pure: no Textual, no I/O — the app feeds it and reads
what changed since the last paint, so a burst of events costs one repaint per tick.

Bounded everywhere: each service keeps its last `per_service` log lines, the merged view
the last `merged` lines, notices the last 200.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tui_supervisor.engine.events import exit_text

SERVICE_LINES = 5000
MERGED_LINES = 20000
TREND_POINTS = 300
"""Points kept per trend series (one per resource sample, ~1 s: 5 minutes)."""
TREND = "_trend"
"""The view key the table reads a service's trends from (its `ServiceInfo`)."""


def _trend_rings() -> dict[str, deque[float]]:
    return {"cpu": deque(maxlen=TREND_POINTS), "mem": deque(maxlen=TREND_POINTS)}


@dataclass(slots=True)
class LogLine:
    t: float
    service: str
    stream: str
    """"stdout" or "stderr"."""
    text: str
    offset: int = -1
    """Byte offset of the line in the service's output (-1 when unknown)."""


@dataclass
class ServiceInfo:
    """The latest snapshot view of one service, updated by events in between: state,
    pid, reason and last exit at once; counters and metrics only from snapshots (a
    periodic snapshot can overtake events still queued, so counting events would count
    some twice)."""

    name: str
    view: dict[str, Any] = field(default_factory=dict)
    lines: deque[LogLine] = field(default_factory=lambda: deque(maxlen=SERVICE_LINES))
    trend: dict[str, deque[float]] = field(default_factory=_trend_rings)
    """"cpu" (percent of a core) and "mem" (RSS bytes), oldest first, one point per
    resource sample (0.0 while it has no process)."""
    trend_total: int = 0
    """Points ever appended: `trend_first` is stable, so trend cells bucket alike."""
    trend_at: float | None = None
    """`sampled_at` of the newest point (a snapshot with the same sample adds none)."""
    trend_since: float | None = None
    """`sampled_at` of the first live point (back-filled history stops before it)."""
    trend_text: tuple[tuple[int, int, int], dict[str, str]] | None = None
    """The table's trend cells and what they were drawn from (total, kept, width): drawn
    again only when a point came (the table can sync a row many times a second)."""

    @property
    def trend_first(self) -> int:
        """The absolute index of the oldest point kept."""
        return self.trend_total - len(self.trend["cpu"])

    def add_point(self, resources: Mapping[str, Any] | None) -> bool:
        """One point from a snapshot's `resources` view, if it is a new sample."""
        if not resources or resources.get("sampled_at") is None or \
                resources.get("sampled_at") == self.trend_at:
            return False
        up = bool(resources.get("procs"))
        self.trend["cpu"].append(float(resources.get("cpu_percent") or 0.0) if up else 0.0)
        self.trend["mem"].append(float(resources.get("rss_bytes") or 0.0) if up else 0.0)
        self.trend_total += 1
        self.trend_at = float(resources["sampled_at"])
        if self.trend_since is None:
            self.trend_since = self.trend_at
        return True

    def backfill(self, history: Mapping[str, Any]) -> None:
        """Put the engine's sampled history (`resources.history`: "series", "interval",
        "t_last") before the live points, without the samples they already hold."""
        series = history.get("series") or {}
        cpu, mem = series.get("cpu_percent") or [], series.get("rss_bytes") or []
        procs = series.get("procs") or [1] * len(cpu)
        n = min(len(cpu), len(mem), len(procs))
        t_last, step = history.get("t_last"), float(history.get("interval") or 1.0)
        if not n or t_last is None:
            return
        old = []
        for i in range(n):
            t = float(t_last) - (n - 1 - i) * step
            if self.trend_since is not None and t > self.trend_since - step / 2:
                break  # live from here on
            up = bool(procs[-n + i]) and cpu[-n + i] is not None
            old.append((float(cpu[-n + i] or 0.0) if up else 0.0,
                        float(mem[-n + i] or 0.0) if up else 0.0))
        room = TREND_POINTS - len(self.trend["cpu"])
        for c, m in reversed(old[-room:] if room > 0 else []):
            self.trend["cpu"].appendleft(c)
            self.trend["mem"].appendleft(m)

    @property
    def state(self) -> str:
        return str(self.view.get("state", "?"))


class Store:
    def __init__(self, per_service: int = SERVICE_LINES, merged: int = MERGED_LINES) -> None:
        self.per_service = per_service
        self.engine: dict[str, Any] = {}
        self.services: dict[str, ServiceInfo] = {}
        self.merged: deque[LogLine] = deque(maxlen=merged)
        self.notices: deque[Mapping[str, Any]] = deque(maxlen=200)
        self.dirty: set[str] = set()
        """Services whose row changed since `take_dirty()`."""
        self.new_lines: list[LogLine] = []
        """Lines arrived since `take_lines()` (all services, in arrival order)."""
        self.order_changed = True
        """The set or order of services changed (a config reload): rebuild rows."""
        self.lines_total = 0

    # -- feeding ----------------------------------------------------------------------
    def load_snapshot(self, snap: Mapping[str, Any]) -> None:
        """Take a full snapshot (first item of a subscription, or a periodic refresh)."""
        self.engine = dict(snap.get("engine") or {})
        names = [s["name"] for s in snap.get("services", [])]
        if names != list(self.services):
            self.order_changed = True
            old = self.services
            self.services = {n: old.get(n) or ServiceInfo(
                n, lines=deque(maxlen=self.per_service)) for n in names}
        for s in snap.get("services", []):
            info = self.services[s["name"]]
            added = info.add_point(s.get("resources"))
            if added or {k: v for k, v in info.view.items() if k != TREND} != s:
                info.view = dict(s)
                self.dirty.add(info.name)
            info.view[TREND] = info

    def apply(self, ev: Mapping[str, Any]) -> None:
        """One event of the subscription stream."""
        kind = ev.get("kind")
        if kind == "log":
            self._add_lines(ev)
            return
        if kind == "snapshot":
            self.load_snapshot(ev)
            return
        if kind == "notice":
            self.notices.append(ev)
            self._crash_loop_over(ev)
            return
        info = self.services.get(str(ev.get("service")))
        if info is None:
            return
        v = info.view
        if kind == "state":
            v["state"], v["reason"], v["wanted"] = ev["new"], ev.get("reason", ""), \
                ev.get("wanted", v.get("wanted"))
            v["crash_looping"] = ev.get("crash_looping", v.get("crash_looping"))
            v["pid"] = ev.get("pid") if ev["new"] in ("starting", "running", "stopping",
                                                       "daemonized") else None
            v["state_since"] = ev.get("t")
            if ev["new"] == "starting" and ev.get("pid"):
                v["started_at"], v["uptime"] = ev.get("t"), 0.0
        elif kind == "exit":
            if ev.get("cause") == "spawn":
                return  # nothing ran: the engine's last_exit stays the previous one
            text = exit_text(ev.get("code"), ev.get("signal"))
            v["last_exit"] = {"pid": ev.get("pid"), "code": ev.get("code"),
                              "signal": ev.get("signal"), "t": ev.get("t"),
                              # as the engine keeps it: a daemon's own uptime is unknown
                              "uptime": None if ev.get("cause") == "daemon"
                              else ev.get("uptime"), "text": text}
        elif kind == "spawn":
            v["pid"] = ev.get("pid")
        elif kind == "health":  # the HEALTH cell at once, not at the next snapshot
            v["health"] = ev.get("health")
            if ev.get("output") is not None:
                v["health_output"] = ev.get("output")
        else:
            return
        self.dirty.add(info.name)

    def _crash_loop_over(self, ev: Mapping[str, Any]) -> None:
        """A service recovered from its crash loop while running: no state change says
        it, its notice does."""
        data = ev.get("data")
        info = self.services.get(str(ev.get("service")))
        if ev.get("topic") == "crash_loop" and isinstance(data, Mapping) and \
                data.get("crash_looping") is False and info is not None:
            info.view["crash_looping"] = False
            self.dirty.add(info.name)

    def _add_lines(self, ev: Mapping[str, Any]) -> None:
        name = str(ev.get("service"))
        info = self.services.get(name)
        t, stream = float(ev.get("t") or 0.0), str(ev.get("stream") or "stdout")
        offset = ev.get("offset", -1)
        for text in ev.get("lines") or ():
            line = LogLine(t, name, stream, text, offset)
            if info is not None:
                info.lines.append(line)
            self.merged.append(line)
            self.new_lines.append(line)
        self.lines_total += len(ev.get("lines") or ())
        if len(self.new_lines) > (self.merged.maxlen or 0):  # nobody took them: bounded
            del self.new_lines[: len(self.new_lines) - (self.merged.maxlen or 0)]

    def load_lines(self, lines: Sequence[Mapping[str, Any]]) -> None:
        """Back-fill history (`SupervisorAPI.logs`, merged by time) before live lines."""
        for d in lines:
            line = LogLine(d.get("t", 0.0), d["service"], d.get("stream", "stdout"),
                           d.get("text", ""), d.get("offset", -1))
            info = self.services.get(line.service)
            if info is not None:
                info.lines.append(line)
            self.merged.append(line)

    # -- reading ----------------------------------------------------------------------
    def take_dirty(self) -> set[str]:
        d, self.dirty = self.dirty, set()
        return d

    def take_lines(self) -> list[LogLine]:
        lines, self.new_lines = self.new_lines, []
        return lines

    def counts_by_state(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for info in self.services.values():
            out[info.state] = out.get(info.state, 0) + 1
        return out

