"""Replicas on a real engine: TCP servers on BASE + ${REPLICA}, scaled live, by config
reload, restarted one at a time, kept across a code reload."""

from __future__ import annotations

import asyncio
import json
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conftest import CHILDREN, PY, wait_for

from tui_supervisor.config import load_config
from tui_supervisor.engine.events import StateChanged
from tui_supervisor.engine.supervisor import Supervisor


def free_base(span: int = 6) -> int:
    """A port P with P..P+span-1 all free now."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + span > 65535:
            continue
        try:
            for p in range(base, base + span):
                with socket.socket() as t:
                    t.bind(("127.0.0.1", p))
        except OSError:
            continue
        return base
    raise AssertionError("no free port range")


def write(tmp: Path, base: int, n: int, extra: str = "") -> Path:
    path = tmp / "tst-replicas.yaml"
    argv = ", ".join(f'"{a}"' for a in (PY, str(CHILDREN / "listener.py"), base,
                                         "${REPLICA}", tmp))
    path.write_text(
        f"settings: {{log_dir: {tmp}/logs, state_dir: {tmp}/state, runtime_dir: {tmp}/run,"
        " sample_interval: 0}\n"
        "services:\n"
        f"  other: {{command: ['{PY}', '{CHILDREN}/sleeper.py'], start_time: 0}}\n"
        "  web:\n"
        f"    replicas: {n}\n"
        f"    command: [{argv}]\n"
        "    start_time: 0.3\n"
        "    stop: {timeout: 5s}\n"
        "    backoff: {initial: 0.05, max: 0.2, jitter: 0}\n"
        f"{extra}")
    return path


async def answers(port: int) -> bool:
    try:
        r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 2)
    except (OSError, TimeoutError):
        return False
    try:
        return (await asyncio.wait_for(r.readline(), 2)).strip().isdigit()
    except (OSError, TimeoutError):
        return False
    finally:
        w.close()


def web(sup: Supervisor) -> dict[str, int | None]:
    return {n: s.pid for n, s in sup.services.items() if s.spec.group == "web"}


async def all_up(sup: Supervisor, base: int, n: int) -> dict[str, int | None]:
    async def ok() -> bool:
        names = [f"web-{i}" for i in range(n)]
        if list(web(sup)) != names:
            return False
        if any(sup.services[x].state.value != "running" for x in names):
            return False
        return all([await answers(base + i) for i in range(n)])

    async def check() -> None:
        while not await ok():
            await asyncio.sleep(0.05)

    await asyncio.wait_for(check(), 30)
    return web(sup)


def stop_order(sup: Supervisor) -> list[str]:
    """The services whose stop began, in order (filled as it happens)."""
    seen: list[str] = []
    sup.bus.add_listener(lambda ev: seen.append(ev.service)
                         if isinstance(ev, StateChanged) and ev.new == "stopping" else None)
    return seen


def env(tmp: Path) -> dict[str, str]:
    return {**os.environ, "XDG_STATE_HOME": str(tmp / "xdg")}


async def test_scale_up_then_down_live(make_api: Callable[..., Any], tmp_path: Path) -> None:
    base = free_base()
    cfg = load_config(write(tmp_path, base, 3), environ=env(tmp_path))
    sup, api = await make_api(config=cfg)
    before = await all_up(sup, base, 3)
    other = sup.services["other"].pid
    r = await api.scale("web", 5)
    assert r == {"ok": True, "group": "web", "replicas": 5, "started": ["web-3", "web-4"],
                 "stopped": []}
    up = await all_up(sup, base, 5)
    assert {k: up[k] for k in before} == before  # untouched: same processes
    assert list(sup.services) == ["other", *(f"web-{i}" for i in range(5))]
    order = stop_order(sup)
    r = await api.scale("web", 2)
    assert r["ok"] and r["stopped"] == ["web-4", "web-3", "web-2"] and r["started"] == []
    assert order == ["web-4", "web-3", "web-2"]  # the highest-numbered first
    assert web(sup) == {k: before[k] for k in ("web-0", "web-1")}
    for i in (2, 3, 4):
        assert not await answers(base + i)
    assert all([await answers(base + i) for i in (0, 1)])
    assert sup.services["other"].pid == other
    snap = await api.snapshot()
    views = {s["name"]: s for s in snap["services"]}
    assert (views["web-1"]["group"], views["web-1"]["replica"]) == ("web", 1)
    assert (views["other"]["group"], views["other"]["replica"]) == (None, None)
    # refused: nothing changes
    bad = await api.scale("other", 2)
    assert not bad["ok"] and "has no replicas:" in bad["error"]
    bad = await api.scale("web", 0)
    assert not bad["ok"] and "between 1 and 256" in bad["error"]
    assert web(sup) == {k: before[k] for k in ("web-0", "web-1")}


async def test_config_reload_changes_the_count(engine_factory: Callable[..., Any],
                                               tmp_path: Path) -> None:
    base = free_base()
    path = write(tmp_path, base, 3)
    sup = await engine_factory(config=load_config(path, environ=env(tmp_path)))
    before = await all_up(sup, base, 3)
    write(tmp_path, base, 4)
    r = await sup.reload()
    assert r["ok"] and r["added"] == ["web-3"] and r["removed"] == []
    up = await all_up(sup, base, 4)
    assert {k: up[k] for k in before} == before
    order = stop_order(sup)
    write(tmp_path, base, 2)
    r = await sup.reload()
    assert r["ok"] and sorted(r["removed"]) == ["web-2", "web-3"]
    assert order == ["web-3", "web-2"]
    assert web(sup) == {k: before[k] for k in ("web-0", "web-1")}
    assert not await answers(base + 2) and not await answers(base + 3)


async def test_group_name_acts_on_every_replica(engine_factory: Callable[..., Any],
                                                tmp_path: Path) -> None:
    base = free_base()
    sup = await engine_factory(config=load_config(write(tmp_path, base, 2),
                                                  environ=env(tmp_path)))
    before = await all_up(sup, base, 2)
    other = sup.services["other"].pid
    r = await sup.restart(["web"])
    assert r["ok"] and r["restarted"] == ["web-0", "web-1"]
    after = await all_up(sup, base, 2)
    assert all(after[k] != before[k] for k in before)
    sig = await sup.signal("web", "CONT")
    assert sig == {"ok": True, "signal": "SIGCONT"}
    r2 = await sup.stop(["web"])
    assert r2["stopped"] == ["web-0", "web-1"] and sup.services["other"].pid == other
    assert [line["service"] for line in await sup.logs(["web"], 100)] != []


async def test_rolling_restart_keeps_all_but_one_answering(
        engine_factory: Callable[..., Any], tmp_path: Path) -> None:
    base = free_base()
    sup = await engine_factory(config=load_config(write(tmp_path, base, 3),
                                                  environ=env(tmp_path)))
    before = await all_up(sup, base, 3)
    worst = [3]
    states_bad = [0]
    done = asyncio.Event()

    async def watch() -> None:
        while not done.is_set():
            up = [await answers(base + i) for i in range(3)]
            worst[0] = min(worst[0], sum(up))
            down = [s for s in web(sup) if sup.services[s].state.value != "running"]
            states_bad[0] = max(states_bad[0], len(down))
            await asyncio.sleep(0.01)

    watcher = asyncio.ensure_future(watch())
    try:
        r = await sup.restart(["web"], rolling=True)
    finally:
        done.set()
        await watcher
    assert r["ok"] and r["restarted"] == ["web-0", "web-1", "web-2"]
    assert worst[0] >= 2 and states_bad[0] <= 1  # at every moment at least N-1 up
    after = await all_up(sup, base, 3)
    assert all(after[k] != before[k] for k in before)


async def test_rolling_restart_stops_at_one_that_does_not_come_up(
        engine_factory: Callable[..., Any], tmp_path: Path) -> None:
    base = free_base()
    extra = "    restart: on-failure\n    crash_loop: {max_failures: 1, give_up: true}\n"
    sup = await engine_factory(config=load_config(write(tmp_path, base, 3, extra),
                                                  environ=env(tmp_path)))
    before = await all_up(sup, base, 3)
    (tmp_path / "fail-1").write_text("")
    r = await sup.restart(["web"], rolling=True)
    assert not r["ok"] and r["restarted"] == ["web-0", "web-1"]
    assert r["untouched"] == ["web-2"]
    assert r["error"].startswith("rolling restart stopped: web-1 is fatal")
    assert r["error"].endswith("; not restarted: web-2")
    assert sup.services["web-2"].pid == before["web-2"]  # left as it was
    assert sup.services["web-0"].pid not in (None, before["web-0"])


async def test_rolling_restart_gives_up_on_one_not_up_in_time(
        engine_factory: Callable[..., Any], tmp_path: Path, monkeypatch: Any) -> None:
    from tui_supervisor.engine import rolling

    monkeypatch.setattr(rolling, "ROLLING_MARGIN", 0.7)  # (30 s by default)
    base = free_base()
    sup = await engine_factory(config=load_config(write(tmp_path, base, 3),
                                                  environ=env(tmp_path)))
    before = await all_up(sup, base, 3)
    (tmp_path / "fail-0").write_text("")  # crashes and is retried: never running
    r = await sup.restart(["web"], rolling=True)
    assert not r["ok"] and r["restarted"] == ["web-0"] and r["untouched"] == ["web-1", "web-2"]
    assert r["error"].startswith("rolling restart stopped: web-0 not running within 1s (it is ")
    assert {k: v for k, v in web(sup).items() if k != "web-0"} == {
        k: before[k] for k in ("web-1", "web-2")}


async def test_a_copy_scaled_away_during_a_rolling_restart_is_not_restarted(
        engine_factory: Callable[..., Any], tmp_path: Path) -> None:
    base = free_base()
    sup = await engine_factory(config=load_config(write(tmp_path, base, 3),
                                                  environ=env(tmp_path)))
    await all_up(sup, base, 3)
    rolling = asyncio.ensure_future(sup.restart(["web"], rolling=True))
    await wait_for(lambda: sup.services["web-0"].state.value == "starting",
                   what="the rolling restart under way")
    assert (await sup.scale("web", 1))["stopped"] == ["web-2", "web-1"]
    r = await asyncio.wait_for(rolling, 30)
    assert r["ok"] and r["restarted"] == ["web-0"]
    assert list(web(sup)) == ["web-0"]
    assert not await answers(base + 1) and not await answers(base + 2)


async def test_code_reload_keeps_the_scaled_count(engine_factory: Callable[..., Any],
                                                  tmp_path: Path) -> None:
    base = free_base()
    path = write(tmp_path, base, 2)
    first = await engine_factory(config=load_config(path, environ=env(tmp_path)))
    await all_up(first, base, 2)
    assert (await first.scale("web", 4))["ok"]
    before = await all_up(first, base, 4)
    record = json.loads(json.dumps(first.detach()))
    second = await engine_factory(config=load_config(path, environ=env(tmp_path)),
                                  adopt=record)
    assert web(second) == before  # the scaled count, the same processes
    assert second.scaled == {"web": (4, 2)}
    r = await second.reload()  # the file's replicas: did not change: the scale stays
    assert r["ok"] and not r["added"] and not r["removed"]
    assert web(second) == before
    write(tmp_path, base, 3)  # the file changed replicas: it wins
    r = await second.reload()
    assert r["ok"] and r["removed"] == ["web-3"] and second.scaled == {}
    await wait_for(lambda: list(web(second)) == ["web-0", "web-1", "web-2"])
