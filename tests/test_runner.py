"""The engine host (runner/): one signal table and one start-up for every front. The
dashboard's engine stops on SIGTERM and SIGINT alike, a second one does not wait for stop
timeouts, and it refuses to start where the headless engine refuses (DESIGN.md §7)."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import pytest
from conftest import alive
from test_cli import PY, cli, svc, write_cfg
from test_tui_terminal import Term, kill_engines, pids, setup, wait_snapshot  # noqa: F401

from tui_supervisor.runner.front import Ending, UiOutcome

pytestmark = pytest.mark.timeout(120)


async def test_a_pending_ending_keeps_the_first_ask_but_stop_overrides() -> None:
    ending = Ending()
    assert ending.take() is None
    assert ending.set(UiOutcome.RELOAD)
    assert not ending.set(UiOutcome.LOST)  # a reload already due: the hang-up waits
    assert await ending.wait() is UiOutcome.RELOAD
    assert ending.take() is None and not ending.event.is_set()
    assert ending.set(UiOutcome.RELOAD) and ending.set(UiOutcome.STOP)
    assert await ending.wait() is UiOutcome.STOP


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stop_signals_under_the_dashboard(tmp_path: Path, sig: signal.Signals,
                                          setup) -> None:  # noqa: F811
    """The first stops every service (the stubborn one waits for its stop timeout), the
    second SIGKILLs at once; the engine exits 0 and leaves nothing running."""
    _tmp, _cfg, env, terms = setup
    cfg = write_cfg(tmp_path, svc("alpha", "sleeper") + svc(
        "stubborn", "sleeper", "ignore-term", extra="    stop: {timeout: 60s}\n"),
        name="tst-sig.yaml")
    t = Term([PY, "-m", "tui_supervisor", "-c", str(cfg)], env, tmp_path)
    terms.append(t)
    try:
        _stop_twice(t, tmp_path, cfg, sig)
    finally:
        kill_engines(cfg)


def _stop_twice(t: Term, tmp_path: Path, cfg: Path, sig: signal.Signals) -> None:
    t.read_until("stubborn")
    snap = wait_snapshot(tmp_path, cfg, lambda s: all(pids(s).values()))
    engine, before = snap["engine"]["pid"], pids(snap)
    began = time.monotonic()
    time.sleep(0.5)  # the stubborn child has set its SIGTERM handler
    t.out = b""
    os.kill(engine, sig)
    deadline = time.monotonic() + 20
    while cli(tmp_path, "status", "-c", str(cfg)).returncode == 0:  # stopping: socket shut
        assert time.monotonic() < deadline, "the engine never began to stop"
        time.sleep(0.05)
    assert alive(before["stubborn"])  # it ignores SIGTERM: the stop waits for it ...
    os.kill(engine, sig)  # ... unless asked again
    assert t.wait(20) == 0
    assert time.monotonic() - began < 40  # well before the 60 s stop timeout
    assert not any(alive(p) for p in before.values())


def test_the_dashboards_engine_refuses_what_the_headless_one_refuses(tmp_path: Path,
                                                                   setup) -> None:  # noqa: F811
    """metrics_listen on a port in use: one line on the terminal, exit 1, no services."""
    _tmp, _cfg, env, terms = setup
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cfg = tmp_path / "tst-prom.yaml"
        cfg.write_text(f"settings: {{metrics_listen: '127.0.0.1:{port}'}}\nservices:\n"
                       + svc("alpha", "sleeper"))
        t = Term([PY, "-m", "tui_supervisor", "-c", str(cfg)], env, tmp_path)
        terms.append(t)
        try:
            assert t.wait(30) == 1
        finally:
            kill_engines(cfg)
    out = t.read_until("Address already in use")
    assert f"tui-supervisor: cannot start: metrics_listen 127.0.0.1:{port}: " \
        "Address already in use" in out
    assert cli(tmp_path, "status", "-c", str(cfg)).returncode == 1  # no engine
