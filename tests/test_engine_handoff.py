"""detach() / open(adopt=...): a second engine in the same process takes over live
children and their pipes with no byte lost; subscribe gives a snapshot then every event."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

from conftest import alive, child, make_config, spec, wait_for

from tui_supervisor.engine.supervisor import Supervisor


async def test_adopt_keeps_every_pid_and_byte(engine_factory, tmp_path: Path) -> None:
    cfg = make_config(
        tmp_path,
        spec("a", child("counter", "0", "0.001"), tmp_path),
        spec("b", child("counter", "0", "0.001", "both"), tmp_path),
        spec("c", child("crash", "1", "0.05"), tmp_path),  # keeps failing: counters move
    )
    first = await engine_factory(config=cfg)
    await wait_for(lambda: first.services["a"].ring.next_offset > 200 * 55, what="output")
    await wait_for(lambda: first.services["c"].failures >= 2)
    pids = {n: s.pid for n, s in first.services.items() if n != "c"}
    handed = first.services["a"].ring.next_offset
    record = json.loads(json.dumps(first.detach()))  # must be plain JSON
    await asyncio.sleep(0.3)  # the gap tested: children keep writing into the pipes
    second = await engine_factory(config=cfg, adopt=record)
    assert {n: s.pid for n, s in second.services.items() if n != "c"} == pids
    c = second.services["c"]
    assert c.failures >= 2 and c.spawns >= 2  # (the next spawn may be in its backoff)
    failures_then = c.failures
    await wait_for(lambda: c.failures > failures_then, what="c keeps being supervised")
    await wait_for(lambda: second.services["a"].ring.next_offset > handed + 300 * 55,
                   what="a's lines from across the handoff, read by the new engine")
    # the adopted child is still watched: a kill is seen and respawned
    os.kill(pids["a"], signal.SIGKILL)
    a = second.services["a"]
    await wait_for(lambda: a.pid not in (None, pids["a"]))
    await second.close()
    for name in ("a", "b"):
        lines = (tmp_path / "logs" / f"{name}.log").read_text().splitlines()
        nums = [int(line.split()[1]) for line in lines]
        # each incarnation counts from 0: split at restarts, each run contiguous
        runs, cur = [], []
        for x in nums:
            if x == 0 and cur:
                runs.append(cur)
                cur = []
            cur.append(x)
        runs.append(cur)
        if name == "b":  # stdout and stderr interleave in read order: check each stream
            assert sorted(runs[0]) == list(range(len(runs[0])))
        else:
            assert runs[0] == list(range(len(runs[0]))), "gap or duplicate across handoff"
        assert len(runs[0]) > 300


async def test_adopt_of_child_that_died_during_handoff(engine_factory, tmp_path: Path) -> None:
    cfg = make_config(tmp_path, spec("s", child("sleeper"), tmp_path))
    first = await engine_factory(config=cfg)
    svc = first.services["s"]
    pid = await wait_for(lambda: svc.ring.next_offset > 0 and svc.pid)
    record = first.detach()
    os.kill(pid, signal.SIGKILL)  # dies while nobody watches: stays a zombie for us
    await wait_for(lambda: not alive(pid), what="s dead, a zombie nobody reaped")
    second = await engine_factory(config=cfg, adopt=record)
    s2 = second.services["s"]
    await wait_for(lambda: s2.pid not in (None, pid), what="respawn after adopt")
    assert s2.last_exit["signal"] == signal.SIGKILL and s2.failures == 1


async def test_subscribe_snapshot_then_events(engine_factory, tmp_path: Path) -> None:
    sup = await engine_factory(spec("s", child("counter", "5"), tmp_path, restart="never"),
                               autostart=False)
    it = await sup.subscribe()
    first = await anext(it)
    assert first["kind"] == "snapshot"
    assert [s["state"] for s in first["services"]] == ["stopped"]
    await sup.start(["s"])
    kinds: list[tuple[str, str]] = []
    lines: list[str] = []
    async for ev in it:
        if ev["kind"] == "state":
            kinds.append((ev["old"], ev["new"]))
        if ev["kind"] == "log":
            lines.extend(ev["lines"])
        if ev["kind"] == "state" and ev["new"] == "completed":
            break
    assert kinds == [("stopped", "starting"), ("starting", "running"), ("running", "completed")]
    await wait_for(lambda: not sup.services["s"].pipes)
    while True:  # lines that arrived after the exit event, then 0.1 s with nothing more
        try:
            ev = it.__anext__()
            ev = await asyncio.wait_for(ev, 10 if len(lines) < 5 else 0.1)
        except (TimeoutError, StopAsyncIteration):
            break
        if ev["kind"] == "log":
            lines.extend(ev["lines"])
    assert lines == [f"line {i:08d} {'x' * 40}" for i in range(5)]
    await it.aclose()


async def test_slow_subscriber_is_dropped_with_notice(engine_factory, tmp_path: Path) -> None:
    sup = await engine_factory(spec("f", child("counter", "5000"), tmp_path, restart="never"))
    sub = sup.subscribe_now(max_bytes=5 * 1024)
    svc = sup.services["f"]
    await wait_for(lambda: svc.state.value == "completed" and not svc.pipes)
    items = []
    async for item in sub:
        items.append(item)
    assert sub.dropped
    assert items[-1].message == "subscriber too slow: dropped"
    assert svc.ring.next_offset == 5000 * 55  # the engine itself lost nothing


def test_supervisor_is_importable_without_a_loop(tmp_path: Path) -> None:
    Supervisor(make_config(tmp_path))  # constructing does no I/O


async def test_notices_survive_a_handoff(engine_factory, tmp_path: Path) -> None:
    """What a new image's first subscriber is told happened before it includes what
    happened before the exec (a dashboard's event log across a code reload)."""
    from tui_supervisor.engine.events import Notice

    cfg = make_config(tmp_path, spec("s", child("sleeper"), tmp_path))
    first = await engine_factory(config=cfg)
    first.bus.emit(Notice(123.0, "warning", "config not reloaded: x.yaml:3: nope", None))
    record = json.loads(json.dumps(first.detach()))
    second = await engine_factory(config=cfg, adopt=record)
    it = await second.subscribe()
    snap = await anext(it)
    assert any(n["message"] == "config not reloaded: x.yaml:3: nope" and n["t"] == 123.0
               and n["level"] == "warning" for n in snap["notices"])
    await it.aclose()
