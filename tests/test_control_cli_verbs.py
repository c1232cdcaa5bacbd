"""The client verbs tell what happened, per service, and take supervisorctl's spellings
(issue 13): `start` of a command that cannot spawn is an error, `shutdown` ends a
detached engine, `status NAME` and its exit 3, `stop all`, `signal HUP web`."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

from support import (
    SIZE,
    alive,
    cli,
    one_error_line,
    rows,
    settle,
    svc,
    wait_pids,
    wait_text,
    wait_until,
    write_cfg,
)

MISSING = "tst-no-such-gunicorn"
"""A command no PATH has: its spawn fails (`check` refuses it; a running engine says so)."""


def missing(name: str) -> str:
    return f"  {name}:\n    command: [{MISSING}, app]\n    autostart: false\n"


def test_start_says_what_happened_to_each_service(tmp_path: Path, engines) -> None:
    """Before: `start api` with a missing binary printed `started: api`, exit 0."""
    cfg = write_cfg(tmp_path, svc("web", "sleeper") + missing("api"))
    engines(cfg).wait_out("ready")
    r = cli(tmp_path, "start", "api", "-c", str(cfg))
    assert (r.returncode, r.stdout) == (1, ""), r.stdout
    assert r.stderr == f"api: ERROR (command not found: {MISSING})\n"
    # a failed spawn is a failure: counted, and an incident (docs/METRICS.md)
    r = cli(tmp_path, "status", "api", "--json", "-c", str(cfg))
    assert json.loads(r.stdout)["services"][0]["failures"] >= 1, r.stdout
    r = cli(tmp_path, "incidents", "api", "-c", str(cfg))
    assert f"failed start: cannot spawn: command not found: {MISSING}" in r.stdout, r.stdout
    r = cli(tmp_path, "start", "web", "api", "-c", str(cfg))
    assert (r.returncode, r.stdout) == (1, "web: already running\n"), r.stderr
    assert r.stderr == f"api: ERROR (command not found: {MISSING})\n"
    r = cli(tmp_path, "restart", "api", "-c", str(cfg))
    assert (r.returncode, r.stderr) == (1, f"api: ERROR (command not found: {MISSING})\n")
    r = cli(tmp_path, "stop", "web", "api", "-c", str(cfg))
    assert (r.returncode, r.stdout) == (0, "web: stopped\napi: already stopped\n"), r.stderr
    r = cli(tmp_path, "stop", "web", "-c", str(cfg))
    assert (r.returncode, r.stdout) == (0, "web: already stopped\n"), r.stderr
    r = cli(tmp_path, "start", "web", "-c", str(cfg))
    assert (r.returncode, r.stdout) == (0, "web: started\n"), r.stderr


def test_detach_refuses_what_check_refuses(tmp_path: Path) -> None:
    """Before: `run --headless --detach` said "started" with a command nobody has."""
    cfg = write_cfg(tmp_path, svc("web", "sleeper") + missing("api"))
    r = cli(tmp_path, "run", "--headless", "--detach", "-c", str(cfg))
    if "started (pid " in r.stdout:  # (the bug: stop what it started)
        os.kill(int(r.stdout.split("(pid ")[1].split(")")[0]), signal.SIGTERM)
    assert r.returncode == 1 and "started" not in r.stdout, r.stdout
    assert f"services.api.command: executable '{MISSING}' not found in PATH" in r.stderr
    assert "Traceback" not in r.stderr
    assert one_error_line(cli(tmp_path, "status", "-c", str(cfg))).startswith(
        "tui-supervisor: no engine running for ")


def test_supervisorctl_spellings(tmp_path: Path, engines) -> None:
    cfg = write_cfg(tmp_path, svc("web", "sleeper") + svc("worker", "sleeper"))
    e = engines(cfg)
    e.wait_out("ready", count=2)
    first = wait_pids(tmp_path, cfg, lambda p: len(p) == 2)
    # status NAME...: only those, in that order; exit 0 while all run
    r = cli(tmp_path, "status", "worker", "--json", "-c", str(cfg))
    assert r.returncode == 0, r.stderr
    assert [s["name"] for s in json.loads(r.stdout)["services"]] == ["worker"]
    r = cli(tmp_path, "status", "worker", "web", "-c", str(cfg))
    assert r.returncode == 0, r.stderr
    rows = [line.split()[0] for line in r.stdout.splitlines()
            if line.startswith(("web", "worker"))]
    assert rows == ["worker", "web"]
    assert one_error_line(cli(tmp_path, "status", "nope", "-c", str(cfg))) == \
        "tui-supervisor: no such service: nope"
    # stop all / start all / restart all, as well as --all
    r = cli(tmp_path, "stop", "all", "-c", str(cfg))
    assert (r.returncode, r.stdout) == (0, "web: stopped\nworker: stopped\n"), r.stderr
    assert not any(alive(p) for p in first.values())
    # status exits 3 when a service asked about is not running (health scripts)
    r = cli(tmp_path, "status", "web", "-c", str(cfg))
    assert r.returncode == 3, (r.stdout, r.stderr)
    assert "stopped" in r.stdout
    r = cli(tmp_path, "start", "all", "-c", str(cfg))
    assert (r.returncode, r.stdout) == (0, "web: started\nworker: started\n"), r.stderr
    mid = wait_pids(tmp_path, cfg, lambda p: len(p) == 2)
    r = cli(tmp_path, "restart", "all", "-c", str(cfg))
    assert (r.returncode, r.stdout) == (0, "web: restarted\nworker: restarted\n"), r.stderr
    now = wait_pids(tmp_path, cfg, lambda p: len(p) == 2 and not set(p.values()) &
                    set(mid.values()))
    # signal in supervisorctl's order (SIG NAME) as well as NAME SIG
    r = cli(tmp_path, "signal", "TERM", "web", "-c", str(cfg))
    assert (r.returncode, r.stdout) == (0, "sent SIGTERM to web\n"), r.stderr
    wait_until(lambda: not alive(now["web"]), 20, "web to go on SIGTERM")
    r = cli(tmp_path, "signal", "worker", "TERM", "-c", str(cfg))
    assert (r.returncode, r.stdout) == (0, "sent SIGTERM to worker\n"), r.stderr


def test_status_exit_3_for_a_wanted_service_down(tmp_path: Path, engines) -> None:
    """With no names: 3 when a service the engine is meant to keep up is not (one that
    cannot spawn); a service the operator stopped is not counted."""
    cfg = write_cfg(tmp_path, svc("web", "sleeper") + missing("api"))
    engines(cfg).wait_out("ready")
    assert cli(tmp_path, "status", "-c", str(cfg)).returncode == 0  # api: not wanted
    assert cli(tmp_path, "start", "api", "-c", str(cfg)).returncode == 1
    r = cli(tmp_path, "status", "-c", str(cfg))
    assert r.returncode == 3, (r.stdout, r.stderr)
    assert cli(tmp_path, "stop", "api", "-c", str(cfg)).returncode == 0
    assert cli(tmp_path, "status", "-c", str(cfg)).returncode == 0


def test_shutdown_a_detached_engine(tmp_path: Path) -> None:
    """Before: `kill PID` was the only way to stop a detached engine."""
    cfg = write_cfg(tmp_path, svc("web", "sleeper") + svc("worker", "sleeper"))
    r = cli(tmp_path, "run", "--headless", "--detach", "-c", str(cfg))
    assert r.returncode == 0, r.stderr
    pid = int(r.stdout.split("(pid ")[1].split(")")[0])
    try:
        log = Path(r.stdout.strip().split("output in ")[1])
        wait_text(log, "ready", count=2)
        services = wait_pids(tmp_path, cfg, lambda p: len(p) == 2)
        r = cli(tmp_path, "shutdown", "-c", str(cfg))
        assert (r.returncode, r.stderr) == (0, ""), r.stdout
        assert r.stdout == f"web: stopped\nworker: stopped\nengine (pid {pid}): shut down\n"
        assert not alive(pid)  # it waited for the engine to be gone
        assert not any(alive(p) for p in services.values())
        wait_text(log, "all stopped")
        assert one_error_line(cli(tmp_path, "shutdown", "-c", str(cfg))) == (
            f"tui-supervisor: no engine running for {cfg} — start it with "
            f"`tui-supervisor run --headless -c {cfg}`")
    finally:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_shutdown_a_foreground_engine(tmp_path: Path, engines) -> None:
    """The engine process ends with exit 0, as after SIGTERM."""
    cfg = write_cfg(tmp_path, svc("web", "sleeper"))
    e = engines(cfg)
    e.wait_out("ready")
    r = cli(tmp_path, "shutdown", "-c", str(cfg))
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"web: stopped\nengine (pid {e.proc.pid}): shut down\n"
    assert e.proc.wait(20) == 0
    assert "all stopped" in e.out


async def test_attached_dashboard_quit_can_stop_everything(tmp_path: Path,
                                                           engines) -> None:
    """`attach`, `q`: the hosted dashboard's choice; "stop all" shuts the engine down
    (before: `q` only detached, the engine could not be stopped from there)."""
    from tui_supervisor.control.client import RemoteSupervisor
    from tui_supervisor.control.resume import Reconnect
    from tui_supervisor.tui.app import SupervisorApp
    from tui_supervisor.tui.screens.dialogs import QuitScreen

    cfg = write_cfg(tmp_path, svc("web", "sleeper"))
    e = engines(cfg)
    await (await e.ready()).close()
    pid = wait_pids(tmp_path, cfg, lambda p: "web" in p)["web"]
    client = RemoteSupervisor(e.runtime, reconnect=Reconnect())
    app = SupervisorApp(client, mode="attached")
    try:
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, lambda: rows(app).get("web"), "the table")
            await pilot.press("q")
            await settle(pilot, lambda: isinstance(app.screen, QuitScreen), "the dialog")
            await pilot.press("s")
            await settle(pilot, lambda: app.return_value == "stop", "the app to end")
        assert await asyncio.to_thread(e.proc.wait, 20) == 0
        assert not alive(pid) and "all stopped" in e.out
    finally:
        await client.close()
