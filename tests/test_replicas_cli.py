"""`tui-supervisor scale`, `restart --rolling` and group names on the command line,
against a real engine process."""

from __future__ import annotations

from pathlib import Path

from support import cli, svc, wait_pids, write_cfg


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
