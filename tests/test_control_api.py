"""One scenario set, run against the in-process Supervisor and against RemoteSupervisor
talking to the same kind of engine over a real control socket: a client cannot tell them
apart."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import alive, child, spec, wait_for

from tui_supervisor.control.client import RemoteSupervisor
from tui_supervisor.control.errors import NotRunning
from tui_supervisor.engine.api import SupervisorAPI, UnknownService
from tui_supervisor.engine.supervisor import Extension


def pids(snap: dict[str, Any]) -> dict[str, int | None]:
    return {s["name"]: s["pid"] for s in snap["services"]}


async def running(api: SupervisorAPI, name: str, not_pid: int | None = None) -> int:
    async def check() -> int | None:
        for s in (await api.snapshot())["services"]:
            if s["name"] == name and s["state"] == "running" and s["pid"] != not_pid:
                return s["pid"]  # type: ignore[no-any-return]
        return None

    return await wait_for(check, 10, f"{name} running", interval=0.02)


async def test_snapshot(make_api, tmp_path: Path) -> None:
    sup, api = await make_api(spec("a", child("sleeper"), tmp_path),
                              spec("b", child("sleeper"), tmp_path))
    await running(api, "a")
    snap = await api.snapshot()
    assert [s["name"] for s in snap["services"]] == ["a", "b"]
    assert snap["engine"]["config_id"] == sup.config.config_id
    a = snap["services"][0]
    assert a["pid"] == sup.services["a"].pid and a["restarts"] == 0
    assert {"state", "uptime", "failures", "last_exit", "log_offset"} <= set(a)


async def test_start_stop_restart(make_api, tmp_path: Path) -> None:
    _sup, api = await make_api(spec("a", child("sleeper"), tmp_path),
                               spec("b", child("sleeper"), tmp_path))
    pa = await running(api, "a")
    assert (await api.stop(["a"]))["stopped"] == ["a"]
    snap = {s["name"]: s for s in (await api.snapshot())["services"]}
    assert snap["a"]["state"] == "stopped" and snap["a"]["pid"] is None
    assert not alive(pa)
    assert (await api.start(["a"]))["started"] == ["a"]
    pa2 = await running(api, "a", not_pid=pa)
    pb = await running(api, "b")
    assert (await api.restart(["a", "b"]))["restarted"] == ["a", "b"]
    await running(api, "a", not_pid=pa2)
    await running(api, "b", not_pid=pb)
    assert not alive(pa2) and not alive(pb)


async def test_signal(make_api, tmp_path: Path) -> None:
    _sup, api = await make_api(spec("a", child("sleeper"), tmp_path))
    pa = await running(api, "a")
    r = await api.signal("a", "TERM")
    assert r["ok"] is True and r["signal"] == "SIGTERM"
    await running(api, "a", not_pid=pa)  # restart: always
    assert (await api.signal("a", int(signal.SIGKILL)))["signal"] == "SIGKILL"


async def test_logs(make_api, tmp_path: Path) -> None:
    _sup, api = await make_api(spec("c", child("counter", "30"), tmp_path, restart="never"),
                               spec("s", child("sleeper"), tmp_path))
    async def lines(names: list[str], n: int) -> bool:
        return len(await api.logs(names, 1000)) >= n

    await wait_for(lambda: lines(["c"], 30), 10, "c's 30 lines", interval=0.02)
    last = await api.logs(["c"], 5)
    assert [x["text"] for x in last] == [f"line {i:08d} {'x' * 40}" for i in range(25, 30)]
    assert all(x["service"] == "c" and x["stream"] == "stdout" for x in last)
    assert [x["offset"] for x in last] == [i * 55 for i in range(25, 30)]
    await wait_for(lambda: lines(["s"], 1), 10, "s's first line", interval=0.02)
    both = await api.logs(None, 1000)
    assert {x["service"] for x in both} == {"c", "s"}
    assert [x["t"] for x in both] == sorted(x["t"] for x in both)
    assert await api.logs(["c"], 0) == []


async def test_subscribe_snapshot_then_state_events(make_api, tmp_path: Path) -> None:
    _sup, api = await make_api(spec("a", child("sleeper"), tmp_path))
    pa = await running(api, "a")
    it = await api.subscribe(logs=False)
    try:
        first = await anext(it)
        assert first["kind"] == "snapshot" and pids(first) == {"a": pa}
        await api.restart(["a"])
        seen: list[tuple[str, str]] = []
        while ("starting", "running") not in seen:
            ev = await asyncio.wait_for(anext(it), 10)
            assert ev["kind"] != "log"
            if ev["kind"] == "state":
                seen.append((ev["old"], ev["new"]))
        assert seen[0] == ("running", "stopping")
        assert ("stopped", "starting") in seen
    finally:
        with contextlib.suppress(Exception):
            await it.aclose()  # type: ignore[attr-defined]


async def test_subscribe_with_logs(make_api, tmp_path: Path) -> None:
    _sup, api = await make_api(spec("c", child("counter", "0", "0.01"), tmp_path))
    it = await api.subscribe(logs=True)
    try:
        assert (await anext(it))["kind"] == "snapshot"
        ev = await asyncio.wait_for(anext(it), 10)
        while ev["kind"] != "log":
            ev = await asyncio.wait_for(anext(it), 10)
        assert ev["service"] == "c" and ev["lines"][0].startswith("line ")
    finally:
        await it.aclose()  # type: ignore[attr-defined]


async def test_unknown_service_and_bad_signal(make_api, tmp_path: Path) -> None:
    _sup, api = await make_api(spec("a", child("sleeper"), tmp_path))
    for call in (api.start(["nope"]), api.stop(["a", "nope"]), api.restart(["nope"]),
                 api.signal("nope", "TERM"), api.logs(["nope"], 3)):
        with pytest.raises(UnknownService) as ei:
            await call
        assert str(ei.value) == "no such service: nope"
    with pytest.raises(ValueError, match="expected a signal"):
        await api.signal("a", "BOGUS")
    await running(api, "a")


async def test_reload_refuses_invalid_config(make_api, tmp_path: Path) -> None:
    sup, api = await make_api(spec("a", child("sleeper"), tmp_path))
    pa = await running(api, "a")
    sup.config.path.write_text("services:\n  a: {command: [x], restart: bogus}\n")
    r = await api.reload()
    assert r["ok"] is False and any("restart" in e for e in r["errors"])
    snap = await api.snapshot()
    assert pids(snap) == {"a": pa} and snap["engine"]["reload_failures"] == 1
    assert snap["engine"]["reloads"] == 0


async def test_remote_not_running(tmp_path: Path) -> None:
    client = RemoteSupervisor(tmp_path / "nowhere")
    with pytest.raises(NotRunning):
        await client.snapshot()
    (tmp_path / "control.sock").touch()
    with pytest.raises(NotRunning):
        await RemoteSupervisor(tmp_path).snapshot()


@pytest.mark.parametrize("module", ["tui_supervisor.control.server",
                                    "tui_supervisor.control.client"])
def test_control_does_not_load_the_ui(module: str) -> None:
    """The engine process loads the server; a TUI loads the client: neither pulls in Rich
    or Textual by itself (only the CLI's status table uses Rich)."""
    import subprocess
    import sys

    code = (f"import sys, {module}; "
            "print(','.join(m for m in ('textual', 'rich') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)
    assert out.stdout.strip() == ""


class Echo(Extension):
    """A minimal extension: answers one question with what it was asked."""

    name = "echo"

    def query(self, what: str, args: dict[str, Any]) -> Any:
        if what != "echo":
            return super().query(what, args)
        return {"args": args}


async def test_query_reaches_an_extension(make_api: Callable[..., Any], tmp_path: Path
                                          ) -> None:
    _, api = await make_api(spec("s", child("sleeper"), tmp_path), extensions=[Echo()])
    assert await api.query("echo", "echo", {"a": [1, "x"]}) == {"args": {"a": [1, "x"]}}
    with pytest.raises(ValueError, match="no query 'nope'"):
        await api.query("echo", "nope")
    with pytest.raises(ValueError, match="no extension 'missing'"):
        await api.query("missing", "echo")
