"""Prometheus exposition (docs/ARCHITECTURE.md §7). `families(snapshot)` is pure: an engine snapshot
(`Supervisor.snapshot_now()`, `status --json`) as metric families; `render` turns them into
the text format. `PrometheusExporter` serves GET /metrics on `settings.metrics_listen` from
the engine's own loop, rendering a fresh snapshot per scrape (no thread reads engine state).

Values the snapshot does not have (None, absent) are left out, never exported as 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from tui_supervisor.engine.events import Notice, Topic
from tui_supervisor.engine.states import UP_STATES, State
from tui_supervisor.engine.supervisor import Extension, Supervisor

Snapshot = Mapping[str, Any]
"""An engine snapshot (`views.Snapshot`), read loosely: keys layers add may be absent."""
UP = frozenset(s.value for s in UP_STATES)

# (metric name, counter?, help, path in the service snapshot). The help texts say what
# docs/METRICS.md defines (a test holds them to it).
SERVICE_VALUES: tuple[tuple[str, bool, str, tuple[str, ...]], ...] = (
    ("tuisup_service_restarts_total", True, "Respawns done by the restart policy.",
     ("restarts",)),
    ("tuisup_service_failures_total", True, "Exits nobody asked for (crashes, failed starts).",
     ("failures",)),
    ("tuisup_service_uptime_seconds", False, "Seconds since the current process started.",
     ("uptime",)),
    ("tuisup_service_start_time_seconds", False,
     "Start time of the current main process since the unix epoch in seconds.",
     ("started_at",)),
    ("tuisup_service_up_seconds_total", True, "Time up (running or daemonized), lifetime.",
     ("reliability", "up_time")),
    ("tuisup_service_downtime_seconds_total", True,
     "Time in outages (a failure until up again or stopped by the operator), lifetime.",
     ("reliability", "downtime")),
    ("tuisup_service_outages_total", True,
     "Outages recovered (a failure until up again). MTTR over a window: "
     "increase(tuisup_service_repair_seconds_total) / increase(tuisup_service_outages_total).",
     ("reliability", "outages")),
    ("tuisup_service_repair_seconds_total", True,
     "Summed duration of the recovered outages (failure until up again, backoff included).",
     ("reliability", "repair_time")),
    ("tuisup_service_availability_ratio", False,
     "Up time / (up time + downtime), lifetime; downtime is time in outages.",
     ("reliability", "availability")),
    ("tuisup_service_availability_window_ratio", False,
     "Up time / (up time + downtime) over the rolling window (1 h).",
     ("reliability", "availability_window")),
    ("tuisup_service_mttr_seconds", False,
     "Mean time to recover: mean duration of recovered outages, backoff included, lifetime.",
     ("reliability", "mttr")),
    ("tuisup_service_mttr_window_seconds", False,
     "Mean duration of outages that ended within the rolling window (1 h).",
     ("reliability", "mttr_window")),
    ("tuisup_service_mtbf_seconds", False, "Mean time between failures: up time / failures.",
     ("reliability", "mtbf")),
    ("tuisup_service_cpu_seconds_total", True, "CPU time of the whole process tree.",
     ("resources", "cpu_seconds_total")),
    ("tuisup_service_resident_memory_bytes", False, "RSS summed over the process tree.",
     ("resources", "rss_bytes")),
    ("tuisup_service_processes", False, "Processes in the service's tree.",
     ("resources", "procs")),
    ("tuisup_service_open_fds", False, "Open file descriptors of the process tree.",
     ("resources", "fds")),
    ("tuisup_service_threads", False, "Threads of the process tree.", ("resources", "threads")),
)

SERVICE_HISTOGRAMS = (
    ("tuisup_respawn_latency_seconds",
     "Exit observed -> replacement spawned, backoff delay excluded.", "respawn"),
    ("tuisup_detect_latency_seconds", "Process death -> exit observed.", "detect"),
)

ENGINE_VALUES: tuple[tuple[str, bool, str, tuple[str, ...]], ...] = (
    ("tuisup_engine_uptime_seconds", False, "Seconds since the engine started.", ("uptime",)),
    ("tuisup_engine_reloads_total", True, "Config reloads done.", ("reloads",)),
    ("tuisup_engine_reload_failures_total", True, "Config reloads that failed.",
     ("reload_failures",)),
    ("tuisup_engine_cpu_seconds_total", True, "CPU time of the supervisor process.",
     ("resources", "cpu_seconds_total")),
    ("tuisup_engine_resident_memory_bytes", False, "RSS of the supervisor process.",
     ("resources", "rss_bytes")),
    ("tuisup_engine_open_fds", False, "Open file descriptors of the supervisor.",
     ("resources", "fds")),
    ("tuisup_engine_threads", False, "Threads of the supervisor.", ("resources", "threads")),
    ("tuisup_engine_log_bytes_total", True, "Bytes of service output handled.",
     ("resources", "log_bytes_total")),
    ("tuisup_engine_log_lines_dropped_total", True,
     "Log lines dropped (must stay 0).", ("resources", "log_lines_dropped")),
)

ENGINE_HISTOGRAMS = (
    ("tuisup_engine_loop_lag_seconds",
     "How late a periodic event-loop callback ran (probed every 0.1 s).",
     ("resources", "loop_lag_histogram")),
)


def _get(d: Any, path: tuple[str, ...]) -> float | None:
    for key in path:
        if not isinstance(d, dict):
            return None
        d = d.get(key)
    if isinstance(d, bool) or not isinstance(d, int | float):
        return None
    return d


def _family(name: str, counter: bool, doc: str,
            labels: list[str]) -> CounterMetricFamily | GaugeMetricFamily:
    cls = CounterMetricFamily if counter else GaugeMetricFamily
    return cls(name, doc, labels=labels)


def _histogram(fam: HistogramMetricFamily, labels: list[str], h: Any) -> None:
    """Add one histogram given as per-bucket counts (the last for +Inf) as cumulative ones."""
    if not isinstance(h, dict):
        return
    bounds, counts, total = h.get("buckets"), h.get("counts"), h.get("sum")
    if not isinstance(bounds, list) or not isinstance(counts, list) \
            or len(counts) != len(bounds) + 1 or not isinstance(total, int | float):
        return
    buckets, acc = [], 0
    for bound, n in zip([*bounds, float("inf")], counts, strict=True):
        acc += n
        buckets.append((floatToGoString(bound), acc))
    fam.add_metric(labels, buckets, total)


def families(snap: Snapshot) -> list[Metric]:
    """The snapshot as metric families (only those with samples). Pure."""
    out: list[Metric] = []
    services = [s for s in snap.get("services") or [] if isinstance(s, dict) and "name" in s]

    up = GaugeMetricFamily("tuisup_service_up", "1 when running or daemonized.",
                           labels=["service"])
    state = GaugeMetricFamily("tuisup_service_state", "1 for the service's current state.",
                              labels=["service", "state"])
    looping = GaugeMetricFamily("tuisup_service_crash_looping",
                                "1 while a crash loop is marked: retried every backoff.max "
                                "until it stays up (alert on this).", labels=["service"])
    wanted = GaugeMetricFamily("tuisup_service_wanted",
                               "1 while the engine is meant to keep it up (not stopped by an "
                               "operator, not a completed job).", labels=["service"])
    replica = GaugeMetricFamily("tuisup_service_replica_info",
                                "1 for each copy of a replicas: service (labels group and "
                                "replica): join on service to sum a group.",
                                labels=["service", "group", "replica"])
    for s in services:
        name, cur = str(s["name"]), str(s.get("state"))
        up.add_metric([name], 1 if cur in UP else 0)
        names = [st.value for st in State]
        for st in names if cur in names else [*names, cur]:
            state.add_metric([name, st], 1 if st == cur else 0)
        if isinstance(s.get("crash_looping"), bool):
            looping.add_metric([name], int(s["crash_looping"]))
        if isinstance(s.get("wanted"), bool):
            wanted.add_metric([name], int(s["wanted"]))
        if isinstance(s.get("group"), str) and isinstance(s.get("replica"), int):
            replica.add_metric([name, str(s["group"]), str(s["replica"])], 1)
    out += [up, state, looping, wanted, replica, *_probe_families(services)]

    for metric, counter, doc, path in SERVICE_VALUES:
        fam = _family(metric, counter, doc, ["service"])
        for s in services:
            v = _get(s, path)
            if v is not None:
                fam.add_metric([str(s["name"])], v)
        out.append(fam)

    for metric, doc, key in SERVICE_HISTOGRAMS:
        hist = HistogramMetricFamily(metric, doc, labels=["service"])
        for s in services:
            lat = s.get("latency")
            if isinstance(lat, dict):
                _histogram(hist, [str(s["name"])], lat.get(key))
        out.append(hist)

    engine = snap.get("engine") or {}
    for metric, counter, doc, path in ENGINE_VALUES:
        v = _get(engine, path)
        if v is not None:
            fam = _family(metric, counter, doc, [])
            fam.add_metric([], v)
            out.append(fam)
    for metric, doc, hpath in ENGINE_HISTOGRAMS:
        hist = HistogramMetricFamily(metric, doc, labels=[])
        h: Any = engine
        for key in hpath:
            h = h.get(key) if isinstance(h, dict) else None
        _histogram(hist, [], h)
        out.append(hist)
    if engine.get("version") is not None:
        out.append(InfoMetricFamily("tuisup_engine",
                                    "The supervisor's version (label `version`; always 1).",
                                    value={"version": str(engine["version"])}))
    return [f for f in out if f.samples]


READY_HELP = ("1 when the service is ready (its readiness probe passes; without one, "
              "its startup probe passed); only services with a probe.")
PROBE_DURATION_HELP = "Seconds a probe check took (exec, http, tcp, silence, notify)."
PROBE_FAILURES_HELP = "Probe checks that failed, lifetime."


def _probe_families(services: list[dict[str, Any]]) -> list[Metric]:
    """tuisup_service_ready, tuisup_probe_duration_seconds, tuisup_probe_failures_total."""
    ready = GaugeMetricFamily("tuisup_service_ready", READY_HELP, labels=["service"])
    duration = HistogramMetricFamily("tuisup_probe_duration_seconds", PROBE_DURATION_HELP,
                                     labels=["service", "probe"])
    failures = CounterMetricFamily("tuisup_probe_failures_total", PROBE_FAILURES_HELP,
                                   labels=["service", "probe"])
    for s in services:
        probes = s.get("probes")
        if not isinstance(probes, dict) or not probes:
            continue
        name = str(s["name"])
        ready.add_metric([name], 1 if s.get("health") == "ready" else 0)
        for probe, p in probes.items():
            if not isinstance(p, dict):
                continue
            _histogram(duration, [name, str(probe)], p.get("duration"))
            if isinstance(p.get("failures_total"), int):
                failures.add_metric([name, str(probe)], p["failures_total"])
    return [ready, duration, failures]


class SnapshotCollector(Collector):
    """Collects `families(source())` on every scrape."""

    def __init__(self, source: Callable[[], Snapshot]) -> None:
        self.source = source

    def collect(self) -> Iterable[Metric]:
        return families(self.source())


def registry_for(source: Callable[[], Snapshot]) -> CollectorRegistry:
    """A private registry (never the process-global one) over `source`."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(SnapshotCollector(source))
    return reg


def render(snap: Snapshot) -> bytes:
    """The snapshot in the Prometheus text format. Pure."""
    return generate_latest(registry_for(lambda: snap))


def parse_listen(listen: str) -> tuple[str, int]:
    """"host:port" (as `config.units.to_listen` accepts; "[::1]:9101" too) -> (host, port).
    An empty host means loopback."""
    host, _, port = listen.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    return host, int(port)


def _bind(host: str, port: int) -> socket.socket:
    family, kind, proto, _, addr = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(64)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""What `generate_latest` writes (the classic text format)."""
READ_TIMEOUT = 10.0
MAX_REQUEST = 16 * 1024
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
           500: "Internal Server Error"}


class PrometheusExporter(Extension):
    """GET /metrics over HTTP on the engine's loop; 404 elsewhere, 405 for other methods.
    A bind error is an "error" Notice and `error`; the engine carries on."""

    name = "prometheus"

    def __init__(self, listen: str) -> None:
        self.listen = listen
        self.error: str | None = None
        self.address: str | None = None
        """Where it listens, as "host:port" (the bound port), once started."""
        self._sup: Supervisor | None = None
        self._registry: CollectorRegistry | None = None
        self._sock: socket.socket | None = None
        self._server: asyncio.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._serving = False
        self._stopped = False
        self._writers: set[asyncio.StreamWriter] = set()

    @classmethod
    def attach(cls, sup: Supervisor, listen: str) -> PrometheusExporter:
        ext = cls(listen)
        sup.extensions.append(ext)
        return ext

    def engine_view(self) -> dict[str, Any]:
        view: dict[str, Any] = {"listen": self.address}
        if self.error:
            view["error"] = self.error
        return view

    def start(self, sup: Supervisor) -> None:
        self._sup, self._stopped = sup, False
        self._registry = registry_for(sup.snapshot_now)
        try:
            host, port = parse_listen(self.listen)
            self._sock = _bind(host, port)
        except (OSError, ValueError) as e:
            why = (e.strerror if isinstance(e, OSError) else None) or str(e)
            self.error = f"metrics_listen {self.listen}: {why}"
            sup.bus.emit(Notice(time.time(), "error", f"metrics not served: {self.error}",
                                topic=Topic.METRICS, data={"listen": self.listen}))
            return
        self.error = None
        bound = self._sock.getsockname()
        h = bound[0] if self._sock.family != socket.AF_INET6 else f"[{bound[0]}]"
        self.address = f"{h}:{bound[1]}"
        self._task = asyncio.get_running_loop().create_task(self._serve(self._sock))

    async def _serve(self, sock: socket.socket) -> None:
        self._serving = True
        self._server = await asyncio.start_server(self._handle, sock=sock, limit=MAX_REQUEST)
        if self._stopped:
            self._server.close()

    def stop(self) -> None:
        self._stopped = True
        if self._server is not None:
            self._server.close()  # closes the listening socket now
        elif self._task is not None and not self._serving:
            self._task.cancel()  # never ran: the socket is ours to close
            if self._sock is not None:
                self._sock.close()
        for w in list(self._writers):
            w.close()
        self._server = self._task = self._sock = None
        self.address = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT)
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError,
                    ConnectionError):
                return
            status, headers, body = self._respond(head)
            lines = [f"HTTP/1.1 {status} {REASONS[status]}", *headers,
                     f"Content-Length: {len(body)}", "Connection: close", "", ""]
            head_only = head.startswith(b"HEAD ")
            writer.write("\r\n".join(lines).encode() + (b"" if head_only else body))
            with contextlib.suppress(ConnectionError):
                await writer.drain()
        finally:
            self._writers.discard(writer)
            writer.close()

    def _respond(self, head: bytes) -> tuple[int, list[str], bytes]:
        parts = head.split(b"\r\n", 1)[0].decode("latin-1").split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            return 400, ["Content-Type: text/plain"], b"bad request\n"
        method, target = parts[0], parts[1]
        if target.split("?", 1)[0] != "/metrics":
            return 404, ["Content-Type: text/plain"], b"not found: try /metrics\n"
        if method not in ("GET", "HEAD"):
            return 405, ["Allow: GET, HEAD", "Content-Type: text/plain"], b"use GET\n"
        assert self._registry is not None
        try:
            body = generate_latest(self._registry)
        except Exception as e:  # a bug here must not take the endpoint down
            if self._sup is not None:
                self._sup.bus.emit(Notice(time.time(), "error", f"/metrics failed: {e!r}",
                                          topic=Topic.METRICS))
            return 500, ["Content-Type: text/plain"], b"internal error\n"
        return 200, [f"Content-Type: {CONTENT_TYPE}"], body


def attach_prometheus(sup: Supervisor) -> list[Extension]:
    """The exporter, when the config sets `metrics_listen` (else nothing)."""
    listen = sup.config.settings.metrics_listen
    return [PrometheusExporter.attach(sup, listen)] if listen else []


__all__ = ["PrometheusExporter", "SnapshotCollector", "attach_prometheus", "families",
           "parse_listen", "registry_for", "render"]

