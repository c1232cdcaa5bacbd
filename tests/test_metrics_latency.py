"""Latency histograms: exact bucket/percentile arithmetic, and the engine's respawn and
detection latencies measured on real processes."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conftest import child, spec, wait_for

from tui_supervisor.config.schema import BackoffSpec, StopSpec
from tui_supervisor.engine.supervisor import Supervisor
from tui_supervisor.metrics.latency import BUCKETS, RECENT, Histogram, LatencyCollector, percentile


def test_buckets_are_le_inclusive_and_exact() -> None:
    h = Histogram()
    for v in (0.0004, 0.001, 0.003, 2.0, 20.0):
        h.observe(v)
    view = h.view()
    expected = [0] * (len(BUCKETS) + 1)
    expected[BUCKETS.index(0.0005)] = 1
    expected[BUCKETS.index(0.001)] = 1  # exactly on a bound: counted in it (le)
    expected[BUCKETS.index(0.005)] = 1
    expected[BUCKETS.index(2.5)] = 1
    expected[-1] = 1  # +Inf
    assert view["counts"] == expected
    assert view["count"] == 5 and view["sum"] == 0.0004 + 0.001 + 0.003 + 2.0 + 20.0
    assert view["p50"] == 0.003 and view["p99"] == 20.0 and view["max"] == 20.0


def test_percentile_nearest_rank() -> None:
    values = [float(i) for i in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) is None


def test_recent_bounded_counts_kept_and_round_trip() -> None:
    h = Histogram()
    for i in range(RECENT + 500):
        h.observe(i / 1000)
    assert h.count == RECENT + 500 and len(h.recent) == RECENT
    assert h.view()["p50"] == percentile(sorted(i / 1000 for i in range(500, RECENT + 500)), 50)
    again = Histogram.from_dict(json.loads(json.dumps(h.to_dict())))
    assert again.view() == h.view()


async def test_respawn_latency_excludes_backoff(engine_factory: Callable[..., Any],
                                               tmp_path: Path) -> None:
    backoff = BackoffSpec(initial=2.0, factor=1, max=2.0, jitter=0.0, reset_after=30)
    lat = LatencyCollector()
    sup: Supervisor = await engine_factory(
        spec("s", child("sleeper"), tmp_path, backoff=backoff), extensions=[lat])
    svc = sup.services["s"]
    pid = await wait_for(lambda: svc.ring.next_offset > 0 and svc.pid)
    os.kill(pid, signal.SIGKILL)  # first crash: respawned at once
    pid2 = await wait_for(lambda: svc.pid not in (None, pid) and svc.pid)
    os.kill(pid2, signal.SIGKILL)  # second in a row: respawned after the 2 s backoff
    await wait_for(lambda: svc.state.value == "backoff")
    await wait_for(lambda: svc.pid not in (None, pid2), timeout=20)
    view = (await sup.snapshot())["services"][0]["latency"]
    assert view["respawn"]["count"] == 2
    assert 0 <= view["respawn"]["max"] < 1.5, "the 2 s backoff must not be counted"
    assert view["detect"]["count"] == 0, "a death we did not cause has no known time"


async def test_detect_latency_from_our_sigkill(engine_factory: Callable[..., Any],
                                              tmp_path: Path) -> None:
    lat = LatencyCollector()
    sup: Supervisor = await engine_factory(
        spec("s", child("sleeper"), tmp_path),
        spec("stubborn", child("sleeper", "ignore-term"), tmp_path,
             stop=StopSpec(signal=signal.SIGTERM, timeout=0.2)),
        extensions=[lat])
    svc = sup.services["s"]
    pid = await wait_for(lambda: svc.ring.next_offset > 0 and svc.pid)
    await sup.signal("s", "KILL")  # an operator's kill: not a failure, respawned at once
    await wait_for(lambda: svc.pid not in (None, pid) and svc.state.value == "running")
    await wait_for(lambda: sup.services["stubborn"].ring.next_offset > 0)
    await sup.stop(["stubborn"])  # SIGTERM ignored: SIGKILL after 0.2 s
    snap = await sup.snapshot()
    views = {s["name"]: s["latency"] for s in snap["services"]}
    assert views["s"]["detect"]["count"] == 1
    assert views["s"]["respawn"]["count"] == 1
    assert views["stubborn"]["detect"]["count"] == 1
    assert 0 <= views["stubborn"]["detect"]["max"] < 5
    engine = snap["engine"]["latency"]
    assert engine["detect"]["count"] == 2 and engine["respawn"]["count"] == 1
    record = json.loads(json.dumps(sup.detach()))
    second = Supervisor(sup.config)
    LatencyCollector.attach(second)
    await second.open(adopt=record)
    try:
        again = {s["name"]: s["latency"] for s in (await second.snapshot())["services"]}
        assert again == views
    finally:
        await second.close()
