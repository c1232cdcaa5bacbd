"""depends_on in a real engine (in process, real processes): start order and waits,
run-time take-down and return, timeouts, stop order, the verbs, and no duplicate spawn
when a restart races a wait (process-compose #347, #530)."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

from conftest import alive, child, spec, wait_for

from tui_supervisor.config.schema import DependencySpec
from tui_supervisor.engine.events import Spawned, StateChanged


def dep(name: str, condition: str = "started", **kw: Any) -> DependencySpec:
    return DependencySpec(name, condition, **kw)


def record(sup: Any) -> list[Any]:
    seen: list[Any] = []
    sup.bus.add_listener(lambda ev: seen.append(ev)
                         if isinstance(ev, StateChanged | Spawned) else None)
    return seen


def moves(seen: list[Any], name: str) -> list[str]:
    return [ev.new for ev in seen if isinstance(ev, StateChanged) and ev.service == name]


def spawns(seen: list[Any], name: str) -> int:
    return sum(1 for ev in seen if isinstance(ev, Spawned) and ev.service == name)


async def test_a_dependent_waits_then_starts_in_order(engine_factory, tmp_path: Path) -> None:
    sup = await engine_factory(
        spec("api", child("sleeper"), tmp_path, depends_on=(dep("db"),)),
        spec("db", child("sleeper"), tmp_path, start_time=0.5), autostart=False)
    seen = record(sup)
    sup.autostart()
    api = sup.services["api"]
    assert api.state.value == "waiting" and api.reason == "waiting for db (started)"
    assert api.wanted and api.pid is None
    view = {s["name"]: s for s in sup.snapshot_now()["services"]}["api"]
    assert view["depends_on"] == [{"name": "db", "condition": "started", "met": False}]
    await wait_for(lambda: api.state.value == "running", what="api running")
    order = [(ev.service, ev.new) for ev in seen if isinstance(ev, StateChanged)]
    assert order.index(("db", "running")) < order.index(("api", "starting"))
    view = {s["name"]: s for s in sup.snapshot_now()["services"]}["api"]
    assert view["depends_on"] == [{"name": "db", "condition": "started", "met": True}]
    assert spawns(seen, "api") == 1


async def test_a_crash_takes_dependents_down_and_back(engine_factory,
                                                      tmp_path: Path) -> None:
    """db crashes: api (restart: true) stops, waits and comes back once db is up again;
    cron (restart: false) is left alone."""
    sup = await engine_factory(
        spec("db", child("sleeper"), tmp_path, start_time=0.3),
        spec("api", child("sleeper"), tmp_path, depends_on=(dep("db"),)),
        spec("cron", child("sleeper"), tmp_path, depends_on=(dep("db", restart=False),)))
    db, api, cron = (sup.services[n] for n in ("db", "api", "cron"))
    await wait_for(lambda: api.state.value == cron.state.value == "running" and api.pid)
    seen = record(sup)
    first_api, first_cron = api.pid, cron.pid
    os.kill(db.pid, signal.SIGKILL)
    await wait_for(lambda: api.pid not in (None, first_api) and api.state.value == "running",
                   what="api back with a new process")
    assert not alive(first_api)
    assert moves(seen, "api")[:3] == ["stopping", "stopped", "waiting"]
    stopped = next(ev for ev in seen if isinstance(ev, StateChanged)
                   and ev.service == "api" and ev.new == "stopping")
    assert stopped.reason == "dependency lost: db (started)"
    assert cron.pid == first_cron and moves(seen, "cron") == []
    assert spawns(seen, "api") == 1


async def test_a_wait_times_out_fatal(engine_factory, tmp_path: Path) -> None:
    sup = await engine_factory(
        spec("db", child("sleeper"), tmp_path),  # never completes
        spec("api", child("sleeper"), tmp_path,
             depends_on=(dep("db", "completed_successfully", timeout=0.5),)))
    api = sup.services["api"]
    await wait_for(lambda: api.state.value == "fatal", what="api fatal")
    assert api.reason == "waiting for db (completed_successfully): gave up after 0.5s"
    assert api.spawns == 0


async def test_stop_order_on_shutdown_is_dependents_first(engine_factory,
                                                           tmp_path: Path) -> None:
    sup = await engine_factory(
        spec("worker", child("sleeper"), tmp_path, depends_on=(dep("api"),)),
        spec("api", child("sleeper"), tmp_path, depends_on=(dep("db"),)),
        spec("db", child("sleeper"), tmp_path))
    await wait_for(lambda: all(s.state.value == "running" for s in sup.services.values()))
    seen = record(sup)
    await sup.close()
    stopped = [ev.service for ev in seen if isinstance(ev, StateChanged) and ev.new == "stopped"]
    stopping = [ev.service for ev in seen
                if isinstance(ev, StateChanged) and ev.new == "stopping"]
    assert stopped == ["worker", "api", "db"]
    assert stopping == ["worker", "api", "db"]  # db is asked only once api has gone


async def test_start_pulls_dependencies_and_stop_takes_dependents(engine_factory,
                                                                  tmp_path: Path) -> None:
    sup = await engine_factory(
        spec("db", child("sleeper"), tmp_path, start_time=0.3),
        spec("api", child("sleeper"), tmp_path, depends_on=(dep("db"),)), autostart=False)
    db, api = sup.services["db"], sup.services["api"]
    r = await sup.start(["api"])
    assert [(o["name"], o["outcome"], o.get("dependency_of")) for o in r["services"]] == [
        ("db", "started", ["api"]), ("api", "waiting", None)]
    assert r["services"][1]["reason"] == "waiting for db (started)" and r["ok"]
    await wait_for(lambda: api.state.value == "running")
    r = await sup.stop(["db"])
    assert [(o["name"], o["outcome"], o.get("dependent_of")) for o in r["services"]] == [
        ("api", "stopped", ["db"]), ("db", "stopped", None)]
    assert api.state.value == db.state.value == "stopped" and not api.wanted
    # --no-deps: start api alone: it waits (db is not started)
    r = await sup.start(["api"], no_deps=True)
    assert [o["name"] for o in r["services"]] == ["api"]
    assert api.state.value == "waiting" and db.state.value == "stopped"
    await sup.start(["db"])
    await wait_for(lambda: api.state.value == "running")
    # stop db alone: api (restart: true) is taken down by the coordinator and waits
    r = await sup.stop(["db"], no_deps=True)
    assert [o["name"] for o in r["services"]] == ["db"]
    await wait_for(lambda: api.state.value == "waiting", what="api waiting")
    assert api.wanted and api.pid is None


async def test_no_duplicate_spawn_when_restart_races_a_wait(engine_factory,
                                                            tmp_path: Path) -> None:
    """process-compose #347/#530: a restart of a waiting service, and a dependency
    flapping quickly, never spawn a second copy."""
    sup = await engine_factory(
        spec("db", child("sleeper"), tmp_path),
        spec("api", child("sleeper"), tmp_path, depends_on=(dep("db"),)), autostart=False)
    db, api = sup.services["db"], sup.services["api"]
    seen = record(sup)
    await sup.start(["api"], no_deps=True)
    assert api.state.value == "waiting"
    for _ in range(3):
        r = await sup.restart(["api"])
        assert r["services"][0]["outcome"] == "waiting" and api.spawns == 0
    await sup.start(["db"])
    await wait_for(lambda: api.state.value == "running")
    for _ in range(5):  # flap: kill db as soon as it is up again
        pid = await wait_for(lambda: db.state.value == "running" and db.pid, what="db up")
        os.kill(pid, signal.SIGKILL)
        await sup.restart(["api"])
    await wait_for(lambda: db.state.value == "running" and api.state.value == "running"
                   and not sup.coordinator._down, what="all settled")
    await wait_for(lambda: api.state.value == "running", what="api settled")
    live = [ev.pid for ev in seen if isinstance(ev, Spawned) and ev.service == "api"
            and alive(ev.pid)]
    assert live == [api.pid]  # every earlier copy is gone: never two


async def test_a_reload_removing_a_dependency_restarts_nobody(engine_factory,
                                                              tmp_path: Path) -> None:
    from dataclasses import replace

    from conftest import make_config

    db = spec("db", child("sleeper"), tmp_path)
    api = spec("api", child("sleeper"), tmp_path, depends_on=(dep("db"),))
    cfg = make_config(tmp_path, db, api)
    sup = await engine_factory(config=cfg)
    svc = sup.services["api"]
    await wait_for(lambda: svc.state.value == "running" and sup.services["db"].pid)
    pid = svc.pid
    r = await sup.apply_config(replace(cfg, services={"api": replace(api, depends_on=())}))
    assert r["ok"] and r["removed"] == ["db"]
    await wait_for(lambda: "db" not in sup.services)
    assert svc.pid == pid and svc.state.value == "running"
    # and adding a dependency that is not met leaves a running service alone too
    r = await sup.apply_config(replace(cfg, services={"api": api, "db": replace(
        db, autostart=False)}))
    assert r["ok"] and svc.pid == pid and svc.state.value == "running"
