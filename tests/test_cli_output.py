"""What the client verbs print, as a newcomer runs them against a real headless engine:
a refused config in `status`, `-` for what a stopped service uses, stderr marked and
times in `logs`, escape sequences only for a terminal, one line when `logs -f` ends, the
same words from every verb when no engine runs, and a hint when there is no config."""

from __future__ import annotations

import json
import re
import signal
import subprocess
from pathlib import Path

from support import PY, cli, cli_env, one_error_line, svc, wait_text, wait_until, write_cfg

from tui_supervisor.tui.rows import cells

TIME = re.compile(r"^\d\d:\d\d:\d\d ")
# prints a line to stdout, one in red to stderr, then sleeps
NOISY = ("import sys, time; print('plain', flush=True); "
         "print('\\x1b[31mboom\\x1b[0m', file=sys.stderr, flush=True); time.sleep(1000)")


NEVER = "    restart: never\n"


def noisy_cfg(tmp: Path, extra: str = "") -> Path:
    p = tmp / "tst-out.yaml"
    p.write_text(f"settings:\n  sample_interval: 100ms\n{extra}services:\n"
                 f"  noisy:\n    command: [{json.dumps(PY)}, \"-c\", {json.dumps(NOISY)}]\n"
                 "    start_time: 0\n" + svc("done", "crash", "0", extra=NEVER))
    return p


def test_status_shows_a_refused_config(tmp_path: Path, engines) -> None:
    cfg = noisy_cfg(tmp_path)
    e = engines(cfg)
    e.snapshot(lambda s: s["services"][0]["pid"])
    good = cfg.read_text()
    cfg.write_text(good + "  broken: {command: []}\n")
    assert e.cli("reload").returncode == 1
    snap = e.snapshot(lambda s: s["engine"].get("config_error"), what="config_error")
    assert "broken" in snap["engine"]["config_error"]
    out = e.cli("status").stdout
    line = next(x for x in out.splitlines() if x.startswith("config error"))
    assert "the engine runs the last good config" in line and "broken" in line, out
    cfg.write_text(good)
    assert e.cli("reload").returncode == 0
    e.snapshot(lambda s: s["engine"].get("config_error") is None, what="error cleared")
    assert "config error" not in e.cli("status").stdout


def test_a_stopped_service_uses_nothing(tmp_path: Path, engines) -> None:
    e = engines(noisy_cfg(tmp_path))
    # sampled once it has stopped: the engine's view says 0 processes
    e.snapshot(lambda s: s["services"][1]["state"] == "completed" and
               (s["services"][1].get("resources") or {}).get("procs") == 0, what="sampled")
    lines = e.cli("status").stdout.splitlines()

    def cols(start: str) -> list[str]:  # (cells are 2+ spaces apart; a state has spaces)
        return re.split(r"\s{2,}", next(x for x in lines if x.startswith(start)).strip())

    cpu = cols("NAME").index("CPU")
    assert cols("done")[cpu:cpu + 2] == ["-", "-"], lines
    assert cols("noisy")[cpu].endswith("%"), lines  # a running one: measured
    # the dashboard's table says the same
    shown = cells({"name": "done", "state": "completed",
                   "resources": {"procs": 0, "cpu_percent": 0.0, "rss_bytes": 0}})
    assert (shown["cpu"], shown["mem"]) == ("-", "-")


def test_logs_marks_stderr_and_strips_escapes(tmp_path: Path, engines) -> None:
    e = engines(noisy_cfg(tmp_path))
    e.wait_out("boom")
    wait_until(lambda: "boom" in e.cli("logs", "noisy").stdout, 20, "boom in logs")
    # (two pipes: which line the engine read first is not fixed)
    assert sorted(e.cli("logs", "noisy").stdout.splitlines()) == [
        "noisy | ! boom", "noisy | plain"]
    stamped = e.cli("logs", "noisy", "--timestamps").stdout.splitlines()
    assert len(stamped) == 2 and all(TIME.match(x) for x in stamped), stamped
    assert sorted(x[9:] for x in stamped) == ["noisy | ! boom", "noisy | plain"]
    assert "\x1b" not in e.out and "! boom" in e.out  # the headless console, on a file


def test_logs_follow_says_one_line_when_the_engine_stops(tmp_path: Path, engines) -> None:
    cfg = noisy_cfg(tmp_path)
    e = engines(cfg)
    e.wait_out("boom")
    out, err = tmp_path / "follow.out", tmp_path / "follow.err"
    with open(out, "w") as o, open(err, "w") as er:
        follower = subprocess.Popen([PY, "-m", "tui_supervisor", "logs", "-f", "noisy",
                                     "-c", str(cfg)], stdout=o, stderr=er,
                                    env=cli_env(tmp_path), cwd=tmp_path)
    try:
        wait_text(out, "boom")
        assert e.stop() == 0
        assert follower.wait(30) == 0
        lines = err.read_text().splitlines()
        assert len(lines) == 1 and re.fullmatch(
            r"tui-supervisor: engine stopped \(\d\d:\d\d:\d\d\)", lines[0]), lines
    finally:
        if follower.poll() is None:
            follower.send_signal(signal.SIGKILL)
            follower.wait()


def test_no_engine_reads_the_same_from_every_verb(tmp_path: Path) -> None:
    cfg = write_cfg(tmp_path, svc("a", "sleeper"))
    said = (f"tui-supervisor: no engine running for {cfg} — start it with "
            f"`tui-supervisor run --headless -c {cfg}`")
    for verb in (["status"], ["start", "a"], ["restart", "a"], ["reopen-logs"],
                 ["logs", "-f"], ["attach"]):
        assert one_error_line(cli(tmp_path, *verb, "-c", str(cfg))) == said, verb


def test_status_without_a_config_says_how_to_name_one(tmp_path: Path) -> None:
    for verb in (["status"], ["logs"], ["check"], ["run", "--headless"]):
        line = one_error_line(cli(tmp_path, *verb))
        assert "-c FILE" in line and "./tui-supervisor.yaml" in line, (verb, line)
