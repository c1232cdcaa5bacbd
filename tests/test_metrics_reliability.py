"""Availability, downtime, MTTR, MTBF on synthetic timelines: exact numbers."""

from __future__ import annotations

import pytest

from tui_supervisor.metrics.reliability import Reliability


def test_a_service_that_never_failed() -> None:
    r = Reliability()
    r.set_wanted(0, True)
    assert r.snapshot(0.5)["availability"] is None  # starting: neither up nor down yet
    r.set_up(1, True)  # 1 s starting: a start somebody asked for is not downtime
    s = r.snapshot(101)
    assert s["availability"] == 1.0 and s["downtime"] == 0
    assert s["up_time"] == pytest.approx(100) and s["wanted_time"] == pytest.approx(101)
    assert s["failures"] == 0 and s["mttr"] is None and s["mtbf"] is None


def test_a_service_that_never_starts() -> None:
    r = Reliability()
    r.set_wanted(0, True)
    r.failure(0.5)          # failed start: down from here
    r.failure(1.5)          # and again, in the same outage
    s = r.snapshot(10)
    assert s["availability"] == 0.0 and s["downtime"] == pytest.approx(9.5)
    assert s["outage_open_since"] == 0.5 and s["mttr"] is None and s["failures"] == 2


def test_crash_backoff_recovery() -> None:
    r = Reliability()
    r.set_wanted(0, True)
    r.set_up(0, True)
    r.failure(100)          # crash after 100 s up
    r.failure(100.5)        # the respawn fails to start: same outage
    r.set_up(103, True)     # running again: outage 100 -> 103
    r.failure(203)          # second crash
    r.set_up(204, True)     # outage 203 -> 204
    s = r.snapshot(304)
    assert s["failures"] == 3
    assert s["mttr"] == pytest.approx((3 + 1) / 2)
    assert s["up_time"] == pytest.approx(100 + 100 + 100)
    assert s["downtime"] == pytest.approx(4)
    assert s["availability"] == pytest.approx(300 / 304)
    assert s["mtbf"] == pytest.approx(300 / 3)
    assert s["outage_open_since"] is None
    # the counters behind MTTR over any window: increase(repair_time) / increase(outages)
    assert (s["outages"], s["repair_time"]) == (2, pytest.approx(3 + 1))
    r.failure(404)          # an open outage is in neither counter yet
    s2 = r.snapshot(410)
    assert (s2["outages"], s2["repair_time"]) == (2, pytest.approx(4))
    r.set_up(410, True)     # it recovers after 6 s: both counters grow together
    s3 = r.snapshot(420)
    assert (s3["repair_time"] - s["repair_time"]) / (s3["outages"] - s["outages"]) == 6


def test_open_outage_is_downtime_not_mttr() -> None:
    r = Reliability()
    r.set_wanted(0, True)
    r.set_up(0, True)
    r.failure(50)           # then backoff / fatal: still down at 80
    s = r.snapshot(80)
    assert s["mttr"] is None and s["outage_open_since"] == 50
    assert s["downtime"] == pytest.approx(30)
    assert s["availability"] == pytest.approx(50 / 80)


def test_operator_stop_is_neither_failure_nor_downtime() -> None:
    r = Reliability()
    r.set_wanted(0, True)
    r.set_up(0, True)
    r.set_up(10, False)     # operator stop: not up ...
    r.set_wanted(10, False)  # ... and not wanted
    r.set_wanted(100, True)
    r.set_up(100, True)
    s = r.snapshot(110)
    assert s["failures"] == 0 and s["downtime"] == pytest.approx(0)
    assert s["availability"] == pytest.approx(1.0)


def test_outage_ended_by_an_operator_stop_never_recovers() -> None:
    r = Reliability()
    r.set_wanted(0, True)
    r.set_up(0, True)
    r.failure(10)
    r.set_wanted(15, False)  # gave up on it by hand
    r.set_wanted(20, True)
    r.set_up(21, True)
    s = r.snapshot(30)
    assert s["mttr"] is None and s["failures"] == 1
    assert s["downtime"] == pytest.approx(5)  # 10 -> 15; the start at 20 is not an outage
    assert s["availability"] == pytest.approx((10 + 9) / (10 + 9 + 5))


def test_rolling_window() -> None:
    r = Reliability(window=100)
    r.set_wanted(0, True)
    r.set_up(0, True)
    r.failure(10)
    r.set_up(30, True)      # outage of 20 s, long ago
    r.failure(250)
    r.set_up(252, True)     # outage of 2 s, inside the window
    s = r.snapshot(300)     # window [200, 300]
    assert s["mttr"] == pytest.approx((20 + 2) / 2)
    assert s["mttr_window"] == pytest.approx(2)
    assert s["failures_window"] == 1 and s["failures"] == 2
    assert s["availability_window"] == pytest.approx(98 / 100)
    assert s["downtime_window"] == pytest.approx(2)
    assert s["availability"] == pytest.approx((300 - 22) / 300)


def test_survives_a_handoff_as_json() -> None:
    import json

    r = Reliability(window=100)
    r.set_wanted(0, True)
    r.set_up(0, True)
    r.failure(10)
    r.set_up(30, True)
    r.failure(250)  # an outage still open at the handoff
    copy = Reliability.from_dict(json.loads(json.dumps(r.to_dict())))
    assert copy.snapshot(260) == r.snapshot(260)
    copy.set_up(262, True)
    assert copy.snapshot(300)["mttr"] == pytest.approx((20 + 12) / 2)


async def test_collector_on_a_real_engine(engine_factory, tmp_path) -> None:
    """Crash a real service: the snapshot shows the failure, a recovered outage, MTTR and
    an availability below 1; a handoff keeps them."""
    import json
    import os
    import signal

    from conftest import child, make_config, spec, wait_for

    from tui_supervisor.engine.supervisor import Supervisor
    from tui_supervisor.metrics.collector import ReliabilityCollector

    cfg = make_config(tmp_path, spec("s", child("sleeper"), tmp_path))
    sup = Supervisor(cfg)
    ReliabilityCollector.attach(sup)
    await sup.open()
    try:
        svc = sup.services["s"]
        pid = await wait_for(lambda: svc.ring.next_offset > 0 and svc.pid)
        os.kill(pid, signal.SIGKILL)
        await wait_for(lambda: svc.pid not in (None, pid) and svc.state.value == "running")
        rel = (await sup.snapshot())["services"][0]["reliability"]
        assert rel["failures"] == 1 and rel["outage_open_since"] is None
        assert rel["mttr"] is not None and 0 <= rel["mttr"] < 5
        assert 0 < rel["availability"] < 1 and rel["downtime"] > 0
        record = json.loads(json.dumps(sup.detach()))
        second = Supervisor(cfg)
        ReliabilityCollector.attach(second)
        await second.open(adopt=record)
        rel2 = (await second.snapshot())["services"][0]["reliability"]
        assert rel2["failures"] == 1 and rel2["mttr"] == rel["mttr"]
        await second.close()
    finally:
        if not sup._closed:
            await sup.close()


def test_a_long_crash_loop_costs_bounded_memory_and_keeps_the_sums() -> None:
    """100,000 failures and recoveries inside one window (a crash loop at hundreds a
    second): each series keeps at most MAX_RECENT entries, and the window's figures are
    still exact (merged entries keep their sums)."""
    from tui_supervisor.metrics.reliability import MAX_RECENT

    r = Reliability(window=1e9)
    r.set_wanted(0, True)
    t = 0.0
    for _ in range(100_000):
        r.set_up(t, True)
        t += 0.003
        r.failure(t)
        t += 0.001
    s = r.snapshot(t)
    assert max(len(r.failure_times), len(r._outages), len(r._up.recent or ()),
               len(r._down.recent or ())) <= MAX_RECENT
    assert s["failures_window"] == s["failures"] == 100_000
    assert s["downtime_window"] == pytest.approx(s["downtime"]) == pytest.approx(100.0)
    assert s["availability_window"] == pytest.approx(s["availability"]) == pytest.approx(0.75)
    assert s["mttr_window"] == pytest.approx(s["mttr"]) == pytest.approx(0.001)


def test_an_older_engines_record_is_read() -> None:
    old = {"window": 100, "wanted": [10.0, 0.0, [[0.0, 10.0]]], "up": [5.0, None,
           [[0.0, 5.0]]], "down": [3.0, None, [[5.0, 8.0]]], "failures": 1,
           "failure_times": [5.0], "outage_start": None, "outages": [[5.0, 8.0]],
           "outage_total": 3.0, "outage_count": 1}
    s = Reliability.from_dict(old).snapshot(10)
    assert s["failures_window"] == 1 and s["mttr_window"] == pytest.approx(3.0)
    assert s["downtime_window"] == pytest.approx(3.0)
