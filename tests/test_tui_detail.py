"""The detail pane over a real engine (graphs from the real sampler, incidents from real
crashes, sampling off), its layout at 80x24 and 200x60, the graph drawing exactly, and the
help screen. Snapshot pictures use a fixed data source (a hand-built store and history)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import child, make_config, spec, wait_for
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widget import Widget
from textual.widgets import Static

from tui_supervisor.control.verbs import fmt_bytes, fmt_percent
from tui_supervisor.engine.supervisor import Supervisor
from tui_supervisor.metrics import attach_metrics
from tui_supervisor.tui.screens.help import OTHER_KEYS, HelpScreen
from tui_supervisor.tui.store import Store
from tui_supervisor.tui.widgets.detail import (
    GUTTER,
    DetailPane,
    DetailPart,
    chart_section,
    header,
)

FAST = 0.1


class Harness(App[None]):
    def __init__(self, api: Any, store: Store, **kw: Any) -> None:
        super().__init__()
        self.api, self.store, self.kw = api, store, kw

    def compose(self) -> ComposeResult:
        yield DetailPane(self.api, self.store, id="detail", **self.kw)


async def engine(engine_factory: Callable[..., Any], tmp_path: Path, *specs: Any,
                 interval: float = FAST, metrics: bool = True) -> Supervisor:
    cfg = make_config(tmp_path, *specs)
    cfg = dataclasses.replace(cfg, settings=dataclasses.replace(cfg.settings,
                                                                sample_interval=interval))
    exts = attach_metrics(Supervisor(cfg)) if metrics else []  # the layers, not yet opened
    sup: Supervisor = await engine_factory(config=cfg, extensions=exts)
    return sup


async def loaded(sup: Supervisor) -> Store:
    st = Store()
    st.load_snapshot(await sup.snapshot())
    return st


def part_text(app: App[Any], part: str, strip: bool = True) -> list[str]:
    """The rendered lines of one part of the pane (all of it, scrolled into view or not)."""
    w = app.query_one(f"#detail-{part}", DetailPart)
    lines = [w.render_line(y).text for y in range(w.size.height)]
    return [x.rstrip() for x in lines] if strip else lines


def screen_text(app: App[Any]) -> list[str]:
    """What the terminal shows."""
    return [s.text.rstrip() for s in app.screen._compositor.render_strips()]


async def show(app: App[Any], pilot: Any, name: str) -> DetailPane:
    pane = app.query_one(DetailPane)
    pane.show(name)
    await pane.refresh_data()
    await pilot.pause()
    return pane


# -- drawing, exactly ----------------------------------------------------------------------
HIST = {"series": {"cpu_percent": [10.0, None, 40.0, 12.5],
                   "rss_bytes": [50 << 20, None, 52 << 20, 48 << 20], "procs": [1, 0, 1, 1],
                   "probe_readiness_seconds": [None, None, 0.004, 0.002],
                   "ready": [None, None, 0.0, 1.0]},
        "interval": 1.0, "t_last": 100.0, "marks": [[98.5, "failure"], [99.0, "restart"]]}


@pytest.mark.parametrize("state, reason, shown", [
    ("running", "up for 1s", "web  running   pid 42   up 5m"),
    ("running", "adopted after a code reload", "web  running (adopted after a code reload)"),
    ("stopped", "stopped by operator", "web  stopped (stopped by operator)"),
    ("waiting", "waiting for db (ready)", "web  waiting for db (ready)"),
])
def test_the_header_leaves_out_how_it_became_running(state: str, reason: str, shown: str
                                                     ) -> None:
    """The engine's reason for running is "up for <start_time>": beside the uptime it
    read as a second, wrong uptime."""
    view = {"name": "web", "state": state, "reason": reason, "pid": 42, "uptime": 300.0}
    assert str(header(view, 0.0)).startswith(shown)


def test_chart_section_all_history_with_probes_and_marks() -> None:
    assert chart_section(HIST, None, 12, 2).plain.split("\n") == [
        "Charts · all kept history (4s)  w → 1m",
        "CPU 12.5%  max 40.0%",
        "  40.0%┤  ⣿ ",
        "   0.0%┤⣤ ⣿⣤",   # the gap (process down) blank, its neighbours sampled
        "MEM 48.0M  max 52.0M",
        "  52.0M┤⣿ ⣿⣶",
        "     0B┤⣿ ⣿⣿",
        "readiness probe 2ms  max 4ms",  # probe charts: half the rows (at least one)
        "    4ms┤  ⣿⣤",
        "  ready│  ▁█",
        "     ↻✖│  ✖↻",
        "         now"]


def test_chart_section_a_window_longer_than_the_history() -> None:
    lines = chart_section(HIST, 60.0, 24, 1).plain.split("\n")
    assert lines[0] == "Charts · last 1m  w → 10m"
    assert lines[2] == "  40.0%┤              ⢀⣿"  # 4 s of 60 at the right, "now"
    assert lines[-3:] == ["  ready│               ▁",  # the cell holds a 0: unready shows
                          "     ↻✖│               ✖",  # failure and restart: the failure
                          "        -1m   -30s   now"]


def test_chart_section_old_answers_and_nothing_sampled() -> None:
    old = {"series": {"cpu_percent": [1.0, 2.0], "rss_bytes": [5.0, 6.0]}, "interval": 1.0,
           "t_last": 2.0}  # no probe series, no marks (an older engine)
    lines = chart_section(old, 600.0, 20, 1).plain.split("\n")
    assert [ln for ln in lines if "ready" in ln or "probe" in ln] == []
    assert lines[-2] == "     ↻✖│" + " " * 12 and lines[-1].endswith("now")
    none = chart_section({"series": {"cpu_percent": [None], "rss_bytes": []}}, 600.0, 40, 2)
    assert none.plain == "CPU / MEM: no samples yet"


# -- over a real engine ---------------------------------------------------------------------
async def test_graphs_appear_once_sampled_with_the_current_value(engine_factory, tmp_path
                                                                 ) -> None:
    sup = await engine(engine_factory, tmp_path, spec("s", child("sleeper"), tmp_path))
    app = Harness(sup, await loaded(sup))
    async with app.run_test(size=(120, 20)) as pilot:  # one-row graphs
        pane = app.query_one(DetailPane)
        pane.show("s")
        assert pane.history is None
        await pilot.pause()

        async def sampled() -> int:
            h = await sup.query("resources", "history", {"service": "s"})
            return sum(v is not None for v in h["series"]["rss_bytes"])

        while await sampled() < 5:
            await pilot.pause(FAST)
        await pane.refresh_data()
        await pilot.pause()
        series = pane.history["series"]  # what the pane fetched from the engine
        mem = series["rss_bytes"]
        assert mem[-1] is not None and mem[-1] > 1 << 20  # a python interpreter
        cpu = series["cpu_percent"]
        lines = part_text(app, "graphs", strip=False)
        assert lines[0].startswith("Charts · last 10m")
        width = app.query_one("#detail-graphs").size.width  # less padding and scrollbar
        assert len(lines[2]) == len(lines[-1]) == width > 100
        cpu_max = max(v for v in cpu if v is not None)
        assert lines[1].startswith(f"CPU {fmt_percent(cpu[-1])}  max {fmt_percent(cpu_max)}")
        rows = pane.chart_rows()
        assert lines[2 + rows].startswith(f"MEM {fmt_bytes(mem[-1])}  max "
                                          f"{fmt_bytes(max(v for v in mem if v))}")
        assert lines[2].startswith(f"{fmt_percent(cpu_max)}┤".rjust(GUTTER))  # the scale
        # the MEM chart's bottom row: a second of samples in 10 minutes is the last cell
        # ("now"); the 10 minutes before it are blank (nothing sampled then)
        bottom = lines[2 + 2 * rows][GUTTER:]
        assert bottom[-1] != " " and set(bottom[:-2]) == {" "}, bottom
        assert lines[-1].rstrip().endswith("now") and lines[-1].lstrip().startswith("-10m")


async def test_a_crash_shows_as_incident_with_its_last_lines(engine_factory, tmp_path
                                                             ) -> None:
    sup = await engine(engine_factory, tmp_path, spec(
        "c", child("lines", "8", "3"), tmp_path, restart="on-failure",
        crash_loop=dataclasses.replace(
            spec("x", (), tmp_path).crash_loop, max_failures=1, give_up=True)))
    await wait_for(lambda: sup.services["c"].state.value in ("fatal", "exited"),
                   what="the crash to be final")
    incs = await sup.query("incidents", "list", {"service": "c"})
    assert len(incs) == 1 and incs[0]["text"] == "exit code 3"
    app = Harness(sup, await loaded(sup))
    async with app.run_test(size=(120, 50)) as pilot:
        await show(app, pilot, "c")
        text = part_text(app, "incidents")
        assert text[0] == "Incidents"
        assert " crash: exit code 3 after " in text[1]
        assert f"pid {incs[0]['pid']}" in text[1]
        assert text[2:7] == [f"  │ line {i}" for i in range(4, 9)]  # its last 5 lines
        assert len(text) == 7
        timeline = part_text(app, "timeline")
        assert timeline[0] == "Failures (1)" and len(timeline) == 2
        assert timeline[1].split()[-4:] == ["crash", "exit", "code", "3"]
        head = part_text(app, "header")[0]
        assert head.startswith("c  " + sup.services["c"].state.value)
        assert "last exit exit code 3" in head


async def test_sampling_off_says_so_and_never_raises(engine_factory, tmp_path) -> None:
    sup = await engine(engine_factory, tmp_path, spec("s", child("sleeper"), tmp_path),
                       interval=0)
    assert sup.extension("resources") is None and sup.extension("incidents") is not None
    app = Harness(sup, await loaded(sup))
    async with app.run_test(size=(100, 30)) as pilot:
        await show(app, pilot, "s")
        assert part_text(app, "graphs") == ["CPU / MEM: sampling off"]
        assert part_text(app, "incidents") == ["Incidents", "no incidents"]
        assert part_text(app, "timeline") == ["Failures (0)", "none"]


async def test_over_the_control_socket(engine_factory, tmp_path) -> None:
    """Attached (api = RemoteSupervisor): the same answers, errors included."""
    from tui_supervisor.control.client import RemoteSupervisor
    from tui_supervisor.control.server import ControlServer

    sup = await engine(engine_factory, tmp_path, spec("c", child("lines", "8", "3"), tmp_path),
                       interval=0)
    await wait_for(lambda: sup.services["c"].failures >= 1, what="a crash")
    srv = ControlServer(sup, sup.config.settings.runtime_dir)
    await srv.start()
    api = RemoteSupervisor(sup.config.settings.runtime_dir)
    try:
        app = Harness(api, await loaded(sup))
        async with app.run_test(size=(100, 40)) as pilot:
            await show(app, pilot, "c")
            assert part_text(app, "graphs") == ["CPU / MEM: sampling off"]
            inc = part_text(app, "incidents")
            assert ": exit code 3 after " in inc[1] and inc[-1] == "  │ line 8"
    finally:
        await api.close()
        await srv.close()


async def test_no_metrics_layers_at_all(engine_factory, tmp_path) -> None:
    sup = await engine(engine_factory, tmp_path, spec("s", child("sleeper"), tmp_path),
                       interval=0, metrics=False)
    app = Harness(sup, await loaded(sup))
    async with app.run_test(size=(100, 30)) as pilot:
        await show(app, pilot, "s")
        assert part_text(app, "graphs") == ["CPU / MEM: sampling off"]
        assert part_text(app, "incidents") == ["Incidents", "no incidents in this engine"]
        facts = "\n".join(part_text(app, "facts"))
        assert "availability -" in " ".join(facts.split())  # no reliability layer


async def test_layout_small_and_large(engine_factory, tmp_path) -> None:
    sup = await engine(engine_factory, tmp_path,
                       spec("web", child("sleeper"), tmp_path),
                       spec("c", child("lines", "8", "3"), tmp_path))
    await wait_for(lambda: sup.services["c"].failures >= 2, what="two crashes")
    await wait_for(lambda: sup.services["web"].state.value == "running", what="running")
    for size in [(80, 24), (200, 60)]:
        st = await loaded(sup)
        app = Harness(sup, st)
        async with app.run_test(size=size) as pilot:
            pane = await show(app, pilot, "web")
            while pane.history is None or not [
                    v for v in pane.history["series"]["rss_bytes"] if v]:
                await pilot.pause(FAST)
                await pane.refresh_data()
            await pilot.pause()
            screen = screen_text(app)
            assert all(len(line) <= size[0] for line in screen)
            joined = " ".join(" ".join(screen).split())
            pid = sup.services["web"].pid
            assert screen[0].startswith(" web  running (started)   pid ")
            assert f"pid {pid}   up " in screen[0]
            for field in ("CPU ", "MEM ", "-10m", "now", "restarts 0", "failures 0",
                          "availability", "MTTR", "MTBF", "respawn p50/p99", "command",
                          "cwd", "restart always", "Failures (0)"):
                assert field in joined, (size, field)
            rows = 3 if size == (80, 24) else 6  # (the pane alone: all the height)
            assert pane.chart_rows() == rows
            assert len(part_text(app, "graphs")) == 2 * rows + 5  # title, 2 x label,
            # the marks and the time axis
            if size == (200, 60):  # everything on one screen: incidents too
                assert "no incidents" in joined
                facts = part_text(app, "facts")[0]  # all six figures on one row
                assert "restarts" in facts and "respawn p50/p99" in facts
            # switching to the crashing service: its incident and timeline
            await show(app, pilot, "c")
            assert part_text(app, "header")[0].startswith("c  ")
            inc = part_text(app, "incidents")
            assert ": exit code 3 after " in inc[1] and "  │ line 8" in inc
            assert part_text(app, "timeline")[1].endswith("exit code 3")


async def test_view_changed_redraws_from_the_store_without_asking(engine_factory, tmp_path
                                                                  ) -> None:
    sup = await engine(engine_factory, tmp_path, spec("s", child("sleeper"), tmp_path))
    st = await loaded(sup)

    class Counting:
        calls = 0

        async def query(self, *a: Any, **kw: Any) -> Any:
            Counting.calls += 1
            return await sup.query(*a, **kw)

    app = Harness(Counting(), st)
    async with app.run_test(size=(100, 30)) as pilot:
        pane = await show(app, pilot, "s")
        await app.workers.wait_for_complete()
        calls = Counting.calls
        assert calls == 4  # show's own fetch, then refresh_data: history + incidents each
        st.apply({"kind": "state", "service": "s", "new": "backoff", "t": time.time(),
                  "reason": "exit code 9; restarting in 1.00s", "wanted": True})
        pane.view_changed()
        await pilot.pause()
        head = part_text(app, "header")[0]
        assert head.startswith("s  backoff (exit code 9; restarting in 1.00s)   pid -")
        assert Counting.calls == calls
        pane.show(None)
        await pilot.pause()
        assert part_text(app, "header") == ["no service selected"]
        pane.show("gone")  # not in the store (removed by a reload)
        await pane.refresh_data()
        await pilot.pause()
        assert part_text(app, "header") == ["gone: no longer in the config"]


async def test_switching_services_asks_for_no_layout_pass(engine_factory, tmp_path) -> None:
    """j/k: the graphs part keeps its height while the next service's history loads (the
    placeholder is as tall as the charts it replaces) and after (same charts), and a
    hidden optional part stays hidden without asking for a layout. A layout pass repaints
    the whole screen: 20-30 ms with 300 services (issue 15)."""
    sup = await engine(engine_factory, tmp_path, spec("a", child("sleeper"), tmp_path),
                       spec("b", child("sleeper"), tmp_path))
    app = Harness(sup, await loaded(sup))
    async with app.run_test(size=(120, 40)) as pilot:
        async def sampled(name: str) -> bool:
            h = await sup.query("resources", "history", {"service": name})
            return sum(v is not None for v in h["series"]["rss_bytes"]) >= 2

        for name in ("a", "b"):
            while not await sampled(name):
                await pilot.pause(FAST)
        pane = await show(app, pilot, "a")
        graphs = app.query_one("#detail-graphs", DetailPart)
        deps = app.query_one("#detail-deps", DetailPart)
        height = graphs.size.height
        assert height > 8 and part_text(app, "graphs")[0].startswith("Charts")
        assert not deps.display  # nothing depends: the optional part is hidden
        # (Textual counts the layouts a widget asked for; no public API says it)
        asked = graphs._layout_updates, deps._layout_updates
        pane.show("b")
        assert pane.history is None  # the fetch has not answered yet
        drawn = graphs.render()
        assert isinstance(drawn, Text)
        lines = drawn.plain.split("\n")
        assert lines[0] == "CPU / MEM: loading…" and len(lines) == height
        await pane.refresh_data()
        await pilot.pause()
        assert pane.service == "b" and part_text(app, "graphs")[0].startswith("Charts")
        assert graphs.size.height == height and not deps.display
        assert (graphs._layout_updates, deps._layout_updates) == asked


async def test_an_answer_for_the_previous_service_is_dropped() -> None:
    class Slow(FixedAPI):
        gate = asyncio.Event()

        async def query(self, ext: str, what: str, args: dict[str, Any] | None = None
                        ) -> Any:
            if (args or {}).get("service") == "api":
                await self.gate.wait()
            return await super().query(ext, what, args)

    st = fixed_store()
    st.load_snapshot({"engine": {}, "services": [*[i.view for i in st.services.values()],
                                                 {"name": "db", "state": "stopped"}]})
    app = Harness(Slow(), st)
    async with app.run_test(size=(100, 30)) as pilot:
        pane = app.query_one(DetailPane)
        pane.show("api")
        slow = asyncio.ensure_future(pane.refresh_data())
        await pilot.pause()
        pane.show("db")
        await pane.refresh_data()
        Slow.gate.set()
        await slow
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert pane.service == "db" and part_text(app, "header")[0].startswith("db  stopped")
        # db's answers, not api's late ones
        assert part_text(app, "incidents") == ["Incidents", "no incidents"]
        assert part_text(app, "graphs") == ["CPU / MEM: no samples yet"]
        pane.show("api")  # back: nothing of db's is shown as api's until api answers
        assert pane.history is None and pane.incident_list is None


# -- help --------------------------------------------------------------------------------
class Keys(Widget, can_focus=True):
    BINDINGS = [Binding("f", "follow", "Follow the log")]

    def action_follow(self) -> None: ...


class HelpHarness(App[None]):
    BINDINGS = [Binding("question_mark", "help", "Help"),
                Binding("r", "restart", "Restart service"),
                Binding("s", "stop", "Stop service"),
                Binding("j,down", "down", "Next service")]

    def compose(self) -> ComposeResult:
        yield Keys()
        yield Static("main")

    def action_help(self) -> None:
        self.push_screen(HelpScreen())


def help_rows(app: App[Any]) -> dict[str, tuple[str, str]]:
    """key cell -> (action, where), read off the screen by the header's columns."""
    screen = screen_text(app)
    (top,) = [i for i, line in enumerate(screen) if " key " in line and " where" in line]
    a, w = screen[top].index(" action") + 1, screen[top].index(" where") + 1
    rows = {}
    for line in screen[top + 1:]:
        if "╰" in line:
            break
        k = line[:a].strip(" │")
        rows[k] = (line[a:w].strip(), line[w:].strip(" │"))
    return rows


@pytest.mark.parametrize("close", ["escape", "question_mark", "q"])
async def test_help_lists_every_key_and_closes(close: str) -> None:
    app = HelpHarness()
    async with app.run_test(size=(100, 40)) as pilot:
        app.query_one(Keys).focus()
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        rows = help_rows(app)
        assert rows["r"] == ("Restart service", "everywhere")
        assert rows["s"] == ("Stop service", "everywhere")
        assert rows["j  ↓"] == ("Next service", "everywhere")
        assert rows["?"] == ("Help", "everywhere")
        assert rows["f"] == ("Follow the log", "Keys")  # the focused widget's own
        assert rows["^q"] == ("Quit", "everywhere")  # Textual's, inherited
        for where, keys, what in OTHER_KEYS:
            assert rows[keys] == (what, where)
        await pilot.press(close)
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen) and len(app.screen_stack) == 1


# -- pictures (fixed data) -----------------------------------------------------------------
NOW = 1_800_000_000.0


class FixedAPI:
    """A fixed DATA source for the pictures (the behaviour tests use a real engine)."""

    async def query(self, ext: str, what: str, args: dict[str, Any] | None = None) -> Any:
        if (args or {}).get("service") != "api":  # nothing recorded for the others
            return {"series": {"cpu_percent": [], "rss_bytes": []}, "interval": 1.0,
                    "t_last": None} if ext == "resources" else []
        if ext == "resources":
            cpu = [None] * 20 + [(i * 7) % 40 + 0.5 for i in range(100)] + [None] * 5 \
                + [12.5] * 20
            mem = [None] * 20 + [(40 << 20) + i * (80 << 10) for i in range(100)] \
                + [None] * 5 + [48 << 20] * 20
            return {"series": {"cpu_percent": cpu, "rss_bytes": mem}, "interval": 1.0,
                    "t_last": NOW}
        return [{"t": NOW - 400 + 60 * k, "service": "api", "pid": 4100 + k, "code": None,
                 "signal": 9, "signal_name": "SIGKILL", "text": "killed by SIGKILL",
                 "uptime": 42.0 + k, "kind": "crash", "state": "running", "restarts": k,
                 "lines": [{"t": NOW, "stream": "stderr" if i == 6 else "stdout",
                            "text": f"request {k}-{i} handled"} for i in range(7)]}
                for k in range(3)]


def fixed_store() -> Store:
    st = Store()
    st.load_snapshot({"engine": {}, "services": [{
        "name": "api", "state": "running", "reason": "", "pid": 4242, "uptime": 61.0,
        "restarts": 3, "failures": 4, "command": ["python", "-m", "http.server", "8080"],
        "cwd": "/srv/api", "restart_policy": "always",
        "last_exit": {"pid": 4102, "code": None, "signal": 9, "t": NOW - 280,
                      "uptime": 44.0, "text": "killed by SIGKILL"},
        "recent_failures": [{"t": NOW - 500 + 60 * k, "reason": "killed by SIGKILL",
                             "starting": k == 0} for k in range(4)],
        "reliability": {"availability": 0.9931, "mttr": 0.85, "mtbf": 151.0},
        "latency": {"respawn": {"p50": 0.0021, "p99": 0.0093}}}]})
    return st


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize("size", [(80, 24), (200, 60)], ids=["80x24", "200x60"])
def test_picture(snap_compare, utc, size: tuple[int, int]) -> None:
    async def before(pilot: Any) -> None:
        pane = pilot.app.query_one(DetailPane)
        pane.show("api")
        await pane.refresh_data()
        await pilot.pause()

    app = Harness(FixedAPI(), fixed_store(), clock=lambda: NOW)
    assert snap_compare(app, terminal_size=size, run_before=before)


# -- the window key ------------------------------------------------------------------------
async def test_w_cycles_the_chart_window_and_it_is_remembered() -> None:
    """In the dashboard: `w` moves the charts from 10 minutes to 1 hour, all the history
    and 1 minute (the title and the time axis say so); the choice is kept in the UI
    preferences, so the next dashboard opens with it; the palette has it too."""
    from support import T0, settle, settle_picture
    from support import FixedAPI as Story

    from tui_supervisor.tui.app import SupervisorApp
    from tui_supervisor.tui.commands import COMMANDS

    asked: list[bool] = []

    class Recording(Story):
        async def query(self, extension: str, what: str, args: dict[str, Any] | None = None
                        ) -> Any:
            if extension == "resources":
                asked.append(bool((args or {}).get("coarse")))
            return await super().query(extension, what, args)

    def dashboard() -> SupervisorApp:
        return SupervisorApp(Recording(), mode="attached", clock=lambda: 1000.0,
                             wall_clock=lambda: T0)

    def charts(app: SupervisorApp) -> tuple[str, str]:
        lines = part_text(app, "graphs")
        return lines[0], lines[-1].split()[0]  # the title, the axis' left end

    app = dashboard()
    async with app.run_test(size=(140, 45)) as pilot:
        await settle_picture(pilot)
        await pilot.press("j")
        await settle_picture(pilot)
        seen = [charts(app)]
        kinds = []
        for _ in range(4):
            asked.clear()
            await pilot.press("w")
            await settle(pilot, lambda: asked, "the history asked again")
            seen.append(charts(app))
            kinds.append(asked[:1])
        await pilot.press("w")  # 1 hour again, for the next dashboard
    assert seen == [("Charts · last 10m  w → 1h", "-10m"),
                    ("Charts · last 1h  w → all", "-1h"),
                    ("Charts · all kept history (10m)  w → 1m", "-10m"),
                    ("Charts · last 1m  w → 10m", "-1m"),
                    ("Charts · last 10m  w → 1h", "-10m")]
    assert kinds == [[True], [True], [False], [False]]  # 1 h and all: the coarse rings
    assert app.prefs.get("chart_window") == 3600.0
    again = dashboard()
    async with again.run_test(size=(140, 45)) as pilot:
        await settle_picture(pilot)
        await pilot.press("j")
        await settle_picture(pilot)
        assert charts(again) == ("Charts · last 1h  w → all", "-1h")
    assert ("Charts: window (1 min, 10 min, 1 h, all; cycle)", "chart_window") in COMMANDS
