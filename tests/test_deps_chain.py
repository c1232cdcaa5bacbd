"""The db -> migrate -> api -> worker chain in a real headless engine, over the control
socket and the CLI: dependents wait, start in order, stop and come back when db crashes,
and stop in reverse order on SIGTERM; a code reload in the middle of a wait."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path
from typing import Any

import pytest
from support import Headless, free_port

from tui_supervisor.config.schema import ServiceSpec

DB = """\
import os, socket, sys, time
marker = sys.argv[1]
port = int(sys.argv[2])
first = not os.path.exists(marker)
time.sleep(0.5)  # a db takes a moment before it listens
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port))
s.listen()
print("listening", flush=True)
if first:
    time.sleep(3)
    open(marker, "w").close()
    sys.exit(3)  # a crash, once
while True:
    time.sleep(1000)
"""

CHAIN = """\
services:
  worker:
    command: [sleep, "1000"]
    start_time: 0
    depends_on: [api]
  api:
    command: [sleep, "1000"]
    start_time: 0
    depends_on:
      db: {{condition: {condition}}}
      migrate: {{condition: completed_successfully}}
  migrate:
    command: "sh -c 'echo migrated'"
    restart: never
    depends_on: {{db: {{condition: {condition}}}}}
  db:
    command: ["${{TUISUP_PYTHON}}", "{db}", "{marker}", "{port}"]
    start_time: 0.3
    backoff: {{initial: 0.1, jitter: 0}}
{probe}"""


def chain(tmp: Path, condition: str = "started", probe: str = "") -> Path:
    (tmp / "db.py").write_text(DB)
    cfg = tmp / "tst-chain.yaml"
    cfg.write_text(CHAIN.format(db=tmp / "db.py", marker=tmp / "crashed", port=free_port(),
                                condition=condition, probe=probe))
    return cfg


def by_name(snap: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in snap["services"]}


def state_lines(out: str, state: str) -> list[str]:
    """Services in the order the console said they went `state`."""
    return re.findall(rf" (\w+)\s+\* {state}\b", out)


def run_chain(tmp_path: Path, cfg: Path) -> None:
    e = Headless(tmp_path, cfg)
    try:
        snap = by_name(e.snapshot(lambda s: by_name(s)["worker"]["state"] == "waiting",
                                  what="worker waiting"))
        assert snap["worker"]["reason"] == "waiting for api (started)"
        assert snap["worker"]["depends_on"] == [
            {"name": "api", "condition": "started", "met": False}]

        def all_up(s: dict[str, Any]) -> bool:
            b = by_name(s)
            return b["migrate"]["state"] == "completed" and all(
                b[n]["state"] == "running" for n in ("db", "api", "worker"))

        e.snapshot(all_up, what="the chain up", timeout=30)
        out = e.out
        assert state_lines(out, "running")[:3] == ["db", "api", "worker"], out
        starting = state_lines(out, "starting")
        assert starting.index("migrate") < starting.index("api") < starting.index("worker")
        # db crashes (once): api and worker (restart: true) stop, wait, come back
        e.wait_out("exit code 3", timeout=30)
        again = by_name(e.snapshot(  # (by spawns: a slow poll may miss the first pids)
            lambda s: all_up(s) and by_name(s)["worker"]["spawns"] == 2
            and by_name(s)["api"]["spawns"] == 2, what="api and worker back", timeout=30))
        assert again["migrate"]["spawns"] == 1  # a completed job is not run again
        out = e.out
        assert re.search(r"api\s+\* stopping \(dependency lost: db", out), out
        assert re.search(r"worker\s+\* stopping \(dependency lost: api", out), out
        assert again["worker"]["spawns"] == again["api"]["spawns"] == 2
        # SIGTERM: dependents first
        mark = len(e.out)
        assert e.stop(signal.SIGTERM) == 0
        tail = e.out_path.read_text()[mark:]
        assert state_lines(tail, "stopped") == ["worker", "api", "db"], tail
    finally:
        e.stop()


def test_the_chain_with_started(tmp_path: Path) -> None:
    run_chain(tmp_path, chain(tmp_path))


@pytest.mark.skipif("health" not in ServiceSpec.__dataclass_fields__,
                    reason="readiness probes are part A of issue 14")
def test_the_chain_with_a_tcp_readiness_probe(tmp_path: Path) -> None:
    cfg = chain(tmp_path, "ready")
    text = cfg.read_text()
    port = re.search(r'crashed", "(\d+)"', text)  # (db's port, not sleep's 1000)
    assert port is not None
    cfg.write_text(text + f"    health: {{readiness: {{tcp: {{port: {port.group(1)}}}, "
                          "period: 200ms}}\n")
    run_chain(tmp_path, cfg)


def test_cli_start_and_stop_say_what_they_did(tmp_path: Path) -> None:
    cfg = tmp_path / "tst-cli.yaml"
    cfg.write_text("services:\n"
                   "  db: {command: [sleep, '1000'], start_time: 0.5, autostart: false}\n"
                   "  api: {command: [sleep, '1000'], start_time: 0, autostart: false,"
                   " depends_on: [db]}\n")
    e = Headless(tmp_path, cfg)
    try:
        e.snapshot(lambda s: True, what="the engine")
        r = e.cli("start", "api")
        assert (r.returncode, r.stdout) == (
            0, "db: started (dependency of api)\napi: waiting for db (started)\n"), r.stderr
        e.snapshot(lambda s: by_name(s)["api"]["state"] == "running", what="api running")
        r = e.cli("stop", "db")
        assert (r.returncode, r.stdout) == (0, "api: stopped (depends on db)\ndb: stopped\n")
        r = e.cli("start", "--no-deps", "api")
        assert (r.returncode, r.stdout) == (0, "api: waiting for db (started)\n"), r.stderr
        status = e.cli("status")
        assert re.search(r"api\s+waiting \(waiting for db \(started\)\)", status.stdout), \
            status.stdout
        assert status.returncode == 3  # wanted and not up
        e.cli("start", "db")
        e.snapshot(lambda s: by_name(s)["api"]["state"] == "running", what="api running")
        r = e.cli("stop", "--no-deps", "db")
        assert (r.returncode, r.stdout) == (0, "db: stopped\n")
        e.snapshot(lambda s: by_name(s)["api"]["state"] == "waiting", what="api waiting")
    finally:
        e.stop()


def test_a_code_reload_keeps_a_wait(tmp_path: Path) -> None:
    """A code reload in the middle of a wait neither spawns the waiting service nor
    forgets the wait: it starts once, when its dependency is up."""
    cfg = tmp_path / "tst-reload.yaml"
    cfg.write_text("services:\n"
                   "  db: {command: [sleep, '1000'], start_time: 0, autostart: false}\n"
                   "  api: {command: [sleep, '1000'], start_time: 0,"
                   " depends_on: {db: {timeout: 1h}}}\n")
    e = Headless(tmp_path, cfg)
    try:
        e.snapshot(lambda s: by_name(s)["api"]["state"] == "running", what="autostart")
        e.cli("stop", "db")
        r = e.cli("start", "--no-deps", "api")
        assert r.stdout == "api: waiting for db (started)\n", r.stderr
        before = by_name(e.snapshot(lambda s: by_name(s)["api"]["state"] == "waiting"))
        pid = e.snapshot(lambda s: True)["engine"]["pid"]
        os.kill(e.proc.pid, signal.SIGUSR2)  # a code reload (same pid: an exec)
        e.wait_out("code reloaded:", timeout=60)
        after = by_name(e.snapshot(lambda s: s["engine"]["pid"] == pid and
                                   by_name(s)["api"]["reason"] == "waiting for db (started)"))
        spawns = before["api"]["spawns"]  # (1: autostart, before the stop)
        assert after["api"]["state"] == "waiting" and after["api"]["spawns"] == spawns
        assert after["api"]["state_since"] == before["api"]["state_since"]
        e.cli("start", "db")
        final = by_name(e.snapshot(lambda s: by_name(s)["api"]["state"] == "running"))
        assert final["api"]["spawns"] == spawns + 1
    finally:
        e.stop()

