"""The resource sampler on real process trees: counts, CPU, deaths between ticks, the
event loop staying responsive, the thread stopping, handoff, and queries over a socket."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import child, make_config, spec, wait_for

from tui_supervisor.engine.supervisor import Supervisor
from tui_supervisor.metrics import attach_metrics
from tui_supervisor.metrics.sampler import ResourceSampler

FAST = 0.1
LINE = 55
"""Bytes of one line of tests/children/counter.py."""


def res(sup: Supervisor, name: str) -> dict[str, Any]:
    (svc,) = [s for s in sup.snapshot_now()["services"] if s["name"] == name]
    return svc["resources"]  # type: ignore[no-any-return]


def engine_res(sup: Supervisor) -> dict[str, Any]:
    return sup.snapshot_now()["engine"]["resources"]  # type: ignore[no-any-return]


def sampler_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "sampler"]


async def test_a_tree_of_three_processes(engine_factory, tmp_path: Path) -> None:
    s = ResourceSampler(FAST)
    sup = await engine_factory(spec("t", child("tree", "3"), tmp_path), extensions=[s])
    assert res(sup, "t") == {} or res(sup, "t")["procs"] < 3  # nothing before the 1st tick
    r = await wait_for(lambda: res(sup, "t").get("procs") == 3 and res(sup, "t"))
    assert set(r) == {"procs", "cpu_percent", "cpu_seconds_total", "rss_bytes", "fds",
                      "threads", "sampled_at"}
    assert r["rss_bytes"] > 3 * 1 << 20  # three python interpreters
    assert r["threads"] >= 3 and r["fds"] >= 9  # each: at least stdin, stdout, stderr
    assert abs(r["sampled_at"] - time.time()) < 5
    e = engine_res(sup)
    assert set(e) == {"cpu_percent", "cpu_seconds_total", "rss_bytes", "fds", "threads",
                      "loop_lag_p99", "loop_lag_max", "log_bytes_total", "log_bytes_per_s",
                      "log_lines_dropped", "sample_seconds", "sample_interval",
                      "loop_lag_histogram"}
    lag = e["loop_lag_histogram"]  # every probe since the start, for Prometheus
    assert lag["count"] == sum(lag["counts"]) > 0 and len(lag["counts"]) == len(lag["buckets"]) + 1
    assert e["threads"] >= 2  # the loop's and the sampler's
    assert e["rss_bytes"] > 10 << 20 and e["sample_interval"] == FAST
    assert 0 < e["sample_seconds"] < 1 and e["cpu_seconds_total"] > 0
    assert e["log_bytes_total"] > 0  # the three 'pid P level L' lines
    assert len(sampler_threads()) == 1
    await sup.close()
    assert sampler_threads() == []  # the thread is joined on close


async def test_an_orphan_still_counts_for_its_service(engine_factory, tmp_path: Path
                                                      ) -> None:
    """The leaf's parent exits: the leaf is reparented to the engine (a subreaper), off
    the main process's tree; its marker still makes it the service's."""
    import os

    from tui_supervisor.engine import proc

    s = ResourceSampler(FAST)
    sup = await engine_factory(spec("t", child("tree", "3", "middle-exit"), tmp_path),
                               spec("other", child("sleeper"), tmp_path), extensions=[s])
    svc = sup.services["t"]

    def orphans() -> list[int]:
        return [p for p in proc.children_of(os.getpid())
                if proc.read_marker(p) == svc.marker and p != svc.pid]

    await wait_for(lambda: len(orphans()) == 1 and len(svc.ring.tail()) == 3)
    # two ticks after the orphan exists
    n = len(s.query("history", {"service": "t"})["series"]["procs"])
    await wait_for(lambda: len(s.query("history", {"service": "t"})["series"]["procs"]) > n + 1)
    assert res(sup, "t")["procs"] == 2  # the main process and the orphan
    assert res(sup, "other")["procs"] == 1


async def test_a_cpu_burner_against_an_idle_service(engine_factory, tmp_path: Path) -> None:
    s = ResourceSampler(FAST)
    sup = await engine_factory(spec("burn", child("tree", "1", "leaf-burn"), tmp_path),
                               spec("idle", child("sleeper"), tmp_path), extensions=[s])
    await wait_for(lambda: len([v for v in s.query("history", {"service": "burn"})
                                ["series"]["cpu_percent"] if v is not None]) >= 8)
    burn = [v for v in s.query("history", {"service": "burn"})["series"]["cpu_percent"]
            if v is not None][-6:]
    idle = [v for v in s.query("history", {"service": "idle"})["series"]["cpu_percent"]
            if v is not None][-6:]
    assert sum(burn) / len(burn) > 25, burn  # ~100 % of a core on an idle machine
    assert sum(idle) / len(idle) < 5, idle
    assert res(sup, "burn")["cpu_seconds_total"] > res(sup, "idle")["cpu_seconds_total"]


async def test_cpu_seconds_never_decrease_when_a_process_dies(engine_factory,
                                                              tmp_path: Path) -> None:
    """The leaf burns CPU for 1 s and exits (between ticks): the tree shrinks from 3 to 2
    processes and the service's CPU seconds counter keeps the leaf's share."""
    s = ResourceSampler(FAST)
    sup = await engine_factory(
        spec("t", child("tree", "3", "leaf-burn", "leaf-exit=1.0"), tmp_path), extensions=[s])
    seen: list[tuple[int, float]] = []

    def collect() -> bool:
        r = res(sup, "t")
        if r and (not seen or r["sampled_at"] != seen[-1][1]):
            seen.append((r["procs"], r["cpu_seconds_total"]))
        return len(seen) > 3 and seen[-1][0] == 2 and seen[-3][0] == 2

    await wait_for(collect, what="the leaf's exit", timeout=30)
    counts = [c for _, c in seen]
    assert counts == sorted(counts), counts
    assert 3 in [p for p, _ in seen]
    assert counts[-1] >= 0.3, seen  # the dead leaf's CPU is still counted
    history = s.query("history", {"service": "t", "series": ["procs"]})["series"]["procs"]
    assert history[-1] == 2 and 3 in history


async def test_restart_keeps_the_counter_and_a_stopped_service_is_a_gap(
        engine_factory, tmp_path: Path) -> None:
    import os
    import signal

    s = ResourceSampler(FAST)
    sup = await engine_factory(spec("b", child("tree", "1", "leaf-burn"), tmp_path),
                               extensions=[s])
    svc = sup.services["b"]
    await wait_for(lambda: res(sup, "b").get("cpu_seconds_total", 0) > 0.3)
    before = res(sup, "b")["cpu_seconds_total"]
    old = svc.pid
    assert old is not None
    os.kill(old, signal.SIGKILL)
    await wait_for(lambda: svc.pid not in (None, old))
    seen = [before]

    def collect() -> bool:
        v = res(sup, "b")["cpu_seconds_total"]
        if v != seen[-1]:
            seen.append(v)
        return len(seen) >= 4  # a few ticks of the replacement

    await wait_for(collect)
    assert seen == sorted(seen), seen  # the replacement's CPU adds to the old total
    await sup.stop(["b"])
    await wait_for(lambda: res(sup, "b")["procs"] == 0)
    stopped_at = res(sup, "b")["cpu_seconds_total"]
    await wait_for(lambda: s.query("history", {"service": "b"})["series"]["procs"][-3:]
                   == [0, 0, 0])
    h = s.query("history", {"service": "b"})["series"]
    assert h["cpu_percent"][-1] is None and h["rss_bytes"][-1] is None
    assert res(sup, "b")["cpu_seconds_total"] == stopped_at


async def test_the_loop_stays_responsive_while_sampling_100_processes(
        engine_factory, tmp_path: Path) -> None:
    s = ResourceSampler(0.05)
    specs = [spec(f"t{i}", child("tree", "3"), tmp_path) for i in range(34)]
    sup = await engine_factory(*specs, extensions=[s])
    await wait_for(lambda: sum(res(sup, f"t{i}").get("procs", 0) for i in range(34)) == 102,
                   timeout=30, what="102 processes sampled")
    late: list[float] = []
    t_end = time.monotonic() + 2.0
    while time.monotonic() < t_end:
        t0 = time.monotonic()
        await asyncio.sleep(0.005)  # the thing measured: how late a short sleep wakes
        late.append(time.monotonic() - t0 - 0.005)
    e = engine_res(sup)
    assert max(late) < 0.25, sorted(late)[-5:]
    assert e["loop_lag_p99"] is not None and e["loop_lag_p99"] < 0.25
    assert e["loop_lag_max"] >= e["loop_lag_p99"]
    assert 0 < e["sample_seconds"] < 0.5
    lag = s.query("history", {"service": None, "series": ["loop_lag"]})["series"]["loop_lag"]
    assert len([v for v in lag if v is not None]) >= 10


async def test_log_bytes_and_lines_dropped(engine_factory, tmp_path: Path) -> None:
    """20 lines of 55 bytes; the log file is made unwritable after the first line: the
    rest are counted as dropped (they still reach the ring)."""
    s = ResourceSampler(FAST)
    sup = await engine_factory(spec("c", child("counter", "20", "0.05"), tmp_path,
                                    restart="never"), extensions=[s])
    svc = sup.services["c"]
    await wait_for(lambda: svc.ring.next_offset >= LINE, timeout=10)
    written = svc.ring.next_offset // LINE
    svc.log_file.close()  # every later write fails (EBADF)
    await wait_for(lambda: svc.state.value == "completed")
    await wait_for(lambda: engine_res(sup).get("log_lines_dropped") == 20 - written)
    assert engine_res(sup)["log_bytes_total"] == 20 * LINE
    assert (tmp_path / "logs" / "c.log").stat().st_size == written * LINE
    rates = s.query("history", {"service": None})["series"]["log_bytes_per_s"]
    assert max(v for v in rates if v is not None) > 0


async def test_handoff_keeps_history_and_counters(engine_factory, tmp_path: Path) -> None:
    """Part of the CPU counted was used by a process gone before the handoff, the rest by
    live ones: the successor neither loses the first nor counts the second twice."""
    cfg = make_config(tmp_path,
                      spec("b", child("tree", "3", "leaf-burn", "leaf-exit=0.5"), tmp_path),
                      spec("c", child("tree", "1", "leaf-burn"), tmp_path))
    first = ResourceSampler(FAST)
    sup = await engine_factory(config=cfg, extensions=[first])
    await wait_for(lambda: res(sup, "b").get("procs") == 2
                   and res(sup, "b")["cpu_seconds_total"] > 0.03  # the leaf used some
                   and res(sup, "c")["cpu_seconds_total"] > 0.2, what="the leaf's exit",
                   timeout=30)  # burners get little CPU on a loaded machine
    record = json.loads(json.dumps(sup.detach()))
    t_detach = time.monotonic()
    before = record["extensions"]["resources"]
    points = before["history"]["b"]["series"]["procs"]
    counter = before["views"]["b"]["cpu_seconds_total"]
    counter_c = before["views"]["c"]["cpu_seconds_total"]
    lags = before["lag_histogram"]["count"]
    assert lags > 0
    assert sampler_threads() == []  # stopped by detach
    second = ResourceSampler(FAST)
    sup2 = await engine_factory(config=cfg, adopt=record, extensions=[second])
    assert res(sup2, "b")["cpu_seconds_total"] == counter  # carried before any tick
    assert second.lag_histogram.count >= lags  # the lag counters carry on, not from 0
    await wait_for(lambda: len(second.query("history", {"service": "b"})["series"]["procs"])
                   > len(points))
    after = second.query("history", {"service": "b"})["series"]["procs"]
    assert after[:len(points)] == points and after[-1] == 2
    # the processes were known before: the counter grows by what the one-process burner
    # used since (at most the wall time), not by its whole CPU time again
    bound = time.monotonic() - t_detach + 0.1 + 0.03
    grew = res(sup2, "b")["cpu_seconds_total"] - counter
    assert 0 <= grew <= bound, (grew, counter)
    grew = res(sup2, "c")["cpu_seconds_total"] - counter_c
    assert 0 <= grew <= bound, (grew, counter_c)
    await sup2.close()


def test_attach_metrics_only_when_sampling(tmp_path: Path) -> None:
    import dataclasses

    cfg = make_config(tmp_path)
    assert cfg.settings.sample_interval == 0
    assert "resources" not in [e.name for e in attach_metrics(Supervisor(cfg))]
    on = dataclasses.replace(cfg, settings=dataclasses.replace(cfg.settings,
                                                               sample_interval=0.5))
    sup = Supervisor(on)
    exts = attach_metrics(sup)
    assert [e.name for e in exts] == ["reliability", "latency", "incidents", "resources"]
    assert sup.extension("resources").interval == 0.5  # type: ignore[union-attr]


async def test_history_query(make_api, tmp_path: Path) -> None:
    _, api = await make_api(spec("t", child("tree", "3"), tmp_path),
                            extensions=[ResourceSampler(FAST)])

    async def procs() -> list[Any]:
        h = await api.query("resources", "history", {"service": "t", "series": ["procs"]})
        return h["series"]["procs"]  # type: ignore[no-any-return]

    async def three() -> bool:
        return (await procs())[-3:] == [3, 3, 3]

    await wait_for(three, 10, "3 processes in the last 3 samples", interval=0.05)
    h = await api.query("resources", "history", {"service": "t", "series": None})
    assert set(h["series"]) == {"cpu_percent", "rss_bytes", "procs"}
    assert h["interval"] == FAST and abs(h["t_last"] - time.time()) < 5
    n = len(h["series"]["procs"])
    assert all(len(v) == n for v in h["series"].values())  # aligned
    eng = await api.query("resources", "history", {"service": None})
    assert set(eng["series"]) == {"cpu_percent", "rss_bytes", "loop_lag", "log_bytes_per_s"}
    assert eng["series"]["rss_bytes"][-1] > 0
    with pytest.raises(ValueError, match="no series 'nope'"):
        await api.query("resources", "history", {"service": "t", "series": ["nope"]})
    with pytest.raises(ValueError, match="no service 'zz'"):
        await api.query("resources", "history", {"service": "zz"})
    with pytest.raises(ValueError, match="no query 'what'"):
        await api.query("resources", "what", {})
    snap = await api.snapshot()
    assert snap["services"][0]["resources"]["procs"] == 3
