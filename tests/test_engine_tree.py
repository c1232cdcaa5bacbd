"""Process trees: leftovers of a dead main process, daemons, the subreaper."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from conftest import alive, child, spec, wait_for

from tui_supervisor.engine import proc
from tui_supervisor.engine.events import StateChanged


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text())
    except (OSError, ValueError):
        return None


async def test_leftovers_of_killed_main_are_gone_before_replacement(engine_factory,
                                                                    tmp_path: Path) -> None:
    # like a killed nginx master whose workers hold the port: the worker left its group
    pidfile = tmp_path / "worker.pid"
    sup = await engine_factory(spec("n", child("forker", str(pidfile), "setsid"), tmp_path))
    svc = sup.services["n"]
    worker = await wait_for(lambda: read_pid(pidfile), what="worker pid")
    main = svc.pid
    at_respawn: list[bool] = []

    def on_event(ev: object) -> None:
        if isinstance(ev, StateChanged) and ev.new == "starting" and ev.pid != main:
            at_respawn.append(alive(worker))

    sup.bus.add_listener(on_event)
    pidfile.unlink()
    os.kill(main, signal.SIGKILL)
    await wait_for(lambda: at_respawn, what="respawn")
    assert at_respawn == [False], "the old worker was still alive when the replacement started"
    assert not alive(worker)
    new_worker = await wait_for(lambda: read_pid(pidfile))
    assert alive(new_worker) and new_worker != worker
    await sup.stop(["n"])
    assert not alive(new_worker)


async def test_double_forked_daemon_is_reported_and_stopped(engine_factory,
                                                            tmp_path: Path) -> None:
    pidfile = tmp_path / "daemon.pid"
    sup = await engine_factory(spec("d", child("daemon", str(pidfile)), tmp_path))
    svc = sup.services["d"]
    await wait_for(lambda: svc.state.value == "daemonized", what="daemonized")
    daemon = read_pid(pidfile)
    assert daemon and svc.daemon_pids == {daemon}
    # the subreaper made the grandchild ours
    assert proc.stat(daemon).ppid == os.getpid()
    assert svc.spawns == 1 and svc.failures == 0  # not respawned, not a failure
    snap = (await sup.snapshot())["services"][0]
    assert snap["state"] == "daemonized" and snap["daemon_pids"] == [daemon]
    await sup.stop(["d"])
    assert svc.state.value == "stopped" and not alive(daemon)
    assert proc.stat(daemon) is None  # reaped, not a zombie


async def test_daemon_death_is_an_exit_and_it_is_reaped(engine_factory,
                                                        tmp_path: Path) -> None:
    pidfile = tmp_path / "daemon.pid"
    sup = await engine_factory(spec("d", child("daemon", str(pidfile)), tmp_path,
                                    restart="never"))
    svc = sup.services["d"]
    await wait_for(lambda: svc.state.value == "daemonized")
    daemon = read_pid(pidfile)
    os.kill(daemon, signal.SIGKILL)
    await wait_for(lambda: svc.state.value == "exited", what="exited")
    assert svc.reason == "daemon killed by SIGKILL"
    assert proc.stat(daemon) is None


async def test_crash_with_children_in_group_clears_them(engine_factory,
                                                        tmp_path: Path) -> None:
    sup = await engine_factory(spec("g", ("/bin/sh", "-c", "sleep 1000 & sleep 0.2; exit 3"),
                                    tmp_path, restart="never"))
    svc = sup.services["g"]
    sleepers = await wait_for(lambda: svc.pid and proc.descendants(svc.pid))
    await wait_for(lambda: svc.state.value == "exited")
    await wait_for(lambda: not any(alive(p) for p in sleepers), what="leftover cleared")
    assert svc.failures == 1


async def test_stop_waits_for_a_worker_whose_marker_vanished(engine_factory,
                                                              tmp_path: Path) -> None:
    """While a process exits, its environ (our marker) is no longer readable and its
    parent may be dead already: stop must still wait for it (regression: it returned
    with the worker alive, seen under CPU load)."""
    pidfile = tmp_path / "w.pid"
    sup = await engine_factory(spec("n", child("forker", str(pidfile), "setsid",
                                                "hide-on-term"), tmp_path))
    worker = await wait_for(lambda: read_pid(pidfile))
    await sup.stop(["n"])
    assert not alive(worker), "stop returned while the worker was still exiting"


async def test_daemonizing_before_start_time_is_not_a_failure(engine_factory,
                                                             tmp_path: Path) -> None:
    from tui_supervisor.engine.events import Exited

    pidfile = tmp_path / "daemon.pid"
    exits: list[Exited] = []
    sup = await engine_factory(spec("d", child("daemon", str(pidfile)), tmp_path,
                                    start_time=5.0), autostart=False)
    sup.bus.add_listener(lambda ev: exits.append(ev) if isinstance(ev, Exited) else None)
    await sup.start(["d"])
    svc = sup.services["d"]
    await wait_for(lambda: svc.state.value == "daemonized")
    assert [e.failure for e in exits] == [False] and svc.failures == 0
    await sup.stop(["d"])

