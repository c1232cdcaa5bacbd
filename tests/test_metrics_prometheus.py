"""Prometheus exposition: synthetic snapshots rendered and parsed back with
prometheus_client's own parser (exact values), and a real engine served over real HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import CHILDREN, child, kill_marked, make_config, spec, wait_for
from prometheus_client.parser import text_string_to_metric_families
from support import Headless, cli_env, free_port

from tui_supervisor.engine.events import AnyEvent, Notice
from tui_supervisor.engine.states import State
from tui_supervisor.engine.supervisor import Supervisor
from tui_supervisor.metrics import attach_metrics
from tui_supervisor.metrics.prometheus import PrometheusExporter, parse_listen, render

Key = tuple[str, frozenset[tuple[str, str]]]


def parse(text: str | bytes) -> tuple[dict[Key, float], dict[str, str]]:
    """Every sample as {(name, labels): value}, and every family's type."""
    if isinstance(text, bytes):
        text = text.decode()
    samples: dict[Key, float] = {}
    types: dict[str, str] = {}
    for fam in text_string_to_metric_families(text):
        types[fam.name] = fam.type
        for s in fam.samples:
            key = (s.name, frozenset(s.labels.items()))
            assert key not in samples, f"duplicate sample {key}"
            samples[key] = s.value
    return samples, types


def k(name: str, **labels: str) -> Key:
    return name, frozenset(labels.items())


# -- pure: synthetic snapshots ---------------------------------------------------------

SNAP: dict[str, Any] = {
    "engine": {
        "pid": 4242, "version": "9.8.7", "uptime": 12.5, "reloads": 2, "reload_failures": 1,
        "resources": {"cpu_percent": 3.0, "cpu_seconds_total": 4.25, "rss_bytes": 50_000_000,
                      "fds": 12, "threads": 3, "loop_lag_p99": 0.002, "loop_lag_max": 0.01,
                      "loop_lag_histogram": {"buckets": [0.001, 0.01], "counts": [90, 9, 1],
                                             "sum": 0.125, "count": 100},
                      "log_bytes_total": 123456, "log_bytes_per_s": 10.0,
                      "log_lines_dropped": 0, "sample_seconds": 0.001, "sample_interval": 1.0},
        "prometheus": {"listen": "127.0.0.1:9101"},
    },
    "services": [
        {"name": "web", "state": "running", "restarts": 3, "failures": 4, "uptime": 100.5,
         "crash_looping": False, "started_at": 1_700_000_000.25, "wanted": True,
         "reliability": {"availability": 0.75, "availability_window": 0.5, "downtime": 25.0,
                         "up_time": 75.0, "outages": 3, "repair_time": 7.5,
                         "mttr": 2.5, "mttr_window": 1.5, "mtbf": 18.75, "failures": 4},
         "resources": {"procs": 2, "cpu_percent": 1.0, "cpu_seconds_total": 7.5,
                       "rss_bytes": 2048, "fds": 9, "threads": 4, "sampled_at": 1.0},
         "latency": {
             "respawn": {"buckets": [0.001, 0.01, 0.1], "counts": [1, 0, 2, 1], "sum": 0.75,
                         "count": 4},
             "detect": {"buckets": [0.0005, 0.005], "counts": [3, 1, 0], "sum": 0.004,
                        "count": 4}},
         "health": "ready", "probes": {
             "readiness": {"kind": "http", "passing": True, "failures": 0,
                           "failures_total": 2, "duration": {
                               "buckets": [0.01, 0.1], "counts": [5, 1, 0], "sum": 0.05}},
             "liveness": {"kind": "notify", "passing": True, "failures": 0,
                          "failures_total": 0, "duration": None}}},
        {"name": "job", "state": "backoff", "restarts": 0, "failures": 1, "uptime": None,
         "group": "jobs", "replica": 2,
         "crash_looping": True, "wanted": True,
         "reliability": {"availability": None, "availability_window": None, "downtime": 0.0,
                         "up_time": 0.0, "outages": 0, "repair_time": 0.0,
                         "mttr": None, "mttr_window": None, "mtbf": None},
         "resources": {}},
    ],
}


def state_samples(service: str, current: str) -> dict[Key, float]:
    return {k("tuisup_service_state", service=service, state=s.value): float(s.value == current)
            for s in State}


def test_every_sample_matches_the_snapshot() -> None:
    samples, types = parse(render(SNAP))
    web, job = {"service": "web"}, {"service": "job"}
    expected = {
        k("tuisup_service_up", **web): 1.0,
        k("tuisup_service_up", **job): 0.0,
        **state_samples("web", "running"),
        **state_samples("job", "backoff"),
        k("tuisup_service_crash_looping", **web): 0.0,
        k("tuisup_service_crash_looping", **job): 1.0,
        k("tuisup_service_wanted", **web): 1.0,
        k("tuisup_service_wanted", **job): 1.0,
        k("tuisup_service_replica_info", group="jobs", replica="2", **job): 1,
        k("tuisup_service_restarts_total", **web): 3,
        k("tuisup_service_restarts_total", **job): 0,
        k("tuisup_service_failures_total", **web): 4,
        k("tuisup_service_failures_total", **job): 1,
        k("tuisup_service_uptime_seconds", **web): 100.5,
        k("tuisup_service_availability_ratio", **web): 0.75,
        k("tuisup_service_availability_window_ratio", **web): 0.5,
        k("tuisup_service_start_time_seconds", **web): 1_700_000_000.25,
        k("tuisup_service_up_seconds_total", **web): 75.0,
        k("tuisup_service_up_seconds_total", **job): 0.0,
        k("tuisup_service_downtime_seconds_total", **web): 25.0,
        k("tuisup_service_downtime_seconds_total", **job): 0.0,
        k("tuisup_service_outages_total", **web): 3,
        k("tuisup_service_outages_total", **job): 0,
        k("tuisup_service_repair_seconds_total", **web): 7.5,
        k("tuisup_service_repair_seconds_total", **job): 0.0,
        k("tuisup_service_mttr_seconds", **web): 2.5,
        k("tuisup_service_mttr_window_seconds", **web): 1.5,
        k("tuisup_service_mtbf_seconds", **web): 18.75,
        k("tuisup_service_cpu_seconds_total", **web): 7.5,
        k("tuisup_service_resident_memory_bytes", **web): 2048,
        k("tuisup_service_processes", **web): 2,
        k("tuisup_service_open_fds", **web): 9,
        k("tuisup_service_threads", **web): 4,
        # per-bucket counts [1, 0, 2, 1] -> cumulative 1, 1, 3, 4
        k("tuisup_respawn_latency_seconds_bucket", le="0.001", **web): 1,
        k("tuisup_respawn_latency_seconds_bucket", le="0.01", **web): 1,
        k("tuisup_respawn_latency_seconds_bucket", le="0.1", **web): 3,
        k("tuisup_respawn_latency_seconds_bucket", le="+Inf", **web): 4,
        k("tuisup_respawn_latency_seconds_count", **web): 4,
        k("tuisup_respawn_latency_seconds_sum", **web): 0.75,
        k("tuisup_detect_latency_seconds_bucket", le="0.0005", **web): 3,
        k("tuisup_detect_latency_seconds_bucket", le="0.005", **web): 4,
        k("tuisup_detect_latency_seconds_bucket", le="+Inf", **web): 4,
        k("tuisup_detect_latency_seconds_count", **web): 4,
        k("tuisup_detect_latency_seconds_sum", **web): 0.004,
        k("tuisup_service_ready", **web): 1,
        k("tuisup_probe_failures_total", probe="readiness", **web): 2,
        k("tuisup_probe_failures_total", probe="liveness", **web): 0,
        k("tuisup_probe_duration_seconds_bucket", le="0.01", probe="readiness", **web): 5,
        k("tuisup_probe_duration_seconds_bucket", le="0.1", probe="readiness", **web): 6,
        k("tuisup_probe_duration_seconds_bucket", le="+Inf", probe="readiness", **web): 6,
        k("tuisup_probe_duration_seconds_count", probe="readiness", **web): 6,
        k("tuisup_probe_duration_seconds_sum", probe="readiness", **web): 0.05,
        k("tuisup_engine_uptime_seconds"): 12.5,
        k("tuisup_engine_reloads_total"): 2,
        k("tuisup_engine_reload_failures_total"): 1,
        k("tuisup_engine_cpu_seconds_total"): 4.25,
        k("tuisup_engine_resident_memory_bytes"): 50_000_000,
        k("tuisup_engine_open_fds"): 12,
        k("tuisup_engine_threads"): 3,
        # a histogram, not a precomputed quantile: [90, 9, 1] -> 90, 99, 100
        k("tuisup_engine_loop_lag_seconds_bucket", le="0.001"): 90,
        k("tuisup_engine_loop_lag_seconds_bucket", le="0.01"): 99,
        k("tuisup_engine_loop_lag_seconds_bucket", le="+Inf"): 100,
        k("tuisup_engine_loop_lag_seconds_count"): 100,
        k("tuisup_engine_loop_lag_seconds_sum"): 0.125,
        k("tuisup_engine_log_bytes_total"): 123456,
        k("tuisup_engine_log_lines_dropped_total"): 0,
        k("tuisup_engine_info", version="9.8.7"): 1,
    }
    assert samples == expected
    assert types["tuisup_service_restarts"] == "counter"
    assert types["tuisup_service_cpu_seconds"] == "counter"
    assert types["tuisup_service_resident_memory_bytes"] == "gauge"
    for counter in ("up_seconds", "downtime_seconds", "outages", "repair_seconds"):
        assert types[f"tuisup_service_{counter}"] == "counter", counter
    assert types["tuisup_service_availability_ratio"] == "gauge"
    assert types["tuisup_engine_loop_lag_seconds"] == "histogram"
    assert types["tuisup_respawn_latency_seconds"] == "histogram"
    assert types["tuisup_detect_latency_seconds"] == "histogram"
    assert types["tuisup_engine_log_lines_dropped"] == "counter"


def documented_series() -> dict[str, tuple[str, str]]:
    """docs/METRICS.md's Prometheus table: series -> (type, HELP)."""
    text = (Path(__file__).parent.parent / "docs" / "METRICS.md").read_text()
    table = text.split("| series | type | HELP |\n|---|---|---|\n", 1)[1].split("\n\n", 1)[0]
    rows = [r.strip("|").split(" | ", 2) for r in table.splitlines()]
    return {name.strip(" `"): (kind, doc.rstrip(" |")) for name, kind, doc in rows}


def test_help_texts_are_the_documented_definitions() -> None:
    """Every exported family is in docs/METRICS.md with its type and exactly its HELP
    (availability's HELP once said "up time / wanted time", a definition the docs had
    dropped), and the docs list nothing that is not exported."""
    exported = {}
    for fam in text_string_to_metric_families(render(SNAP).decode()):
        suffix = "_total" if fam.type == "counter" else ""
        exported[fam.name + suffix] = (fam.type, fam.documentation)
    assert exported == documented_series()


def test_probe_series() -> None:
    samples, types = parse(render(SNAP))
    assert samples[k("tuisup_service_ready", service="web")] == 1
    assert k("tuisup_service_ready", service="job") not in samples  # no probe: left out
    assert samples[k("tuisup_probe_failures_total", service="web", probe="readiness")] == 2
    assert samples[k("tuisup_probe_failures_total", service="web", probe="liveness")] == 0
    assert samples[k("tuisup_probe_duration_seconds_bucket", service="web",
                     probe="readiness", le="0.1")] == 6
    assert samples[k("tuisup_probe_duration_seconds_count", service="web",
                     probe="readiness")] == 6
    assert types["tuisup_probe_duration_seconds"] == "histogram"
    unready = {**SNAP, "services": [{**SNAP["services"][0], "health": "unready"}]}
    assert parse(render(unready))[0][k("tuisup_service_ready", service="web")] == 0


def test_missing_and_none_are_left_out_not_zero() -> None:
    snap = {"engine": {"version": "1"},
            "services": [{"name": "bare", "state": "stopped", "restarts": 0, "failures": 0,
                          "uptime": None, "reliability": {}, "resources": {}}]}
    samples, types = parse(render(snap))
    names = {name for name, _ in samples}
    assert names == {"tuisup_service_up", "tuisup_service_state",
                     "tuisup_service_restarts_total", "tuisup_service_failures_total",
                     "tuisup_engine_info"}
    assert "tuisup_respawn_latency_seconds" not in types
    assert samples[k("tuisup_service_up", service="bare")] == 0


def test_a_done_job_is_not_wanted_so_not_down() -> None:
    """`up == 0 and wanted == 1` is the "service down" alert: a completed job, or one an
    operator stopped, does not fire it."""
    snap = {"engine": {}, "services": [
        {"name": "migrate", "state": "completed", "wanted": False},
        {"name": "web", "state": "stopped", "wanted": False},
        {"name": "api", "state": "fatal", "wanted": True}]}
    samples, _ = parse(render(snap))
    down = {s for s in ("migrate", "web", "api")
            if samples[k("tuisup_service_up", service=s)] == 0
            and samples[k("tuisup_service_wanted", service=s)] == 1}
    assert down == {"api"}


def test_malformed_histogram_is_left_out() -> None:
    bad = {"buckets": [0.1, 1.0], "counts": [1, 2], "sum": 0.5, "count": 3}  # no +Inf count
    snap = {"engine": {}, "services": [{"name": "s", "state": "running",
                                         "latency": {"respawn": bad}}]}
    samples, _ = parse(render(snap))
    assert not any(name.startswith("tuisup_respawn") for name, _ in samples)
    assert samples[k("tuisup_service_up", service="s")] == 1


@pytest.mark.parametrize("odd", ['a"b', "back\\slash", "new\nline", "ünï cödé",
                                 "x{y}=z,w", "\\n"])
def test_odd_service_names_round_trip(odd: str) -> None:
    snap = {"engine": {}, "services": [{"name": odd, "state": "daemonized", "restarts": 1}]}
    samples, _ = parse(render(snap))
    assert samples[k("tuisup_service_up", service=odd)] == 1
    assert samples[k("tuisup_service_restarts_total", service=odd)] == 1


def test_an_unknown_state_is_still_shown() -> None:
    snap = {"engine": {}, "services": [{"name": "s", "state": "healthy"}]}
    samples, _ = parse(render(snap))
    assert samples[k("tuisup_service_state", service="s", state="healthy")] == 1
    assert samples[k("tuisup_service_state", service="s", state="running")] == 0
    assert samples[k("tuisup_service_up", service="s")] == 0


def test_parse_listen() -> None:
    assert parse_listen("127.0.0.1:9101") == ("127.0.0.1", 9101)
    assert parse_listen("[::1]:80") == ("::1", 80)
    assert parse_listen(":9101") == ("127.0.0.1", 9101)


# -- a real engine over real HTTP ------------------------------------------------------

@pytest.fixture
async def metrics_engine(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """make(*specs, listen=..., **settings) -> (engine with attach_metrics, notices it
    emitted)."""
    made: list[Supervisor] = []

    async def make(*specs: Any, listen: str, **settings: Any
                   ) -> tuple[Supervisor, list[Notice]]:
        cfg = make_config(tmp_path, *specs)
        cfg = dataclasses.replace(cfg, settings=dataclasses.replace(
            cfg.settings, metrics_listen=listen, **settings))
        sup = Supervisor(cfg)
        notices: list[Notice] = []

        def keep(ev: AnyEvent) -> None:
            if isinstance(ev, Notice):
                notices.append(ev)

        sup.bus.add_listener(keep)
        attach_metrics(sup)
        made.append(sup)
        await sup.open()
        return sup, notices

    try:
        yield make
    finally:
        for sup in made:
            if not sup._closed:
                await asyncio.wait_for(sup.close(), 30)


async def fetch(url: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    """A request with urllib, in a thread (the engine's loop must keep running)."""
    def go() -> tuple[int, dict[str, str], bytes]:
        req = urllib.request.Request(url, method=method)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()
    return await asyncio.to_thread(go)


TIME_VARYING = {"tuisup_service_uptime_seconds", "tuisup_service_availability_ratio",
                "tuisup_service_availability_window_ratio", "tuisup_service_mtbf_seconds",
                "tuisup_engine_uptime_seconds"}
EXACT = {"tuisup_service_up", "tuisup_service_state", "tuisup_service_restarts_total",
         "tuisup_service_failures_total", "tuisup_service_mttr_seconds",
         "tuisup_service_mttr_window_seconds", "tuisup_engine_reloads_total",
         "tuisup_engine_reload_failures_total", "tuisup_engine_info"}


async def test_real_engine_crash_shows_on_metrics(metrics_engine, tmp_path: Path) -> None:
    """SIGKILL a real service once: /metrics (over HTTP) says 1 failure, up again, an MTTR,
    and every sample agrees with snapshots taken just before and after the scrape."""
    port = free_port()
    sup, notices = await metrics_engine(spec("s", child("sleeper"), tmp_path),
                                        listen=f"127.0.0.1:{port}")
    assert sup.snapshot_now()["engine"]["prometheus"] == {"listen": f"127.0.0.1:{port}"}
    svc = sup.services["s"]
    pid = await wait_for(lambda: svc.ring.next_offset > 0 and svc.pid)
    os.kill(pid, signal.SIGKILL)
    await wait_for(lambda: svc.pid not in (None, pid) and svc.state.value == "running")

    before = sup.snapshot_now()
    status, headers, body = await fetch(f"http://127.0.0.1:{port}/metrics")
    after = sup.snapshot_now()
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    got, _ = parse(body)
    lo, _ = parse(render(before))
    hi, _ = parse(render(after))
    s = {"service": "s"}
    assert got[k("tuisup_service_failures_total", **s)] == 1
    assert got[k("tuisup_service_restarts_total", **s)] == 1
    assert got[k("tuisup_service_up", **s)] == 1
    assert got[k("tuisup_service_state", service="s", state="running")] == 1
    mttr = before["services"][0]["reliability"]["mttr"]
    assert mttr is not None and got[k("tuisup_service_mttr_seconds", **s)] == mttr
    assert 0 < got[k("tuisup_service_availability_ratio", **s)] < 1
    assert set(got) == set(lo) == set(hi)
    for key, value in got.items():
        if key[0] in EXACT:
            assert value == lo[key] == hi[key], key
        elif key[0] in TIME_VARYING:
            assert min(lo[key], hi[key]) <= value <= max(lo[key], hi[key]), key
        else:
            assert value == pytest.approx(lo[key], rel=0.05, abs=0.05), key
    assert not [n for n in notices if n.level == "error"]


async def test_other_paths_and_methods(metrics_engine, tmp_path: Path) -> None:
    port = free_port()
    await metrics_engine(spec("s", child("sleeper"), tmp_path), listen=f"127.0.0.1:{port}")
    base = f"http://127.0.0.1:{port}"
    assert (await fetch(f"{base}/"))[0] == 404
    assert (await fetch(f"{base}/metricsx"))[0] == 404
    status, headers, _ = await fetch(f"{base}/metrics", "POST")
    assert status == 405 and headers["Allow"] == "GET, HEAD"
    assert (await fetch(f"{base}/metrics", "DELETE"))[0] == 405
    status, _, body = await fetch(f"{base}/metrics?x=1")
    assert status == 200 and b"tuisup_service_up" in body
    status, headers, body = await fetch(f"{base}/metrics", "HEAD")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) > 0
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"nonsense\r\n\r\n")
    assert (await asyncio.wait_for(reader.read(), 10)).startswith(b"HTTP/1.1 400 ")
    writer.close()


async def test_port_in_use_is_a_notice_and_the_engine_runs(metrics_engine,
                                                           tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        sup, notices = await metrics_engine(spec("s", child("sleeper"), tmp_path),
                                            listen=f"127.0.0.1:{port}")
        error = f"metrics_listen 127.0.0.1:{port}: Address already in use"
        assert [(n.level, n.message) for n in notices] == [
            ("error", f"metrics not served: {error}")]
        assert sup.snapshot_now()["engine"]["prometheus"] == {"listen": None, "error": error}
        await wait_for(lambda: sup.services["s"].state.value == "running")
        ext = sup.extension("prometheus")
        assert isinstance(ext, PrometheusExporter) and ext.error == error


@pytest.mark.parametrize("serve_first", [False, True])
async def test_closed_with_the_engine(metrics_engine, tmp_path: Path,
                                      serve_first: bool) -> None:
    """Closing right after open (server not yet started) or after serving: the port is
    closed and a connection still open is ended."""
    port = free_port()
    sup, _ = await metrics_engine(spec("s", child("sleeper"), tmp_path),
                                  listen=f"127.0.0.1:{port}")
    idle = None
    if serve_first:
        assert (await fetch(f"http://127.0.0.1:{port}/metrics"))[0] == 200
        idle = await asyncio.open_connection("127.0.0.1", port)
        idle[1].write(b"GET /metr")  # never finished
        ext = sup.extension("prometheus")
        await wait_for(lambda: ext._writers, what="the server to accept")  # type: ignore
    await sup.close()
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", port)
    if idle is not None:
        # ended: EOF, or a reset if the server had unread bytes of ours
        with contextlib.suppress(ConnectionResetError):
            assert await asyncio.wait_for(idle[0].read(), 10) == b""
        idle[1].close()


async def test_handoff_closes_and_the_successor_serves(metrics_engine, tmp_path: Path) -> None:
    """A handoff (code reload) closes the port; the adopting engine listens on it again and
    shows the carried-over failure."""
    import json

    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    first, _ = await metrics_engine(spec("s", child("sleeper"), tmp_path),
                                    listen=f"127.0.0.1:{port}")
    svc = first.services["s"]
    pid = await wait_for(lambda: svc.ring.next_offset > 0 and svc.pid)
    os.kill(pid, signal.SIGKILL)
    await wait_for(lambda: svc.pid not in (None, pid) and svc.state.value == "running")
    assert (await fetch(url))[0] == 200
    record = json.loads(json.dumps(first.detach()))
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", port)
    second = Supervisor(first.config)
    attach_metrics(second)
    try:
        await second.open(adopt=record)
        status, _, body = await fetch(url)
        got, _ = parse(body)
        assert status == 200
        assert got[k("tuisup_service_failures_total", service="s")] == 1
        assert got[k("tuisup_service_up", service="s")] == 1
        assert k("tuisup_service_mttr_seconds", service="s") in got
    finally:
        await second.close()


def test_attach_only_when_configured(tmp_path: Path) -> None:
    cfg = make_config(tmp_path)
    assert "prometheus" not in [e.name for e in attach_metrics(Supervisor(cfg))]
    cfg = dataclasses.replace(
        cfg, settings=dataclasses.replace(cfg.settings, metrics_listen="127.0.0.1:1"))
    assert [e.name for e in attach_metrics(Supervisor(cfg))][-1] == "prometheus"


# -- the command line ------------------------------------------------------------------

def write_cfg(tmp: Path, port: int) -> Path:
    cfg = tmp / "tst-prom.yaml"
    cfg.write_text(f"settings: {{metrics_listen: '127.0.0.1:{port}'}}\nservices:\n"
                   f"  s: {{command: ['{sys.executable}', '{CHILDREN / 'sleeper.py'}'], "
                   "start_time: 0}\n")
    return cfg


def test_cli_port_in_use_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "tui_supervisor", "run", "--headless", "-c",
                            str(write_cfg(tmp_path, port))], capture_output=True, text=True,
                           env=cli_env(tmp_path), timeout=60, cwd=tmp_path)
    assert r.returncode == 1
    assert r.stderr.strip() == f"tui-supervisor: cannot start: metrics_listen " \
        f"127.0.0.1:{port}: Address already in use"


def test_cli_serves_metrics(tmp_path: Path) -> None:
    port = free_port()
    e = Headless(tmp_path, write_cfg(tmp_path, port))
    try:
        e.wait_out(" * running pid", timeout=20)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
            got, _ = parse(r.read())
        assert got[k("tuisup_service_up", service="s")] == 1
        assert got[k("tuisup_service_failures_total", service="s")] == 0
    finally:
        assert e.stop() == 0
        kill_marked()


async def test_config_reload_moves_metrics_and_sampling(metrics_engine, tmp_path: Path) -> None:
    """A config reload that changes metrics_listen closes the old port and serves on the
    new one; a new sample_interval re-attaches the sampler; removing both stops them."""
    from tui_supervisor.metrics.sampler import ResourceSampler

    port, port2 = free_port(), free_port()
    sup, notices = await metrics_engine(spec("s", child("sleeper"), tmp_path),
                                        listen=f"127.0.0.1:{port}")
    assert sup.extension("resources") is None  # make_config: sample_interval 0
    assert (await fetch(f"http://127.0.0.1:{port}/metrics"))[0] == 200
    pid = await wait_for(lambda: sup.services["s"].pid)

    def settings(**kw: Any) -> Any:
        return dataclasses.replace(sup.config, settings=dataclasses.replace(
            sup.config.settings, **kw))

    r = await sup.apply_config(settings(metrics_listen=f"127.0.0.1:{port2}",
                                        sample_interval=0.1))
    assert r["ok"] and sup.services["s"].pid == pid  # the service is not touched
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", port)
    status, _, body = await fetch(f"http://127.0.0.1:{port2}/metrics")
    assert status == 200 and b'tuisup_service_up{service="s"} 1.0' in body
    sampler = sup.extension("resources")
    assert isinstance(sampler, ResourceSampler) and sampler.interval == 0.1
    await wait_for(lambda: (sup.snapshot_now()["services"][0].get("resources") or {})
                   .get("procs"), what="a sample")
    r = await sup.apply_config(settings(metrics_listen=None, sample_interval=0))
    assert r["ok"] and sup.extension("resources") is None
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", port2)
    assert not [n for n in notices if n.level == "error"]


# -- a real Prometheus server scraping a real engine ----------------------------------

PROMETHEUS = Path("/usr/bin/prometheus")


async def prom_query(base: str, promql: str) -> list[dict[str, Any]]:
    """An instant query's result vector (`/api/v1/query`)."""
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    status, _, body = await fetch(url)
    assert status == 200, body
    reply = json.loads(body)
    assert reply["status"] == "success", reply
    return reply["data"]["result"]


async def prom_value(base: str, promql: str) -> float | None:
    """The one value of an instant query for service "s" (None: no sample yet)."""
    result = [r for r in await prom_query(base, promql)
              if r["metric"].get("service") == "s"]
    return float(result[0]["value"][1]) if result else None


@pytest.mark.skipif(not PROMETHEUS.exists(),
                    reason="no /usr/bin/prometheus (apt-get install prometheus; .ci/run does)")
async def test_a_real_prometheus_server_agrees(metrics_engine, tmp_path: Path) -> None:
    """A real Prometheus scrapes the engine every second across a crash and the recovery:
    PromQL over the counters gives what the engine's snapshot says (the outage counted
    once, MTTR over the window = increase(repair) / increase(outages) = the snapshot's
    MTTR, up time a counter), and the loop lag is a histogram it can take quantiles of."""
    port = free_port()
    sup, notices = await metrics_engine(spec("s", child("sleeper"), tmp_path),
                                        listen=f"127.0.0.1:{port}", sample_interval=0.5)
    svc = sup.services["s"]
    pid = await wait_for(lambda: svc.state.value == "running" and svc.pid)
    web = free_port()
    (tmp_path / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - {{job_name: tuisup, static_configs: [{{targets: ['127.0.0.1:{port}']}}]}}\n")
    log = open(tmp_path / "prometheus.log", "wb")  # noqa: SIM115 (closed below)
    prom = subprocess.Popen(
        [str(PROMETHEUS), f"--config.file={tmp_path / 'prometheus.yml'}",
         f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{web}"],
        stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path, start_new_session=True)
    base = f"http://127.0.0.1:{web}"

    async def ready() -> bool:
        if prom.poll() is not None:
            raise AssertionError(f"prometheus exited: {(tmp_path / 'prometheus.log').read_text()}")
        with contextlib.suppress(OSError):
            return await prom_value(base, "tuisup_service_outages_total") == 0
        return False

    try:
        await wait_for(ready, timeout=20, interval=0.2, what="a first scrape")
        # two scrapes of the healthy service, then a crash and its recovery
        await wait_for(lambda: prom_value(base, "count_over_time(tuisup_service_up[1m])"),
                       timeout=10, interval=0.2)
        os.kill(pid, signal.SIGKILL)
        await wait_for(lambda: svc.pid not in (None, pid) and svc.state.value == "running")
        snap = sup.snapshot_now()["services"][0]["reliability"]
        assert (snap["outages"], snap["failures"]) == (1, 1)

        async def scraped_recovery() -> bool:
            return await prom_value(base, "tuisup_service_outages_total") == 1 \
                and await prom_value(base, "tuisup_service_up") == 1
        await wait_for(scraped_recovery, timeout=10, interval=0.2, what="the recovery scraped")

        async def q(promql: str) -> float:
            v = await prom_value(base, promql)
            assert v is not None, promql
            return v

        assert await q("tuisup_service_failures_total") == 1
        assert await q("tuisup_service_repair_seconds_total") == pytest.approx(
            snap["repair_time"], rel=1e-9)
        # increase() extrapolates to the window's edges: one outage reads as 1 to ~1.5
        assert 1 <= await q("increase(tuisup_service_outages_total[1m])") < 2
        mttr = await q("increase(tuisup_service_repair_seconds_total[1m])"
                       " / increase(tuisup_service_outages_total[1m])")
        assert mttr == pytest.approx(snap["mttr"], rel=1e-6) and mttr > 0
        up = await q("tuisup_service_up_seconds_total")
        now = sup.snapshot_now()["services"][0]["reliability"]
        assert 0 < up <= now["up_time"]
        assert await q("tuisup_service_downtime_seconds_total") == pytest.approx(
            now["downtime"], rel=1e-9)  # the outage is over: downtime no longer grows
        assert await q("tuisup_service_start_time_seconds") == pytest.approx(
            sup.snapshot_now()["services"][0]["started_at"], abs=1e-3)
        lag = await prom_query(base, "histogram_quantile(0.99, "
                                     "rate(tuisup_engine_loop_lag_seconds_bucket[1m]))")
        assert lag and float(lag[0]["value"][1]) >= 0  # buckets, not a precomputed p99
        assert not [n for n in notices if n.level == "error"]
    finally:
        prom.terminate()
        try:
            prom.wait(10)
        except subprocess.TimeoutExpired:
            prom.kill()
            prom.wait(10)
        log.close()
