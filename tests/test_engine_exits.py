"""Every exit that counts is one `Exited`: the FAILURES column, reliability (failures,
availability, downtime, MTTR) and incidents agree, for a daemonized service's death and
a spawn error too. An error while handling an exit leaves no service unsupervised. The
snapshot and handoff keys stay as clients know them."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

from conftest import alive, child, make_config, spec, wait_for

from tui_supervisor.engine.events import AnyEvent, Exited, Notice
from tui_supervisor.engine.supervisor import Supervisor
from tui_supervisor.metrics import attach_metrics


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text())
    except (OSError, ValueError):
        return None


async def view(sup: Supervisor) -> dict[str, Any]:
    return (await sup.snapshot())["services"][0]  # type: ignore[no-any-return]


async def test_daemon_death_counts_everywhere(tmp_path: Path) -> None:
    pidfile = tmp_path / "daemon.pid"
    sup = Supervisor(make_config(tmp_path, spec("d", child("daemon", str(pidfile)), tmp_path)))
    attach_metrics(sup)
    exits: list[Exited] = []
    sup.bus.add_listener(lambda ev: exits.append(ev) if isinstance(ev, Exited) else None)
    try:
        await sup.open()
        svc = sup.services["d"]
        await wait_for(lambda: svc.state.value == "daemonized", what="daemonized")
        daemon = read_pid(pidfile)
        assert daemon is not None and svc.failures == 0
        pidfile.unlink()
        os.kill(daemon, signal.SIGKILL)
        await wait_for(lambda: svc.failures == 1, what="the death counted")
        # respawned: the new copy daemonizes again, the outage is over
        await wait_for(lambda: svc.state.value == "daemonized" and read_pid(pidfile)
                       not in (None, daemon), what="daemonized again")
        v = await view(sup)
        rel, inc = v["reliability"], v["incidents"]
        assert v["failures"] == rel["failures"] == inc["count"] == 1
        assert rel["downtime"] > 0 and rel["availability"] < 1
        assert rel["mttr"] is not None and rel["mttr"] > 0 and rel["outage_open_since"] is None
        assert inc["last"]["text"] == "killed by SIGKILL"
        failed = [e for e in exits if e.failure]
        assert [(e.pid, e.cause) for e in failed] == [(daemon, "daemon")]
        await sup.stop(["d"])
        assert not alive(daemon)
    finally:
        await sup.close()


async def test_spawn_error_counts_everywhere(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-program")
    sup = Supervisor(make_config(tmp_path, spec("x", (missing,), tmp_path)))
    attach_metrics(sup)
    try:
        await sup.open()
        svc = sup.services["x"]
        await wait_for(lambda: svc.state.value == "fatal", what="fatal")
        v = await view(sup)
        assert v["reason"] == f"command not found: {missing}"
        assert v["failures"] == v["reliability"]["failures"] == v["incidents"]["count"] == 1
        (inc,) = await sup.query("incidents", "list", {"service": "x"})
        assert (inc["kind"], inc["pid"], inc["text"]) == (
            "failed start", 0, f"cannot spawn: command not found: {missing}")
    finally:
        await sup.close()


async def test_an_error_while_handling_an_exit_is_not_left_running(engine_factory,
                                                                    tmp_path: Path) -> None:
    sup = await engine_factory(spec("s", child("sleeper"), tmp_path))
    svc = sup.services["s"]
    pid = await wait_for(lambda: svc.state.value == "running" and svc.pid)
    notices: list[str] = []

    def keep(ev: AnyEvent) -> None:
        if isinstance(ev, Notice) and ev.level == "error":
            notices.append(ev.message)

    def broken() -> float:
        raise RuntimeError("broken jitter source")

    sup.bus.add_listener(keep)
    assert sup.ctx is not None
    sup.ctx.rand = broken  # the exit handling itself fails, and again when re-checked
    os.kill(pid, signal.SIGKILL)
    # neither stuck running nor given up on: without a decision, a wanted service is
    # respawned after backoff.max (at least 1 s)
    await wait_for(lambda: svc.state.value == "backoff", what="backoff, not stuck running")
    assert svc.pid is None and svc.reason == \
        "internal error (RuntimeError: broken jitter source); restarting in 1.00s"
    await wait_for(lambda: svc.state.value == "running" and svc.pid not in (None, pid),
                   what="respawned without an operator")
    assert notices == ["internal error in lifecycle decision: RuntimeError: broken jitter "
                       "source (traceback in the engine's log); checked: running with "
                       f"main process {pid} gone (killed by SIGKILL): handled as its exit, "
                       "now backoff"]  # said once
    assert svc.repair.internal_errors == 2  # the exit, then its re-check
    sup.ctx.rand = lambda: 0.5
    second = svc.pid
    os.kill(second, signal.SIGKILL)  # and the next exit is decided as usual
    await wait_for(lambda: svc.failures == 1 and svc.pid not in (None, second))
    assert svc.reason != "" and "internal error" not in svc.reason


SNAPSHOT_KEYS = {
    "name", "state", "reason", "state_since", "pid", "daemon_pids", "wanted", "started_at",
    "uptime", "spawns", "restarts", "failures", "consecutive_failures", "recent_failures",
    "last_exit", "backoff_remaining", "log_file", "log_offset", "command", "cwd",
    "restart_policy", "crash_loop", "crash_looping", "internal_errors", "group", "replica",
    "health", "health_output", "probes", "ready_since",  # issue 14 (NotRequired in views)
    "restarts_1h",  # issue 15
}
DETACH_KEYS = {
    "name", "state", "reason", "state_since", "pid", "pgid", "started_mono", "started_wall",
    "spawns", "restarts", "failures", "consecutive", "failure_times", "recent_failures",
    "last_exit", "wanted", "backoff_until", "start_left", "daemon_pids", "cleanup",
    "operator_signal", "pipes", "ring", "argv", "cwd", "log_path", "log_max_bytes",
    "log_backups", "crash_looping",
    "health", "ready_since", "probes", "health_output", "probe_stats",  # issue 14
    "restart_times",  # issue 15
}


async def test_snapshot_and_handoff_keys_are_unchanged(engine_factory, tmp_path: Path) -> None:
    cfg = make_config(tmp_path, spec("c", child("crash", "1", "0.05"), tmp_path))
    first = await engine_factory(config=cfg)
    svc = first.services["c"]
    await wait_for(lambda: svc.failures >= 2, what="failures")
    assert set(svc.snapshot()) == SNAPSHOT_KEYS
    record = json.loads(json.dumps(first.detach()))
    (rec,) = record["services"]
    assert set(rec) == DETACH_KEYS
    second = await engine_factory(config=cfg, adopt=record)
    c = second.services["c"]
    assert (c.failures, c.spawns, c.last_exit) == (rec["failures"], rec["spawns"],
                                                   rec["last_exit"])
    await wait_for(lambda: c.failures > rec["failures"], what="still supervised")
