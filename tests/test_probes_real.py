"""Health probes against real servers: a stdlib HTTP server that goes unhealthy on
demand, a TCP listener, a Type=notify daemon sending real datagrams, a log line, hung
services (SIGSTOP) caught by `silence` and an exec probe, and a hung exec probe."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

from support import CHILDREN, PY, Headless, free_port, wait_until, write_cfg


def service(name: str, argv: list[str], health: str, extra: str = "") -> str:
    args = ", ".join(json.dumps(a) for a in argv)
    return (f"  {name}:\n    command: [{args}]\n    start_time: 0\n"
            f"    backoff: {{initial: 0.1s, max: 0.5s}}\n    health:\n{health}{extra}")


def child(script: str, *args: object) -> list[str]:
    return [PY, str(CHILDREN / f"{script}.py"), *map(str, args)]


def one(snap: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in snap["services"] if s["name"] == name)


def test_http_liveness_restarts_an_unhealthy_server(tmp_path: Path) -> None:
    port, flag = free_port(), tmp_path / "sick"
    cfg = write_cfg(tmp_path, service(
        "web", child("healthy", port, flag),
        f"      liveness: {{http: {{port: {port}, path: /healthz}}, period: 0.2s,"
        " failure_threshold: 2}\n"
        f"      readiness: {{http: {{port: {port}, path: /healthz, body: ok}}, period: 0.2s}}\n"))
    e = Headless(tmp_path, cfg)
    try:
        snap = e.snapshot(lambda s: one(s, "web")["health"] == "ready", 30, "web ready")
        web = one(snap, "web")
        first = web["pid"]
        assert web["ready_since"] is not None and web["probes"]["liveness"]["passing"]
        flag.write_text("")
        e.snapshot(lambda s: one(s, "web")["spawns"] >= 2, 30, "web restarted by liveness")
        e.wait_out("liveness probe failed: HTTP/1.0 500")
        flag.unlink()
        snap = e.snapshot(lambda s: one(s, "web")["health"] == "ready", 30, "ready again")
        assert one(snap, "web")["pid"] != first and one(snap, "web")["failures"] >= 1
        r = e.cli("incidents", "web", "--json")
        assert "liveness probe failed: HTTP/1.0 500" in r.stdout, r.stdout
        r = e.cli("status")
        header, row = (line.split() for line in r.stdout.splitlines()[2::2][:2])
        assert header[:3] == ["NAME", "STATE", "HEALTH"] and row[:3] == ["web", "running",
                                                                          "ready"], r.stdout
    finally:
        e.stop()


def test_tcp_readiness_never_restarts(tmp_path: Path) -> None:
    port, nobody = free_port(), free_port()
    cfg = write_cfg(tmp_path, service(
        "api", child("healthy", port, tmp_path / "x", 1.0),
        f"      readiness: {{tcp: {{port: {port}}}, period: 0.2s}}\n") + service(
        "lonely", child("sleeper"),
        f"      readiness: {{tcp: {{port: {nobody}}}, period: 0.1s, failure_threshold: 1}}\n"))
    e = Headless(tmp_path, cfg)
    try:
        snap = e.snapshot(lambda s: one(s, "api")["health"] == "starting", 30, "api starting")
        snap = e.snapshot(lambda s: one(s, "api")["health"] == "ready"
                          and one(s, "lonely")["health"] == "unready", 30, "api ready")
        lonely = one(snap, "lonely")
        assert "Connection refused" in lonely["health_output"], lonely["health_output"]
        e.snapshot(lambda s: one(s, "lonely")["probes"]["readiness"]["failures"] >= 10, 30,
                   "ten failed readiness checks")
        snap = e.snapshot()
        assert one(snap, "lonely")["spawns"] == 1  # readiness never restarts
        e.wait_out("* unready: connect to 127.0.0.1")
        # measured on readiness: unready is down (an open outage), never up
        rel = one(snap, "lonely")["reliability"]
        assert rel["availability"] == 0 and rel["downtime"] > 0, rel
        assert rel["outage_open_since"] is not None and rel["failures"] == 0, rel
        # time to ready: the server listens 1 s after its spawn
        api = one(snap, "api")["reliability"]
        assert api["ready_latency"] >= 0.9, api
    finally:
        e.stop()


def test_sd_notify_ready_and_watchdog(tmp_path: Path) -> None:
    stop = tmp_path / "stop-pinging"
    run = Path(tempfile.mkdtemp(prefix="tsp", dir="/tmp"))  # a socket path fits 107 bytes
    cfg = write_cfg(tmp_path, service(
        "notified", child("notifier", stop),
        "      readiness: {notify: true}\n"
        "      liveness: {notify: true, period: 0.5s, failure_threshold: 2}\n"))
    e = Headless(tmp_path, cfg, XDG_RUNTIME_DIR=str(run))
    try:
        snap = e.snapshot(lambda s: one(s, "notified")["health"] == "ready", 30, "READY=1")
        assert one(snap, "notified")["probes"]["readiness"]["passing"] is True
        e.wait_out("ready; watchdog 500000")
        sock = e.runtime / "notify" / "notified.sock"
        assert sock.exists() and (sock.stat().st_mode & 0o777) == 0o600
        stop.write_text("")
        e.snapshot(lambda s: one(s, "notified")["spawns"] >= 2, 30, "watchdog restart")
        e.wait_out("liveness probe failed: no WATCHDOG=1 ping")
        stop.unlink()
        e.snapshot(lambda s: one(s, "notified")["health"] == "ready", 30, "ready again")
        e.cli("stop", "notified")
        e.snapshot(lambda s: one(s, "notified")["state"] == "stopped", 30, "stopped")
        assert not sock.exists()  # removed at stop
    finally:
        e.stop()
        shutil.rmtree(run, ignore_errors=True)


def test_log_line_ready(tmp_path: Path) -> None:
    port = free_port()
    cfg = write_cfg(tmp_path, service(
        "web", child("healthy", port, tmp_path / "x", 1.0),
        "      startup: {log: 'listening on \\d+', period: 1s, failure_threshold: 30}\n"))
    e = Headless(tmp_path, cfg)
    try:
        e.snapshot(lambda s: one(s, "web")["health"] == "starting", 30, "starting")
        snap = e.snapshot(lambda s: one(s, "web")["health"] == "ready", 30, "log ready")
        assert f"listening on {port}" in one(snap, "web")["health_output"]
    finally:
        e.stop()


def hung(name: str, health: str) -> str:
    code = "import time\nwhile True: print('tick', flush=True); time.sleep(0.1)"
    return service(name, [PY, "-c", code], health)


def test_hung_service_caught_by_silence_and_exec(tmp_path: Path) -> None:
    port = free_port()
    ask = f"import urllib.request as u; u.urlopen('http://127.0.0.1:{port}/healthz')"
    cfg = write_cfg(tmp_path, hung(
        "quiet", "      liveness: {silence: 1s, period: 0.3s, failure_threshold: 1}\n") + service(
        "stuck", child("healthy", port, tmp_path / "x"),
        f"      liveness: {{exec: {json.dumps([PY, '-c', ask])}, period: 0.3s, timeout: 1s,"
        " failure_threshold: 2}\n"))
    e = Headless(tmp_path, cfg)
    try:
        snap = e.snapshot(lambda s: all(x["health"] == "ready" for x in s["services"]), 30)
        quiet, stuck = one(snap, "quiet")["pid"], one(snap, "stuck")["pid"]
        os.kill(quiet, signal.SIGSTOP)
        os.kill(stuck, signal.SIGSTOP)
        snap = e.snapshot(lambda s: all(x["spawns"] >= 2 for x in s["services"]), 30,
                          "both restarted")
        e.wait_out("warning: liveness probe failed: no output for")
        e.wait_out("warning: liveness probe failed: timed out after 1s (killed)")
        assert all(x["failures"] >= 1 for x in snap["services"])
    finally:
        for pid in (quiet, stuck):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        e.stop()


def test_hung_exec_probe_is_killed_at_its_timeout(tmp_path: Path) -> None:
    pids = tmp_path / "probe-pids"
    cfg = write_cfg(tmp_path, hung(
        "svc", f"      liveness: {{exec: 'echo $$ >> {pids}; exec sleep 1000', period: 0.2s,"
        " timeout: 0.3s, failure_threshold: 1000}\n"))
    e = Headless(tmp_path, cfg)
    try:
        snap = e.snapshot(lambda s: one(s, "svc")["probes"]["liveness"]["failures"] >= 3, 30)
        svc = one(snap, "svc")
        assert "timed out after 0.3s (killed)" in svc["health_output"]
        assert svc["spawns"] == 1
        e.cli("stop", "svc")
        seen = [int(p) for p in pids.read_text().split()]
        assert len(seen) >= 3

        def gone() -> bool:
            return not any(os.path.exists(f"/proc/{p}") for p in seen)
        wait_until(gone, 10, "every probe process gone (killed and reaped)")
    finally:
        e.stop()


def test_probe_state_survives_a_code_reload(tmp_path: Path) -> None:
    """SIGUSR2: the new image keeps health and ready_since, runs the probes again (a
    liveness failure after the reload still restarts), and makes the NOTIFY_SOCKET at
    the same path (the daemon's watchdog pings keep reaching it)."""
    port, flag, stop = free_port(), tmp_path / "sick", tmp_path / "stop-pinging"
    run = Path(tempfile.mkdtemp(prefix="tsp", dir="/tmp"))
    cfg = write_cfg(tmp_path, service(
        "web", child("healthy", port, flag),
        f"      readiness: {{http: {{port: {port}, path: /healthz}}, period: 0.2s}}\n"
        f"      liveness: {{http: {{port: {port}, path: /healthz}}, period: 0.2s}}\n")
        + service("notified", child("notifier", stop),
                  "      readiness: {notify: true}\n"
                  "      liveness: {notify: true, period: 0.5s, failure_threshold: 2}\n"))
    e = Headless(tmp_path, cfg, XDG_RUNTIME_DIR=str(run))
    try:
        before = e.snapshot(lambda s: all(x["health"] == "ready" for x in s["services"]), 30)
        os.kill(e.proc.pid, signal.SIGUSR2)
        e.wait_out("code reloaded:")
        after = e.snapshot()
        for name in ("web", "notified"):
            old, new = one(before, name), one(after, name)
            assert (new["pid"], new["health"], new["ready_since"]) == (
                old["pid"], "ready", old["ready_since"]), (old, new)
        # four watchdog periods in the new image: pings reach the socket made again
        e.snapshot(lambda s: one(s, "notified")["probes"]["liveness"]["last_duration"]
                   is not None, 10, "a liveness check in the new image")
        time.sleep(2.0)  # (no timing assert: a missed ping would restart it meanwhile)
        assert one(e.snapshot(), "notified")["spawns"] == 1, e.out
        flag.write_text("")
        e.snapshot(lambda s: one(s, "web")["spawns"] >= 2, 30, "liveness restart after reload")
    finally:
        e.stop()
        shutil.rmtree(run, ignore_errors=True)


def test_a_config_reload_adds_and_removes_probes_in_place(tmp_path: Path) -> None:
    port = free_port()
    plain = service("web", child("healthy", port, tmp_path / "x"), "")
    plain = plain.replace("    health:\n", "")
    cfg = write_cfg(tmp_path, plain)
    e = Headless(tmp_path, cfg)
    try:
        first = one(e.snapshot(lambda s: one(s, "web")["pid"], 30), "web")
        assert first["health"] is None and first["probes"] == {}
        cfg.write_text(cfg.read_text() + "    health:\n"
                       f"      readiness: {{tcp: {{port: {port}}}, period: 0.2s}}\n")
        e.cli("reload")
        web = one(e.snapshot(lambda s: one(s, "web")["health"] == "ready", 30), "web")
        assert web["pid"] == first["pid"]  # in place: not restarted
        cfg.write_text(plain and f"services:\n{plain}")
        e.cli("reload")
        web = one(e.snapshot(lambda s: one(s, "web")["probes"] == {}, 30), "web")
        assert web["health"] is None and web["pid"] == first["pid"]
    finally:
        e.stop()
