"""Safe mode: a new image that passes the pre-flight but fails at start-up keeps its
services (same PIDs, every line logged once), answers the socket with what happened, and
starts the fixed code once it is saved; SIGTERM in safe mode stops everything."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

import pytest
from support import (
    NEW_SCREEN,
    Collector,
    Dashboard,
    Headless,
    alive,
    assert_contiguous,
    config,
    copy_package,
    kill_marked,
    pids,
    running,
    tick_lines,
    wait_for,
    wait_until,
)

pytestmark = pytest.mark.timeout(180)
BREAK_AT = "    handoff = take_handoff()\n"


@pytest.fixture
def broken(tmp_path: Path):
    """An engine running from a copy of the package, then a start-up bug saved into it
    (imports fine, so the pre-flight passes) and a code reload: the engine is in safe mode.
    Yields (engine, runner/headless.py of the copy, its good text, pids before)."""
    pkg = copy_package(tmp_path)
    e = Headless(tmp_path, config(tmp_path), pkg, quiet=True)
    try:
        first = running(e)
        cli = pkg / "tui_supervisor" / "runner" / "headless.py"
        good = cli.read_text()
        assert BREAK_AT in good
        cli.write_text(good.replace(
            BREAK_AT, BREAK_AT + "    raise RuntimeError('broken start-up')\n"))
        r = e.cli("reload", "--code")
        assert r.returncode == 0, r.stderr  # the pre-flight only imports: it passes
        e.wait_out("safe mode: the new code failed at start-up: RuntimeError: broken start-up")
        yield e, cli, good, first
    finally:
        e.stop()
        kill_marked()


def test_safe_mode_keeps_services_until_the_fix(broken) -> None:
    e, cli, good, first = broken
    before = pids(first)
    assert e.proc.poll() is None and all(alive(p) for p in before.values())
    r = e.cli("status")
    assert r.returncode != 0 and "safe mode" in r.stderr and "broken start-up" in r.stderr
    assert "Traceback" not in r.stderr
    os.kill(before["idle"], signal.SIGKILL)  # a service dies meanwhile
    e.wait_out(f"idle (pid {before['idle']}) exited")
    log = Path(next(s for s in first["services"] if s["name"] == "tick")["log_file"])
    grown = log.stat().st_size + 1000 * 55
    wait_until(lambda: log.stat().st_size > grown, 30,  # the writer goes on: to its log
               "1000 more lines of the 1 kHz writer in its log file, in safe mode")
    assert alive(before["tick"])
    cli.write_text(good)  # the fix, saved: safe mode notices it by itself
    e.wait_out("code reloaded after", timeout=60)
    snap = e.snapshot()
    assert snap["engine"]["pid"] == e.proc.pid
    svc = {s["name"]: s for s in snap["services"]}
    assert svc["tick"]["pid"] == before["tick"] and svc["tick"]["restarts"] == 0
    if svc["idle"]["pid"] in (None, before["idle"]):  # its exit, collected and handled
        snap = e.snapshot(lambda s: pids(s)["idle"] not in (None, before["idle"]),
                          what="idle respawned")
        svc = {s["name"]: s for s in snap["services"]}
    assert svc["idle"]["failures"] == 1
    assert not os.path.exists(f"/proc/{before['idle']}")  # reaped, not left a zombie
    log = Path(svc["tick"]["log_file"])
    e.stop()
    numbers = [int(line.split()[1]) for line in log.read_text().splitlines()]
    assert numbers == list(range(len(numbers))) and len(numbers) > 1500, \
        "every line exactly once, in order, through the failed start and safe mode"


def test_sigusr1_in_safe_mode_reopens_the_logs(broken) -> None:
    """logrotate's SIGUSR1 (`reopen-logs`) while the engine is in safe mode: it lives on
    (by default the signal ends a process: the services would be stranded) and writes a
    renamed log file at its path again, no line lost."""
    e, _cli, _good, first = broken
    log = Path(next(s for s in first["services"] if s["name"] == "tick")["log_file"])
    moved = log.with_name(log.name + ".moved")
    os.rename(log, moved)
    e.proc.send_signal(signal.SIGUSR1)
    wait_until(lambda: log.exists() and log.stat().st_size > 100 * 55, 30,
               f"a new {log}, written to in safe mode")
    assert e.proc.poll() is None and all(alive(p) for p in pids(first).values())
    numbers = [int(x.split()[1]) for f in (moved, log) for x in f.read_text().splitlines()]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))


def test_sigterm_in_safe_mode_stops_everything(broken) -> None:
    e, _cli, _good, first = broken
    e.proc.send_signal(signal.SIGTERM)
    assert e.proc.wait(30) == 0
    for pid in pids(first).values():
        assert not os.path.exists(f"/proc/{pid}")
    assert "safe mode: all stopped" in e.out


def test_shutdown_in_safe_mode_stops_everything(broken) -> None:
    """`tui-supervisor shutdown` is SIGTERM's equal in safe mode too."""
    e, _cli, _good, first = broken
    r = e.cli("shutdown")
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert r.stdout.endswith(f"engine (pid {e.proc.pid}): shut down\n")
    assert all(f"{name}: stopped\n" in r.stdout for name in pids(first))
    assert e.proc.wait(30) == 0
    for pid in pids(first).values():
        assert not os.path.exists(f"/proc/{pid}")
    assert "safe mode: all stopped" in e.out


def test_safe_mode_under_the_dashboard(tmp_path: Path) -> None:
    """The dashboard's engine: the new image fails before its UI is up; the terminal says
    so; the saved fix brings the dashboard back with the same services."""
    pkg = copy_package(tmp_path)
    d = Dashboard(tmp_path, config(tmp_path), pkg)
    t, e = d.term, d
    try:
        t.read_until("tick")
        first = running(e)
        host = pkg / "tui_supervisor" / "runner" / "dashboard.py"
        good = host.read_text()
        at = '    host = record.pop("host")\n'
        assert at in good
        host.write_text(good.replace(at, at + "    raise RuntimeError('broken host')\n"))
        t.out = b""
        r = e.cli("reload", "--code")
        assert r.returncode == 0, r.stderr
        t.read_until("safe mode: the new code failed at start-up: RuntimeError: broken host (at ")
        assert b"Traceback" not in t.out  # it is in the engine log
        assert all(alive(p) for p in pids(first).values())
        t.out = b""
        host.write_text(good)
        t.read_until("tick", after=NEW_SCREEN)  # the dashboard is back
        snap = e.snapshot()
        assert snap["engine"]["pid"] == first["engine"]["pid"] and pids(snap) == pids(first)
    finally:
        d.stop()
        kill_marked()


def test_a_config_saved_broken_refuses_the_code_reload(tmp_path: Path) -> None:
    """The pre-flight loads the config file as the new image would: a typo in it refuses
    the code reload (file:line) instead of sending the new image to safe mode."""
    e = Headless(tmp_path, config(tmp_path), quiet=True)
    try:
        first = running(e)
        text = e.cfg.read_text()
        e.cfg.write_text(text.replace("start_time: 0", "start_time: soon", 1))
        r = e.cli("reload", "--code")
        assert r.returncode == 1
        assert "the config does not load" in r.stderr and "tst-code.yaml:" in r.stderr
        assert "start_time" in r.stderr and "Traceback" not in r.stderr
        assert pids(e.snapshot()) == pids(first) and "safe mode" not in e.out
        e.cfg.write_text(text)
        r = e.cli("reload", "--code")
        assert r.returncode == 0, r.stderr
        e.wait_out("code reloaded:")
    finally:
        e.stop()
        kill_marked()


def test_a_failed_exec_leaves_the_old_code_in_charge(tmp_path: Path) -> None:
    """If the exec itself fails (injected: TUISUP_FAULT=exec-fail), the old image adopts
    its own record again: same PIDs, the socket answers, no line lost."""
    e = Headless(tmp_path, config(tmp_path), quiet=True, TUISUP_FAULT="exec-fail")
    try:
        first = running(e)
        log = Path(next(s for s in first["services"] if s["name"] == "tick")["log_file"])
        wait_until(lambda: log.stat().st_size > 300 * 55, 30,  # lines before the reloads
                   "300 lines of the writer")
        for i in range(1, 3):
            r = e.cli("reload", "--code")
            assert r.returncode == 0, r.stderr
            e.wait_out("code reload failed (", count=i)
            e.wait_out("carrying on with the old code", count=i)
        snap = e.snapshot()
        assert snap["engine"]["pid"] == e.proc.pid and pids(snap) == pids(first)
        tick = next(s for s in snap["services"] if s["name"] == "tick")
        assert tick["restarts"] == 0
        assert Path(tick["log_file"]) == log
        grown = log.stat().st_size + 300 * 55
        wait_until(lambda: log.stat().st_size > grown, 30,  # lines after the reloads
                   "300 more lines of the writer")
    finally:
        e.stop()
        kill_marked()
    numbers = [int(line.split()[1]) for line in log.read_text().splitlines()]
    assert numbers == list(range(len(numbers))) and len(numbers) > 500


async def test_an_attached_subscriber_waits_through_safe_mode(tmp_path: Path) -> None:
    """A reconnecting subscriber says the engine is in safe mode (and why), keeps asking
    beyond the usual give-up bound while it is, and is live again after the fix, with
    every `tick` line exactly once (the ones read in safe mode replayed by offset)."""
    import asyncio

    from tui_supervisor.control.client import RemoteSupervisor
    from tui_supervisor.control.resume import Reconnect

    pkg = copy_package(tmp_path)
    cfg = config(tmp_path)
    runtime = tmp_path / "run"
    cfg.write_text(cfg.read_text().replace("settings: {", f"settings: {{runtime_dir: {runtime}, ")
                   .replace("'0.001'", "'0.01'"))  # what safe mode reads fits in the ring
    e = Headless(tmp_path, cfg, pkg, quiet=True)
    sub = None
    try:
        first = await asyncio.to_thread(e.snapshot)
        client = RemoteSupervisor(runtime, reconnect=Reconnect(give_up_after=3.0))
        sub = Collector(await client.subscribe(logs=True))
        cli = pkg / "tui_supervisor" / "runner" / "headless.py"
        good = cli.read_text()
        cli.write_text(good.replace(
            BREAK_AT, BREAK_AT + "    raise RuntimeError('broken start-up')\n"))
        assert (await asyncio.to_thread(e.cli, "reload", "--code")).returncode == 0

        def said(state: str, text: str = "") -> bool:
            return any(ev.get("kind") == "connection" and ev["state"] == state
                       and text in ev["message"] for ev in sub.events)

        def still(state: str, text: str = "") -> bool:  # the stream has not ended first
            assert not sub.done, sub.events[-3:]
            return said(state, text)

        await wait_for(lambda: still("lost", "in safe mode"), 30, lambda: (
            f"'lost: in safe mode': {sub.events[-3:]}"), interval=0.05)
        assert said("lost", "broken start-up")
        await asyncio.sleep(4.5)  # longer than give_up_after: an engine in safe mode is alive
        assert not said("gave_up") and not sub.done
        cli.write_text(good)
        await wait_for(lambda: still("restored"), 60, lambda: (
            f"'restored': {sub.events[-3:]}"), interval=0.05)
        n = len(tick_lines(sub.events))
        await wait_for(lambda: len(tick_lines(sub.events)) >= n + 50, 60,  # live again
                       "50 live lines", interval=0.05)
        lines = tick_lines(sub.events)
        assert_contiguous(lines)
        snap = await asyncio.to_thread(e.snapshot)
        assert pids(snap) == pids(first)
    finally:
        if sub is not None:
            with contextlib.suppress(Exception):  # (a failed stream re-raises here)
                await sub.close()
        e.stop()
        kill_marked()


def test_safe_mode_rotates_logs_as_the_engine_does(tmp_path: Path) -> None:
    """A service keeps printing through a long safe mode: its log is rotated at
    log.max_bytes (no file grows past it by more than one read), no line lost or doubled
    across the files."""
    pkg = copy_package(tmp_path)
    cfg = config(tmp_path)
    cfg.write_text(cfg.read_text().replace(
        "    start_time: 0\n", "    start_time: 0\n    log: {max_bytes: 20KB, backups: 100}\n", 1))
    e = Headless(tmp_path, cfg, pkg, quiet=True)
    try:
        first = running(e)
        log = Path(next(s for s in first["services"] if s["name"] == "tick")["log_file"])
        cli = pkg / "tui_supervisor" / "runner" / "headless.py"
        good = cli.read_text()
        cli.write_text(good.replace(
            BREAK_AT, BREAK_AT + "    raise RuntimeError('broken start-up')\n"))
        r = e.cli("reload", "--code")
        assert r.returncode == 0, r.stderr + e.out
        e.wait_out("safe mode: the new code failed at start-up")
        wait_until(lambda: len(list(log.parent.glob("tick.log.*"))) > 8, 60,
                   "more than 8 rotated files of tick's log, in safe mode")
        cli.write_text(good)
        e.wait_out("code reloaded after", timeout=60)
        log = Path(next(s for s in e.snapshot()["services"] if s["name"] == "tick")["log_file"])
        assert pids(e.snapshot()) == pids(first)
    finally:
        e.stop()
        kill_marked()
    files = sorted(log.parent.glob("tick.log*"),
                   key=lambda p: -int(p.suffix[1:]) if p.suffix[1:].isdigit() else 0)
    assert len(files) > 8
    assert max(f.stat().st_size for f in files) <= 20 * 1024 + 64 * 1024
    numbers = [int(line.split()[1]) for f in files for line in f.read_text().splitlines()]
    assert numbers == list(range(len(numbers))), "every line once, in order, across files"


@pytest.mark.parametrize("cgroups", ["off", "auto"])
def test_sigterm_in_safe_mode_stops_a_daemonized_service(tmp_path: Path, cgroups: str
                                                         ) -> None:
    """A daemon left its process group (setsid): safe mode's stop signals it too (and
    ends the services' cgroups, then removes them, where the engine made them)."""
    from support import CHILDREN, PY

    pkg = copy_package(tmp_path)
    pidfile = tmp_path / "daemon.pid"
    cfg = tmp_path / "tst-code.yaml"
    cfg.write_text(f"settings: {{cgroups: {cgroups}, watch_code: false}}\nservices:\n"
                   f"  d:\n    command: [{PY}, {CHILDREN / 'daemon.py'}, {pidfile}]\n"
                   "    start_time: 0\n")
    e = Headless(tmp_path, cfg, pkg, quiet=True)
    daemon = None
    try:
        snap = e.snapshot(lambda s: s["services"][0]["state"] == "daemonized", 30,
                          "daemonized")
        daemon = int(pidfile.read_text())
        mode = snap["engine"]["processes"]
        cli = pkg / "tui_supervisor" / "runner" / "headless.py"
        cli.write_text(cli.read_text().replace(
            BREAK_AT, BREAK_AT + "    raise RuntimeError('broken start-up')\n"))
        r = e.cli("reload", "--code")
        assert r.returncode == 0, r.stderr + e.out
        e.wait_out("safe mode: the new code failed at start-up")
        assert alive(daemon)
        e.proc.send_signal(signal.SIGTERM)
        assert e.proc.wait(30) == 0
        wait_until(lambda: not alive(daemon), 10, "the daemon stopped by safe mode")
        if mode.startswith("cgroup v2 at "):
            assert not Path(mode.removeprefix("cgroup v2 at ")).exists()
    finally:
        e.stop()
        if daemon is not None and alive(daemon):
            os.kill(daemon, signal.SIGKILL)
