"""The UI's store: a snapshot plus the events after it, exactly; bounded; and fed by a real
engine's subscription it ends up agreeing with the engine's own snapshot."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

from conftest import child, spec, wait_for

from tui_supervisor.tui.store import Store


def svc(name: str, **kw: Any) -> dict[str, Any]:
    return {"name": name, "state": "running", "pid": 10, "restarts": 0, "failures": 0, **kw}


def test_snapshot_then_events() -> None:
    st = Store()
    st.load_snapshot({"engine": {"pid": 1}, "services": [svc("a"), svc("b")]})
    assert list(st.services) == ["a", "b"] and st.take_dirty() == {"a", "b"}
    assert st.order_changed
    st.apply({"kind": "exit", "t": 5.0, "service": "a", "pid": 10, "code": None, "signal": 9,
              "requested": False, "failure": True, "uptime": 3.0})
    st.apply({"kind": "state", "t": 5.0, "service": "a", "old": "running", "new": "backoff",
              "pid": None, "reason": "killed by SIGKILL", "wanted": True})
    st.apply({"kind": "spawn", "t": 5.1, "service": "a", "pid": 11, "auto": True,
              "respawn_latency": 0.002})
    st.apply({"kind": "state", "t": 5.1, "service": "a", "old": "backoff", "new": "starting",
              "pid": 11, "reason": "respawned", "wanted": True})
    a = st.services["a"].view
    assert (a["state"], a["pid"], a["failures"], a["restarts"]) == ("starting", 11, 0, 0)
    assert a["last_exit"]["text"] == "killed by SIGKILL"
    assert st.take_dirty() == {"a"} and st.take_dirty() == set()
    st.apply({"kind": "state", "service": "zz", "new": "running"})  # unknown: ignored
    assert st.take_dirty() == set()
    assert st.counts_by_state() == {"starting": 1, "running": 1}


def test_exits_without_a_process_status_keep_the_engines_last_exit() -> None:
    """A failed spawn ran nothing: last_exit stays as it was (as in the engine's
    record); a daemon's death has no uptime of its own (the engine keeps None)."""
    st = Store()
    before = {"pid": 9, "code": 1, "signal": None, "t": 1.0, "uptime": 2.0,
              "text": "exit code 1"}
    st.load_snapshot({"engine": {}, "services": [svc("a", last_exit=before)]})
    st.apply({"kind": "exit", "t": 5.0, "service": "a", "pid": 0, "code": None,
              "signal": None, "requested": False, "failure": True, "uptime": 0.0,
              "cause": "spawn", "detail": "cannot spawn: command not found: x"})
    assert st.services["a"].view["last_exit"] == before
    st.apply({"kind": "exit", "t": 6.0, "service": "a", "pid": 77, "code": None,
              "signal": 9, "requested": False, "failure": True, "uptime": 40.0,
              "cause": "daemon"})
    last = st.services["a"].view["last_exit"]
    assert (last["pid"], last["uptime"], last["text"]) == (77, None, "killed by SIGKILL")


def test_lines_are_bounded_and_taken_once() -> None:
    st = Store(per_service=3, merged=5)
    st.load_snapshot({"engine": {}, "services": [svc("a"), svc("b")]})
    st.apply({"kind": "log", "t": 1.0, "service": "a", "stream": "stdout", "offset": 0,
              "lines": ["a1", "a2", "a3", "a4"]})
    st.apply({"kind": "log", "t": 2.0, "service": "b", "stream": "stderr", "offset": 0,
              "lines": ["b1", "b2"]})
    assert [x.text for x in st.services["a"].lines] == ["a2", "a3", "a4"]
    assert [x.text for x in st.merged] == ["a2", "a3", "a4", "b1", "b2"]
    # not taken for a while: bounded like the merged view (the oldest go)
    assert [x.text for x in st.take_lines()] == ["a2", "a3", "a4", "b1", "b2"]
    assert st.take_lines() == [] and st.lines_total == 6
    assert st.services["b"].lines[0].stream == "stderr"


def test_reload_keeps_history_of_kept_services() -> None:
    st = Store()
    st.load_snapshot({"engine": {}, "services": [svc("a"), svc("b")]})
    st.apply({"kind": "log", "t": 1.0, "service": "a", "stream": "stdout", "offset": 0,
              "lines": ["kept"]})
    st.order_changed = False
    st.load_snapshot({"engine": {}, "services": [svc("c"), svc("a")]})
    assert list(st.services) == ["c", "a"] and st.order_changed
    assert [x.text for x in st.services["a"].lines] == ["kept"]


async def test_fed_by_a_real_engine_agrees_with_it(engine_factory, tmp_path: Path) -> None:
    sup = await engine_factory(spec("s", child("sleeper"), tmp_path),
                               spec("c", child("crash", "3"), tmp_path, restart="never"))
    st = Store()
    stream = await sup.subscribe(logs=True)

    async def feed() -> None:
        async for ev in stream:
            st.apply(ev)

    task = asyncio.ensure_future(feed())
    try:
        pid = await wait_for(lambda: sup.services["s"].ring.next_offset > 0 and
                             sup.services["s"].pid)
        os.kill(pid, signal.SIGKILL)
        await wait_for(lambda: st.services.get("s") and st.services["s"].view["pid"]
                       not in (None, pid) and st.services["s"].view["state"] == "running")
        await wait_for(lambda: st.services["c"].view["state"] == "exited")
        truth = {s["name"]: s for s in (await sup.snapshot())["services"]}
        for name in ("s", "c"):
            mine = st.services[name].view
            for key in ("state", "pid"):  # counters come from snapshots only
                assert mine[key] == truth[name][key], (name, key)
            assert mine["last_exit"]["text"] == truth[name]["last_exit"]["text"]
        assert [x.text for x in st.services["s"].lines][:1] == [f"ready {pid}"]
    finally:
        task.cancel()


def test_the_crash_loop_mark_follows_state_events_and_its_end() -> None:
    from tui_supervisor.tui.rows import state_text

    st = Store()
    st.load_snapshot({"engine": {"pid": 1}, "services": [svc("a")]})
    st.take_dirty()
    st.apply({"kind": "state", "t": 5.0, "service": "a", "old": "starting", "new": "backoff",
              "pid": None, "reason": "crash loop: 5 failures in 60s (last: exit code 3); "
              "restarting in 30.00s", "wanted": True, "crash_looping": True})
    a = st.services["a"].view
    assert a["crash_looping"] and state_text(a) == "crash-loop"
    assert state_text({**a, "backoff_remaining": 28.04}) == "crash-loop: retry in 28.0s"
    st.apply({"kind": "state", "t": 35.0, "service": "a", "old": "backoff", "new": "starting",
              "pid": 12, "reason": "respawned", "wanted": True, "crash_looping": True})
    assert state_text(a) == "crash-loop: starting"
    st.apply({"kind": "state", "t": 35.2, "service": "a", "old": "starting", "new": "running",
              "pid": 12, "reason": "up for 0.2s", "wanted": True, "crash_looping": True})
    assert state_text(a) == "running" and st.take_dirty() == {"a"}
    st.apply({"kind": "notice", "t": 66.0, "service": "a", "level": "info", "topic":
              "crash_loop", "message": "recovered", "data": {"crash_looping": False}})
    assert a["crash_looping"] is False and st.take_dirty() == {"a"}
