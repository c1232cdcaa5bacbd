"""A live reload of a hostile config: the engine answers with one line and keeps running
the old config; a file that takes long to read never pauses supervision (it is read off
the event loop); a new config whose services cannot be set up is applied not at all."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from conftest import TEST_PREFIX, alive, child, wait_for

from tui_supervisor.config import load_config
from tui_supervisor.control.client import RemoteSupervisor
from tui_supervisor.engine.events import Notice, Topic

CRASHER = ("  crasher:\n    command: [/bin/sh, -c, 'exit 3']\n    start_time: 0\n"
           "    backoff: {initial: 20ms, factor: 1, max: 20ms, jitter: 0}\n"
           "    crash_loop: {max_failures: 10000, window: 1s}\n")


def sleeper(name: str, *extra: str) -> str:
    argv = ", ".join(f'"{a}"' for a in (*child("sleeper"), *extra))
    return f"  {name}:\n    command: [{argv}]\n    start_time: 0\n"


def config_text(*services: str, settings: str = "") -> str:
    return f"settings: {{sample_interval: 0{settings}}}\nservices:\n" + "".join(services)


def spawns(snap: dict[str, Any], name: str) -> int:
    return next(s["spawns"] for s in snap["services"] if s["name"] == name)


async def test_hostile_reloads_are_one_line_and_never_pause_supervision(
        engines: Any, tmp_path: Path) -> None:
    run = tmp_path / "run"
    cfg = tmp_path / f"{TEST_PREFIX}hostile.yaml"
    good = config_text(sleeper("idle"), CRASHER, settings=f", runtime_dir: {run}, "
                       f"log_dir: {tmp_path / 'logs'}, watch_config: false")
    cfg.write_text(good)
    engine = engines(cfg, quiet=True)
    api = await engine.ready()
    pinger = RemoteSupervisor(run)
    try:
        idle = next(s["pid"] for s in (await api.snapshot())["services"] if s["name"] == "idle")
        # a control character, a NUL: one line each, not an `internal` error
        for bad in (b"\x01", b"\x00"):
            cfg.write_bytes(good.encode().replace(b"sleeper", b"sleep" + bad, 1))
            r = await api.reload()
            assert not r["ok"] and len(r["errors"]) == 1, r
            assert r["errors"][0].startswith(f"{cfg}:4:") and "not allowed" in r["errors"][0]
        # an alias bomb: refused as it grows, not expanded (it took 9.8 s, loop frozen)
        bomb = ["    env: &a0 {K0: v}"] + [
            f"  s{i}: &a{i} {{<<: [*a{i - 1}, *a{i - 1}], command: [x]}}" for i in range(1, 30)]
        cfg.write_text(good + "\n".join(bomb) + "\n")
        r = await api.reload()
        assert not r["ok"] and "aliases expand to more than" in r["errors"][0], r
        # a big file that takes a while to read: the engine answers and respawns meanwhile
        cfg.write_text(good + "filler: [" + "1," * 250_000 + "1]\n")
        before = spawns(await pinger.snapshot(), "crasher")
        reload = asyncio.ensure_future(api.reload())
        seen: list[int] = []
        while not reload.done() and (not seen or seen[-1] < before + 2):
            snap = await pinger.snapshot()  # a ping over the socket: answered meanwhile
            if not reload.done():
                seen.append(spawns(snap, "crasher"))
            await asyncio.sleep(0.01)
        assert seen and seen[-1] >= before + 2, \
            f"respawns seen while the reload read the file: {seen} (from {before})"
        r = await reload
        assert not r["ok"] and r["errors"] == [f"{cfg}:{good.count(chr(10)) + 1}:1: "
                                               "unknown key 'filler'"], r
        # nothing of it was applied; the old config still runs, and a good reload works
        snap = await api.snapshot()
        assert snap["engine"]["reload_failures"] == 4
        assert next(s["pid"] for s in snap["services"] if s["name"] == "idle") == idle
        cfg.write_text(good + sleeper("added"))
        assert (await api.reload())["added"] == ["added"]
    finally:
        await pinger.close()
        await api.close()


async def test_a_new_config_whose_service_cannot_be_set_up_applies_nothing(
        engine_factory: Any, tmp_path: Path) -> None:
    from dataclasses import replace

    from conftest import make_config

    path = tmp_path / f"{TEST_PREFIX}atomic.yaml"
    path.write_text(config_text(sleeper("keep"), sleeper("gone")))
    base = make_config(tmp_path)  # the test's dirs and marker prefix
    sup = await engine_factory(config=replace(load_config(path), config_id=base.config_id,
                                              settings=base.settings))
    notices: list[Notice] = []
    sup.bus.add_listener(lambda ev: notices.append(ev) if isinstance(ev, Notice) else None)
    pids = {n: await wait_for(lambda n=n: sup.services[n].pid) for n in ("keep", "gone")}
    old = sup.config
    # "new" cannot get its log file (a directory is in the way): nothing may change, not
    # the stop of "gone", not the restart of "keep" (its command changes), not the config
    (base.settings.log_dir / "new.log").mkdir(parents=True)
    path.write_text(config_text(sleeper("keep", "changed"), sleeper("new")))
    r = await sup.reload()
    assert not r["ok"] and r == {"ok": False, "errors": [
        f"{old.path}:6: services.new: cannot set up the service: Is a directory "
        f"({base.settings.log_dir / 'new.log'})"]}
    assert sup.config is old and list(sup.services) == ["keep", "gone"]
    assert {n: s.pid for n, s in sup.services.items()} == pids and all(map(alive, pids.values()))
    said = [n for n in notices if n.topic is Topic.CONFIG_INVALID]
    assert len(said) == 1 and said[0].message == "config not applied: " + r["errors"][0]
    assert sup.reload_failures == 1
    # the same file once the way is clear: applied whole
    (base.settings.log_dir / "new.log").rmdir()
    r = await sup.reload()
    assert r["ok"] and (r["added"], r["removed"], r["restarted"]) == (["new"], ["gone"],
                                                                     ["keep"]), r
    await wait_for(lambda: sup.services["new"].pid and sup.services["keep"].pid not in
                   (None, pids["keep"]), what="the new config running")
    assert not alive(pids["gone"])
