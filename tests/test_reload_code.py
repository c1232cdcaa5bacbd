"""Code reload by exec handoff on a real headless engine: same engine PID, same service
PIDs, every line a 1 kHz writer prints present exactly once across 5 reloads, counters
and metrics carried; a broken edit refused with services untouched, the fix applied."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import CHILDREN, kill_marked, terminate
from test_cli import PY, ROOT, cli_env

pytestmark = pytest.mark.timeout(180)


NEW_SCREEN = "\x1b[?1049h"
"""A dashboard entering the alternate screen: the new image's UI (the old one's repaints
until it leaves could match any text)."""


def config(tmp: Path, watch_code: bool = False) -> Path:
    cfg = tmp / "tst-code.yaml"
    cfg.write_text(
        f"settings: {{sample_interval: 0.2, watch_code: {str(watch_code).lower()}}}\n"
        "services:\n"
        f"  tick:\n    command: [{PY}, {CHILDREN / 'counter.py'}, '0', '0.001']\n"
        "    start_time: 0\n"
        f"  idle:\n    command: [{PY}, {CHILDREN / 'sleeper.py'}]\n    start_time: 0\n")
    return cfg


class Headless:
    def __init__(self, tmp: Path, cfg: Path, pythonpath: Path,
                 **env: str) -> None:
        self.env = {**cli_env(tmp), "PYTHONPATH": str(pythonpath), **env}
        self.tmp, self.cfg = tmp, cfg
        self.out_path = tmp / "engine.out"
        with open(self.out_path, "wb") as out:
            self.proc = subprocess.Popen(
                [PY, "-m", "tui_supervisor", "run", "--headless", "--quiet", "-c", str(cfg)],
                stdout=out, stderr=subprocess.STDOUT, env=self.env, cwd=tmp,
                start_new_session=True)

    @property
    def out(self) -> str:
        return self.out_path.read_text()

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([PY, "-m", "tui_supervisor", *args, "-c", str(self.cfg)],
                              capture_output=True, text=True, env=self.env, cwd=self.tmp,
                              timeout=60)

    def snapshot(self, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            r = self.cli("status", "--json")
            if r.returncode == 0:
                return json.loads(r.stdout)
            assert time.monotonic() < deadline, f"no engine: {r.stderr}\n{self.out}"
            time.sleep(0.1)

    def wait_out(self, text: str, count: int = 1, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while self.out.count(text) < count:
            assert time.monotonic() < deadline, f"{text!r} x{count} not seen:\n{self.out}"
            assert self.proc.poll() is None, f"engine exited:\n{self.out}"
            time.sleep(0.05)

    def stop(self) -> None:
        terminate(self.proc)


@pytest.fixture
def engines():
    made: list[Headless] = []
    yield made
    for e in made:
        e.stop()
    kill_marked()


def pids(snap: dict) -> dict[str, int]:
    return {s["name"]: s["pid"] for s in snap["services"]}


def running(e: Headless) -> dict:
    """The engine's snapshot once every service has a pid."""
    snap = e.snapshot()
    while not all(pids(snap).values()):
        snap = e.snapshot()
    return snap


def copy_package(tmp: Path) -> Path:
    """A copy of the package to put on PYTHONPATH and edit; returns the directory."""
    pkg = tmp / "pkg"
    shutil.copytree(ROOT / "tui_supervisor", pkg / "tui_supervisor",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return pkg


class Dashboard:
    """`tui-supervisor -c CFG` on a pty (engine + UI), with a Headless' client helpers;
    `close()` kills it and whatever engine it left."""

    def __init__(self, tmp: Path, cfg: Path, pythonpath: Path) -> None:
        from test_tui_terminal import Term

        env = {**cli_env(tmp), "PYTHONPATH": str(pythonpath)}
        self.term = Term([PY, "-m", "tui_supervisor", "-c", str(cfg)], env, tmp)
        self.e = e = Headless.__new__(Headless)  # only for its client helpers
        e.env, e.tmp, e.cfg, e.out_path = env, tmp, cfg, tmp / "none"

    def close(self) -> None:
        from test_tui_terminal import kill_engines

        self.term.kill()
        r = self.e.cli("status", "--json")
        if r.returncode == 0:
            os.kill(json.loads(r.stdout)["engine"]["pid"], signal.SIGTERM)
            time.sleep(1)
        kill_engines(self.e.cfg)
        kill_marked()


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
    e = Headless(tmp_path, cfg, pkg)
    engines.append(e)
    first = running(e)
    began = time.monotonic()
    time.sleep(1)
    rows = pkg / "tui_supervisor" / "tui" / "rows.py"
    for i in range(1, 6):
        rows.write_text(rows.read_text() + f"\n# edit {i}\n")  # a save
        e.wait_out("code reloaded:", count=i)
        time.sleep(0.3)
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
    e = Headless(tmp_path, config(tmp_path), pkg)
    engines.append(e)
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
    e = Headless(tmp_path, config(tmp_path), ROOT)
    engines.append(e)
    first = running(e)
    os.kill(e.proc.pid, signal.SIGUSR2)
    e.wait_out("code reloaded:")
    assert pids(e.snapshot()) == pids(first)


def test_code_reload_under_the_dashboard(tmp_path: Path) -> None:
    """The dashboard leaves, the process re-executes, the dashboard comes back; then the
    same once the dashboard was left running headless."""
    d = Dashboard(tmp_path, config(tmp_path), ROOT)
    t, e = d.term, d.e
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
        deadline = time.monotonic() + 30
        while "code reloaded" not in (log.read_text() if log.exists() else ""):
            assert time.monotonic() < deadline, "no code reload in the headless engine"
            time.sleep(0.1)
        snap = e.snapshot()
        assert snap["engine"]["pid"] == first["engine"]["pid"] and pids(snap) == pids(first)
    finally:
        d.close()


def test_saving_the_source_reloads_it(tmp_path: Path, engines) -> None:
    """watchdog on a copy of the package on PYTHONPATH: a save reloads, a broken save is
    refused (said in the output), the fix reloads again."""
    pkg = copy_package(tmp_path)
    e = Headless(tmp_path, config(tmp_path, watch_code=True), pkg)
    engines.append(e)
    first = running(e)
    time.sleep(0.5)
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
