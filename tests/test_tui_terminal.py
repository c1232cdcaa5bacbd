"""The dashboard on a real terminal (a pty, and tmux when installed): leaving it running,
losing the terminal, stopping everything, attaching again. The services must never
notice the UI coming and going."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import (
    PY,
    Client,
    Term,
    alive,
    cli_env,
    kill_marked,
    pids,
    running,
    svc,
    wait_text,
    wait_until,
    write_cfg,
)

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Client]:
    """The client of an engine on `alpha` (a sleeper) and `beta` (a slow counter): it opens
    the dashboards, and stops them and the engine at the end."""
    cfg = write_cfg(tmp_path, svc("alpha", "sleeper") + svc("beta", "counter", "0", "0.2"))
    c = Client(tmp_path, cfg, cli_env(tmp_path))
    try:
        yield c
    finally:
        c.stop()
        kill_marked()


def dashboard(c: Client, *args: str, env: dict[str, str] | None = None) -> Term:
    t = c.open_term(*args, env=env)
    t.read_until("alpha")
    return t


def engine_log(snap: dict) -> Path:
    return Path(snap["services"][0]["log_file"]).parent.parent / "engine.log"


def test_leave_running_then_attach_then_stop(setup) -> None:
    c = setup
    t = dashboard(c)
    before = pids(running(c))
    engine = c.snapshot(timeout=0)["engine"]["pid"]
    t.send("q")
    t.read_until("Leave running")
    t.send("l")
    assert t.wait() == 0  # the shell gets its prompt back ...
    assert "goes on headless" in t.read_until("attach")
    snap = c.snapshot(timeout=0)  # ... and nothing else changed
    assert snap["engine"]["pid"] == engine and pids(snap) == before
    a = dashboard(c, "attach")
    a.read_until("(attached)")
    a.send("q")  # an attached dashboard asks too: leave them running
    a.read_until("Leave running")
    a.send("l")
    assert a.wait() == 0
    assert pids(c.snapshot(timeout=0)) == before
    os.kill(engine, signal.SIGTERM)
    wait_until(lambda: not alive(engine), 20, "the engine to stop")
    assert not alive(engine) and not any(alive(p) for p in before.values())


def test_terminal_lost_services_untouched(setup) -> None:
    c = setup
    t = dashboard(c)
    first = running(c)
    before = pids(first)
    engine = c.snapshot(timeout=0)["engine"]["pid"]
    t.close()  # hang up
    wait_text(engine_log(first), "goes on headless", timeout=10)
    snap = c.snapshot()
    assert snap["engine"]["pid"] == engine and pids(snap) == before
    a = dashboard(c, "attach")  # and the view comes back
    a.read_until("(attached)")
    a.send("q")
    a.read_until("Leave running")
    a.send("l")
    assert a.wait() == 0


def test_quit_and_stop_everything(setup) -> None:
    c = setup
    t = dashboard(c)
    before = pids(running(c))
    t.send("q")
    t.read_until("Stop all")
    t.send("s")
    assert t.wait() == 0
    assert not any(alive(p) for p in before.values())
    assert c.cli("status").returncode == 1  # no engine any more


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_tmux_kill_session(setup) -> None:
    """The hosting terminal is a tmux pane and the session is killed."""
    c = setup
    sock = str(c.tmp / "tmux.sock")
    cmd = f"{PY} -m tui_supervisor -c {c.cfg}"
    subprocess.run(["tmux", "-S", sock, "new", "-d", "-x", "140", "-y", "45", cmd],
                   env=c.env, cwd=c.tmp, check=True)
    try:
        first = running(c)
        before = pids(first)
        engine = c.snapshot(timeout=0)["engine"]["pid"]
        wait_until(lambda: "alpha" in subprocess.run(
            ["tmux", "-S", sock, "capture-pane", "-p"], capture_output=True, text=True
        ).stdout, 20, "the dashboard in the tmux pane", interval=0.1)
    finally:
        subprocess.run(["tmux", "-S", sock, "kill-server"], check=False)
    wait_text(engine_log(first), "goes on headless", timeout=10)  # the pane is gone
    snap = c.snapshot()
    assert snap["engine"]["pid"] == engine and pids(snap) == before
    a = dashboard(c, "attach")
    a.read_until("(attached)")
    a.send("q")
    a.read_until("Leave running")
    a.send("l")
    assert a.wait() == 0


def test_a_failing_ui_leaves_the_engine_headless(setup) -> None:
    c = setup
    env = {**c.env, "TUISUP_FAULT": "ui-crash"}  # the app raises a second after it starts
    t = dashboard(c, env=env)
    before = pids(running(c))
    engine = c.snapshot(timeout=0)["engine"]["pid"]
    assert t.wait() == 0  # the terminal is handed back ...
    snap = c.snapshot(timeout=0)  # ... and the services never noticed
    assert snap["engine"]["pid"] == engine and pids(snap) == before
    text = engine_log(snap).read_text()
    assert "injected UI failure" in text and "goes on headless" in text
    env.pop("TUISUP_FAULT")
    a = dashboard(c, "attach", env=env)
    a.read_until("(attached)")
    a.send("q")
    a.read_until("Leave running")
    a.send("l")
    assert a.wait() == 0
