"""Automatic config reload on a real engine: edit the YAML (in place, or atomically as
editors do), edit an env_file; exact PIDs kept and restarted; an invalid edit changes
nothing and says why."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import TEST_PREFIX, alive, child, wait_for

from tui_supervisor.config import load_config
from tui_supervisor.engine.events import Notice
from tui_supervisor.reload.config import ConfigWatcher
from tui_supervisor.reload.watch import FileWatcher


def svc_yaml(name: str, *extra: str, opts: str = "") -> str:
    argv = ", ".join(f'"{a}"' for a in (*child("sleeper"), *extra))
    return f"  {name}:\n    command: [{argv}]\n    start_time: 0\n{opts}"


def write(path: Path, text: str, atomic: bool = False) -> None:
    if atomic:  # how vim / VS Code / most editors save: a new file renamed over the old
        tmp = path.with_name(f".{path.name}.swp")
        tmp.write_text(text)
        os.replace(tmp, path)
    else:
        path.write_text(text)


async def engine_on(path: Path, engine_factory: Callable[..., Any]) -> Any:
    cfg = load_config(path)
    from dataclasses import replace

    from conftest import make_config

    # the test's dirs and marker prefix; the services and the path from the file
    base = make_config(path.parent)
    cfg = replace(cfg, config_id=base.config_id, settings=base.settings)
    return await engine_factory(config=cfg)


def config_text(*services: str) -> str:
    return "settings: {sample_interval: 0}\nservices:\n" + "".join(services)


async def test_edits_apply_by_diff(engine_factory, tmp_path: Path) -> None:
    path = tmp_path / f"{TEST_PREFIX}watch.yaml"
    write(path, config_text(svc_yaml("keep"), svc_yaml("change"), svc_yaml("gone")))
    sup = await engine_on(path, engine_factory)
    notices: list[str] = []
    sup.bus.add_listener(lambda ev: notices.append(ev.message) if isinstance(ev, Notice)
                         else None)
    pids = {n: await wait_for(lambda n=n: sup.services[n].pid) for n in sup.services}
    w = ConfigWatcher(sup, debounce=0.1)
    w.start()
    try:
        # one save: one service added, one removed, one changed; atomic, as editors do
        write(path, config_text(svc_yaml("keep"), svc_yaml("change", "extra"),
                                svc_yaml("new")), atomic=True)
        await wait_for(lambda: "new" in sup.services and sup.services["new"].pid,
                       what="the added service")
        await wait_for(lambda: sup.services["change"].pid not in (None, pids["change"]))
        assert sup.services["keep"].pid == pids["keep"]  # untouched
        assert "gone" not in sup.services and not alive(pids["gone"])
        assert not alive(pids["change"])
        assert w.reloads == 1 and sup.reloads == 1  # the burst was one reload
        # an invalid edit, in place: nothing changes, the error is said
        before = {n: s.pid for n, s in sup.services.items()}
        write(path, config_text(svc_yaml("keep", opts="    restart: sometimes\n")))
        await wait_for(lambda: any(m.startswith("config not reloaded") for m in notices),
                       what="the error notice")
        assert any("restart" in m and ":" in m for m in notices
                   if m.startswith("config not reloaded"))
        assert {n: s.pid for n, s in sup.services.items()} == before
        assert sup.reload_failures == 1
    finally:
        w.stop()


async def test_env_file_change_restarts_only_its_service(engine_factory,
                                                          tmp_path: Path) -> None:
    env = tmp_path / "app.env"
    env.write_text("COLOR=blue\n")
    path = tmp_path / f"{TEST_PREFIX}envwatch.yaml"
    write(path, config_text(svc_yaml("uses", opts=f"    env_file: {env}\n"),
                            svc_yaml("other")))
    sup = await engine_on(path, engine_factory)
    pids = {n: await wait_for(lambda n=n: sup.services[n].pid) for n in sup.services}
    w = ConfigWatcher(sup, debounce=0.1)
    w.start()
    try:
        env.write_text("COLOR=red\n")
        await wait_for(lambda: sup.services["uses"].pid not in (None, pids["uses"]),
                       what="the restart of the service using the env_file")
        assert sup.services["other"].pid == pids["other"]
        assert sup.services["uses"].spec.env["COLOR"] == "red"
    finally:
        w.stop()


async def test_debounce_turns_a_burst_into_one_call(tmp_path: Path) -> None:
    f = tmp_path / "a.yaml"
    f.write_text("x")
    calls: list[set[Path]] = []
    w = FileWatcher(asyncio.get_running_loop(), [f], calls.append, debounce=0.2)
    w.start()
    try:
        for i in range(10):
            f.write_text(f"x{i}")
            await asyncio.sleep(0.01)  # the burst tested: writes 10 ms apart
        (tmp_path / "unrelated.txt").write_text("y")  # not watched
        await wait_for(lambda: calls, what="the debounced call")
        await asyncio.sleep(0.5)  # the thing tested: no second call follows
        assert calls == [{f.resolve()}]
    finally:
        w.stop()


async def test_concurrent_reloads_end_in_the_last_files_state(engine_factory,
                                                              tmp_path: Path) -> None:
    """A save, `R`, SIGHUP and the socket can each start a reload at any moment: 20 at
    once, while the file flips between a version where `a` (slow to stop: it ignores
    SIGTERM, stop timeout 1 s) is edited and `b` added and one where `b` is removed, all
    succeed and the engine ends in the state of the file as last written (two applies at
    once used to raise KeyError: 'b')."""
    path = tmp_path / f"{TEST_PREFIX}burst.yaml"
    slow = "    stop: {timeout: 1s}\n"

    def version(n: int) -> str:
        a = svc_yaml("a", "ignore-term", f"v{n}", opts=slow)
        return config_text(a, svc_yaml("b")) if n % 2 else config_text(a)

    write(path, version(0))
    sup = await engine_on(path, engine_factory)
    await wait_for(lambda: sup.services["a"].pid, what="a up")

    async def reload_after(i: int) -> Any:
        await asyncio.sleep(0.03 * i)  # the triggers come spread over the first stops
        # atomic: the engine reads in a worker thread, so a file half-written by this
        # (loop) thread could be read, and rightly refused, in the middle of the write
        write(path, version(i + 1), atomic=True)
        return await sup.reload()

    results = await asyncio.gather(*(reload_after(i) for i in range(20)))
    assert all(r["ok"] for r in results), results
    last = version(20)  # what the file says now: `a` v20, no `b`
    assert path.read_text() == last
    assert list(sup.services) == ["a"] and list(sup.config.services) == ["a"]
    assert sup.services["a"].spec.argv[-1] == "v20"
    pid = await wait_for(lambda: sup.services["a"].pid, what="a running again")
    assert alive(pid)
    assert 2 <= sup.reloads <= 20  # waiting reloads were answered by a later read

    write(path, version(21))  # and it goes on applying: `b` back, `a` restarted
    r = await sup.reload()
    assert r["ok"] and r["added"] == ["b"] and r["restarted"] == ["a"], r
    await wait_for(lambda: sup.services["b"].pid, what="b up")


async def _held_reloads(sup: Any, fail_at: int = 0) -> tuple[asyncio.Event, list[str]]:
    """Make the engine's file reads slow and observable: each waits for `go` and is
    logged; read number `fail_at` raises (an apply that failed inside)."""
    go, reads = asyncio.Event(), []
    real = sup.config_apply._read_and_apply

    async def read_and_apply() -> Any:
        reads.append("read")
        await go.wait()
        if len(reads) == fail_at:
            raise RuntimeError("apply failed")
        return await real()

    sup.config_apply._read_and_apply = read_and_apply
    return go, reads


async def test_reloads_waiting_on_a_failed_one_read_the_file_themselves(
        engine_factory, tmp_path: Path) -> None:
    """Reloads queue behind one under way; the next takes the lock and reads for all who
    asked before its read, but it raises: the others are not answered with the older
    result, they read the file themselves."""
    path = tmp_path / f"{TEST_PREFIX}fail.yaml"
    write(path, config_text(svc_yaml("a")))
    sup = await engine_on(path, engine_factory)
    go, reads = await _held_reloads(sup, fail_at=2)
    under_way = asyncio.ensure_future(sup.reload())
    await wait_for(lambda: reads, what="a read under way")
    failing, *others = [asyncio.ensure_future(sup.reload()) for _ in range(3)]
    await asyncio.sleep(0)  # (they queue on the lock)
    go.set()
    assert (await under_way)["ok"]
    with pytest.raises(RuntimeError):
        await failing
    assert all(r["ok"] for r in await asyncio.gather(*others))
    assert len(reads) == 3  # one more read after the failed one, for both that waited


async def test_a_reload_that_waited_on_a_closing_engine_is_refused(
        engine_factory, tmp_path: Path) -> None:
    """Once the engine closes (or hands its services over), a reload still queued must
    not act on services it no longer owns; the one under way finishes before the stop,
    so what it started is stopped too (the guard fixture checks nothing is left)."""
    path = tmp_path / f"{TEST_PREFIX}closing.yaml"
    write(path, config_text(svc_yaml("a")))
    sup = await engine_on(path, engine_factory)
    go, reads = await _held_reloads(sup)
    first = asyncio.ensure_future(sup.reload())
    await wait_for(lambda: reads, what="a read under way")
    write(path, config_text(svc_yaml("a"), svc_yaml("b")))
    queued = asyncio.ensure_future(sup.reload())
    closing = asyncio.ensure_future(sup.close())
    await wait_for(lambda: sup.retired, what="the engine closing")
    go.set()
    await first
    r = await queued
    assert not r["ok"] and "handed its services over" in r["errors"][0], r
    await closing
    assert (await first)["added"] == ["b"]  # it read the file after the write
    assert all(s.pid is None for s in sup.services.values())
