"""Resource guards: `limits.memory` restarts a service whose tree goes over it (checked at
every sample; a failure with its reason in the incident), `rlimits` are set in the
process before it runs. Real engines (`run --headless`), real memory, real limits."""

from __future__ import annotations

import resource
from pathlib import Path

from support import Headless, cli, one_error_line, svc, write_cfg

SETTINGS = "settings:\n  sample_interval: 0.2s\n"


def config(tmp: Path, services: str) -> Path:
    p = write_cfg(tmp, services)
    p.write_text(SETTINGS + p.read_text())
    return p


def test_memory_limit_restarts_the_service_and_says_why(tmp_path: Path) -> None:
    cfg = config(tmp_path, svc("hog", "hog", "0", "grow", extra="    limits: {memory: 64MB}\n")
                 + svc("calm", "hog", "16", extra="    limits: {memory: 256MB}\n"))
    e = Headless(tmp_path, cfg)
    try:
        snap = e.snapshot(lambda s: s["services"][0]["failures"] >= 2, 60,
                          "the hog restarted twice")
        hog, calm = snap["services"]
        assert hog["spawns"] >= 2 and calm["failures"] == 0 and calm["spawns"] == 1
        assert hog["state"] in ("running", "starting", "backoff"), hog
        r = e.cli("incidents", "hog", "--json")
        assert r.returncode == 0, r.stderr
        assert "memory limit 64 MB exceeded: " in r.stdout
        e.wait_out("memory limit 64 MB exceeded")
    finally:
        e.stop()


def test_rlimits_are_set_before_the_program_runs(tmp_path: Path) -> None:
    code = ("import resource as r; print('limits', r.getrlimit(r.RLIMIT_NOFILE), "
            "r.getrlimit(r.RLIMIT_CORE), flush=True); import time; time.sleep(100)")
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    soft = min(1000, hard)
    from support import PY
    cfg = config(tmp_path, f"  lim:\n    command: [{PY}, -c, \"{code}\"]\n    start_time: 0\n"
                 f"    rlimits: {{nofile: '{soft}:{hard}', core: 0}}\n")
    e = Headless(tmp_path, cfg)
    try:
        out = e.wait_out("limits (")
        assert f"limits ({soft}, {hard}) (0, 0)" in out, out
    finally:
        e.stop()


def test_limit_settings_are_checked_at_load(tmp_path: Path) -> None:
    bad = [
        ("    limits: {memory: 10KB}\n", "services.a.limits.memory: must be at least 1MB"),
        ("    rlimits: {nofiles: 10}\n", "services.a.rlimits: unknown key 'nofiles'"),
        ("    rlimits: {nofile: '10:5'}\n", "services.a.rlimits.nofile: soft limit above"),
        ("    rlimits: {core: -1}\n", "services.a.rlimits.core: expected a number"),
    ]
    for extra, want in bad:
        cfg = write_cfg(tmp_path, svc("a", "sleeper", extra=extra))
        r = cli(tmp_path, "check", "-c", str(cfg))
        assert r.returncode == 1, (extra, r.stdout, r.stderr)
        assert want in one_error_line(r), (extra, r.stderr)
    cfg = write_cfg(tmp_path, svc("a", "sleeper", extra="    limits: {memory: 64MB}\n"))
    cfg.write_text("settings:\n  sample_interval: 0\n" + cfg.read_text())
    r = cli(tmp_path, "check", "-c", str(cfg))
    assert "services.a.limits.memory: needs resource sampling" in one_error_line(r)


def _memory_controller() -> str | None:
    """Why the kernel's memory.max cannot be tested here, or None if it can."""
    from tui_supervisor.engine.cgroups import Cgroups

    cg, why = Cgroups.detect("auto", "tst-probe-memory")
    if cg is None:
        return f"no cgroups for the engine here: {why}"
    try:
        return None if cg.memory_controller() else \
            "the memory controller is not available to the engine's cgroup (cgroup v1 or hybrid)"
    finally:
        cg.close()


def test_memory_max_in_the_cgroup_kills_and_says_why(tmp_path: Path) -> None:
    import pytest

    why = _memory_controller()
    if why:
        pytest.skip(why)
    # sampling every minute: the kernel acts long before the sampler's check would
    cfg = write_cfg(tmp_path, svc("hog", "hog", "0", "grow", extra="    limits: {memory: 64MB}\n"))
    cfg.write_text("settings:\n  sample_interval: 60s\n" + cfg.read_text())
    e = Headless(tmp_path, cfg)
    try:
        e.snapshot(lambda s: s["services"][0]["failures"] >= 1, 60, "the hog killed")
        r = e.cli("incidents", "hog", "--json")
        assert "memory limit 64 MB reached: killed by the kernel" in r.stdout, r.stdout
    finally:
        e.stop()
