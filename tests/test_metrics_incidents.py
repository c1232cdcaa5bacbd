"""Incidents (crash forensics): real engines and real crashing children; the file, its
bounds and corruption; the query locally and over the socket; the CLI verb."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import child, make_config, spec, wait_for
from support import cli, one_error_line, svc, write_cfg

from tui_supervisor.config import load_config
from tui_supervisor.engine.api import UnknownService
from tui_supervisor.engine.events import Exited, Notice
from tui_supervisor.engine.supervisor import Supervisor
from tui_supervisor.metrics.incidents import (
    FILE_NAME,
    IncidentBook,
    IncidentFile,
    Incidents,
    own_lines,
)

LINES_11_TO_60 = [f"line {i}" for i in range(11, 61)]


def crasher(tmp: Path, name: str = "a", **kw: Any):  # type: ignore[no-untyped-def]
    """60 numbered lines, the last 50 in a burst right before exit code 3."""
    kw.setdefault("restart", "never")
    return spec(name, child("lines", "60", "3", "--split", "10"), tmp, **kw)


async def incidents_of(ext: Incidents, count: int, service: str | None = None
                       ) -> list[dict[str, Any]]:
    return await wait_for(lambda: len(ext.book.list(service)) >= count
                          and ext.book.list(service), what=f"{count} incidents")


def file_lines(sup: Supervisor) -> list[dict[str, Any]]:
    path = sup.config.settings.state_dir / FILE_NAME
    return [json.loads(x) for x in path.read_text().splitlines()]


# -- recording ------------------------------------------------------------------------
async def test_crash_keeps_exactly_the_last_50_lines(engine_factory, tmp_path: Path) -> None:
    """The burst the child writes right before dying is in every incident: the engine
    drains the pipes before it announces the exit (4 crashes, each racing the reader)."""
    ext = Incidents()
    sup = await engine_factory(crasher(tmp_path, restart="always"), extensions=[ext])
    incs = await incidents_of(ext, 4)
    await sup.stop(["a"])
    for i, inc in enumerate(incs[:4]):
        assert [x["text"] for x in inc["lines"]] == LINES_11_TO_60, i
        assert {x["stream"] for x in inc["lines"]} == {"stdout"}
        assert (inc["code"], inc["signal"], inc["signal_name"]) == (3, None, None)
        assert (inc["text"], inc["kind"], inc["state"]) == ("exit code 3", "crash", "running")
        assert inc["restarts"] == i and inc["service"] == "a"
        assert 0.1 <= inc["uptime"] < 30
        assert all(inc["t"] >= x["t"] for x in inc["lines"])
    assert len({inc["pid"] for inc in incs}) == len(incs)
    assert file_lines(sup)[:4] == incs[:4]


TRACEBACK = ("import os, sys\n"
             "pid = os.getpid()\n"
             "print(f'started {pid}', flush=True)\n"
             "for i in range(1, 4): print(f'  frame {i} of {pid}', file=sys.stderr, flush=True)\n"
             "os._exit(3)\n")


async def test_each_incident_holds_only_its_own_process_lines(engine_factory,
                                                              tmp_path: Path) -> None:
    """A service that prints unique lines once per process, then crashes, respawned 3
    times: each incident holds exactly the lines its own pid printed (before the fix the
    ring's tail went back into the earlier processes' output: the 2nd incident had the
    1st process's lines too, the 4th had all four)."""
    ext = Incidents()
    sup = await engine_factory(spec("a", (sys.executable, "-c", TRACEBACK), tmp_path,
                                    restart="always"), extensions=[ext])
    incs = (await incidents_of(ext, 4))[:4]
    await sup.stop(["a"])
    for inc in incs:
        pid = inc["pid"]
        texts = [x["text"] for x in inc["lines"]]
        assert sorted(texts) == sorted([f"started {pid}",
                                        *(f"  frame {i} of {pid}" for i in (1, 2, 3))]), texts
        assert len(set(texts)) == len(texts)
    assert len({inc["pid"] for inc in incs}) == 4
    assert file_lines(sup)[:4] == incs  # the file tells the same


def _exit(cause: str = "exit", t: float = 100.0, uptime: float = 10.0) -> Exited:
    return Exited(t, "a", 7, 1, None, False, True, uptime, cause=cause)


@pytest.mark.parametrize(("since", "ev", "kept"), [
    (20, _exit(), [20, 30]),                    # the offset at its spawn decides
    (0, _exit(), [0, 10, 20, 30]),              # the first process: everything
    (40, _exit(), []),                          # printed nothing
    (None, _exit(t=100.0, uptime=8.0), [20, 30]),   # offset unknown: read since its start
    (20, _exit(cause="spawn", uptime=0.0), []),  # never ran: no lines are its own
])
def test_own_lines_table(since: int | None, ev: Exited, kept: list[int]) -> None:
    lines = [(0, 80.0, "stdout", "a"), (10, 91.0, "stdout", "b"),
             (20, 92.0, "stderr", "c"), (30, 99.0, "stdout", "d")]
    assert [x[0] for x in own_lines(lines, since, ev)] == kept


async def test_sigkill_records_signal_9(engine_factory, tmp_path: Path) -> None:
    ext = Incidents()
    sup = await engine_factory(
        spec("a", child("lines", "5", "0", "--sleep", "-1"), tmp_path, restart="never"),
        extensions=[ext])
    svc_a = sup.services["a"]
    await wait_for(lambda: len(svc_a.ring.tail()) == 5, what="5 lines")
    pid = svc_a.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    (inc,) = await incidents_of(ext, 1)
    assert (inc["pid"], inc["code"], inc["signal"]) == (pid, None, 9)
    assert (inc["signal_name"], inc["text"]) == ("SIGKILL", "killed by SIGKILL")
    assert inc["kind"] == "crash"
    assert [x["text"] for x in inc["lines"]] == [f"line {i}" for i in range(1, 6)]


async def test_failed_start(engine_factory, tmp_path: Path) -> None:
    ext = Incidents()
    await engine_factory(spec("a", child("crash", "1"), tmp_path, restart="never",
                              start_time=5.0), extensions=[ext])
    (inc,) = await incidents_of(ext, 1)
    assert (inc["kind"], inc["state"], inc["code"], inc["text"]) == (
        "failed start", "starting", 1, "exit code 1")
    assert inc["uptime"] < 5.0
    assert [x["text"] for x in inc["lines"]] == [f"pid {inc['pid']}"]


async def test_operator_stop_and_signal_are_not_incidents(engine_factory,
                                                          tmp_path: Path) -> None:
    ext = Incidents()
    sup = await engine_factory(spec("a", child("sleeper"), tmp_path),
                               spec("b", child("sleeper"), tmp_path, restart="never"),
                               extensions=[ext])
    await wait_for(lambda: sup.services["a"].pid and sup.services["b"].pid)
    await sup.stop(["a"])
    await sup.signal("b", "TERM")
    await wait_for(lambda: sup.services["b"].state.value == "exited", what="b exited")
    assert sup.services["b"].last_exit is not None
    assert ext.book.items == []
    assert not (sup.config.settings.state_dir / FILE_NAME).exists()
    assert (await sup.snapshot())["services"][0]["incidents"] == {}


async def test_disk_failure_is_one_notice_not_a_crash(engine_factory, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a dir")
    cfg = make_config(tmp_path, crasher(tmp_path, restart="always"))
    cfg = dataclasses.replace(cfg, settings=dataclasses.replace(
        cfg.settings, state_dir=tmp_path / "file" / "state"))
    ext = Incidents()
    sup = Supervisor(cfg)
    notices: list[str] = []
    sup.bus.add_listener(lambda ev: notices.append(ev.message)
                         if isinstance(ev, Notice) and "incidents" in ev.message else None)
    sup.extensions.append(ext)
    try:
        await sup.open()
        await incidents_of(ext, 3)
        assert sup.services["a"].state.value in ("backoff", "starting", "running")
    finally:
        await sup.close()
    assert notices == [f"cannot write incidents to {tmp_path}/file/state/{FILE_NAME}: "
                       "Not a directory"]


# -- the file -------------------------------------------------------------------------
async def test_incidents_survive_a_new_engine(engine_factory, tmp_path: Path) -> None:
    cfg = make_config(tmp_path, crasher(tmp_path))
    first = Incidents()
    sup = await engine_factory(config=cfg, extensions=[first])
    (inc,) = await incidents_of(first, 1)
    assert file_lines(sup) == [inc]  # written at once: a hard kill loses nothing
    await sup.close()
    second = Incidents()
    sup2 = await engine_factory(config=cfg, extensions=[second], autostart=False)
    assert second.book.items == [inc]
    assert await sup2.query("incidents", "list", {"service": "a"}) == [inc]


async def test_corrupt_and_truncated_lines_are_skipped(engine_factory,
                                                       tmp_path: Path) -> None:
    cfg = make_config(tmp_path, spec("a", child("sleeper"), tmp_path))
    good = [{"t": 1.0 + i, "service": "a", "text": f"exit code {i}"} for i in range(3)]
    path = cfg.settings.state_dir / FILE_NAME
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(good[0]) + "\nnot json\n[1, 2]\n" + json.dumps(good[1]) +
                    "\n" + '{"t": 2, "service": 7}\n' + json.dumps(good[2]) +
                    '\n{"t": 9, "serv')
    ext = Incidents()
    await engine_factory(config=cfg, extensions=[ext], autostart=False)
    assert ext.book.items == good


def test_book_bounds_exact() -> None:
    book = IncidentBook(per_service=3, overall=5)
    for i in range(5):
        book.add({"service": "a", "t": i})
    for i in range(3):
        book.add({"service": "b", "t": 10 + i})
    book.add({"service": "c", "t": 20})
    assert [(x["service"], x["t"]) for x in book.items] == [
        ("a", 4), ("b", 10), ("b", 11), ("b", 12), ("c", 20)]
    assert [x["t"] for x in book.list("b", 2)] == [11, 12]
    assert book.list("a", 0) == [] and book.list(None, 9) == book.items


def test_file_rotates_and_loads_backup_first(tmp_path: Path) -> None:
    f = IncidentFile(tmp_path / "s" / FILE_NAME, max_bytes=0)
    size = len(json.dumps({"t": 1000, "service": "a"}, separators=(",", ":"))) + 1
    f.max_bytes = 3 * size
    for i in range(7):
        f.append({"t": 1000 + i, "service": "a"})
    assert [x["t"] for x in f.load()] == [1003, 1004, 1005, 1006]
    assert f.path.stat().st_size == size and f.backup.stat().st_size == 3 * size


async def test_memory_bounds_on_a_real_engine(engine_factory, tmp_path: Path) -> None:
    ext = Incidents(per_service=2, overall=3)
    sup = await engine_factory(crasher(tmp_path, "a", restart="always"),
                               crasher(tmp_path, "b", restart="always"), extensions=[ext])
    await wait_for(lambda: sup.services["a"].failures >= 4 and sup.services["b"].failures >= 4,
                   what="4 failures each")
    await sup.stop(["a", "b"])
    assert len(ext.book.items) == 3
    assert sorted([len(ext.book.list("a")), len(ext.book.list("b"))]) == [1, 2]
    assert len(file_lines(sup)) == sup.services["a"].failures + sup.services["b"].failures


async def test_handoff_carries_the_list(engine_factory, tmp_path: Path) -> None:
    cfg = make_config(tmp_path, crasher(tmp_path))
    first = Incidents()
    sup = await engine_factory(config=cfg, extensions=[first])
    (inc,) = await incidents_of(first, 1)
    record = json.loads(json.dumps(sup.detach()))
    second = Incidents()
    await engine_factory(config=cfg, extensions=[second], adopt=record)
    assert second.book.items == [inc]  # not twice (once adopted, once from the file)
    # where the service's current process began in its output: its incident's lines
    assert second.spawn_offsets == first.spawn_offsets == {"a": first.spawn_offsets["a"]}


# -- query, locally and over the socket -------------------------------------------------
async def test_query_and_snapshot(make_api, tmp_path: Path) -> None:
    sup, api = await make_api(crasher(tmp_path), spec("idle", child("sleeper"), tmp_path),
                              extensions=[Incidents()])
    ext = sup.extension("incidents")
    (inc,) = await incidents_of(ext, 1)
    assert await api.query("incidents", "list", {"service": "a", "n": 5}) == [inc]
    assert await api.query("incidents", "list", {"service": None}) == [inc]
    assert await api.query("incidents", "list", {"service": "idle"}) == []
    assert await api.query("incidents", "list", {"n": 0}) == []
    with pytest.raises(UnknownService):
        await api.query("incidents", "list", {"service": "nosuch"})
    for bad in ({"n": -1}, {"n": "x"}, {"service": 3}):
        with pytest.raises(ValueError):
            await api.query("incidents", "list", bad)
    with pytest.raises(ValueError):
        await api.query("incidents", "bogus", {})
    views = {s["name"]: s["incidents"] for s in (await api.snapshot())["services"]}
    assert views == {"a": {"count": 1, "last": {"time": inc["t"], "text": "exit code 3"}},
                     "idle": {}}


# -- the command line ---------------------------------------------------------------------
def expected_human(inc: dict[str, Any]) -> list[str]:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(inc["t"]))
    up = f"{inc['uptime']:.2f}s" if inc["uptime"] < 1 else f"{int(inc['uptime'])}s"
    return [f"{when}  a  crash: exit code 3 after {up} up (pid {inc['pid']}, restarts 0)",
            *(f"    out | {t}" for t in LINES_11_TO_60)]


def test_cli_with_and_without_an_engine(tmp_path: Path, engines) -> None:
    cfg = write_cfg(tmp_path, svc("a", "lines", "60", "3", "--split", "10",
                                  extra="    restart: never\n") + svc("idle", "sleeper"))
    r = cli(tmp_path, "incidents", "-c", str(cfg))
    assert (r.returncode, r.stdout) == (0, "no incidents\n"), r.stderr
    e = engines(cfg)
    e.wait_out("exit code 3")
    r = cli(tmp_path, "incidents", "--json", "-c", str(cfg))
    assert r.returncode == 0, r.stderr
    (inc,) = [json.loads(x) for x in r.stdout.splitlines()]
    assert [x["text"] for x in inc["lines"]] == LINES_11_TO_60
    assert (inc["service"], inc["code"], inc["kind"]) == ("a", 3, "crash")
    r = cli(tmp_path, "incidents", "a", "-c", str(cfg))
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout.splitlines() == expected_human(inc)
    assert cli(tmp_path, "incidents", "idle", "-c", str(cfg)).stdout == "no incidents\n"
    assert one_error_line(cli(tmp_path, "incidents", "nosuch", "-c", str(cfg))) == (
        "tui-supervisor: no such service: nosuch")
    assert e.stop() == 0
    # no engine: read from the state dir's file
    r = cli(tmp_path, "incidents", "a", "-n", "1", "-c", str(cfg))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == expected_human(inc)
    state = load_config(cfg, environ={**os.environ, "XDG_STATE_HOME": str(
        tmp_path / "xdg-state")}).settings.state_dir
    assert r.stderr == f"(no engine running: from {state / FILE_NAME})\n"
    r = cli(tmp_path, "incidents", "--json", "-c", str(cfg))
    assert [json.loads(x) for x in r.stdout.splitlines()] == [inc]
    assert one_error_line(cli(tmp_path, "incidents", "nosuch", "-c", str(cfg))) == (
        "tui-supervisor: no such service: nosuch")
    assert cli(tmp_path, "incidents", "-n", "0", "-c", str(cfg)).stdout == "no incidents\n"
