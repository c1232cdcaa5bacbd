"""A code reload changes nothing a service sees: the environment services get is fixed at
the engine's first launch and carried across any number of code reloads (the new image's
own environment has the hand-off variable in it); so a config reload after code reloads
restarts only what changed, and a service respawned after one gets the same env."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from support import (
    CHILDREN,
    NEW_SCREEN,
    PY,
    ROOT,
    Dashboard,
    copy_package,
    kill_marked,
    pids,
    running,
)

pytestmark = pytest.mark.timeout(180)

N = 5


def write(cfg: Path, value: str = "same") -> None:
    """N sleepers; the last one's env has FLAVOUR=`value`."""
    text = "settings: {sample_interval: 0, watch_config: false, watch_code: false}\nservices:\n"
    for i in range(N):
        flavour = value if i == N - 1 else "same"
        text += (f"  s{i}:\n    command: [{PY}, {CHILDREN / 'sleeper.py'}]\n"
                 f"    start_time: 0\n    env: {{FLAVOUR: {flavour}}}\n")
    cfg.write_text(text)


def environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.decode().partition("=")[::2] for item in raw.split(b"\0") if item)


def test_a_config_reload_after_code_reloads_restarts_only_what_changed(
        tmp_path: Path, engines) -> None:
    cfg = tmp_path / "tst-env.yaml"
    write(cfg)
    e = engines(cfg, quiet=True)
    first = pids(running(e))
    env_before = environ(first["s0"])
    for i in (1, 2):
        r = e.cli("reload", "--code")
        assert r.returncode == 0, r.stderr
        e.wait_out("code reloaded:", count=i)
    r = e.cli("reload")  # the unchanged config
    assert r.returncode == 0, r.stderr
    assert r.stdout == "reloaded: nothing changed\n"
    assert pids(running(e)) == first
    write(cfg, "changed")
    r = e.cli("reload")
    assert r.stdout == f"reloaded: restarted: s{N - 1}\n"
    now = pids(running(e))
    assert {n for n in first if now[n] != first[n]} == {f"s{N - 1}"}
    os.kill(now["s0"], signal.SIGKILL)  # respawned by the image of the second reload
    again = pids(e.snapshot(lambda s: pids(s)["s0"] not in (None, now["s0"]),
                            what="s0 respawned"))
    env_after = environ(again["s0"])
    assert "TUISUP_HANDOFF" not in env_after
    assert env_after == env_before


def test_the_dashboard_engine_carries_the_env_too(tmp_path: Path) -> None:
    """The same through the dashboard's engine (hosted), then once the UI has left."""
    cfg = tmp_path / "tst-env.yaml"
    write(cfg)
    d = Dashboard(tmp_path, cfg, ROOT)
    try:
        d.term.read_until("s0")
        first = pids(running(d))
        for _ in (1, 2):
            d.term.out = b""
            r = d.cli("reload", "--code")
            assert r.returncode == 0, r.stderr
            d.term.read_until("s0", after=NEW_SCREEN)  # the new image's dashboard
        r = d.cli("reload")
        assert r.stdout == "reloaded: nothing changed\n", r.stderr
        assert pids(running(d)) == first
    finally:
        d.stop()
        kill_marked()


def test_through_safe_mode_too(tmp_path: Path, engines) -> None:
    """A new image that fails at start-up (safe mode), then the fix: the env is still the
    first launch's."""
    pkg = copy_package(tmp_path)
    cfg = tmp_path / "tst-env.yaml"
    write(cfg)
    e = engines(cfg, pythonpath=pkg, quiet=True)
    first = pids(running(e))
    env_before = environ(first["s0"])
    headless = pkg / "tui_supervisor" / "runner" / "headless.py"
    good = headless.read_text()
    at = "    handoff = take_handoff()\n"
    assert at in good
    headless.write_text(good.replace(at, at + "    raise RuntimeError('broken start-up')\n"))
    r = e.cli("reload", "--code")
    assert r.returncode == 0, r.stderr
    e.wait_out("safe mode: the new code failed at start-up")
    headless.write_text(good)  # the fix: safe mode execs it by itself
    e.wait_out("code reloaded after", timeout=60)
    r = e.cli("reload")
    assert r.stdout == "reloaded: nothing changed\n", r.stderr
    assert pids(running(e)) == first
    os.kill(first["s0"], signal.SIGKILL)
    again = pids(e.snapshot(lambda s: pids(s)["s0"] not in (None, first["s0"]),
                            what="s0 respawned"))
    assert environ(again["s0"]) == env_before
