"""A run-once job, as a user writes one, in a real headless engine: `sh -c 'echo done'`
with `restart: never` or `on-failure` ends `completed` (not a failed start, not an
incident, not down), `start` runs it again, a config reload does not."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from support import Headless, free_port, kill_marked, wait_until

JOBS = """\
settings: {{metrics_listen: '127.0.0.1:{port}'}}
services:
  migrate:
    command: "sh -c 'echo done'"
    restart: never
  seed:
    command: "sh -c 'echo {seed}'"
    restart: on-failure
  forgot:
    command: "sh -c 'echo oops'"
"""


def by_name(snap: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in snap["services"]}


def metrics(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of /metrics as {(name, labels): value}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def k(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return name, frozenset(labels.items())


def test_a_job_that_exits_0_at_once_is_completed(tmp_path: Path) -> None:
    port = free_port()
    cfg = tmp_path / "tst-jobs.yaml"
    cfg.write_text(JOBS.format(port=port, seed="seeded"))
    e = Headless(tmp_path, cfg)
    try:
        def done(snap: dict[str, Any]) -> bool:
            s = by_name(snap)
            return s["migrate"]["state"] == s["seed"]["state"] == "completed"

        first = by_name(e.snapshot(done, what="both jobs completed"))
        prom = metrics(port)
        time.sleep(2.0)  # downtime would grow by ~2 s meanwhile
        later = by_name(e.snapshot(timeout=0))
        prom_later = metrics(port)
        for name in ("migrate", "seed"):
            s, rel = later[name], later[name]["reliability"]
            assert (s["state"], s["failures"], s["wanted"], s["spawns"]) == \
                ("completed", 0, False, 1), s
            assert s["reason"] == "exit code 0" and s["last_exit"]["code"] == 0
            assert not s.get("incidents"), s["incidents"]  # no incident
            assert rel["availability"] is None and rel["failures"] == 0, rel  # never up
            assert rel["downtime"] == first[name]["reliability"]["downtime"] == 0.0
            down = k("tuisup_service_downtime_seconds", service=name)
            assert prom.get(down, 0.0) == prom_later.get(down, 0.0) == 0.0
            assert prom[k("tuisup_service_state", service=name, state="completed")] == 1
            assert prom[k("tuisup_service_failures_total", service=name)] == 0
        # under the default `restart: always` it is a failed start, and the engine says
        # how to write a job instead
        e.wait_out("a run-once job wants restart: never or on-failure")
        assert by_name(e.snapshot(timeout=0))["forgot"]["failures"] >= 1

        status = e.cli("status")  # 3: `forgot` is wanted and not up (a job done is up)
        assert status.returncode == 3, status.stderr
        assert any(line.split()[:2] == ["migrate", "completed"]
                   for line in status.stdout.splitlines()), status.stdout

        # `start` runs it again
        r = e.cli("start", "migrate")
        assert r.returncode == 0, r.stderr
        e.snapshot(lambda s: by_name(s)["migrate"]["spawns"] == 2 and
                   by_name(s)["migrate"]["state"] == "completed", what="migrate ran again")

        # a config reload leaves a completed job alone, changed or not
        cfg.write_text(JOBS.format(port=port, seed="seeded again"))
        r = e.cli("reload")
        assert r.returncode == 0, r.stderr
        after = by_name(e.snapshot(timeout=0))
        assert (after["migrate"]["spawns"], after["seed"]["spawns"]) == (2, 1)
        assert after["seed"]["state"] == "completed"
        assert after["seed"]["command"] == ["sh", "-c", "echo seeded again"]
        assert e.out.count("done\n") == 2, e.out  # (no rerun shows up late)
    finally:
        assert e.stop() == 0
        kill_marked()


def test_a_job_that_fails_is_still_a_failure(tmp_path: Path) -> None:
    """The other side: exit 1 under `never` is `exited`, a failure, still wanted (down)."""
    cfg = tmp_path / "tst-fail.yaml"
    cfg.write_text("services:\n  migrate: {command: \"sh -c 'exit 1'\", restart: never}\n")
    e = Headless(tmp_path, cfg)
    try:
        s = by_name(e.snapshot(lambda s: by_name(s)["migrate"]["state"] == "exited"))
        m = s["migrate"]
        assert (m["failures"], m["wanted"], m["incidents"]["count"]) == (1, True, 1)
        wait_until(lambda: by_name(e.snapshot(timeout=0))["migrate"]["reliability"]
                   ["downtime"] > m["reliability"]["downtime"], 10, "downtime to grow")
    finally:
        assert e.stop() == 0
        kill_marked()
