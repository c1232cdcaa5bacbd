"""Spawn, exit detection, respawn, backoff, crash loop, stop: real processes."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from conftest import alive, child, spec, wait_for

from tui_supervisor.engine.events import Exited, StateChanged


def states_of(sup, name: str) -> list[StateChanged]:
    seen: list[StateChanged] = []
    sup.bus.add_listener(lambda ev: seen.append(ev)
                         if isinstance(ev, StateChanged) and ev.service == name else None)
    return seen


async def test_crash_respawns_with_new_pid(engine_factory, tmp_path: Path) -> None:
    sup = await engine_factory(spec("s", child("sleeper"), tmp_path))
    svc = sup.services["s"]
    first = await wait_for(lambda: svc.state.value == "running" and svc.pid)
    await wait_for(lambda: svc.ring.next_offset > 0, what="first output")
    import os
    os.kill(first, signal.SIGKILL)
    second = await wait_for(lambda: svc.pid not in (None, first) and svc.pid)
    assert second != first
    assert not alive(first)
    assert svc.restarts == 1 and svc.failures == 1
    assert svc.last_exit is not None and svc.last_exit["signal"] == signal.SIGKILL
    assert svc.snapshot()["restarts_1h"] == 1  # what an attached client is told too


async def test_backoff_grows_caps_and_resets(engine_factory, tmp_path: Path) -> None:
    # exits 1 at once, 6 times in a row: delays 0, 0.05, 0.1, 0.2, 0.2 (cap), 0.2
    sup = await engine_factory(spec("c", child("crash", "1"), tmp_path))
    seen = states_of(sup, "c")
    svc = sup.services["c"]
    await wait_for(lambda: svc.failures >= 6, what="6 failures")
    await sup.stop(["c"])
    delays = [ev.reason.split("restarting in ")[1] for ev in seen if ev.new == "backoff"][:6]
    assert delays == ["0.00s", "0.05s", "0.10s", "0.20s", "0.20s", "0.20s"]


async def test_backoff_resets_after_running_long_enough(engine_factory, tmp_path: Path) -> None:
    from tui_supervisor.config.schema import BackoffSpec

    # each process lives 0.3 s; reset_after is 0.2 s of running: every failure is a "first"
    sup = await engine_factory(spec("r", child("crash", "1", "0.3"), tmp_path,
                                    backoff=BackoffSpec(0.5, 2, 5, 0.0, reset_after=0.2)))
    seen = states_of(sup, "r")
    svc = sup.services["r"]
    await wait_for(lambda: svc.failures >= 3, what="3 failures")
    await sup.stop(["r"])
    delays = [ev.reason.split("restarting in ")[1] for ev in seen if ev.new == "backoff"]
    assert delays[:3] == ["0.00s", "0.00s", "0.00s"]
    assert svc.consecutive <= 1


async def test_crash_loop_goes_fatal_with_give_up(engine_factory, tmp_path: Path) -> None:
    from tui_supervisor.config.schema import BackoffSpec, CrashLoopSpec

    sup = await engine_factory(spec(
        "f", child("crash", "2"), tmp_path,
        backoff=BackoffSpec(0.01, 1, 0.01, 0, 30), crash_loop=CrashLoopSpec(4, 60, give_up=True)))
    svc = sup.services["f"]
    await wait_for(lambda: svc.state.value == "fatal", what="fatal")
    assert svc.failures == 4
    assert svc.reason == "crash loop: 4 failures in 60s (last: exit code 2)"
    await asyncio.sleep(0.3)  # the thing tested: no respawn meanwhile
    assert svc.spawns == 4 and svc.pid is None  # no more respawns
    assert svc.start() and svc.state.value in ("starting", "running", "backoff")
    await sup.stop(["f"])


async def test_on_failure_and_never_policies(engine_factory, tmp_path: Path) -> None:
    sup = await engine_factory(
        spec("ok", child("crash", "0", "0.1"), tmp_path, restart="on-failure"),
        spec("bad", child("crash", "5"), tmp_path, restart="never"),
    )
    ok, bad = sup.services["ok"], sup.services["bad"]
    await wait_for(lambda: ok.state.value == "completed" and bad.state.value == "exited")
    assert ok.reason == "exit code 0" and ok.failures == 0 and ok.spawns == 1
    assert not ok.wanted and bad.wanted  # the job is done; the failed one is down
    assert bad.reason == "exit code 5" and bad.failures == 1 and bad.spawns == 1


async def test_quick_exit_zero_is_a_failed_start_only_under_always(
        engine_factory, tmp_path: Path) -> None:
    sup = await engine_factory(
        spec("q", child("crash", "0"), tmp_path, start_time=5.0),
        spec("job", child("crash", "0"), tmp_path, start_time=5.0, restart="on-failure"))
    q, job = sup.services["q"], sup.services["job"]
    # meant to keep running, it exited 0 before start_time: a failed start, retried
    await wait_for(lambda: q.failures >= 1)
    # a job that exits 0 at once is done, however fast
    await wait_for(lambda: job.state.value == "completed")
    assert job.failures == 0 and job.spawns == 1


async def test_start_rule_starting_then_running(engine_factory, tmp_path: Path) -> None:
    sup = await engine_factory(spec("s", child("sleeper"), tmp_path, start_time=0.3))
    seen = states_of(sup, "s")
    svc = sup.services["s"]
    assert svc.state.value == "starting"
    await wait_for(lambda: svc.state.value == "running")
    assert [e.new for e in seen] == ["running"] and seen[0].reason == "up for 0.3s"


async def test_term_ignoring_service_is_killed_after_timeout(engine_factory,
                                                             tmp_path: Path) -> None:
    from tui_supervisor.config.schema import StopSpec

    sup = await engine_factory(spec("t", child("sleeper", "ignore-term"), tmp_path,
                                    stop=StopSpec(signal.SIGTERM, 0.5)))
    exits: list[Exited] = []
    sup.bus.add_listener(lambda ev: exits.append(ev) if isinstance(ev, Exited) else None)
    svc = sup.services["t"]
    await wait_for(lambda: svc.ring.next_offset > 0, what="ready line")
    pid = svc.pid
    await sup.stop(["t"])
    assert svc.state.value == "stopped"
    assert [(e.pid, e.signal, e.requested, e.failure) for e in exits] == \
        [(pid, signal.SIGKILL, True, False)]
    assert not alive(pid)


async def test_stop_leaves_no_grandchild(engine_factory, tmp_path: Path) -> None:
    sup = await engine_factory(spec("sh", ("/bin/sh", "-c", "sleep 1000 & wait"), tmp_path))
    svc = sup.services["sh"]
    from tui_supervisor.engine import proc

    sleeps = await wait_for(lambda: svc.pid and proc.descendants(svc.pid))
    await sup.stop(["sh"])
    assert svc.state.value == "stopped"
    assert not any(alive(p) for p in sleeps)


async def test_missing_binary_is_fatal_with_reason(engine_factory, tmp_path: Path) -> None:
    sup = await engine_factory(spec("m", ("/nonexistent/bin/tool", "x"), tmp_path))
    svc = sup.services["m"]
    assert svc.state.value == "fatal"
    assert svc.reason == "command not found: /nonexistent/bin/tool"


async def test_operator_signal_is_not_a_failure(engine_factory, tmp_path: Path) -> None:
    sup = await engine_factory(spec("s", child("sleeper"), tmp_path))
    svc = sup.services["s"]
    pid = await wait_for(lambda: svc.pid)
    await wait_for(lambda: svc.ring.next_offset > 0)
    assert (await sup.signal("s", "TERM"))["ok"]
    await wait_for(lambda: svc.pid not in (None, pid))
    assert svc.failures == 0 and svc.restarts == 1
    await sup.restart(["s"])
    assert svc.failures == 0 and svc.state.value == "running"


async def test_stop_during_a_long_backoff_is_immediate_and_final(engine_factory,
                                                                 tmp_path: Path) -> None:
    from tui_supervisor.config.schema import BackoffSpec

    sup = await engine_factory(spec("b", child("crash", "1"), tmp_path,
                                    backoff=BackoffSpec(60, 2, 600, 0, 30)))
    svc = sup.services["b"]
    await wait_for(lambda: svc.state.value == "backoff" and svc.consecutive == 2)
    assert 59 < svc.snapshot()["backoff_remaining"] <= 60
    spawns = svc.spawns
    await asyncio.wait_for(sup.stop(["b"]), 5)  # not after the 60 s backoff
    assert svc.state.value == "stopped" and svc.backoff_until is None
    await asyncio.sleep(0.2)  # the thing tested: no spawn meanwhile
    assert svc.spawns == spawns and svc.pid is None
    assert svc.start() and svc.consecutive == 0  # a manual start clears the backoff
    await sup.stop(["b"])
