"""The command line, run as a user would: real engine processes, real signals."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

from support import (
    PY,
    ROOT,
    alive,
    cli,
    cli_env,
    marked_pids,
    state_pids,
    svc,
    wait_pids,
    write_cfg,
)


def test_version() -> None:
    out = subprocess.run([PY, "-m", "tui_supervisor", "--version"], capture_output=True,
                         text=True, check=True, cwd=ROOT)
    assert out.stdout.startswith("tui-supervisor ")


def test_check_example_ok(tmp_path: Path) -> None:
    r = cli(tmp_path, "check", "-c", str(ROOT / "config.example.yaml"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().endswith("ok (5 services)")


def test_packaged_demo_is_the_example() -> None:
    from tui_supervisor.demo import demo_config_path

    assert demo_config_path().read_bytes() == (ROOT / "config.example.yaml").read_bytes()


def test_check_errors_are_lines_not_tracebacks(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("services:\n  web:\n    comand: [x]\n    restart: sometimes\n")
    r = cli(tmp_path, "check", "-c", str(cfg))
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) >= 2 and all(line.startswith(f"{cfg}:") for line in lines)
    missing = cli(tmp_path, "check", "-c", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 1 and len(missing.stderr.strip().splitlines()) == 1
    assert "Traceback" not in missing.stderr


def test_example_runs_for_3s_and_stops_clean(tmp_path: Path, engines) -> None:
    e = engines(ROOT / "config.example.yaml")
    out = e.wait_out("chatty", count=3)
    time.sleep(3)  # the thing tested: the example runs for 3 s
    # the worker waits for web's readiness and the migration, then starts
    e.wait_out(f"{'worker'.ljust(10)} * starting pid", timeout=30)
    assert e.stop() == 0
    out = e.out
    for name in ("web", "migrate", "worker", "chatty", "leaky"):
        assert f"{name.ljust(10)} * starting pid" in out, out
    assert f"{'worker'.ljust(10)} * waiting" in out, out
    assert out.index("migrate    * completed") < out.index("worker     * starting pid"), out
    assert "request 1 GET" in out  # chatty's output, name-prefixed
    assert "all stopped" in out
    assert "Traceback" not in out
    assert not marked_pids("config.example-")


def test_second_engine_on_same_config_refused(tmp_path: Path, engines) -> None:
    cfg = write_cfg(tmp_path, svc("s", "sleeper"))
    e = engines(cfg)
    e.wait_out("ready")
    r = cli(tmp_path, "run", "--headless", "-c", str(cfg))
    assert r.returncode == 1
    assert r.stderr.strip() == f"tui-supervisor: already running (pid {e.proc.pid}) — use attach"


def test_sighup_reloads_config_by_diff(tmp_path: Path, engines) -> None:
    cfg = write_cfg(tmp_path, svc("a", "sleeper") + svc("b", "sleeper") + svc("c", "sleeper"))
    e = engines(cfg)
    before = wait_pids(tmp_path, cfg, lambda p: len(p) == 3)
    write_cfg(tmp_path, svc("a", "sleeper") + svc("b", "sleeper", "changed")
              + svc("d", "sleeper"))
    e.proc.send_signal(signal.SIGHUP)
    e.wait_out("config reloaded")
    after = wait_pids(tmp_path, cfg, lambda p: set(p) == {"a", "b", "d"})
    assert after["a"] == before["a"]
    assert after["b"] != before["b"] and not alive(before["b"])
    assert not alive(before["c"])
    # an invalid edit changes nothing
    good = cfg.read_text()
    tmp = cfg.with_suffix(".tmp")  # atomically: the file watcher may read it mid-write
    tmp.write_text("services:\n  a: {command: [x], restart: bogus}\n")
    tmp.replace(cfg)
    e.proc.send_signal(signal.SIGHUP)
    e.wait_out("config not reloaded")
    assert "tst-cli.yaml:2:30: services.a.restart: must be one of" in e.out
    time.sleep(0.3)  # the thing tested: nothing changes meanwhile
    cfg.write_text(good)
    assert state_pids(tmp_path, cfg) == after
    assert e.stop() == 0


def test_hard_killed_engine_leftovers_are_stopped_never_duplicated(tmp_path: Path,
                                                                   engines) -> None:
    cfg = write_cfg(tmp_path, svc("a", "sleeper") + svc("b", "sleeper", "ignore-term",
                                                     extra="    stop: {timeout: 1s}\n"))
    first = engines(cfg, "first")
    old = wait_pids(tmp_path, cfg, lambda p: len(p) == 2)
    first.wait_out("ready", count=2)
    first.stop(signal.SIGKILL)
    assert all(alive(p) for p in old.values())  # orphaned, still running
    second = engines(cfg, "second")
    out = second.wait_out("leftover processes")
    assert f"pid {first.proc.pid} of this config died leaving 2 processes running" in out
    new = wait_pids(tmp_path, cfg,
                    lambda p: len(p) == 2 and not set(p.values()) & set(old.values()))
    assert not any(alive(p) for p in old.values())
    second.wait_out("ready", count=2)
    from tui_supervisor.config import load_config

    cid = load_config(cfg, environ=cli_env(tmp_path)).config_id
    owners = sorted(marked_pids(cid + "/").values())
    assert owners == [f"{cid}/a", f"{cid}/b"], "a service runs twice"
    assert set(new.values()) == set(marked_pids(cid + "/"))
    assert second.stop() == 0
    assert not marked_pids(cid + "/")


def test_another_engine_of_the_same_file_is_not_a_dead_predecessor(tmp_path: Path,
                                                                    engines) -> None:
    """Two engines of one config file with their own runtime and state dirs (the demo in
    two terminals): the second's start-up found the first's services by their marker and
    stopped them as "leftovers of an engine that died". Only processes of its own runtime
    dir can be its predecessor's."""
    cfg = write_cfg(tmp_path, svc("a", "sleeper"))
    first = engines(cfg, "first")
    first.wait_out("ready")
    pid = wait_pids(tmp_path, cfg, lambda p: len(p) == 1)["a"]
    second = engines(cfg, "second", XDG_STATE_HOME=str(tmp_path / "other-state"),
                     XDG_RUNTIME_DIR=str(tmp_path / "other-run"))
    second.wait_out("ready")
    time.sleep(0.5)  # (the thing tested: nothing happens to the first's service)
    assert "leftover" not in second.out and "died leaving" not in second.out, second.out
    assert alive(pid) and alive(first.proc.pid)
    assert second.stop() == 0
    assert alive(pid) and state_pids(tmp_path, cfg) == {"a": pid}, (first.out, second.out)
    assert first.stop() == 0
    assert not alive(pid)


def test_second_interrupt_kills_at_once(tmp_path: Path, engines) -> None:
    cfg = write_cfg(tmp_path, svc("stubborn", "sleeper", "ignore-term",
                                  extra="    stop: {timeout: 60s}\n"))
    e = engines(cfg)
    e.wait_out("ready")
    e.proc.send_signal(signal.SIGINT)
    e.wait_out("stubborn   * stopping")
    e.proc.send_signal(signal.SIGINT)
    assert e.proc.wait(20) == 0  # well before the 60 s stop timeout
    assert "stopping now: SIGKILL to every service" in e.out
    assert "all stopped" in e.out


def test_unusable_log_dir_is_one_line(tmp_path: Path) -> None:
    cfg = tmp_path / "tst-badlog.yaml"
    cfg.write_text("settings: {log_dir: /proc/no-such-dir}\nservices:\n  a: {command: [x]}\n")
    r = cli(tmp_path, "run", "--headless", "-c", str(cfg))
    assert r.returncode == 1
    assert r.stderr.strip() == "tui-supervisor: cannot start: /proc/no-such-dir: " \
        "No such file or directory"
