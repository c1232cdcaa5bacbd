"""The history answer's chart series against a real engine (issue 15): a real HTTP
server probed for readiness and a TCP liveness check gives per-probe latency and a 0/1
readiness series; a crashing service gives restart and failure marks in time; the
coarse rings (for the charts' 1 hour window) carry the same series."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from support import Headless, free_port, wait_for
from test_probes_real import child, service


def numbers(h: dict[str, Any], name: str) -> list[float]:
    return [v for v in h["series"].get(name, []) if v is not None]


def test_probe_latency_readiness_and_marks_in_the_history(tmp_path: Path) -> None:
    port, flag = free_port(), tmp_path / "sick"
    cfg = tmp_path / "tst-charts.yaml"
    cfg.write_text(
        "settings: {sample_interval: 0.2}\nservices:\n"
        + service("web", child("healthy", port, flag),
                  f"      readiness: {{http: {{port: {port}, path: /healthz, body: ok}},"
                  " period: 0.2s, failure_threshold: 1}\n"
                  f"      liveness: {{tcp: {{port: {port}}}, period: 0.2s}}\n")
        + "  crashy:\n"
        f"    command: {child('crash', 1, 0.3)!r}\n".replace("'", '"')
        + "    start_time: 0\n    backoff: {initial: 0.1s, max: 0.2s}\n")
    e = Headless(tmp_path, cfg)
    t0 = time.time()

    async def check() -> None:
        api = await e.ready()
        try:
            async def web() -> dict[str, Any]:
                return await api.query("resources", "history", {"service": "web"})

            async def readiness_seen() -> bool:
                h = await web()
                return bool(numbers(h, "probe_readiness_seconds")
                            and numbers(h, "probe_liveness_seconds")
                            and 1.0 in numbers(h, "ready"))

            await wait_for(readiness_seen, 30, "probe latency and readiness in history")
            h = await web()
            lat = numbers(h, "probe_readiness_seconds")
            assert all(0 < v < 5 for v in lat), lat  # seconds per check, a real GET
            n = len(h["series"]["cpu_percent"])
            assert all(len(v) == n for v in h["series"].values()), h  # aligned rings
            assert h["marks"] == []  # web never restarted
            flag.write_text("")  # readiness now fails; liveness (tcp) still passes

            async def unready() -> bool:
                return (await web())["series"]["ready"][-1] == 0.0

            await wait_for(unready, 30, "readiness 0 in history")
            # old keys still answer, and only what was asked for
            only = await api.query("resources", "history",
                                   {"service": "web", "series": ["procs", "ready"]})
            assert set(only["series"]) == {"procs", "ready"}

            async def marked() -> list[Any]:
                h = await api.query("resources", "history", {"service": "crashy"})
                kinds = [k for _, k in h["marks"]]
                return h["marks"] if kinds.count("restart") >= 2 else []

            marks = await wait_for(marked, 30, "restart and failure marks of crashy")
            assert {k for _, k in marks} == {"restart", "failure"}, marks
            assert all(t0 - 1 < t < time.time() + 1 for t, _ in marks), marks
            assert [t for t, _ in marks] == sorted(t for t, _ in marks)
            crashy = await api.query("resources", "history", {"service": "crashy"})
            assert "ready" not in crashy["series"]  # no probes: no probe series

            async def coarse() -> dict[str, Any] | None:  # 10 ticks a point: 2 s here
                h = await api.query("resources", "history",
                                    {"service": "web", "coarse": True})
                return h if numbers(h, "rss_bytes") and numbers(h, "ready") else None

            h = await wait_for(coarse, 30, "a coarse point of web")
            assert h["interval"] == 2.0
            assert set(h["series"]) >= {"cpu_percent", "rss_bytes", "procs", "ready",
                                        "probe_readiness_seconds", "probe_liveness_seconds"}
            fine = (await web())["series"]["rss_bytes"]
            assert max(numbers(h, "rss_bytes")) <= max(v for v in fine if v is not None)
        finally:
            await api.close()

    try:
        asyncio.run(check())
    finally:
        e.stop()


def test_marks_and_coarse_rings_cross_a_handoff_as_json() -> None:
    """What a code reload carries (the detach record goes through JSON): the marks and
    the coarse rings; a predecessor without them (an older engine) leaves them empty."""
    import json

    from tui_supervisor.engine.events import Exited, Spawned
    from tui_supervisor.metrics.history import History
    from tui_supervisor.metrics.sampler import COARSE, ResourceSampler

    old = ResourceSampler(1.0)
    old.on_event(Exited(100.0, "a", 7, 1, None, False, True, 3.0))
    old.on_event(Spawned(101.0, "a", 8, auto=True))
    old.on_event(Spawned(102.0, "a", 9, auto=False))  # asked for: not a restart
    old.on_event(Exited(103.0, "a", 9, 0, None, True, False, 1.0))  # asked for: no mark
    for i in range(COARSE):
        old._record_coarse("a", 100.0 + i, {"cpu_percent": float(i), "ready": 1.0})
    old.history["a"] = History(1.0)  # (so "a" is a sampled service)
    old.history["a"].record(109.0, {"cpu_percent": 9.0})
    new = ResourceSampler(1.0)
    new.adopt(json.loads(json.dumps(old.detach())))
    fine = new.query("history", {"service": "a"})
    assert fine["marks"] == [[100.0, "failure"], [101.0, "restart"]]
    coarse = new.query("history", {"service": "a", "coarse": True})
    assert coarse["interval"] == COARSE and coarse["series"]["cpu_percent"] == [9.0]
    assert coarse["series"]["ready"] == [1.0] and coarse["marks"] == fine["marks"]
    record = old.detach()
    del record["marks"], record["coarse"]
    older = ResourceSampler(1.0)
    older.adopt(json.loads(json.dumps(record)))
    assert older.query("history", {"service": "a"})["marks"] == []
    assert older.query("history", {"service": "a", "coarse": True})["series"][
        "cpu_percent"] == []
