"""The client verbs of the command line against a real engine process, over its socket."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

from support import (
    PY,
    alive,
    cli,
    cli_env,
    one_error_line,
    state_pids,
    svc,
    wait_pids,
    wait_text,
    wait_until,
    write_cfg,
)


def test_no_engine_running(tmp_path: Path) -> None:
    cfg = write_cfg(tmp_path, svc("a", "sleeper"))
    for verb in (["status"], ["stop", "a"], ["logs"], ["logs", "-f"], ["reload"],
                 ["signal", "a", "TERM"]):
        r = cli(tmp_path, *verb, "-c", str(cfg))
        assert one_error_line(r) == (
            f"tui-supervisor: no engine running for {cfg} — start it with "
            f"`tui-supervisor run --headless -c {cfg}`")


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    cfg = write_cfg(tmp_path, svc("a", "sleeper"))
    for verb in (["signal", "a"], ["logs", "-n", "x"], ["logs", "-n", "-3"],
                 ["status", "--bogus"]):
        r = cli(tmp_path, *verb, "-c", str(cfg))
        assert r.returncode == 2, (verb, r.stderr)
        assert "usage:" in r.stderr and "Traceback" not in r.stderr


def test_control_without_names_is_one_plain_line(tmp_path: Path) -> None:
    """`restart` alone said argparse's usage and "give service names or --all (not
    both)"; now one line that says what is missing (exit 2, before any engine is asked)."""
    cfg = write_cfg(tmp_path, svc("a", "sleeper"))
    for verb, line in ((["restart"], "restart: give service names, or all"),
                       (["start"], "start: give service names, or all"),
                       (["stop", "a", "--all"], "stop: give service names or --all, not "
                        "both")):
        r = cli(tmp_path, *verb, "-c", str(cfg))
        assert (r.returncode, r.stdout, r.stderr) == (2, "", f"tui-supervisor: {line}\n")


def test_status_table_and_json(tmp_path: Path, engines) -> None:
    cfg = write_cfg(tmp_path, svc("alpha", "sleeper") + svc("beta", "crash", "3"))
    e = engines(cfg)
    e.wait_out("ready")
    pids = wait_pids(tmp_path, cfg, lambda p: "alpha" in p)
    r = cli(tmp_path, "status", "-c", str(cfg))
    assert r.returncode in (0, 3), r.stderr  # 3 while beta (crashing) is not up
    lines = r.stdout.splitlines()
    assert lines[0].startswith(f"engine pid {e.proc.pid}, up ")
    assert lines[1].startswith(("processes known by cgroup v2 at ",
                                "processes known by marker and ancestry ("))
    header = next(line for line in lines if "NAME" in line).split()
    sampled = "CPU" in header  # once the first resource sample is in
    assert [h for h in header if h not in ("CPU", "MEM")] == [
        "NAME", "STATE", "PID", "UPTIME", "RESTARTS", "FAILURES", "AVAIL", "MTTR", "LAST",
        "EXIT"]
    alpha = next(line for line in lines if line.startswith("alpha")).split()
    assert alpha[1] == "running" and alpha[2] == str(pids["alpha"])
    assert alpha[-3:] == ["100%", "-", "-"]  # availability, no outage yet (MTTR), no exit
    assert len(alpha) == 9 + 2 * sampled
    assert any(line.startswith("beta") for line in lines)
    r = cli(tmp_path, "status", "--json", "-c", str(cfg))
    snap = json.loads(r.stdout)
    assert snap["engine"]["pid"] == e.proc.pid
    by = {s["name"]: s for s in snap["services"]}
    assert list(by) == ["alpha", "beta"] and by["alpha"]["pid"] == pids["alpha"]
    assert {"restarts", "failures", "last_exit", "uptime", "log_file"} <= set(by["alpha"])


def test_start_stop_restart(tmp_path: Path, engines) -> None:
    cfg = write_cfg(tmp_path, svc("a", "sleeper") + svc("b", "sleeper"))
    e = engines(cfg)
    before = wait_pids(tmp_path, cfg, lambda p: len(p) == 2)
    e.wait_out("ready", count=2)
    r = cli(tmp_path, "stop", "a", "-c", str(cfg))
    assert (r.returncode, r.stdout) == (0, "a: stopped\n"), r.stderr
    assert not alive(before["a"])
    assert json.loads(cli(tmp_path, "status", "--json", "-c", str(cfg)).stdout)[
        "services"][0]["state"] == "stopped"
    r = cli(tmp_path, "stop", "a", "-c", str(cfg))
    assert (r.returncode, r.stdout) == (0, "a: already stopped\n"), r.stderr
    r = cli(tmp_path, "start", "a", "b", "-c", str(cfg))
    assert (r.returncode, r.stdout) == (0, "a: started\nb: already running\n"), r.stderr
    mid = wait_pids(tmp_path, cfg, lambda p: len(p) == 2 and p["a"] != before["a"])
    r = cli(tmp_path, "restart", "--all", "-c", str(cfg))
    assert (r.returncode, r.stdout) == (0, "a: restarted\nb: restarted\n"), r.stderr
    after = wait_pids(tmp_path, cfg, lambda p: len(p) == 2 and not set(p.values()) &
                      set(mid.values()))
    assert after["b"] != before["b"]
    assert one_error_line(cli(tmp_path, "restart", "a", "nope", "-c", str(cfg))) == \
        "tui-supervisor: no such service: nope"
    assert state_pids(tmp_path, cfg) == after  # the bad request touched nothing


def test_signal(tmp_path: Path, engines) -> None:
    cfg = write_cfg(tmp_path, svc("a", "sleeper"))
    engines(cfg).wait_out("ready")
    old = wait_pids(tmp_path, cfg, lambda p: "a" in p)["a"]
    r = cli(tmp_path, "signal", "a", "term", "-c", str(cfg))
    assert (r.returncode, r.stdout) == (0, "sent SIGTERM to a\n"), r.stderr
    wait_pids(tmp_path, cfg, lambda p: p.get("a") not in (None, old))  # respawned
    assert not alive(old)
    err = one_error_line(cli(tmp_path, "signal", "a", "BOGUS", "-c", str(cfg)))
    assert err.startswith("tui-supervisor: bad signal: ") and "'BOGUS'" in err
    assert one_error_line(cli(tmp_path, "signal", "nope", "TERM", "-c", str(cfg))) == \
        "tui-supervisor: no such service: nope"


def test_reload(tmp_path: Path, engines) -> None:
    off = "settings: {watch_config: false}\n"  # only the explicit reload here
    cfg = write_cfg(tmp_path, svc("a", "sleeper"))
    cfg.write_text(off + cfg.read_text())
    engines(cfg).wait_out("ready")
    before = wait_pids(tmp_path, cfg, lambda p: "a" in p)
    write_cfg(tmp_path, svc("a", "sleeper") + svc("b", "sleeper"))
    cfg.write_text(off + cfg.read_text())
    r = cli(tmp_path, "reload", "-c", str(cfg))
    assert (r.returncode, r.stdout) == (0, "reloaded: added: b\n"), r.stderr
    after = wait_pids(tmp_path, cfg, lambda p: set(p) == {"a", "b"})
    assert after["a"] == before["a"]
    cfg.write_text("services:\n  a: {command: [x], restart: bogus}\n")
    r = cli(tmp_path, "reload", "-c", str(cfg))
    assert r.returncode == 1
    assert r.stderr.startswith("tui-supervisor: config not reloaded, nothing changed:\n")
    assert "services.a.restart: must be one of" in r.stderr
    status = cli(tmp_path, "status", "--json", "-c", str(cfg))  # still reachable
    assert status.returncode == 0, status.stderr
    assert {s["name"]: s["pid"] for s in json.loads(status.stdout)["services"]} == after


def test_logs_merged_and_prefixed(tmp_path: Path, engines) -> None:
    cfg = write_cfg(tmp_path, svc("count", "counter", "20", extra="    restart: never\n")
                    + svc("s", "sleeper"))
    engines(cfg).wait_out("line 00000019")
    r = cli(tmp_path, "logs", "count", "-n", "3", "-c", str(cfg))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [f"count | line {i:08d} {'x' * 40}" for i in (17, 18, 19)]
    r = cli(tmp_path, "logs", "-c", str(cfg), "-n", "1000")
    lines = r.stdout.splitlines()
    assert any(line.startswith("s     | ready ") for line in lines)
    assert sum(line.startswith("count | line ") for line in lines) >= 20
    assert one_error_line(cli(tmp_path, "logs", "nope", "-c", str(cfg))) == \
        "tui-supervisor: no such service: nope"


def test_logs_follow_across_a_restart(tmp_path: Path, engines) -> None:
    cfg = write_cfg(tmp_path, svc("s", "sleeper") + svc("other", "sleeper"))
    e = engines(cfg)
    e.wait_out("ready", count=2)
    first = wait_pids(tmp_path, cfg, lambda p: len(p) == 2)["s"]
    out_path = tmp_path / "follow.out"
    with open(out_path, "w") as out, open(tmp_path / "follow.err", "w") as err:
        follower = subprocess.Popen([PY, "-m", "tui_supervisor", "logs", "-f", "s",
                                     "-c", str(cfg)], stdout=out, stderr=err,
                                    env=cli_env(tmp_path), cwd=tmp_path)
    try:
        wait_text(out_path, f"s | ready {first}\n")  # history
        assert cli(tmp_path, "restart", "s", "-c", str(cfg)).returncode == 0
        second = wait_pids(tmp_path, cfg, lambda p: p.get("s") not in (None, first))["s"]
        text = wait_text(out_path, f"s | ready {second}\n")  # live, after the restart
        assert text == f"s | ready {first}\ns | ready {second}\n"  # no dupes, no 'other'
        assert e.stop() == 0
        assert follower.wait(20) == 0  # the engine went away: the stream ends
        assert "engine stopped" in (tmp_path / "follow.err").read_text()
    finally:
        if follower.poll() is None:
            follower.send_signal(signal.SIGKILL)
            follower.wait()


def test_run_detach(tmp_path: Path) -> None:
    cfg = write_cfg(tmp_path, svc("a", "sleeper"))
    r = cli(tmp_path, "run", "--headless", "--detach", "-c", str(cfg))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("started (pid ")
    pid = int(r.stdout.split("(pid ")[1].split(")")[0])
    try:
        assert alive(pid)
        status = cli(tmp_path, "status", "--json", "-c", str(cfg))
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["engine"]["pid"] == pid
        again = cli(tmp_path, "run", "--headless", "--detach", "-c", str(cfg))
        assert one_error_line(again) == \
            f"tui-supervisor: already running (pid {pid}) — use attach"
        log = Path(r.stdout.strip().split("output in ")[1])
        wait_text(log, f"(pid {pid}) supervising 1 services")
        wait_text(log, "ready")
        os.kill(pid, signal.SIGTERM)
        wait_until(lambda: not alive(pid), 20, "the detached engine to stop")
        wait_text(log, "all stopped")
    finally:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_refused_peer_is_one_line(tmp_path: Path) -> None:
    """What a user of another uid sees (the engine's refusal, as the client gets it); we
    run as root, whom a real engine never refuses, so a stand-in engine refuses here."""
    import socket
    import threading

    from tui_supervisor.control import protocol as p

    run = tmp_path / "fake-run"
    run.mkdir(mode=0o700)
    cfg = tmp_path / "tst-cli.yaml"
    cfg.write_text(f"settings:\n  runtime_dir: {run}\nservices:\n" + svc("a", "sleeper"))
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(str(run / p.SOCKET_NAME))
    srv.listen()

    def refuse() -> None:
        conn, _ = srv.accept()
        with conn:
            conn.sendall(p.encode(p.error(None, p.PERMISSION_DENIED,
                                          "uid 1000 may not control this engine")))

    t = threading.Thread(target=refuse, daemon=True)
    t.start()
    try:
        r = cli(tmp_path, "status", "-c", str(cfg))
        assert one_error_line(r) == \
            "tui-supervisor: permission denied: uid 1000 may not control this engine"
    finally:
        t.join(10)
        srv.close()


def test_status_rows_format_metrics() -> None:
    from tui_supervisor.control.verbs import (
        fmt_bytes,
        fmt_ratio,
        fmt_seconds,
        status_header,
        status_rows,
    )

    assert [fmt_ratio(x) for x in (None, 1.0, 0.99996, 0.5, 0.123456)] == [
        "-", "100%", "99.99%", "50.00%", "12.34%"]
    assert [fmt_seconds(x) for x in (None, 0.0123, 2.345, 75)] == [
        "-", "12ms", "2.35s", "1m15s"]
    assert [fmt_bytes(x) for x in (None, 512, 1536, 5 << 20, 3 << 30)] == [
        "-", "512B", "1.5K", "5.0M", "3.0G"]
    svc = {"name": "w", "state": "backoff", "reason": "exit code 3", "pid": None,
           "uptime": None, "restarts": 4, "failures": 5,
           "last_exit": {"text": "exit code 3"},
           "reliability": {"availability": 0.75, "mttr": 1.5},
           "resources": {"cpu_percent": 12.34, "rss_bytes": 10 << 20}}
    snap = {"engine": {}, "services": [svc, {**svc, "name": "x", "resources": {}}]}
    assert status_header(snap) == ["NAME", "STATE", "PID", "UPTIME", "CPU", "MEM",
                                   "RESTARTS", "FAILURES", "AVAIL", "MTTR", "LAST EXIT"]
    assert status_rows(snap) == [
        ["w", "backoff (exit code 3)", "-", "-", "12.3%", "10.0M", "4", "5", "75.00%",
         "1.50s", "exit code 3"],
        ["x", "backoff (exit code 3)", "-", "-", "-", "-", "4", "5", "75.00%", "1.50s",
         "exit code 3"]]
    snap["services"] = [{**svc, "resources": {}}]
    assert "CPU" not in status_header(snap) and len(status_rows(snap)[0]) == 9
    snap["services"] = [{**svc, "crash_looping": True}]
    assert status_rows(snap)[0][1] == "crash-loop (exit code 3)"
    # HEALTH once a service has a probe ("-": none, or no process)
    snap["services"] = [{**svc, "resources": {}, "health": "unready",
                         "probes": {"readiness": {"kind": "tcp"}}},
                        {**svc, "resources": {}, "name": "y", "health": None, "probes": {}}]
    assert status_header(snap)[:4] == ["NAME", "STATE", "HEALTH", "PID"]
    assert [r[2] for r in status_rows(snap)] == ["unready", "-"]
