"""Crash forensics: every failure (crash or failed start) kept with its exit, the uptime
before it and the last output lines of the process that failed (only what it printed
since its spawn: never an earlier process's lines); bounded in memory and appended to
`<state_dir>/incidents.jsonl`, so they survive an engine restart (even a hard kill).

`IncidentBook` holds the bounds (pure); `IncidentFile` the JSON-lines file; `Incidents`
is the Extension that feeds them from the engine's `Exited` events.
"""

from __future__ import annotations

import json
import os
import signal as _signal
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tui_supervisor.engine.api import UnknownService
from tui_supervisor.engine.events import AnyEvent, Exited, Notice, Spawned, Topic
from tui_supervisor.engine.policies import ExitInfo
from tui_supervisor.engine.runtime import make_dirs
from tui_supervisor.engine.supervisor import Extension, Supervisor

LAST_LINES = 50
"""Output lines kept with an incident."""
MAX_LINE_CHARS = 1000
"""Longer lines are cut (a line can be 64 KiB): an incident stays small."""
PER_SERVICE = 20
"""Incidents kept in memory per service ..."""
OVERALL = 200
"""... and over all services (the oldest go first)."""
FILE_NAME = "incidents.jsonl"
MAX_FILE = 1 << 20
"""Past this size the file is rotated to `incidents.jsonl.1` (one backup)."""


def signal_name(sig: int | None) -> str | None:
    if sig is None:
        return None
    try:
        return _signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def make_incident(ev: Exited, state: str, restarts: int,
                  lines: Iterable[tuple[int, float, str, str]]) -> dict[str, Any]:
    """An incident from a failure's Exited event, the state the service was in when the
    process died, and its ring's last lines (offset, time, stream, text)."""
    return {
        "t": ev.t, "service": ev.service, "pid": ev.pid, "code": ev.code,
        "signal": ev.signal, "signal_name": signal_name(ev.signal),
        # a spawn error has no code or signal: its detail says what happened
        "text": ev.detail or ExitInfo(ev.code, ev.signal).describe(), "uptime": ev.uptime,
        "cause": ev.cause, "detail": ev.detail,
        "kind": "failed start" if state == "starting" else "crash", "state": state,
        "restarts": restarts,
        "lines": [{"t": t, "stream": stream, "text": _cut(text)}
                  for _, t, stream, text in lines],
    }


def own_lines(lines: Iterable[tuple[int, float, str, str]], since: int | None,
              ev: Exited) -> list[tuple[int, float, str, str]]:
    """The lines the failing process printed: those at or past `since`, the service's log
    offset when it was spawned. A spawn that failed printed nothing. Without a known
    offset (a service spawned before this layer was attached), the lines read since the
    process started (by wall clock: the exit time less its uptime). Pure."""
    if ev.cause == "spawn":
        return []
    if since is not None:
        return [x for x in lines if x[0] >= since]
    start = ev.t - ev.uptime
    return [x for x in lines if x[1] >= start]


def _cut(text: str) -> str:
    return text if len(text) <= MAX_LINE_CHARS else text[:MAX_LINE_CHARS] + "…"


class IncidentBook:
    """The incidents kept in memory, oldest first: at most `per_service` per service and
    `overall` in all."""

    def __init__(self, per_service: int = PER_SERVICE, overall: int = OVERALL) -> None:
        self.per_service = per_service
        self.overall = overall
        self.items: list[dict[str, Any]] = []

    def add(self, inc: dict[str, Any]) -> None:
        self.items.append(inc)
        mine = [i for i, x in enumerate(self.items) if x["service"] == inc["service"]]
        if len(mine) > self.per_service:
            del self.items[mine[0]]
        if len(self.items) > self.overall:
            del self.items[0]

    def extend(self, incs: Iterable[dict[str, Any]]) -> None:
        for inc in incs:
            self.add(inc)

    def list(self, service: str | None = None, n: int | None = None) -> list[dict[str, Any]]:
        """The last `n` (all if None) incidents of `service` (all if None), newest last."""
        out = [x for x in self.items if service is None or x["service"] == service]
        return out[len(out) - n:] if n is not None and n < len(out) else out

    def services(self) -> set[str]:
        return {x["service"] for x in self.items}


class IncidentFile:
    """`incidents.jsonl`: one JSON object a line, appended with one write (a hard kill
    loses at most the line being written), rotated past `max_bytes`."""

    def __init__(self, path: Path, max_bytes: int = MAX_FILE) -> None:
        self.path = path
        self.max_bytes = max_bytes

    @property
    def backup(self) -> Path:
        return self.path.with_name(self.path.name + ".1")

    def append(self, inc: dict[str, Any]) -> None:
        """Raises OSError (a full or read-only disk): the caller decides."""
        data = (json.dumps(inc, separators=(",", ":")) + "\n").encode()
        make_dirs(self.path.parent)  # the state dir: 0700 if we make it
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            size = 0
        if size and size + len(data) > self.max_bytes:
            os.replace(self.path, self.backup)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)

    def load(self) -> list[dict[str, Any]]:
        """Every readable incident of the backup then the file, oldest first; lines that
        do not parse (a write cut by a crash, a stray edit) are skipped."""
        out: list[dict[str, Any]] = []
        for p in (self.backup, self.path):
            out.extend(read_jsonl(p, 2 * self.max_bytes))
        return out


def read_jsonl(path: Path, limit: int) -> list[dict[str, Any]]:
    """The incidents in the last `limit` bytes of `path` ([] if it cannot be read)."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - limit))
            data = f.read()
            if size > limit:  # starts inside a line
                data = data[data.find(b"\n") + 1:]
    except OSError:
        return []
    out = []
    for line in data.splitlines():
        try:
            inc = json.loads(line)
        except ValueError:
            continue
        if isinstance(inc, dict) and isinstance(inc.get("service"), str) \
                and isinstance(inc.get("t"), int | float):
            out.append(inc)
    return out


class Incidents(Extension):
    """Records an incident at each failure; service_view {"count", "last": {time, text}};
    query("list", {"service", "n"})."""

    name = "incidents"

    def __init__(self, per_service: int = PER_SERVICE, overall: int = OVERALL,
                 max_file: int = MAX_FILE) -> None:
        self.book = IncidentBook(per_service, overall)
        self.max_file = max_file
        self._adopted = False
        self._write_failed = False
        self.spawn_offsets: dict[str, int] = {}
        """service -> its log offset when its current process was spawned."""

    @classmethod
    def attach(cls, sup: Supervisor, **kw: Any) -> Incidents:
        ext = cls(**kw)
        sup.extensions.append(ext)
        return ext

    @property
    def file(self) -> IncidentFile:
        assert self.sup is not None
        return IncidentFile(self.sup.config.settings.state_dir / FILE_NAME, self.max_file)

    def start(self, sup: Supervisor) -> None:
        """Load what the file holds, unless continuing from a handoff record."""
        if self._adopted:  # the predecessor's list is newer than the file (failed writes)
            return
        seen = {_key(x) for x in self.book.items}
        recorded = self.book.items
        self.book.items = []
        self.book.extend(x for x in self.file.load() if _key(x) not in seen)
        self.book.extend(recorded)

    def on_event(self, ev: AnyEvent) -> None:
        # Listeners run at emit time: the service is still in the state it died in,
        # and the engine drained its pipes before emitting (its last lines are in).
        if self.sup is None:
            return
        if isinstance(ev, Spawned):
            # emitted before the loop reads the new pipes: whatever comes next is its own
            spawned = self.sup.services.get(ev.service)
            if spawned is not None:
                self.spawn_offsets[ev.service] = spawned.ring.next_offset
            return
        if not (isinstance(ev, Exited) and ev.failure):
            return
        svc = self.sup.services.get(ev.service)
        if svc is None:
            return
        lines = own_lines(svc.ring.tail(LAST_LINES), self.spawn_offsets.get(ev.service), ev)
        inc = make_incident(ev, svc.state.value, svc.restarts, lines)
        self.book.add(inc)
        try:
            self.file.append(inc)
            self._write_failed = False
        except OSError as e:
            if not self._write_failed:
                self._write_failed = True
                self.sup.bus.emit(Notice(time.time(), "error", f"cannot write incidents to "
                                         f"{self.file.path}: {e.strerror or e}",
                                         topic=Topic.METRICS))

    def service_view(self, service: str) -> dict[str, Any]:
        mine = self.book.list(service)
        if not mine:
            return {}
        return {"count": len(mine), "last": {"time": mine[-1]["t"], "text": mine[-1]["text"]}}

    def query(self, what: str, args: dict[str, Any]) -> Any:
        if what != "list":
            raise ValueError(f"incidents: no query {what!r} (known: list)")
        service, n = args.get("service"), args.get("n")
        if service is not None and not isinstance(service, str):
            raise ValueError("service: expected a name or null")
        if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 0):
            raise ValueError("n: expected a count >= 0 or null")
        if service is not None and service not in self.book.services() and (
                self.sup is None or service not in self.sup.services):
            raise UnknownService(service)
        return self.book.list(service, n)

    def detach(self) -> dict[str, Any]:
        return {"items": list(self.book.items), "spawn_offsets": dict(self.spawn_offsets)}

    def adopt(self, record: dict[str, Any]) -> None:
        self.book.items = []
        self.book.extend(record.get("items", []))
        offsets = record.get("spawn_offsets")
        if isinstance(offsets, dict):  # (an older engine's record has none)
            self.spawn_offsets = {k: v for k, v in offsets.items()
                                  if isinstance(k, str) and isinstance(v, int)}
        self._adopted = True


def _key(inc: dict[str, Any]) -> tuple[Any, ...]:
    return (inc.get("t"), inc.get("service"), inc.get("pid"))
