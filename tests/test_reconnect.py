"""Subscribers attached over the control socket ride out a code reload (issue 6): a real
headless engine re-executes itself, the RemoteSupervisor subscription reconnects and
carries on with every log line exactly once; the attached dashboard shows it is
reconnecting, then is live again; an engine that really stopped is given up on."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from support import (
    PY,
    ROOT,
    SIZE,
    Collector,
    Headless,
    assert_contiguous,
    cli_env,
    rows,
    settle,
    tick_lines,
    wait_for,
)

from tui_supervisor.control.client import RemoteSupervisor
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


def test_events_of_an_engine_older_than_sizes() -> None:
    """A client upgraded under a running engine gets log events and history without
    `size`: offsets are estimated from the text, and a line that was not UTF-8 makes the
    estimate inexact, so the service counts as a gap rather than a wrong replay."""
    marks = LogMarks()
    marks.from_snapshot({"services": [{"name": "a", "log_offset": 0},
                                      {"name": "b", "log_offset": 0}]})
    marks.saw({"kind": "log", "service": "a", "offset": 0, "lines": ["xy", "z"]})
    marks.saw({"kind": "log", "service": "b", "offset": 0, "lines": ["\ufffd"]})
    assert marks.marks["a"].end == 5 and marks.marks["a"].exact
    snap = {"services": [{"name": "a", "log_offset": 5}, {"name": "b", "log_offset": 2}]}
    assert marks.gaps(snap) == ["b"]  # b's one byte decoded to 3: not to be trusted
    old_history = [{k: v for k, v in x.items() if k != "size"} for x in _hist("a", 5, ["w"])]
    events, lost = marks.replay("a", old_history, upto=7)
    assert [(e["offset"], e["lines"], e["size"]) for e in events] == [(5, ["w"], 2)]
    assert lost == 0


# -- a real engine (the `engine` fixture: a headless engine on `reconnect_config`) -------
async def test_subscription_survives_a_code_reload(engine: Headless) -> None:
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
        await asyncio.to_thread(engine.wait_out, "code reloaded:")
        # the service writes on meanwhile: these lines must come back as a replay
        await control.close()
        control = await engine.ready()

        async def written_on() -> bool:
            return (await control.snapshot())["services"][0]["log_offset"] >= lost_at + 2000

        await wait_for(written_on, 30, "2000 bytes written while away", interval=0.05)
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


async def test_the_loss_is_stamped_by_the_engine_not_by_a_late_reader(
        engine: Headless) -> None:
    """A client too busy to read while the engine re-executes (CI's load) notices the
    close only after the new image is up; the "lost" item still carries the old image's
    time of leaving (its last word), so an event log sorted by time reads "went away"
    before "code reloaded"."""
    control = await engine.ready()
    client = RemoteSupervisor(engine.runtime, reconnect=Reconnect())
    it = await client.subscribe(logs=False)
    try:
        assert (await anext(it))["kind"] == "snapshot"
        asked = time.time()
        assert (await control.reload_code())["ok"]
        engine.wait_out("code reloaded:")  # blocks this loop: the reader is held back
        up = time.time()
        while (ev := await anext(it)).get("kind") != "connection":
            pass
        assert ev["state"] == "lost", ev
        assert "reloading its code" in ev["message"], ev
        assert asked <= ev["t"] < up, (asked, ev["t"], up)
    finally:
        await it.aclose()  # type: ignore[attr-defined]
        await control.close()
        await client.close()


async def test_a_stream_read_throughout_two_reloads_misses_nothing(engine: Headless) -> None:
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


async def test_gives_up_when_the_engine_stopped(engine: Headless) -> None:
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
        engine: Headless) -> None:
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
async def test_attached_dashboard_reconnects_across_a_code_reload(engine: Headless) -> None:
    from tui_supervisor.tui.app import SupervisorApp

    control = await engine.ready()
    client = RemoteSupervisor(engine.runtime, reconnect=Reconnect())
    app = SupervisorApp(client, mode="attached")
    header: list[str] = []
    try:
        async with app.run_test(size=SIZE) as pilot:
            first = await settle(pilot, lambda: rows(app).get("idle", {}).get("pid", "").strip()
                                 not in ("", "-") and rows(app), "the table")
            idle_pid = first["idle"]["pid"].strip()
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
            await asyncio.to_thread(engine.wait_out, "code reloaded:")
            await control.close()
            control = await engine.ready()
            assert (await control.restart(["idle"]))["restarted"] == ["idle"]
            snap = await control.snapshot()
            new_pid = str(next(s["pid"] for s in snap["services"] if s["name"] == "idle"))
            assert new_pid != idle_pid
            await settle(pilot, lambda: rows(app)["idle"]["pid"].strip() == new_pid,
                         "the restarted service's new pid in the table")
            seen = app.store.services["tick"].lines
            n = len(seen)
            await settle(pilot, lambda: len(seen) > n + 10, "live log lines again")
            assert app.link is None and app.is_running
    finally:
        await control.close()
        await client.close()


async def test_attached_dashboard_says_when_it_gives_up(engine: Headless) -> None:
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
async def test_logs_follow_carries_on_across_a_code_reload(engine: Headless,
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
    # one line for the reload: the reconnection says the engine went away meanwhile
    assert text.count("\n") == 1 and "reconnected to the engine after" in text, text


def test_attach_on_a_terminal_reconnects(engine: Headless, tmp_path: Path) -> None:
    """`tui-supervisor attach` on a real pty: a code reload shows the reconnect, the
    dashboard stays, `q` then "leave running" detaches with exit 0 and the engine keeps running."""
    asyncio.run(_ready_and_close(engine))
    t = engine.open_term("attach")
    try:
        t.read_until("idle")
        os.kill(engine.proc.pid, signal.SIGUSR2)
        t.read_until("reconnecting")
        t.read_until("reconnected")
        t.send("q")
        t.read_until("Leave running")
        t.send("l")
        assert t.wait() == 0
        assert engine.proc.poll() is None and engine.out.count("code reloaded:") == 1
    finally:
        t.kill()


async def _ready_and_close(engine: Headless) -> None:
    await (await engine.ready()).close()
