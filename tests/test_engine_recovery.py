"""Services that recover by themselves: a crash loop is marked and retried at the backoff
cap, not given up on (unless `crash_loop.give_up`). Real processes, real engines."""

from __future__ import annotations

import json
import time
from pathlib import Path

from conftest import child, spec
from support import cli, svc, wait_for, wait_until, write_cfg

from tui_supervisor.config.schema import BackoffSpec, CrashLoopSpec
from tui_supervisor.engine.events import AnyEvent, Exited, Notice, StateChanged, Topic
from tui_supervisor.metrics.collector import ReliabilityCollector

SHORT_CAP = BackoffSpec(initial=0.05, factor=2, max=0.5, jitter=0.0, reset_after=1.0)
"""The default backoff shape with a cap short enough for a test."""


async def test_a_service_that_fails_until_its_dependency_is_up_recovers_by_itself(
        engine_factory, tmp_path: Path) -> None:
    """Fails (exit 3) until a file exists; the default crash-loop rule (5 in 60 s) is hit
    in about a second, and it is retried at the cap until the file appears: then it runs,
    and once up `start_time + reset_after` it is no longer marked. MTTR counts the wait."""
    flag = tmp_path / "db-is-up"
    metrics = ReliabilityCollector()
    sup = await engine_factory(spec("w", child("needs", str(flag)), tmp_path, start_time=0.2,
                                    backoff=SHORT_CAP, crash_loop=CrashLoopSpec()),
                               extensions=[metrics])
    svc_ = sup.services["w"]
    seen: list[AnyEvent] = []
    sup.bus.add_listener(seen.append)
    await wait_for(lambda: svc_.crash_looping, what="the crash loop to be detected")
    detected = time.time()
    failures = svc_.failures
    await wait_for(lambda: svc_.failures >= failures + 2, what="retries after detection")
    assert svc_.state.value in ("backoff", "starting") and svc_.crash_looping
    flag.touch()  # the database is up
    await wait_for(lambda: svc_.state.value == "running", what="running again, unaided")
    await wait_for(lambda: not svc_.crash_looping, what="the mark gone once it stayed up")
    assert svc_.state.value == "running" and svc_.consecutive == 0

    looping = [e for e in seen if isinstance(e, Notice) and e.topic == Topic.CRASH_LOOP]
    assert [(n.level, (n.data or {}).get("crash_looping")) for n in looping] == [
        ("error", True), ("info", False)]  # each said once: detected, recovered
    backoffs = [e for e in seen if isinstance(e, StateChanged) and e.new == "backoff"]
    marked = [i for i, e in enumerate(backoffs) if e.crash_looping]
    assert len(marked) >= 3 and marked == list(range(marked[0], len(backoffs)))
    assert backoffs[marked[0]].reason.startswith("crash loop: 5 failures in 60s")
    assert all(backoffs[i].reason.endswith("restarting in 0.50s") for i in marked)  # cap
    assert not any(isinstance(e, StateChanged) and e.new == "fatal" for e in seen)
    up_at = next(e.t for e in seen if isinstance(e, StateChanged) and e.new == "running")
    rel = metrics.service_view("w")
    assert rel["outage_open_since"] is None and rel["mttr"] is not None
    assert rel["mttr"] >= up_at - detected - 0.01  # the outage lasted the whole wait
    failed = [e for e in seen if isinstance(e, Exited) and e.failure]
    assert rel["failures"] == svc_.failures and len(failed) == svc_.failures


def test_the_default_config_keeps_retrying_after_a_crash_loop(tmp_path: Path,
                                                                 engines) -> None:
    """No backoff or crash_loop settings at all: the crash loop is marked, shown by
    `status`, and the next attempt is scheduled at the default cap (30 s), not fatal."""
    cfg = write_cfg(tmp_path, svc("beta", "crash", "3"))
    e = engines(cfg)

    def status() -> dict:
        r = cli(tmp_path, "status", "--json", "-c", str(cfg))
        return json.loads(r.stdout)["services"][0] if r.returncode in (0, 3) else {}

    beta = wait_until(lambda: (s := status()).get("crash_looping") and s, 20,
                      "beta marked crash-looping")
    assert beta["state"] == "backoff" and beta["wanted"]
    assert beta["reason"].startswith("crash loop: 5 failures in 60s (last: exit code 3)")
    assert 27.0 - 1.0 <= beta["backoff_remaining"] <= 33.0  # the cap, +-10% jitter
    assert beta["crash_loop"] == {"max_failures": 5, "window": 60.0, "give_up": False}
    table = cli(tmp_path, "status", "-c", str(cfg)).stdout
    row = next(line for line in table.splitlines() if line.startswith("beta"))
    assert row.split()[1] == "crash-loop"
    assert "(crash loop: 5 failures in 60s" in row
    assert e.proc.poll() is None
