"""Fault containment: an exception injected into a real handler of a real engine (a method
of the engine's own objects replaced in-process) is said once, and the service goes on
being supervised; the sweep repairs states deliberately corrupted. Real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from conftest import alive, child, spec, wait_for

from tui_supervisor.engine.events import AnyEvent, Notice, Topic
from tui_supervisor.engine.extension import Extension
from tui_supervisor.engine.states import State
from tui_supervisor.metrics.sampler import ResourceSampler


class Faults:
    """Internal notices seen, and a switch to make an injected fault stop."""

    def __init__(self, sup: Any) -> None:
        self.notices: list[Notice] = []
        sup.bus.add_listener(self._keep)

    def _keep(self, ev: AnyEvent) -> None:
        if isinstance(ev, Notice) and ev.topic == Topic.INTERNAL:
            self.notices.append(ev)

    def where(self) -> list[str]:
        return [str((n.data or {}).get("where")) for n in self.notices]


def boom(*_: Any, **__: Any) -> None:
    raise RuntimeError("injected")


def once(real: Any) -> Any:
    """`real`, except that its first call raises."""
    calls = []

    def fn(*args: Any, **kw: Any) -> Any:
        calls.append(args)
        if len(calls) == 1:
            raise RuntimeError("injected once")
        return real(*args, **kw)
    return fn


async def running(svc: Any, but_not: int | None = None) -> int:
    return await wait_for(lambda: svc.state is State.RUNNING and svc.pid not in (None, but_not)
                          and svc.pid, what=lambda: f"running ({svc.state}, {svc.reason})")


async def test_exit_callback_fault_every_exit_still_respawned(engine_factory,
                                                              tmp_path: Path) -> None:
    sup = await engine_factory(spec("s", child("sleeper"), tmp_path))
    svc = sup.services["s"]
    faults = Faults(sup)
    pid = await running(svc)
    svc._drain_pipes = boom  # every exit's handling now fails before the decision
    for n in range(1, 4):
        os.kill(pid, signal.SIGKILL)
        pid = await running(svc, but_not=pid)
        assert svc.failures == n  # decided from the facts: counted, with its real status
        assert svc.last_exit["text"] == "killed by SIGKILL"
    assert faults.where() == ["exit callback"]  # said once, though it failed 3 times
    assert svc.repair.internal_errors == 3
    assert "checked: running with main process" in faults.notices[0].message


async def test_exit_callback_fault_in_a_crash_loop(engine_factory, tmp_path: Path) -> None:
    sup = await engine_factory(spec("c", child("crash", "1"), tmp_path))
    svc = sup.services["c"]
    faults = Faults(sup)
    svc._leftovers = boom  # used by the exit callback (and by the check: suppressed there)
    spawns = svc.spawns
    await wait_for(lambda: svc.spawns >= spawns + 4, what="respawns going on")
    assert svc.state is not State.FATAL and faults.where() == ["exit callback"]
    del svc._leftovers
    await sup.stop(["c"])


async def test_start_timer_fault(engine_factory, tmp_path: Path) -> None:
    sup = await engine_factory(spec("s", child("sleeper"), tmp_path, start_time=0.2))
    svc = sup.services["s"]
    await running(svc)
    faults = Faults(sup)
    real = svc._set_state

    def fail_running(new: State, reason: str) -> None:
        if new is State.RUNNING and not fail_running.done:  # type: ignore[attr-defined]
            fail_running.done = True  # type: ignore[attr-defined]
            raise RuntimeError("injected in the start timer")
        real(new, reason)
    fail_running.done = False  # type: ignore[attr-defined]
    svc._set_state = fail_running
    first = svc.pid
    os.kill(first, signal.SIGKILL)
    await running(svc, but_not=first)  # the timer was set again: it got to running
    assert faults.where() == ["start timer"]
    assert "starting with no start timer: timer set" in faults.notices[0].message


async def test_backoff_timer_fault(engine_factory, tmp_path: Path) -> None:
    sup = await engine_factory(spec("s", child("sleeper"), tmp_path))
    svc = sup.services["s"]
    pid = await running(svc)
    faults = Faults(sup)
    svc.consecutive = 1  # the next failure is a second one: respawned by the timer
    svc._spawn = once(svc._spawn)  # ... which fails
    os.kill(pid, signal.SIGKILL)
    await running(svc, but_not=pid)
    assert faults.where() == ["backoff timer"]
    assert "respawn scheduled" in faults.notices[0].message


async def test_stop_fault_still_stops(engine_factory, tmp_path: Path) -> None:
    sup = await engine_factory(spec("s", child("sleeper"), tmp_path))
    svc = sup.services["s"]
    pid = await running(svc)
    faults = Faults(sup)
    svc._kill_tree = once(svc._kill_tree)
    await sup.stop(["s"])  # returns once the retried stop is done
    assert svc.state is State.STOPPED and not alive(pid)
    assert faults.where() == ["stop"]


async def test_output_reader_fault(engine_factory, tmp_path: Path) -> None:
    sup = await engine_factory(spec("t", child("counter", "0", "0.01"), tmp_path))
    svc = sup.services["t"]
    pid = await running(svc)
    await wait_for(lambda: svc.ring.next_offset > 0, what="output")
    faults = Faults(sup)
    real = svc.log_file.write_segments
    svc.log_file.write_segments = boom  # not an OSError: a bug
    await wait_for(lambda: faults.notices, what="the fault said")
    assert svc.state is State.RUNNING and svc.pid == pid
    svc.log_file.write_segments = real
    seen = svc.ring.next_offset
    await wait_for(lambda: svc.ring.next_offset > seen, what="the pipe read again")
    os.kill(pid, signal.SIGKILL)
    await running(svc, but_not=pid)
    assert faults.where() == ["output reader"]


class Broken(Extension):
    """An extension whose event hook and service view always fail."""

    name = "broken"

    def on_event(self, ev: AnyEvent) -> None:
        if not isinstance(ev, Notice):
            raise RuntimeError("injected in on_event")

    def service_view(self, service: str) -> dict[str, Any]:
        raise RuntimeError("injected in service_view")


async def test_extension_faults(engine_factory, tmp_path: Path) -> None:
    sup = await engine_factory(spec("s", child("sleeper"), tmp_path), extensions=[Broken()])
    svc = sup.services["s"]
    faults = Faults(sup)
    pid = await running(svc)
    for _ in range(2):
        os.kill(pid, signal.SIGKILL)
        pid = await running(svc, but_not=pid)
    snap = sup.snapshot_now()
    assert snap["services"][0]["broken"] == {} and snap["services"][0]["pid"] == pid
    sup.snapshot_now()
    notices = [n for n in sup.notices if n.topic == Topic.INTERNAL]
    wheres = [str((n.data or {}).get("where")) for n in notices]
    assert wheres.count("extension broken service view") == 1
    assert wheres.count("Broken.on_event") == 1  # the listener, said once
    assert svc.repair.internal_errors == 0  # the service's own handling never failed
    assert faults.where().count("Broken.on_event") == 0  # said before we listened


async def test_sampler_fault(engine_factory, tmp_path: Path, monkeypatch) -> None:
    import tui_supervisor.metrics.sampler as sampler

    s = ResourceSampler(0.05)
    sup = await engine_factory(spec("s", child("sleeper"), tmp_path), extensions=[s])
    await running(sup.services["s"])
    faults = Faults(sup)
    monkeypatch.setattr(sampler, "_tree_view", boom)  # every result fails to apply
    await wait_for(lambda: faults.notices, what="the fault said")
    monkeypatch.undo()
    ticks = s.engine_history.t_last
    await wait_for(lambda: s.engine_history.t_last != ticks, what="sampling again")
    assert faults.where() == ["resource sampler"]


# -- the sweep --------------------------------------------------------------------------
def dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


async def test_sweep_running_with_a_dead_pid_is_an_exit(engine_factory, tmp_path: Path
                                                        ) -> None:
    sup = await engine_factory(spec("s", child("sleeper"), tmp_path))
    svc = sup.services["s"]
    pid = await running(svc)
    await sup.stop(["s"])
    faults = Faults(sup)
    gone = dead_pid()
    svc.rec = replace(svc.rec, state=State.RUNNING, pid=gone, wanted=True,
                      started_mono=time.monotonic())  # corrupt: running, nobody alive
    new = await running(svc, but_not=gone)
    assert new != pid and alive(new)
    (n,) = faults.notices
    assert n.data == {"where": "sweep", "error": None, "repairs": [
        f"running with main process {gone} gone (exited (status unknown: not our child)): "
        "handled as its exit, now running"]}  # a first failure: respawned at once
    assert svc.failures == 1


async def test_sweep_backoff_with_no_timer(engine_factory, tmp_path: Path) -> None:
    sup = await engine_factory(spec("s", child("sleeper"), tmp_path))
    svc = sup.services["s"]
    pid = await running(svc)
    faults = Faults(sup)
    svc._apply = lambda effect: None if type(effect).__name__ == "Respawn" else \
        type(svc)._apply(svc, effect)  # the respawn is lost
    os.kill(pid, signal.SIGKILL)
    await wait_for(lambda: svc.state is State.BACKOFF)
    del svc._apply
    await running(svc, but_not=pid)
    assert [r for n in faults.notices for r in n.data["repairs"]] == [
        "backoff with no respawn scheduled: respawn scheduled"]


async def test_sweep_stopped_with_a_live_process_stops_it(engine_factory, tmp_path: Path
                                                          ) -> None:
    sup = await engine_factory(spec("s", child("sleeper"), tmp_path))
    svc = sup.services["s"]
    pid = await running(svc)
    faults = Faults(sup)
    svc.rec = replace(svc.rec, state=State.STOPPED, wanted=False)  # corrupt: still alive
    await wait_for(lambda: not alive(pid), what="the stray stopped")
    assert svc.state is State.STOPPED and svc.pid is None
    (n,) = faults.notices
    assert n.data["repairs"] == [f"stopped but process {pid} alive: stopping it"]


async def test_sweep_watches_an_unwatched_main_process(engine_factory, tmp_path: Path
                                                       ) -> None:
    sup = await engine_factory(spec("s", child("sleeper"), tmp_path))
    svc = sup.services["s"]
    pid = await running(svc)
    faults = Faults(sup)
    sup.watcher.unwatch(pid)  # its exit would go unnoticed
    await wait_for(lambda: faults.notices, what="the repair")
    os.kill(pid, signal.SIGKILL)
    await running(svc, but_not=pid)
    assert faults.notices[0].data["repairs"] == [
        f"main process {pid} was not watched: watched again"]
