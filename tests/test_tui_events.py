"""The event log: the formatter (pure), the `e` screen against real engines (hosted and
attached: config reloads, a crash, an invalid edit, crashes from before the UI) and a
picture of it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from conftest import child, kill_marked, spec, wait_for
from support import (
    SIZE,
    SNAPSHOT,
    T0,
    Dashboard,
    FixedAPI,
    config,
    rows,
    running,
    settle,
    settle_picture,
)

from tui_supervisor.metrics.incidents import Incidents
from tui_supervisor.tui.app import SupervisorApp
from tui_supervisor.tui.eventlog import (
    Entry,
    EventLog,
    clock_time,
    connected,
    format_event,
    format_incident,
    reload_summary,
)
from tui_supervisor.tui.screens.events import EventsScreen


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()


# -- the formatter ---------------------------------------------------------------------
def _fmt(**ev: Any) -> tuple[str, str, str] | None:
    e = format_event({"t": T0, **ev})
    return None if e is None else (e.level, e.who, e.text)


def test_config_reload_lines() -> None:
    assert _fmt(kind="notice", level="info", message="config reloaded: added z, y, "
                "removed b, restarted a, in_place c", topic="config_reloaded",
                data={"added": ["z", "y"], "removed": ["b"], "restarted": ["a"],
                      "in_place": ["c"]}) == (
        "success", "supervisor",
        "config reloaded: added z, y; removed b; restarted a; changed in place c")
    assert _fmt(kind="notice", level="info", message="config reloaded: nothing changed",
                topic="config_reloaded", data={"added": [], "removed": [], "restarted": [],
                                               "in_place": []}
                )[2] == "config reloaded: nothing changed"
    assert _fmt(kind="notice", level="info", message="config reloaded: settings x",
                topic="config_reloaded", data={"added": [], "settings": ["metrics_listen"]}
                )[2] == "config reloaded: settings changed: metrics_listen"
    err = "config not reloaded: /srv/cfg.yaml:3:14: services.a.restart: unknown value"
    assert _fmt(kind="notice", level="error", message=err, topic="config_invalid",
                data={"errors": [err.removeprefix("config not reloaded: ")]}
                ) == ("error", "supervisor", err)


def test_reload_summary_is_made_from_the_data_not_the_text() -> None:
    """The words come from the notice's data: a message worded otherwise (another
    version's) does not change them, and one without data is shown as it is."""
    assert reload_summary({}) == "config reloaded: nothing changed"
    assert _fmt(kind="notice", level="info", message="config was reloaded (a, c)",
                topic="config_reloaded", data={"added": ["a"], "in_place": ["c"]}
                )[2] == "config reloaded: added a; changed in place c"
    assert _fmt(kind="notice", level="info", message="config reloaded: added x",
                topic="config_reloaded")[2] == "config reloaded: added x"
    assert _fmt(kind="notice", level="info", message="config reloaded: added x",
                topic="general") == ("info", "supervisor", "config reloaded: added x")


def test_code_reload_lines() -> None:
    ok = ("code reloaded: pid 7 carries on with 3 services, none restarted; pipes unread "
          "for 174 ms")
    assert _fmt(kind="notice", level="info", message=ok, topic="code_reloaded") == (
        "success", "supervisor", ok)
    bad = "code not reloaded: app.py:3: SyntaxError: invalid syntax"
    assert _fmt(kind="notice", level="error", message=bad, topic="code_refused") == (
        "error", "supervisor", bad)


def test_lifecycle_lines() -> None:
    st = {"kind": "state", "service": "web", "old": "stopped"}
    assert _fmt(**st, new="starting", pid=42, reason="started by operator") == (
        "info", "web", "started pid 42 (started by operator)")
    assert _fmt(**st, new="running", pid=42, reason="started") is None  # at once
    assert _fmt(**st, new="running", pid=42, reason="up for 1s") == (
        "dim", "web", "running (up for 1s)")
    assert _fmt(**st, new="backoff", pid=None, reason="exit code 1; restarting in 0.40s"
                ) == ("warning", "web", "backoff: exit code 1; restarting in 0.40s")
    assert _fmt(**st, new="fatal", pid=None, reason="crash loop: 5 failures in 60s") == (
        "error", "web", "fatal: crash loop: 5 failures in 60s")
    assert _fmt(**st, new="backoff", pid=None, reason="exit code 1; restarting in 30.00s",
                crash_looping=True) == (
        "error", "web", "crash-loop: exit code 1; restarting in 30.00s")
    assert _fmt(**st, new="stopped", pid=None, reason="stopped by operator") == (
        "info", "web", "stopped (stopped by operator)")
    assert _fmt(**st, new="stopping", pid=42, reason="stopped by operator") is None
    assert _fmt(**st, new="completed", pid=None, reason="exit code 0") == (
        "success", "web", "completed (exit code 0)")
    ex = {"kind": "exit", "service": "web", "pid": 42, "uptime": 1.2}
    assert _fmt(**ex, code=3, signal=None, requested=False, failure=True) == (
        "error", "web", "exited: exit code 3 after 1.20s (pid 42)")
    assert _fmt(**ex, code=None, signal=9, requested=False, failure=True)[2] == \
        "exited: killed by SIGKILL after 1.20s (pid 42)"
    assert _fmt(**ex, code=None, signal=15, requested=True, failure=False) == (
        "dim", "web", "exited as asked: killed by SIGTERM after 1.20s (pid 42)")
    assert _fmt(**ex, code=0, signal=None, requested=False, failure=False)[0] == "info"
    # a spawn that failed: nothing ran, the engine's words say why
    assert _fmt(kind="exit", service="web", pid=0, uptime=0.0, code=None, signal=None,
                requested=False, failure=True, cause="spawn",
                detail="cannot spawn: command not found: nope") == (
        "error", "web", "exited: cannot spawn: command not found: nope")


@pytest.mark.parametrize(("health", "output", "entry"), [
    ("ready", "200 OK", ("success", "api", "ready")),
    ("unready", "503 Service Unavailable\n{\"db\": \"down\"}",
     ("warning", "api", "unready: 503 Service Unavailable")),  # its first line
    ("unready", "", ("warning", "api", "unready")),
    ("unready", "x" * 5000, ("warning", "api", "unready: " + "x" * 200)),  # bounded
    ("starting", "", ("dim", "api", "starting")),
    (None, "", None),  # no process: its state change says it
])
def test_health_lines(health: str | None, output: str, entry: tuple[str, ...] | None
                      ) -> None:
    assert _fmt(kind="health", service="api", health=health, probe="readiness",
                output=output) == entry


def test_waiting_lines() -> None:
    st = {"kind": "state", "service": "worker", "old": "stopped", "new": "waiting",
          "pid": None}
    assert _fmt(**st, reason="waiting for db (ready)") == (
        "info", "worker", "waiting for db (ready)")
    assert _fmt(**st, reason="") == ("info", "worker", "waiting")


def test_notices_and_what_is_left_out() -> None:
    assert _fmt(kind="notice", level="warning", message="cannot write x", service="web"
                ) == ("warning", "web", "cannot write x")
    assert _fmt(kind="notice", level="shout", message="?")[0] == "info"
    assert _fmt(kind="notice", level="error", service="web", topic="crash_loop",
                message="crash loop, giving up: crash loop: 5 failures") is None
    assert _fmt(kind="notice", level="error", service="web", topic="crash_loop",
                message="crash loop: 5 failures", data={"crash_looping": True}) is None
    # the end of a crash loop has no state change to say it
    assert _fmt(kind="notice", level="info", service="web", topic="crash_loop",
                message="recovered from its crash loop: up 31s",
                data={"crash_looping": False, "give_up": False}) == (
        "info", "web", "recovered from its crash loop: up 31s")
    assert _fmt(kind="log", service="web", lines=["x"]) is None
    assert _fmt(kind="spawn", service="web", pid=3, auto=True) is None
    assert _fmt(kind="snapshot") is None


def test_entry_line_has_local_time() -> None:
    e = Entry(T0, "info", "web", "started pid 4")
    assert e.line() == f"{time.strftime('%H:%M:%S', time.localtime(T0))} web: started pid 4"
    assert clock_time(T0) == "14:13:20"  # TZ=UTC here
    inc = {"t": T0, "service": "w", "pid": 9, "code": 3, "signal": None, "uptime": 12.5,
           "kind": "crash"}
    assert format_incident(inc).text == "crashed: exit code 3 after 12s (pid 9)"
    assert format_incident({**inc, "kind": "failed start"}).text.startswith("failed to")
    spawn = {**inc, "kind": "failed start", "pid": 0, "code": None, "cause": "spawn",
             "detail": "cannot spawn: command not found: nope"}
    assert format_incident(spawn).text == "failed to start: cannot spawn: command not found: nope"
    assert "engine pid 4242 (4 services)" in connected(T0, SNAPSHOT).text
    assert connected(T0, SNAPSHOT, again=True).text.startswith("reconnected")


def test_event_log_is_bounded_and_merges_history() -> None:
    log = EventLog(maxlen=3)
    for i in range(5):
        log.add({"kind": "notice", "t": T0 + i, "level": "info", "message": f"m{i}"})
    log.add({"kind": "log", "t": T0, "service": "a", "lines": ["x"]})
    assert [e.text for e in log.entries] == ["m2", "m3", "m4"] and log.added == 5
    assert [e.text for e in log.since(3)] == ["m3", "m4"]
    assert [e.text for e in log.since(0)] == ["m2", "m3", "m4"]  # the rest were dropped
    assert log.since(5) == []
    log.add_history([Entry(T0 + 3.5, "error", "a", "h")])
    assert [e.text for e in log.entries] == ["m3", "h", "m4"] and log.rebuilt == 1
    log.add_history([Entry(T0 + 3.5, "error", "a", "h"), log.entries[0]])  # seen already
    assert [e.text for e in log.entries] == ["m3", "h", "m4"] and log.rebuilt == 1


# -- the screen against real engines ----------------------------------------------------
def shown(app: SupervisorApp) -> str:
    screen = app.screen
    return "\n".join(screen.lines()) if isinstance(screen, EventsScreen) else ""


async def test_config_reload_shows_in_the_event_log(make_app, tmp_path: Path) -> None:
    sup, app = await make_app(spec("a", child("sleeper"), tmp_path),
                              spec("b", child("sleeper"), tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: len(rows(app)) == 2 and
                     all(s.pid for s in sup.services.values()))
        sup.config.path.write_text(
            f"services:\n  a: {{command: {list(child('sleeper'))}, start_time: 0}}\n"
            f"  z: {{command: {list(child('sleeper'))}, start_time: 0}}\n")
        await pilot.press("R")
        await settle(pilot, lambda: "z" in rows(app), "z in the table")
        await pilot.press("e")
        await settle(pilot, lambda: isinstance(app.screen, EventsScreen))
        text = await settle(pilot, lambda: "config reloaded" in shown(app) and shown(app),
                            "the reload line")
        line = next(x for x in text.splitlines() if "config reloaded" in x)
        assert "added z" in line and "removed b" in line, line
        assert f"started pid {sup.services['z'].pid}" in text
        assert "connected to engine pid" in text.splitlines()[0]
        await pilot.press("escape")
        await settle(pilot, lambda: not isinstance(app.screen, EventsScreen), "closed")
        await pilot.press("e")
        await settle(pilot, lambda: "config reloaded" in shown(app), "reopened")
        await pilot.press("e")  # the same key closes it
        await settle(pilot, lambda: not isinstance(app.screen, EventsScreen), "closed")


async def test_crash_and_invalid_edit_show_while_open(make_app, tmp_path: Path) -> None:
    sup, app = await make_app(spec("a", child("sleeper"), tmp_path),
                              spec("c", child("crash", "3", "0.5"), tmp_path,
                                   restart="never"))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: len(rows(app)) == 2)
        await pilot.press("e")  # open first: new entries arrive while it is shown
        await settle(pilot, lambda: isinstance(app.screen, EventsScreen))
        text = await settle(pilot, lambda: "exited: exit code 3" in shown(app) and
                            shown(app), "c's exit line")
        line = next(x for x in text.splitlines() if "exited: exit code 3" in x)
        assert line.split()[1] == "c" and "(pid " in line, line
        sup.config.path.write_text("services:\n  a: {command: [x], restart: sometimes}\n")
        r = await app.api.reload()
        assert not r["ok"]
        text = await settle(pilot, lambda: "config not reloaded" in shown(app) and
                            shown(app), "the error line")
        line = next(x for x in text.splitlines() if "config not reloaded" in x)
        assert f"{sup.config.path.name}:2:" in line and "restart" in line, line


async def test_crashes_before_the_ui_are_shown(engine_factory, tmp_path: Path) -> None:
    inc = Incidents()
    sup = await engine_factory(spec("a", child("sleeper"), tmp_path),
                               spec("c", child("crash", "4"), tmp_path, restart="never"),
                               extensions=[inc])
    await wait_for(lambda: inc.book.list("c"), what="c's incident")
    app = SupervisorApp(sup, mode="hosted")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: len(rows(app)) == 2)
        await pilot.press("e")
        text = await settle(pilot, lambda: "crashed: exit code 4" in shown(app) and
                            shown(app), "the earlier crash")
        lines = text.splitlines()
        assert "crashed" in lines[0] and "connected to engine" in lines[1], lines
        assert sum("exit code 4" in x for x in lines) == 1  # not also as a live event


async def test_notices_before_the_ui_are_shown(make_app, tmp_path: Path) -> None:
    sup, app = await make_app(spec("a", child("sleeper"), tmp_path))
    sup.config.path.write_text("services:\n  a: {command: [x], restart: sometimes}\n")
    assert not (await sup.reload())["ok"]  # before the UI: the engine keeps the notice
    stream = await sup.subscribe(logs=False)
    first = await anext(stream)
    await stream.aclose()  # type: ignore[attr-defined]
    assert "config not reloaded" in first["notices"][-1]["message"]
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: rows(app).get("a"))
        await pilot.press("e")
        text = await settle(pilot, lambda: "connected to engine" in shown(app) and
                            shown(app), "the log")
        lines = text.splitlines()
        at = next(i for i, x in enumerate(lines) if "connected to engine" in x)
        assert any("config not reloaded" in x and f"{sup.config.path.name}:2:" in x
                   for x in lines[:at]), lines
        assert app.config_error is None  # history is shown, not acted on


async def test_scrolled_up_stays_put_at_the_end_follows() -> None:
    app = SupervisorApp(EventfulAPI(), mode="attached",  # type: ignore[arg-type]
                        clock=lambda: 1000.0, wall_clock=lambda: T0 - 50)

    def more(n: int, tag: str) -> None:
        for i in range(n):
            app.events.append(Entry(T0 + i, "info", "web", f"{tag} {i}"))

    async with app.run_test(size=(100, 20)) as pilot:
        await settle(pilot, lambda: app.events.added >= len(EVENTS) + 2, "the story")
        more(100, "first")
        await pilot.press("e")
        view = (await settle(pilot, lambda: isinstance(app.screen, EventsScreen) and
                             app.screen)).view
        await settle(pilot, lambda: view.max_scroll_y > 0 and
                     view.scroll_y == view.max_scroll_y, "newest at the bottom")
        await pilot.press("home")
        await settle(pilot, lambda: view.scroll_y == 0, "scrolled to the top")
        more(5, "second")
        await settle(pilot, lambda: "second 4" in shown(app), "new entries in the view")
        await pilot.pause(0.3)  # a scroll to the end would come after a refresh
        assert view.scroll_y == 0  # reading old entries: not yanked to the end
        await pilot.press("end")
        await settle(pilot, lambda: view.scroll_y == view.max_scroll_y, "at the end")
        more(5, "third")
        await settle(pilot, lambda: "third 4" in shown(app) and
                     view.scroll_y == view.max_scroll_y, "following again")


@pytest.mark.timeout(120)
def test_code_reload_under_the_dashboard_is_in_its_event_log(tmp_path: Path) -> None:
    """The hosted dashboard is re-executed with the engine: the new one was not there when
    the new image said "code reloaded", and shows it all the same (the engine kept it)."""
    e = Dashboard(tmp_path, config(tmp_path))
    t = e.term
    try:
        t.read_until("tick")
        first = running(e)
        t.out = b""
        r = e.cli("reload", "--code")
        assert r.returncode == 0, r.stderr
        t.read_until("tick")  # the new dashboard (keys typed while it starts are lost)
        line = f"code reloaded: pid {first['engine']['pid']} carries on"
        for _ in range(10):
            t.out = b""
            t.send("e")
            with contextlib.suppress(AssertionError):
                t.read_until(line, timeout=3)
                break
        else:
            raise AssertionError(f"{line!r} never in the event log")
        t.out = b""
        t.send("q")
        t.read_until("tick")  # q closed the event log, not the app
        t.send("q")
        t.read_until("Stop all (s)")
        t.send("s")
        assert t.wait() == 0
    finally:
        e.stop()
        kill_marked()


async def test_a_new_subscription_fills_the_gap_once(engine_factory, tmp_path: Path
                                                     ) -> None:
    """The stream is replaced (as a reconnect does): a notice and a crash seen live are
    not shown twice; a crash while away shows up once, before "reconnected"."""
    inc = Incidents()
    sup = await engine_factory(spec("a", child("sleeper"), tmp_path),
                               spec("b", child("sleeper"), tmp_path, restart="never"),
                               spec("c", child("sleeper"), tmp_path, restart="never"),
                               extensions=[inc])
    app = SupervisorApp(sup, mode="hosted")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: len(rows(app)) == 3 and sup.services["c"].pid and
                     sup.services["b"].pid)
        sup.config.path.write_text("services:\n  a: {command: [x], restart: sometimes}\n")
        assert not (await sup.reload())["ok"]
        os.kill(sup.services["b"].pid, signal.SIGKILL)
        await settle(pilot, lambda: any("config not reloaded" in e.text
                                        for e in app.events.entries) and
                     any(e.who == "b" and "SIGKILL" in e.text for e in app.events.entries),
                     "seen live")
        app.workers.cancel_group(app, "events")  # away
        await settle(pilot, lambda: not [w for w in app.workers if w.group == "events"
                                         and not w.is_finished], "stream gone")
        os.kill(sup.services["c"].pid, signal.SIGKILL)
        await wait_for(lambda: inc.book.list("c"), what="c's incident")
        app._follow_events()  # back
        await pilot.press("e")
        text = await settle(pilot, lambda: "reconnected" in shown(app) and
                            "crashed: killed by SIGKILL" in shown(app) and shown(app),
                            "the gap filled")
        lines = text.splitlines()
        assert sum("config not reloaded" in x for x in lines) == 1, lines
        assert sum("exited: killed by SIGKILL" in x for x in lines) == 1, lines  # b, live
        assert sum("crashed: killed by SIGKILL" in x for x in lines) == 1, lines  # c
        crash = next(i for i, x in enumerate(lines) if "crashed: killed" in x)
        assert lines[crash].split()[1] == "c", lines[crash]
        assert "reconnected" in lines[crash + 1] and "connected" in lines[0], lines


@pytest.mark.timeout(120)
async def test_attached_reconnect_across_a_code_reload(engine) -> None:
    """Attached with reconnecting on: the log says the engine went away, the new image's
    "code reloaded" (sent before this client was back) and "reconnected", in order."""
    from tui_supervisor.control.client import RemoteSupervisor
    from tui_supervisor.control.resume import Reconnect

    control = await engine.ready()
    client = RemoteSupervisor(engine.runtime, reconnect=Reconnect())
    app = SupervisorApp(client, mode="attached")
    try:
        async with app.run_test(size=SIZE) as pilot:
            snap = await settle(pilot, lambda: app.store.engine.get("pid") and
                                app.store.engine, "the snapshot")
            assert (await control.reload_code())["ok"]
            # (no wait for the header's transient "reconnecting": a reload can be over
            # between two looks; the log's entries stay)
            await pilot.press("e")
            want = ["connected to engine", "went away", f"code reloaded: pid {snap['pid']}",
                    "reconnected to engine"]

            def in_order() -> list[str] | None:
                lines = [x for x in shown(app).splitlines()
                         if any(w in x for w in want)]
                return lines if [next(w for w in want[::-1] if w in x) for x in lines] == want \
                    else None

            try:
                await settle(pilot, in_order, f"{want} in order")
            except AssertionError:
                raise AssertionError(shown(app)) from None
    finally:
        await control.close()
        await client.close()


# -- the picture ------------------------------------------------------------------------
EVENTS: list[dict[str, Any]] = [
    {"kind": "state", "t": T0 - 40, "service": "worker", "old": "running", "new": "backoff",
     "pid": None, "reason": "exit code 3; restarting in 3.20s"},
    {"kind": "notice", "t": T0 - 30, "level": "info", "topic": "config_changed",
     "message": "cfg.yaml changed: reloading the config", "data": {"files": ["cfg.yaml"]}},
    {"kind": "notice", "t": T0 - 30, "level": "error", "topic": "config_invalid", "message":
     "config not reloaded: /srv/app/tui-supervisor.yaml:7:14: services.web.restart: "
     "'sometimes' is not one of always, on-failure, never",
     "data": {"errors": ["/srv/app/tui-supervisor.yaml:7:14: services.web.restart: "
                         "'sometimes' is not one of always, on-failure, never"]}},
    {"kind": "notice", "t": T0 - 20, "level": "info", "topic": "config_reloaded",
     "message": "config reloaded: added chatty, removed old-api, in_place web",
     "data": {"added": ["chatty"], "removed": ["old-api"], "restarted": [],
              "in_place": ["web"]}},
    {"kind": "state", "t": T0 - 20, "service": "chatty", "old": "stopped",
     "new": "starting", "pid": 4303, "reason": "autostart"},
    {"kind": "exit", "t": T0 - 10, "service": "nightly", "pid": 4310, "code": 1,
     "signal": None, "requested": False, "failure": True, "uptime": 0.31},
    {"kind": "state", "t": T0 - 10, "service": "nightly", "old": "running", "new": "fatal",
     "pid": None, "reason": "crash loop: 5 failures in 60s (last: exit code 1)"},
    {"kind": "notice", "t": T0 - 5, "level": "info", "topic": "code_reloaded", "message":
     "code reloaded: pid 4242 carries on with 4 services, none restarted; pipes unread "
     "for 174 ms", "data": {"pid": 4242, "services": 4, "pipes_unread_ms": 174,
                            "safe_mode": None}},
    {"kind": "exit", "t": T0 - 2, "service": "web", "pid": 4301, "code": None,
     "signal": 15, "requested": True, "failure": False, "uptime": 3723.0},
    {"kind": "state", "t": T0 - 2, "service": "web", "old": "stopping", "new": "stopped",
     "pid": None, "reason": "stopped by operator"},
]


class EventfulAPI(FixedAPI):
    """The fixed story, with events after the snapshot and a notice before it."""

    async def subscribe(self, *, logs: bool = True) -> AsyncIterator[dict[str, Any]]:
        snap = {**SNAPSHOT, "engine": {**SNAPSHOT["engine"], "started_at": T0 - 3725.0,
                                       "uptime": 3725.0 - 50},
                "notices": [{"kind": "notice", "t": T0 - 3725.0 + 1, "level": "warning",
                             "message": "pidfd_open is not available: exits are detected "
                             "via SIGCHLD", "service": None}]}

        async def stream() -> AsyncIterator[dict[str, Any]]:
            yield {"kind": "snapshot", **snap}
            for ev in EVENTS:
                yield ev
            await asyncio.Event().wait()

        return stream()


def test_snapshot_event_log(snap_compare: Any) -> None:
    async def run_before(pilot: Any) -> None:
        await settle_picture(pilot)
        await pilot.press("e")
        await settle_picture(pilot)

    app = SupervisorApp(EventfulAPI(), mode="attached",  # type: ignore[arg-type]
                        clock=lambda: 1000.0, wall_clock=lambda: T0 - 50)
    assert snap_compare(app, terminal_size=(140, 30), run_before=run_before)
