"""`tui-supervisor scale`, `restart --rolling` and group names on the command line,
against a real engine process."""

from __future__ import annotations

import subprocess
from pathlib import Path

from support import PY, cli, cli_env, svc, terminate, wait_pids, wait_until, write_cfg


def test_scale_restart_rolling_and_group_names(tmp_path: Path, engines) -> None:
    cfg = write_cfg(tmp_path, svc("web", "sleeper", extra="    replicas: 2\n")
                    + svc("solo", "sleeper"))
    engines(cfg).wait_out("ready", count=3)
    first = wait_pids(tmp_path, cfg, lambda p: len(p) == 3)
    r = cli(tmp_path, "scale", "web", "4", "-c", str(cfg))
    assert (r.returncode, r.stdout) == (0, "web-2: started\nweb-3: started\n"), r.stderr
    four = wait_pids(tmp_path, cfg, lambda p: len(p) == 5)
    assert {k: four[k] for k in first} == first
    r = cli(tmp_path, "scale", "web", "3", "-c", str(cfg))
    assert (r.returncode, r.stdout) == (0, "web-3: stopped\n"), r.stderr
    r = cli(tmp_path, "status", "web", "-c", str(cfg))
    names = [line.split()[0] for line in r.stdout.splitlines()[2:] if line.strip()]
    assert r.returncode == 0 and names[-3:] == ["web-0", "web-1", "web-2"], r.stdout
    assert "solo" not in names
    r = cli(tmp_path, "restart", "web", "--rolling", "-c", str(cfg))
    assert (r.returncode, r.stdout) == (
        0, "web-0: restarted\nweb-1: restarted\nweb-2: restarted\n"), r.stderr
    after = wait_pids(tmp_path, cfg, lambda p: len(p) == 4 and all(
        p[f"web-{i}"] != four[f"web-{i}"] for i in range(3)))
    assert after["solo"] == first["solo"]
    r = cli(tmp_path, "scale", "solo", "2", "-c", str(cfg))
    assert r.returncode == 1 and r.stderr == (
        "tui-supervisor: cannot scale solo: solo has no replicas: (only a service with"
        " replicas: N can be scaled)\n")
    r = cli(tmp_path, "scale", "nope", "2", "-c", str(cfg))
    assert r.returncode == 1 and "no such service: nope" in r.stderr


def test_logs_follow_a_group(tmp_path: Path, engines) -> None:
    """Before: `logs -f web` said `no such service: web` (exit 1)."""
    cfg = write_cfg(tmp_path, svc("web", "sleeper", extra="    replicas: 2\n")
                    + svc("solo", "sleeper"))
    engines(cfg).wait_out("ready", count=3)
    out = tmp_path / "follow.out"
    with open(out, "wb") as f:
        p = subprocess.Popen([PY, "-m", "tui_supervisor", "logs", "-f", "web", "-c", str(cfg)],
                             stdout=f, stderr=subprocess.STDOUT, env=cli_env(tmp_path),
                             cwd=tmp_path)
    try:
        def lines() -> list[str]:
            return [x.split(" | ")[0].strip() for x in out.read_text().splitlines()]

        wait_until(lambda: sorted(lines()) == ["web-0", "web-1"], 30,
                   lambda: f"both copies' history, got {out.read_text()!r}")
        r = cli(tmp_path, "restart", "web-1", "solo", "-c", str(cfg))
        assert r.returncode == 0, r.stderr
        wait_until(lambda: lines().count("web-1") == 2, 30,
                   lambda: f"web-1's new line, got {out.read_text()!r}")
        assert "solo" not in lines() and p.poll() is None
    finally:
        terminate(p)
