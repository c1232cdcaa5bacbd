"""Code reload by exec handoff on a real headless engine: same engine PID, same service
PIDs, every line a 1 kHz writer prints present exactly once across 5 reloads, counters
and metrics carried; a broken edit refused with services untouched, the fix applied."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from support import (
    NEW_SCREEN,
    ROOT,
    Dashboard,
    config,
    copy_package,
    kill_marked,
    pids,
    running,
    wait_text,
)

pytestmark = pytest.mark.timeout(180)


def test_five_saved_edits_reload_and_lose_nothing(tmp_path: Path, engines) -> None:
    """Five edits saved into a copy of the package on PYTHONPATH (the engine follows its
    own source): same engine and service PIDs, every line of a 1 kHz writer exactly once
    and in order, counters, uptime and the sampler's history carried over."""
    import asyncio

    from tui_supervisor.control.client import RemoteSupervisor

    pkg = copy_package(tmp_path)
    cfg = config(tmp_path, watch_code=True)
    runtime = tmp_path / "run"
    cfg.write_text(cfg.read_text().replace("settings: {", f"settings: {{runtime_dir: {runtime}, "))
    e = engines(cfg, pythonpath=pkg, quiet=True)
    first = running(e)
    began = time.monotonic()
    # uptime and sampled history to carry over; and the source watcher, which gives no
    # sign when it is armed, is before the first save
    time.sleep(1)
    rows = pkg / "tui_supervisor" / "tui" / "rows.py"
    for i in range(1, 6):
        rows.write_text(rows.read_text() + f"\n# edit {i}\n")  # a save
        e.wait_out("code reloaded:", count=i)
        time.sleep(0.3)  # the new image's source watcher armed (it gives no sign)
    snap = e.snapshot()
    assert snap["engine"]["pid"] == first["engine"]["pid"] == e.proc.pid
    assert pids(snap) == pids(first)
    tick = next(s for s in snap["services"] if s["name"] == "tick")
    assert tick["restarts"] == 0 and tick["failures"] == 0
    assert tick["reliability"]["up_time"] > 2.0  # carried, not restarted from 0
    hist = asyncio.run(RemoteSupervisor(runtime).query(
        "resources", "history", {"service": "tick", "series": ["procs"]}))
    sampled = sum(v is not None for v in hist["series"]["procs"]) * hist["interval"]
    assert sampled > 0.6 * (time.monotonic() - began), "history from before the reloads"
    log = Path(tick["log_file"])
    e.stop()
    numbers = [int(line.split()[1]) for line in log.read_text().splitlines()]
    assert numbers == list(range(len(numbers))) and len(numbers) > 1000, \
        "every line exactly once, in order"


def test_broken_code_is_refused_then_the_fix_applied(tmp_path: Path, engines) -> None:
    pkg = copy_package(tmp_path)
    e = engines(config(tmp_path), pythonpath=pkg, quiet=True)
    first = running(e)
    rows = pkg / "tui_supervisor" / "tui" / "rows.py"
    good = rows.read_text()
    rows.write_text(good + "\ndef broken(:\n")  # a syntax error
    r = e.cli("reload", "--code")
    assert r.returncode == 1 and "rows.py:" in r.stderr and "Traceback" not in r.stderr
    rows.write_text(good + "\nraise RuntimeError('import-time failure')\n")  # imports fail
    r = e.cli("reload", "--code")
    assert r.returncode == 1 and "import-time failure" in r.stderr
    assert pids(e.snapshot()) == pids(first) and "code reloaded" not in e.out
    rows.write_text(good)  # fixed
    r = e.cli("reload", "--code")
    assert r.returncode == 0, r.stderr
    e.wait_out("code reloaded:")
    snap = e.snapshot()
    assert snap["engine"]["pid"] == e.proc.pid and pids(snap) == pids(first)


def test_sigusr2_reloads_the_code(tmp_path: Path, engines) -> None:
    e = engines(config(tmp_path), quiet=True)
    first = running(e)
    os.kill(e.proc.pid, signal.SIGUSR2)
    e.wait_out("code reloaded:")
    assert pids(e.snapshot()) == pids(first)


def test_code_reload_under_the_dashboard(tmp_path: Path) -> None:
    """The dashboard leaves, the process re-executes, the dashboard comes back; then the
    same once the dashboard was left running headless."""
    d = Dashboard(tmp_path, config(tmp_path), ROOT)
    t, e = d.term, d
    try:
        t.read_until("tick")
        first = running(e)
        t.out = b""
        r = e.cli("reload", "--code")
        assert r.returncode == 0, r.stderr
        t.read_until("tick", after=NEW_SCREEN)  # a new dashboard drew the screen again
        snap = e.snapshot()
        assert snap["engine"]["pid"] == first["engine"]["pid"] and pids(snap) == pids(first)
        t.send("q")
        t.read_until("Leave running")
        t.send("l")
        assert t.wait() == 0
        r = e.cli("reload", "--code")  # now headless
        assert r.returncode == 0, r.stderr
        log = Path(snap["services"][0]["log_file"]).parent.parent / "engine.log"
        wait_text(log, "code reloaded", timeout=30)  # in the headless engine
        snap = e.snapshot()
        assert snap["engine"]["pid"] == first["engine"]["pid"] and pids(snap) == pids(first)
    finally:
        d.stop()
        kill_marked()


def test_saving_the_source_reloads_it(tmp_path: Path, engines) -> None:
    """watchdog on a copy of the package on PYTHONPATH: a save reloads, a broken save is
    refused (said in the output), the fix reloads again."""
    pkg = copy_package(tmp_path)
    e = engines(config(tmp_path, watch_code=True), pythonpath=pkg, quiet=True)
    first = running(e)
    time.sleep(0.5)  # the source watcher armed (it gives no sign)
    rows = pkg / "tui_supervisor" / "tui" / "rows.py"
    good = rows.read_text()
    rows.write_text(good + "\n# edited\n")
    e.wait_out("code reloaded:", count=1)
    assert pids(e.snapshot()) == pids(first)
    rows.write_text(good + "\ndef broken(:\n")
    e.wait_out("code not reloaded", count=1)
    assert e.out.count("code reloaded:") == 1
    rows.write_text(good)
    e.wait_out("code reloaded:", count=2)
    snap = e.snapshot()
    assert snap["engine"]["pid"] == e.proc.pid and pids(snap) == pids(first)
