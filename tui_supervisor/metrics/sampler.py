"""Resource sampling (docs/ARCHITECTURE.md §7): CPU, memory, fds, threads of each service's whole
process tree and of the engine itself, event-loop lag, log volume; with a history ring
per series that a code reload carries over.

Threads: every tick the event loop takes a cheap copy of what it owns (pids, log
offsets) and hands it to one worker thread, which does all the /proc reading and hands a
result back with `call_soon_threadsafe`; the loop never waits for /proc. One pass over
/proc per tick reads every `/proc/PID/stat` (one read gives ppid, start time, CPU ticks,
threads, RSS), builds the pid -> children map from it, and walks each service's tree
from its main pid, its daemon pids, and orphans that carry its marker. Only fds cost a
second call (a listdir of /proc/PID/fd) per process.

Why not psutil.Process per pid: the tree walk needs every process's stat anyway, and
psutil would read the same file again (plus status and statm) through a few layers of
Python per call; the per-pid cache below does what a cached, primed psutil.Process does
(CPU deltas between ticks, pid reuse caught by the start time). See BENCHMARKS.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tui_supervisor.engine.events import AnyEvent, Exited, Notice, Spawned, Topic
from tui_supervisor.engine.supervisor import Extension, Supervisor
from tui_supervisor.metrics.history import (
    DEFAULT_POINTS,
    Downsampler,
    History,
    LagWindow,
    ResettableSum,
)
from tui_supervisor.metrics.latency import Histogram

HZ = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
LAG_PERIOD = 0.1
"""Seconds between loop-lag probes."""
LAG_WINDOW = 60.0
SERVICE_SERIES = ("cpu_percent", "rss_bytes", "procs")
PROBE_PREFIX = "probe_"
"""Per-probe series (a service with probes): `probe_<name>_seconds` (the mean duration
of the checks that finished in the tick, else as last measured; None without a
process) and `ready` (1 while the
readiness probe passes, 0 while it does not, None without a process)."""
COARSE = 10
"""Ticks folded into one point of the coarse rings (`coarse: true` in a history query):
as many points as the fine rings, 10x the time (100 minutes at one sample a second),
for the charts' 1 hour and "all" windows."""
MARKS = 256
"""Restart / failure marks kept per service (bounded like the rings; older ones are
trimmed to the ring's time span on every query)."""
ENGINE_SERIES = ("cpu_percent", "rss_bytes", "loop_lag", "log_bytes_per_s")


@dataclass(frozen=True, slots=True)
class Job:
    """What the loop hands the worker: copies, never live engine objects."""

    services: tuple[tuple[str, tuple[int, ...]], ...]
    """(service, roots: main pid then daemon pids)."""
    markers: dict[str, str]
    """marker -> service, to attribute orphans reparented to the engine."""


@dataclass(slots=True)
class Tree:
    procs: int = 0
    ticks: int = 0
    """CPU ticks used since the last tick by processes seen then too."""
    new_ticks: int = 0
    """Positive CPU tick deltas (first sight: all its ticks) for the monotonic counter."""
    rss: int = 0
    fds: int = 0
    threads: int = 0


@dataclass(slots=True)
class Result:
    mono: float
    wall: float
    dt: float | None
    """Seconds since the previous scan (None on the first)."""
    services: dict[str, Tree] = field(default_factory=dict)
    engine: Tree = field(default_factory=Tree)
    engine_ticks: int = 0
    totals: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    roots: dict[str, tuple[int, ...]] = field(default_factory=dict)
    """The job's roots per service: a limit acts only on the processes it measured."""


def _stat(pid: int) -> list[bytes] | None:
    """Fields of /proc/PID/stat from field 3 (state) on, or None if it is gone."""
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY)
    except OSError:
        return None
    try:
        data = os.read(fd, 1024)
    except OSError:
        return None
    finally:
        os.close(fd)
    return data[data.rfind(b")") + 2:].split() if data else None


def _fds(pid: int) -> int:
    """Open fds of `pid`; 0 if it is gone or not ours to look at."""
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def _marker(pid: int) -> str | None:
    from tui_supervisor.engine.proc import read_marker

    return read_marker(pid)


class Scanner:
    """The worker thread's side: one pass over /proc per call. Keeps, per process (pid +
    start time, so a reused pid is a new process), the CPU ticks seen last time, and per
    service the monotonic total of CPU ticks."""

    def __init__(self) -> None:
        self.me = os.getpid()
        self.seen: dict[tuple[int, int], int] = {}
        """(pid, start time) -> CPU ticks at the last scan."""
        self.totals: dict[str, int] = {}
        """service -> CPU ticks used in all, never decreasing."""
        self.owners: dict[tuple[int, int], str | None] = {}
        """Orphans of the engine (pid, start time) -> the service their marker names."""
        self.last_mono: float | None = None
        self.lock = threading.Lock()

    def scan(self, job: Job) -> Result:
        t0 = time.perf_counter()
        stats: dict[int, list[bytes]] = {}
        kids: defaultdict[int, list[int]] = defaultdict(list)
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            pid = int(name)
            f = _stat(pid)
            if f is None or f[0] == b"Z":
                continue
            stats[pid] = f
            kids[int(f[1])].append(pid)
        mono, wall = time.monotonic(), time.time()
        roots: dict[str, list[int]] = {name: list(r) for name, r in job.services}
        claimed = {p for r in roots.values() for p in r}
        orphans = {}
        for pid in kids.get(self.me, ()):
            if pid not in claimed:
                key = (pid, int(stats[pid][19]))
                if key not in self.owners:
                    marker = _marker(pid)
                    self.owners[key] = job.markers.get(marker) if marker else None
                orphans[key] = self.owners[key]
                if orphans[key] in roots:
                    roots[orphans[key]].append(pid)  # type: ignore[index]
        self.owners = orphans
        with self.lock:
            res = Result(mono, wall, mono - self.last_mono if self.last_mono else None,
                         roots=dict(job.services))
            seen: dict[tuple[int, int], int] = {}
            visited: set[int] = {self.me}
            for name, start in roots.items():
                tree = res.services[name] = Tree()
                todo = [p for p in start if p in stats]
                while todo:
                    pid = todo.pop()
                    if pid in visited:
                        continue
                    visited.add(pid)
                    self._add(tree, pid, stats[pid], seen)
                    todo.extend(kids.get(pid, ()))
                self.totals[name] = self.totals.get(name, 0) + tree.new_ticks
            own = stats.get(self.me)
            if own is not None:
                self._add(res.engine, self.me, own, seen)
                res.engine_ticks = int(own[11]) + int(own[12])
            self.seen = seen
            self.totals = {n: self.totals[n] for n in roots}
            res.totals = dict(self.totals)
            self.last_mono = mono
        res.seconds = time.perf_counter() - t0
        return res

    def _add(self, tree: Tree, pid: int, f: list[bytes],
             seen: dict[tuple[int, int], int]) -> None:
        key = (pid, int(f[19]))
        ticks = int(f[11]) + int(f[12])
        prev = self.seen.get(key)
        seen[key] = ticks
        if prev is not None:
            tree.ticks += max(0, ticks - prev)
        tree.new_ticks += max(0, ticks - (prev or 0))
        tree.procs += 1
        tree.threads += int(f[17])
        tree.rss += int(f[21]) * PAGE
        tree.fds += _fds(pid)

    def to_dict(self) -> dict[str, Any]:
        with self.lock:
            return {"seen": [[p, s, t] for (p, s), t in self.seen.items()],
                    "totals": dict(self.totals)}

    def load(self, d: dict[str, Any]) -> None:
        self.seen = {(p, s): t for p, s, t in d["seen"]}
        self.totals = dict(d["totals"])


def _buckets(h: Histogram) -> dict[str, Any]:
    """A histogram's buckets only (the snapshot's histogram shape, no percentiles)."""
    return {"buckets": list(h.buckets), "counts": list(h.counts), "sum": h.sum,
            "count": h.count}


def _mb(n: int) -> str:
    return f"{n / (1 << 20):.0f} MB"


def _tree_view(tree: Tree, dt: float | None, total: int, wall: float) -> dict[str, Any]:
    return {"procs": tree.procs,
            "cpu_percent": 100.0 * tree.ticks / HZ / dt if dt else 0.0,
            "cpu_seconds_total": total / HZ, "rss_bytes": tree.rss, "fds": tree.fds,
            "threads": tree.threads, "sampled_at": wall}


class ResourceSampler(Extension):
    """Samples every `interval` seconds (see the module doc). Snapshot: each service gets
    `sampler.resources`, the engine `sampler.resources`; `query("history", ...)`."""

    name = "resources"

    def __init__(self, interval: float = 1.0, points: int = DEFAULT_POINTS) -> None:
        self.interval = interval
        self.points = points
        self.scanner = Scanner()
        self.history: dict[str, History] = {}
        self.engine_history = History(interval, points)
        self.views: dict[str, dict[str, Any]] = {}
        self.engine: dict[str, Any] = {}
        self.lags = LagWindow(LAG_WINDOW)
        self.lag_histogram = Histogram()
        """Every lag probe since the engine started (kept across a code reload): the
        buckets Prometheus computes any quantile over any window from."""
        self.log_bytes = ResettableSum()
        self.log_dropped = ResettableSum()
        self.skipped = 0
        """Ticks skipped because the previous scan was still running."""
        self._sup: Supervisor | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._timers: list[asyncio.Handle | None] = [None, None]
        self._busy = False
        self._log_at: tuple[float, float] | None = None
        self._log_view: dict[str, Any] = {}
        self._last_apply: float | None = None
        self._failed = False
        self.coarse: dict[str, History] = {}
        """service -> its rings at COARSE x the interval (same length as `history`)."""
        self._folds: dict[str, Downsampler] = {}
        self.marks: dict[str, deque[tuple[float, str]]] = {}
        """service -> (wall time, "restart" | "failure"), oldest first."""
        self._probe_seen: dict[tuple[str, str], tuple[float, int]] = {}
        """(service, probe) -> (duration sum, checks) at the last tick."""
        self._probe_last: dict[tuple[str, str], float] = {}
        """(service, probe) -> the mean duration of the last tick that had checks: a
        probe checks every few seconds, the rings tick every second, and a chart of
        the duration "as last measured" reads better than a comb of gaps."""

    @classmethod
    def attach(cls, sup: Supervisor, interval: float | None = None) -> ResourceSampler:
        s = cls(sup.config.settings.sample_interval if interval is None else interval)
        sup.extensions.append(s)
        return s

    # -- lifecycle (loop thread) --------------------------------------------------------
    def start(self, sup: Supervisor) -> None:
        self._sup = sup
        self._loop = loop = asyncio.get_running_loop()
        self._busy = False
        self._thread = threading.Thread(target=self._work, name="sampler", daemon=True)
        self._thread.start()
        self._next = loop.time()
        self._timers[0] = loop.call_soon(self._guarded, self._tick)
        self._lag_due = loop.time() + LAG_PERIOD
        self._timers[1] = loop.call_at(self._lag_due, self._lag_probe)

    def stop(self) -> None:
        for h in self._timers:
            if h is not None:
                h.cancel()
        self._timers = [None, None]
        self._sup = None
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join(5.0)
            self._thread = None

    def _guarded(self, fn: Callable[..., None], *args: Any) -> None:
        """Run a loop callback of the sampler through the engine's guard: an exception
        is logged and said once, and sampling goes on (both re-arm before they can
        fail)."""
        if self._sup is not None:
            self._sup.guard("resource sampler", fn, *args)

    def _lag_probe(self) -> None:
        assert self._loop is not None
        now = self._loop.time()
        self.lags.add(now, now - self._lag_due)
        self.lag_histogram.observe(max(0.0, now - self._lag_due))
        self._lag_due = now + LAG_PERIOD
        self._timers[1] = self._loop.call_at(self._lag_due, self._lag_probe)

    def _tick(self) -> None:
        sup, loop = self._sup, self._loop
        assert sup is not None and loop is not None
        now = loop.time()
        self._next = max(self._next + self.interval, now + self.interval / 2)
        self._timers[0] = loop.call_at(self._next, self._guarded, self._tick)
        self._count_logs(now)
        if self._busy:
            self.skipped += 1
            return
        self._busy = True
        services = tuple(
            (s.name, tuple(p for p in (s.pid, *sorted(s.daemon_pids)) if p is not None))
            for s in sup.services.values())
        self._jobs.put(Job(services, {s.marker: s.name for s in sup.services.values()}))

    def _count_logs(self, now: float) -> None:
        """Log bytes (every service's output offset) and dropped lines, from counters the
        engine keeps (loop thread). A line is dropped when its write to the service's log
        file failed (the only path by which the engine loses a line from a log file; it
        still reaches the ring and subscribers). Lines the headless console skips when
        the terminal falls behind are not counted: the console reports those itself."""
        assert self._sup is not None
        svcs = self._sup.services.values()
        total = self.log_bytes.update({s.name: s.ring.next_offset for s in svcs})
        dropped = self.log_dropped.update({s.name: s.log_lines_dropped for s in svcs})
        rate = None
        if self._log_at is not None and now > self._log_at[0]:
            rate = (total - self._log_at[1]) / (now - self._log_at[0])
        self._log_at = (now, total)
        self._log_view = {"log_bytes_total": int(total), "log_bytes_per_s": rate,
                          "log_lines_dropped": int(dropped)}

    def on_event(self, ev: AnyEvent) -> None:
        """Restarts (a respawn by the policy) and failures (an exit that counts as one),
        for the marks on the detail charts' time line."""
        if isinstance(ev, Spawned) and ev.auto:
            kind = "restart"
        elif isinstance(ev, Exited) and ev.failure:
            kind = "failure"
        else:
            return
        ring = self.marks.get(ev.service)
        if ring is None:
            ring = self.marks[ev.service] = deque(maxlen=MARKS)
        ring.append((ev.t, kind))

    def _record_coarse(self, name: str, wall: float, values: dict[str, Any]) -> None:
        fold = self._folds.get(name)
        if fold is None:
            fold = self._folds[name] = Downsampler(COARSE, lows=("ready",))
        folded = fold.add(values)
        if folded is not None:
            h = self.coarse.get(name)
            if h is None:
                h = self.coarse[name] = History(self.interval * COARSE, self.points)
            h.record(wall, folded)

    def _probe_values(self, name: str) -> dict[str, float | None]:
        """This tick's probe series of `name` (loop thread): each probe's mean check
        duration since the last tick (from the engine's per-probe histogram sums), and
        readiness. Empty for a service without probes."""
        svc = self._sup.services.get(name) if self._sup is not None else None
        if svc is None:
            return {}
        out: dict[str, float | None] = {}
        for probe, st in svc.probe_stats.items():
            h = st.get("duration") or {}
            total, count = float(h.get("sum", 0.0)), int(sum(h.get("counts", ())))
            # first sight (a new probe, or just adopted): no delta yet; fewer checks than
            # last time: another kind of probe under this name started counting again
            prev_total, prev_count = self._probe_seen.get((name, probe), (total, count))
            if count < prev_count:
                prev_total, prev_count = 0.0, 0
            self._probe_seen[(name, probe)] = (total, count)
            n = count - prev_count
            if n:
                self._probe_last[(name, probe)] = (total - prev_total) / n
            out[f"{PROBE_PREFIX}{probe}_seconds"] = (
                self._probe_last.get((name, probe)) if svc.pid is not None else None)
        if svc.spec.health.readiness is not None:
            ready = svc.ready if svc.pid is not None else None
            out["ready"] = None if ready is None else float(ready)
        return out

    # -- worker thread ----------------------------------------------------------------
    def _work(self) -> None:
        loop = self._loop
        assert loop is not None
        while (job := self._jobs.get()) is not None:
            try:
                res: Result | BaseException = self.scanner.scan(job)
            except Exception as e:  # a bug must not kill sampling for ever
                res = e
            try:
                loop.call_soon_threadsafe(self._guarded, self._apply, res)
            except RuntimeError:  # the loop is closed
                return

    # -- results (loop thread) --------------------------------------------------------
    def _apply(self, res: Result | BaseException) -> None:
        self._busy = False
        if self._sup is None:
            return
        if isinstance(res, BaseException):
            if not self._failed:  # say it once; sampling goes on at the next tick
                self._failed = True
                self._sup.bus.emit(Notice(time.time(), "error", "resource sampling failed: "
                                          f"{type(res).__name__}: {res}",
                                          topic=Topic.METRICS))
            return
        self._failed = False
        for name, tree in res.services.items():
            view = self.views[name] = _tree_view(tree, res.dt, res.totals[name], res.wall)
            up = tree.procs > 0
            h = self.history.get(name)
            if h is None:
                h = self.history[name] = History(self.interval, self.points)
            values = {"cpu_percent": view["cpu_percent"] if up else None,
                      "rss_bytes": tree.rss if up else None, "procs": tree.procs,
                      **self._probe_values(name)}
            h.record(res.wall, values)
            self._record_coarse(name, res.wall, values)
            self._enforce(name, tree, res.roots.get(name, ()))
        for gone in set(self.history) - set(res.services):
            self.history.pop(gone)
            self.views.pop(gone, None)
            self.marks.pop(gone, None)
            self.coarse.pop(gone, None)
            self._folds.pop(gone, None)
        for key in [k for k in self._probe_seen if k[0] not in res.services]:
            del self._probe_seen[key]
            self._probe_last.pop(key, None)
        eng = _tree_view(res.engine, res.dt, res.engine_ticks, res.wall)
        worst = self.lags.max(since=self._last_apply)
        self._last_apply = self._loop.time() if self._loop else None
        self.engine = {
            "cpu_percent": eng["cpu_percent"], "cpu_seconds_total": eng["cpu_seconds_total"],
            "rss_bytes": eng["rss_bytes"], "fds": eng["fds"], "threads": eng["threads"],
            "loop_lag_p99": self.lags.p99(), "loop_lag_max": self.lags.max(),
            "loop_lag_histogram": _buckets(self.lag_histogram),
            **self._log_view, "sample_seconds": res.seconds,
            "sample_interval": self.interval}
        self.engine.setdefault("log_bytes_per_s", None)
        self.engine_history.record(res.wall, {
            "cpu_percent": eng["cpu_percent"], "rss_bytes": eng["rss_bytes"],
            "loop_lag": worst, "log_bytes_per_s": self.engine.get("log_bytes_per_s")})

    def _enforce(self, name: str, tree: Tree, roots: tuple[int, ...]) -> None:
        """`limits.memory`: a tree over it is ended (a failure; the restart policy
        applies), if it is still the one measured (not respawned since)."""
        assert self._sup is not None
        svc = self._sup.services.get(name)
        limit = svc.spec.limits.memory if svc is not None else None
        if svc is None or limit is None or tree.rss <= limit or not roots:
            return
        now = tuple(p for p in (svc.pid, *sorted(svc.daemon_pids)) if p is not None)
        if now == roots:
            svc.end_for(f"memory limit {_mb(limit)} exceeded: {_mb(tree.rss)}",
                        {"limit": "memory", "max": limit, "value": tree.rss})

    # -- Extension --------------------------------------------------------------------
    def service_view(self, service: str) -> dict[str, Any]:
        return dict(self.views.get(service, {}))

    def engine_view(self) -> dict[str, Any]:
        return dict(self.engine)

    def query(self, what: str, args: dict[str, Any]) -> Any:
        """`history` {service: name or None (the engine), series: [names] or None (all)}
        -> {"series": {name: [values oldest -> newest, None = gap]}, "interval",
        "t_last" (wall time of the newest value), and for a service "marks": [[wall
        time, "restart" | "failure"], ...] within the rings' span, oldest first}.
        `coarse: true` (a service): the same from the coarse rings (COARSE ticks a
        point, each the maximum of its ticks; `ready` the minimum). A
        service with probes also has `probe_<name>_seconds` and `ready` series (see
        PROBE_PREFIX); they are in "all", and may be asked for by name."""
        if what != "history":
            return super().query(what, args)
        service = args.get("service")
        coarse = bool(args.get("coarse")) and service is not None
        rings = self.coarse if coarse else self.history
        if service is None:
            h = self.engine_history
        elif service in rings:
            h = rings[service]
        elif service in self.history or (self._sup is not None
                                         and service in self._sup.services):
            # not sampled yet (or not for COARSE ticks yet)
            h = History(self.interval * (COARSE if coarse else 1), self.points)
        else:
            raise ValueError(f"sampler: no service {service!r}")
        names = args.get("series")
        allowed: tuple[str, ...] = ENGINE_SERIES
        if service is not None:
            allowed = SERVICE_SERIES + tuple(
                n for n in h.series if n.startswith(PROBE_PREFIX) or n == "ready")
        if names is not None:
            unknown = [n for n in names if n not in allowed]
            if unknown:
                raise ValueError(f"sampler: no series {unknown[0]!r}; known: "
                                 f"{', '.join(allowed)}")
        series = h.get(n for n in (names or allowed) if n in h.series)
        for n in names or allowed:
            series.setdefault(n, [])
        out: dict[str, Any] = {"series": series, "interval": h.interval, "t_last": h.t_last}
        if service is not None:
            span = h.maxlen * h.interval
            since = (h.t_last if h.t_last is not None else time.time()) - span
            out["marks"] = [[t, kind] for t, kind in self.marks.get(service, ())
                            if t >= since]
        return out

    def detach(self) -> dict[str, Any]:
        return {"version": 1, "scanner": self.scanner.to_dict(),
                "history": {n: h.to_dict() for n, h in self.history.items()},
                "coarse": {n: h.to_dict() for n, h in self.coarse.items()},
                "engine_history": self.engine_history.to_dict(),
                "log_bytes": self.log_bytes.to_dict(), "log_dropped": self.log_dropped.to_dict(),
                "lag_histogram": self.lag_histogram.to_dict(),
                "views": self.views, "engine": self.engine,
                "marks": {n: [list(m) for m in ms] for n, ms in self.marks.items()}}

    def adopt(self, record: dict[str, Any]) -> None:
        if record.get("engine_history", {}).get("interval") != self.interval:
            return  # sampled at another rate: the rings would not line up
        with contextlib.suppress(KeyError, TypeError, ValueError):
            self.scanner.load(record["scanner"])
            self.history = {n: History.from_dict(d) for n, d in record["history"].items()}
            self.engine_history = History.from_dict(record["engine_history"])
            self.log_bytes = ResettableSum.from_dict(record["log_bytes"])
            self.log_dropped = ResettableSum.from_dict(record["log_dropped"])
            self.views = record["views"]
            self.engine = record["engine"]
            if "lag_histogram" in record:  # (an older engine's record has none)
                self.lag_histogram = Histogram.from_dict(record["lag_histogram"])
            self.coarse = {n: History.from_dict(d)
                           for n, d in record.get("coarse", {}).items()}
            self.marks = {n: deque(((float(t), str(k)) for t, k in ms), maxlen=MARKS)
                          for n, ms in record.get("marks", {}).items()}
