"""Subscribers attached over the control socket ride out a code reload (issue 6): a real
headless engine re-executes itself, the RemoteSupervisor subscription reconnects and
carries on with every log line exactly once; the attached dashboard shows it is
reconnecting, then is live again; an engine that really stopped is given up on."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import CHILDREN, kill_marked, terminate, wait_for
from test_cli import PY, ROOT, cli_env

from tui_supervisor.control.client import NotRunning, RemoteSupervisor
from tui_supervisor.control.resume import LogMarks, Reconnect, delays

pytestmark = pytest.mark.timeout(120)


# -- pure logic -------------------------------------------------------------------------
def test_delays_back_off_to_the_cap() -> None:
    it = delays(Reconnect(first_delay=0.1, factor=2, max_delay=1.0))
    assert [round(next(it), 3) for _ in range(6)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]


def _hist(service: str, start: int, texts: list[str]) -> list[dict[str, Any]]:
    out, off = [], start
    for i, text in enumerate(texts):
        out.append({"service": service, "offset": off, "t": float(i), "stream": "stdout",
                    "text": text, "size": len(text.encode()) + 1})
        off += len(text.encode()) + 1
    return out


def test_replay_starts_after_the_last_line_seen_exactly() -> None:
    """Undecodable bytes make the text longer than the bytes: the exact offset of the
    last event's first line, not the estimate, says where to resume."""
    marks = LogMarks()
    marks.from_snapshot({"services": [{"name": "a", "log_offset": 100}]})
    marks.saw({"service": "a", "offset": 100, "lines": ["\ufffd\ufffd", "b"], "size": 5})
    # the real bytes were b"\xff\xfe\n" (3) and b"b\n" (2): next line at 105, not 109
    history = [{"service": "a", "offset": 100, "t": 0.0, "stream": "stdout",
                "text": "\ufffd\ufffd", "size": 3},
               {"service": "a", "offset": 103, "t": 1.0, "stream": "stdout", "text": "b",
                "size": 2},
               {"service": "a", "offset": 105, "t": 2.0, "stream": "stderr", "text": "c",
                "size": 2},
               {"service": "a", "offset": 107, "t": 3.0, "stream": "stdout", "text": "d",
                "size": 2},
               {"service": "b", "offset": 0, "t": 3.0, "stream": "stdout", "text": "x", "size": 2}]
    assert marks.gaps({"services": [{"name": "a", "log_offset": 109}]}) == ["a"]
    events, lost = marks.replay("a", history, upto=107)
    assert [(e["offset"], e["lines"], e["stream"]) for e in events] == [(105, ["c"], "stderr")]
    assert lost == 0


def test_replay_counts_what_the_ring_no_longer_holds() -> None:
    marks = LogMarks()
    marks.from_snapshot({"services": [{"name": "a", "log_offset": 10}]})
    history = _hist("a", 40, ["x" * 9, "y" * 9])
    events, lost = marks.replay("a", history, upto=60)
    assert [e["offset"] for e in events] == [40, 50] and lost == 30
    assert marks.gaps({"services": [{"name": "a", "log_offset": 10}]}) == []


# -- a real engine ----------------------------------------------------------------------
class Engine:
    """`tui-supervisor run --headless` on a config with a fast writer (`tick`, numbered
    lines every 5 ms) and a sleeper (`idle`), runtime dir under the test's tmp dir."""

    def __init__(self, tmp: Path) -> None:
        self.runtime = tmp / "run"
        self.cfg = tmp / "tst-reconnect.yaml"
        self.cfg.write_text(
            f"settings: {{sample_interval: 0, runtime_dir: {self.runtime}}}\n"
            "services:\n"
            f"  tick:\n    command: [{PY}, {CHILDREN / 'counter.py'}, '0', '0.005']\n"
            "    start_time: 0\n"
            f"  idle:\n    command: [{PY}, {CHILDREN / 'sleeper.py'}]\n    start_time: 0\n")
        self.out_path = tmp / "engine.out"
        with open(self.out_path, "wb") as out:
            self.proc = subprocess.Popen(
                [PY, "-m", "tui_supervisor", "run", "--headless", "--quiet", "-c",
                 str(self.cfg)], stdout=out, stderr=subprocess.STDOUT,
                env={**cli_env(tmp), "PYTHONPATH": str(ROOT)}, cwd=tmp,
                start_new_session=True)

    @property
    def out(self) -> str:
        return self.out_path.read_text()

    async def ready(self) -> RemoteSupervisor:
        """A plain client, once the engine answers and both services run."""
        client = RemoteSupervisor(self.runtime)
        deadline = time.monotonic() + 30
        while True:
            try:
                snap = await client.snapshot()
                if all(s["pid"] for s in snap["services"]):
                    return client
            except NotRunning:
                pass
            assert time.monotonic() < deadline, f"engine not ready:\n{self.out}"
            assert self.proc.poll() is None, f"engine exited:\n{self.out}"
            await asyncio.sleep(0.1)

    async def wait_out(self, text: str, count: int = 1) -> None:
        await wait_for(lambda: self.out.count(text) >= count, 30, f"{text!r} in output")

    def stop(self) -> None:
        terminate(self.proc)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    e = Engine(tmp_path)
    try:
        yield e
    finally:
        e.stop()
        kill_marked()


class Collector:
    """Reads a subscription in the background into `events`."""

    def __init__(self, it: AsyncIterator[dict[str, Any]]) -> None:
        self.it = it
        self.events: list[dict[str, Any]] = []
        self.done = False
        self.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        try:
            async for ev in self.it:
                self.events.append(ev)
        finally:
            self.done = True

    def links(self) -> list[str]:
        return [ev["state"] for ev in self.events if ev.get("kind") == "connection"]

    async def close(self) -> None:
        self.task.cancel()
        with _suppress_cancel():
            await self.task
        await self.it.aclose()  # type: ignore[attr-defined]


class _suppress_cancel:
    def __enter__(self) -> None:
        return None

    def __exit__(self, t: Any, *_: Any) -> bool:
        return t is asyncio.CancelledError


def tick_lines(events: list[dict[str, Any]]) -> list[tuple[int, str]]:
    """(offset, text) of every `tick` line given, in order."""
    out = []
    for ev in events:
        if ev.get("kind") == "log" and ev["service"] == "tick":
            off = ev["offset"]
            for text in ev["lines"]:
                out.append((off, text))
                off += len(text.encode()) + 1
    return out


def assert_contiguous(lines: list[tuple[int, str]]) -> None:
    """Each line starts where the one before ended, and the counter goes up by one: no
    line lost, none twice."""
    for (o1, t1), (o2, t2) in itertools.pairwise(lines):
        assert o2 == o1 + len(t1.encode()) + 1, f"gap or repeat: {o1} {t1!r} -> {o2} {t2!r}"
        assert int(t2.split()[1]) == int(t1.split()[1]) + 1, (t1, t2)


async def test_subscription_survives_a_code_reload(engine: Engine) -> None:
    control = await engine.ready()
    client = RemoteSupervisor(engine.runtime, reconnect=Reconnect())
    it = await client.subscribe(logs=True)
    try:
        first = await anext(it)
        assert first["kind"] == "snapshot"
        events = [first]
        while len(tick_lines(events)) < 20:
            events.append(await anext(it))
        before = await control.snapshot()
        assert (await control.reload_code())["ok"]
        while True:  # up to the drop; the stream does not reconnect until asked for more
            ev = await anext(it)
            events.append(ev)
            if ev.get("kind") == "connection":
                break
        assert ev["state"] == "lost" and "reconnecting" in ev["message"]
        lost_at = tick_lines(events)[-1][0]
        await engine.wait_out("code reloaded:")
        # the service writes on meanwhile: these lines must come back as a replay
        await control.close()
        control = await engine.ready()
        deadline = time.monotonic() + 30
        while (await control.snapshot())["services"][0]["log_offset"] < lost_at + 2000:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        mark = len(events)
        while True:
            ev = await anext(it)
            events.append(ev)
            if ev.get("kind") == "connection":
                break
        assert ev["state"] == "restored" and ev["same_engine"], ev
        after = events[mark:]
        assert after[0]["kind"] == "snapshot"
        replayed = [e for e in after if e.get("replayed")]
        assert len(replayed) >= 10, "the lines written while away were replayed"
        while sum(1 for e in events[mark:] if e.get("kind") == "log"
                  and e["service"] == "tick" and not e.get("replayed")) < 10:
            events.append(await anext(it))  # live lines after the reload
        lines = tick_lines(events)
        assert_contiguous(lines)
        assert len({o for o, _ in lines}) == len(lines)
        snap = await control.snapshot()
        assert snap["engine"]["pid"] == before["engine"]["pid"] == engine.proc.pid
        assert {s["name"]: s["pid"] for s in snap["services"]} == \
            {s["name"]: s["pid"] for s in before["services"]}
    finally:
        await it.aclose()  # type: ignore[attr-defined]
        await control.close()
        await client.close()


async def test_a_stream_read_throughout_two_reloads_misses_nothing(engine: Engine) -> None:
    """The ordinary case: the subscriber keeps reading; SIGUSR2 twice."""
    control = await engine.ready()
    client = RemoteSupervisor(engine.runtime, reconnect=Reconnect())
    c = Collector(await client.subscribe(logs=True))
    try:
        await wait_for(lambda: len(tick_lines(c.events)) > 20, 30, "first lines")
        for i in (1, 2):
            os.kill(engine.proc.pid, signal.SIGUSR2)
            await wait_for(lambda i=i: c.links().count("restored") == i, 30,
                           f"restored x{i}")
        n = len(tick_lines(c.events))
        await wait_for(lambda: len(tick_lines(c.events)) > n + 20, 30, "lines after")
        assert c.links() == ["lost", "restored", "lost", "restored"]
        assert_contiguous(tick_lines(c.events))
        assert engine.out.count("code reloaded:") == 2
    finally:
        await c.close()
        await control.close()
        await client.close()


async def test_gives_up_when_the_engine_stopped(engine: Engine) -> None:
    control = await engine.ready()
    await control.close()
    client = RemoteSupervisor(engine.runtime, reconnect=Reconnect(give_up_after=30))
    c = Collector(await client.subscribe(logs=True))
    try:
        await wait_for(lambda: c.events, 30, "the snapshot")
        t0 = time.monotonic()
        await asyncio.to_thread(engine.stop)
        await wait_for(lambda: c.done, 20, "the stream to end")
        took = time.monotonic() - t0
        assert c.links() == ["lost", "gave_up"], c.links()
        assert c.events[-1]["message"] == "the engine stopped: not reconnecting"
        assert took < 10, took
    finally:
        await c.close()
        await client.close()


async def test_gives_up_after_the_bound_while_the_lock_names_a_live_process(
        engine: Engine) -> None:
    """A lock that still names a live process (here: this test's) but no socket: the
    client retries, then gives up after `give_up_after`."""
    control = await engine.ready()
    await control.close()
    client = RemoteSupervisor(engine.runtime, reconnect=Reconnect(give_up_after=3))
    it = await client.subscribe(logs=True)
    try:
        assert (await anext(it))["kind"] == "snapshot"
        stopping = asyncio.ensure_future(asyncio.to_thread(engine.stop))
        while (ev := await anext(it)).get("kind") != "connection":
            pass
        assert ev["state"] == "lost"
        t0 = time.monotonic()
        await stopping  # the engine is gone, its lock file emptied
        (engine.runtime / "engine.lock").write_text(f"{os.getpid()}\n")
        ev = await anext(it)
        took = time.monotonic() - t0
        assert ev["state"] == "gave_up"
        assert ev["message"] == "the engine did not come back within 3s: not reconnecting"
        assert 2.0 <= took < 15, took  # the last wait (<= max_delay) would pass the bound
        with pytest.raises(StopAsyncIteration):
            await anext(it)
    finally:
        await it.aclose()  # type: ignore[attr-defined]
        await client.close()


# -- the attached dashboard -------------------------------------------------------------
async def test_attached_dashboard_reconnects_across_a_code_reload(engine: Engine) -> None:
    from test_tui_app import SIZE, rows, settle

    from tui_supervisor.tui.app import SupervisorApp

    control = await engine.ready()
    client = RemoteSupervisor(engine.runtime, reconnect=Reconnect())
    app = SupervisorApp(client, mode="attached")
    header: list[str] = []
    try:
        async with app.run_test(size=SIZE) as pilot:
            first = await settle(pilot, lambda: rows(app).get("idle", [""] * 3)[2].strip()
                                 not in ("", "-") and rows(app), "the table")
            idle_pid = first["idle"][2].strip()
            on_link = app._on_link

            def seen_link(ev: dict[str, Any]) -> None:  # the header as each state left it
                on_link(ev)  # (a reload can be over between two polls: record, not poll)
                header.append(f"{ev.get('state')}: {app._widgets[3]._text}")

            app._on_link = seen_link  # type: ignore[method-assign]
            assert (await control.reload_code())["ok"]
            await wait_for(lambda: any(h.startswith("restored") for h in header), 30,
                           "lost, then restored")
            lost = next(h for h in header if h.startswith("lost"))
            assert "engine reloading - reconnecting…" in lost
            await settle(pilot, lambda: app.link is None, "reconnected")
            await settle(pilot, lambda: "reconnecting" not in app._widgets[3]._text)
            await engine.wait_out("code reloaded:")
            await control.close()
            control = await engine.ready()
            assert (await control.restart(["idle"]))["restarted"] == ["idle"]
            snap = await control.snapshot()
            new_pid = str(next(s["pid"] for s in snap["services"] if s["name"] == "idle"))
            assert new_pid != idle_pid
            await settle(pilot, lambda: rows(app)["idle"][2].strip() == new_pid,
                         "the restarted service's new pid in the table")
            seen = app.store.services["tick"].lines
            n = len(seen)
            await settle(pilot, lambda: len(seen) > n + 10, "live log lines again")
            assert app.link is None and app.is_running
    finally:
        await control.close()
        await client.close()


async def test_attached_dashboard_says_when_it_gives_up(engine: Engine) -> None:
    from test_tui_app import SIZE, settle

    from tui_supervisor.tui.app import SupervisorApp

    control = await engine.ready()
    await control.close()
    client = RemoteSupervisor(engine.runtime, reconnect=Reconnect())
    app = SupervisorApp(client, mode="attached")
    try:
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, lambda: app.store.services, "the snapshot")
            await asyncio.to_thread(engine.stop)
            await settle(pilot, lambda: app.link and app.link.startswith("disconnected"),
                         "gave up")
            assert app.link == "disconnected: the engine stopped: not reconnecting"
            await settle(pilot, lambda: app.link in app._widgets[3]._text)
            assert any(n.message == app.link for n in app._notifications)
    finally:
        await client.close()


# -- a streaming CLI verb ---------------------------------------------------------------
async def test_logs_follow_carries_on_across_a_code_reload(engine: Engine,
                                                           tmp_path: Path) -> None:
    """`logs -f` prints every line once, in order, through the reload, and says it
    reconnected."""
    control = await engine.ready()
    out, err = tmp_path / "follow.out", tmp_path / "follow.err"
    with open(out, "wb") as o, open(err, "wb") as e:
        cli = subprocess.Popen(
            [PY, "-m", "tui_supervisor", "logs", "-f", "-n", "5", "tick", "-c",
             str(engine.cfg)], stdout=o, stderr=e,
            env={**cli_env(tmp_path), "PYTHONPATH": str(ROOT)}, cwd=tmp_path)
    try:
        def count() -> int:
            return out.read_text().count("\n")

        await wait_for(lambda: count() > 20, 30, "followed lines")
        assert (await control.reload_code())["ok"]
        await wait_for(lambda: "reconnected to the engine" in err.read_text(), 30,
                       "the reconnect said")
        n = count()
        await wait_for(lambda: count() > n + 20, 30, "lines after the reload")
        assert cli.poll() is None
    finally:
        cli.send_signal(signal.SIGINT)
        try:
            cli.wait(30)
        except subprocess.TimeoutExpired:
            cli.kill()
            cli.wait()
        await control.close()
    numbers = [int(line.split()[3]) for line in out.read_text().splitlines()
               if line.startswith("tick")]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers))), \
        "every line exactly once, in order"
    text = err.read_text()
    assert "engine went away (reloading?): reconnecting…" in text and "Traceback" not in text


def test_attach_on_a_terminal_reconnects(engine: Engine, tmp_path: Path) -> None:
    """`tui-supervisor attach` on a real pty: a code reload shows the reconnect, the
    dashboard stays, `q` detaches with exit 0 and the engine keeps running."""
    from test_tui_terminal import Term

    asyncio.run(_ready_and_close(engine))
    env = {**cli_env(tmp_path), "PYTHONPATH": str(ROOT)}
    t = Term([PY, "-m", "tui_supervisor", "attach", "-c", str(engine.cfg)], env, tmp_path)
    try:
        t.read_until("idle")
        os.kill(engine.proc.pid, signal.SIGUSR2)
        t.read_until("reconnecting")
        t.read_until("reconnected")
        t.send("q")
        assert t.wait() == 0
        assert engine.proc.poll() is None and engine.out.count("code reloaded:") == 1
    finally:
        t.kill()


async def _ready_and_close(engine: Engine) -> None:
    await (await engine.ready()).close()
