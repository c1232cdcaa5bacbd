"""The engine host (runner/): one signal table and one start-up for every front. The
dashboard's engine stops on SIGTERM and SIGINT alike, a second one does not wait for stop
timeouts, and it refuses to start where the headless engine refuses (docs/ARCHITECTURE.md §5)."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import (
    Client,
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


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    """The client of the engine a test writes the config of (`c.cfg`); stops it all."""
    c = Client(tmp_path, tmp_path / "tst-runner.yaml", cli_env(tmp_path))
    try:
        yield c
    finally:
        c.stop()
        kill_marked()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stop_signals_under_the_dashboard(client: Client, sig: signal.Signals) -> None:
    """The first stops every service (the stubborn one waits for its stop timeout), the
    second SIGKILLs at once; the engine exits 0 and leaves nothing running."""
    c = client
    write_cfg(c.tmp, svc("alpha", "sleeper") + svc(
        "stubborn", "sleeper", "ignore-term", extra="    stop: {timeout: 60s}\n"),
        name=c.cfg.name)
    t = c.open_term()
    t.read_until("stubborn")
    snap = running(c)
    engine, before = snap["engine"]["pid"], pids(snap)
    began = time.monotonic()
    stubborn = next(s for s in snap["services"] if s["name"] == "stubborn")
    wait_text(Path(stubborn["log_file"]), "ready")  # (said once SIGTERM is ignored)
    os.kill(engine, sig)
    wait_until(lambda: c.cli("status").returncode == 1, 20,
               "the engine to begin stopping (its socket shut)")
    assert alive(before["stubborn"])  # it ignores SIGTERM: the stop waits for it ...
    os.kill(engine, sig)  # ... unless asked again
    assert t.wait(20) == 0
    assert time.monotonic() - began < 40  # well before the 60 s stop timeout
    assert not any(alive(p) for p in before.values())


def test_the_dashboards_engine_refuses_what_the_headless_one_refuses(client: Client
                                                                   ) -> None:
    """metrics_listen on a port in use: one line on the terminal, exit 1, no engine."""
    c = client
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        c.cfg.write_text(f"settings: {{metrics_listen: '127.0.0.1:{port}'}}\nservices:\n"
                         + svc("alpha", "sleeper"))
        t = c.open_term()
        assert t.wait(30) == 1
    out = t.read_until("Address already in use")
    assert f"tui-supervisor: cannot start: metrics_listen 127.0.0.1:{port}: " \
        "Address already in use" in out
    assert c.cli("status").returncode == 1  # no engine
