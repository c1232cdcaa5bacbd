"""The dashboard: header, services table, detail pane, log pane. A client of
`SupervisorAPI` only — the same app runs inside the engine's process (hosted) or over
the control socket (attached).

One refresh timer: every tick (10 Hz) the new log lines and the rows that changed go to
the widgets in one batch; every second the snapshot (metrics) is refreshed.

This module is the frame (widgets, key bindings, the tick); the rest is in mixins named for
what they hold: `feed.py` (the event stream, back-fill, snapshots, notices),
`service_actions.py` (keys that act on services), `view_actions.py` (keys that change the
view, quitting); the header is `header.py`, the command palette `commands.py`.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from textual import events
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Container
from textual.widgets import Footer

from tui_supervisor.engine.api import SupervisorAPI
from tui_supervisor.engine.views import EventView
from tui_supervisor.tui.charts import window_label
from tui_supervisor.tui.commands import Actions
from tui_supervisor.tui.eventlog import EventLog
from tui_supervisor.tui.feed import EventFeed
from tui_supervisor.tui.header import EngineHeader
from tui_supervisor.tui.prefs import Prefs, load_prefs, size_class
from tui_supervisor.tui.service_actions import ServiceActions
from tui_supervisor.tui.store import Store
from tui_supervisor.tui.theme import THEME_KEY, saved_theme
from tui_supervisor.tui.view_actions import ViewActions
from tui_supervisor.tui.widgets.detail import DetailPane
from tui_supervisor.tui.widgets.logview import LogView
from tui_supervisor.tui.widgets.services import ServicesTable

TICK = 0.1
SNAPSHOT_EVERY = 1.0
GC_YOUNG = 10_000
"""Allocations between young collections while the app runs (CPython's default: 700).
The dashboard's process holds ~200k tracked objects (Textual's render caches, the store's
lines); under a 50k lines/s service the default ran a full collection every ~2 s, 60-120
ms each on 2 busy cores: one key in ten waited for one. At 10,000 the young generations
absorb the churn of lines and renders, and a full pass is rare (bench/tui_app.py keys:
none in 15 s; p95 key -> repaint 54 -> 42 ms, the longest 146 -> 56 ms)."""


class SupervisorApp(ServiceActions, ViewActions, EventFeed, App[str]):
    """Returns "stop" (stop every service), "leave" (leave them running) or "detach"
    (an attached client quits)."""

    TITLE = "tui-supervisor"
    CSS_PATH = "app.tcss"
    COMMANDS = {Actions}  # with the system commands after ours (commands.py)
    BINDINGS = [
        Binding("r", "restart", "Restart"),
        Binding("s", "stop", "Stop"),
        Binding("S", "start", "Start"),
        Binding("K", "signal", "Signal"),  # k moves up (vim's j/k), see the help
        Binding("l", "logs_full", "Logs"),
        Binding("a", "logs_all", "All logs"),
        Binding("e", "events", "Events"),
        Binding("slash", "search", "Search"),
        Binding("n", "next_match", "Next match", show=False),
        Binding("N", "prev_match", "Previous match", show=False),
        # the log pane's keys act on it from anywhere (the table lends it home/end too)
        Binding("end", "follow", "Follow logs", show=False),
        Binding("home", "logs_top", "Logs: oldest line", show=False),
        Binding("t", "timestamps", "Logs: time stamps", show=False),
        Binding("escape", "leave_full", "Leave full screen", show=False),
        Binding("f", "filter", "Filter"),
        Binding("o", "sort", "Sort"),
        Binding("z", "fold", "Fold / unfold a replica group", show=False),
        Binding("plus", "scale_by(1)", "Scale the group: one replica more", show=False),
        Binding("minus", "scale_by(-1)", "Scale the group: one replica fewer", show=False),
        Binding("equals_sign", "scale", "Scale the group to N replicas…", show=False),
        Binding("enter", "detail", "Detail", show=False),
        Binding("w", "chart_window", "Charts: window (1m 10m 1h all)", show=False),
        Binding("left_square_bracket", "table_size(-1)", "Table: smaller share of the screen",
                show=False),
        Binding("right_square_bracket", "table_size(1)", "Table: bigger share of the screen",
                show=False),
        Binding("less_than_sign", "detail_size(-1)", "Detail pane: narrower", show=False),
        Binding("greater_than_sign", "detail_size(1)", "Detail pane: wider", show=False),
        Binding("R", "reload", "Reload config"),
        Binding("ctrl+r", "reload_code", "Reload code", show=False),
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, api: SupervisorAPI, *, mode: str = "hosted",
                 clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], float] = time.time,
                 prefs: Prefs | None = None) -> None:
        super().__init__()
        self.api = api
        self.prefs = prefs if prefs is not None else load_prefs()
        """Remembered choices (theme, pane sizes): prefs.py."""
        self.clock = clock
        """Monotonic time (uptimes, countdowns); fixed in snapshot tests."""
        self.wall_clock = wall_clock
        self.mode = mode
        """"hosted" (the engine is in this process) or "attached" (over the socket)."""
        self.store = Store()
        self.events = EventLog()
        """What happened since the UI connected (the `e` screen)."""
        self.config_error: str | None = None
        self.merged_logs = False
        self.ticks = 0
        self.tick_seconds = 0.0
        """Time spent in the last tick (for the benchmark)."""
        self._stream: AsyncIterator[EventView] | None = None
        self._last_snapshot = 0.0
        self._stamped = 0.0
        """When the views were last stamped (a snapshot: every row re-checked anyway)."""
        self._current: str | None = None
        self._widgets: tuple[Any, ...] = ()
        self._leaving = False
        self._gc_was = gc.get_threshold()
        """The process's GC thresholds, given back on unmount (GC_YOUNG while mounted)."""
        self.link: str | None = None
        """Attached: why the engine is out of reach right now (None: connected)."""

    # -- layout -----------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield EngineHeader(id="header")
        with Container(id="body"):  # a grid: where each sits is app.tcss, sizes layout.py
            yield ServicesTable(id="services")
            yield DetailPane(self.api, self.store, clock=self.wall_clock, id="detail")
            yield LogView(self.store, id="logs")
        yield Footer()

    @property
    def table(self) -> ServicesTable:
        return self._widgets[0]

    @property
    def logs(self) -> LogView:
        return self._widgets[1]

    @property
    def detail(self) -> DetailPane:
        return self._widgets[2]

    def action_chart_window(self) -> None:
        self.notify(f"charts: last {window_label(self.detail.cycle_window())}", timeout=1.5)

    def on_resize(self, event: events.Resize) -> None:
        # (runs before App's own handler: self.size is still the old size here)
        self._classify(size_class(event.size.width, event.size.height))
        self.call_later(self._arrange)

    async def on_mount(self) -> None:
        gc.set_threshold(GC_YOUNG, *self._gc_was[1:])
        # kept, not queried: queries look at the active screen (a dialog, at times)
        self._widgets = (self.query_one(ServicesTable), self.query_one(LogView),
                         self.query_one(DetailPane), self.query_one(EngineHeader))
        self.table.focus()
        self.table.on_cursor_row = self._follow_cursor
        if self.prefs.problem:  # an unreadable preferences file: said once, defaults used
            self.notify(self.prefs.problem, severity="warning", timeout=8)
        self._arrange()
        self._restore_theme()
        self._follow_events()
        self.set_interval(TICK, self._tick)
        if os.environ.get("TUISUP_FAULT") == "ui-crash":  # fault injection for the tests
            self.set_timer(1.0, self._crash)

    def on_unmount(self) -> None:
        gc.set_threshold(*self._gc_was)  # (tests run many apps in one process)

    def _restore_theme(self) -> None:
        """The theme chosen last time; then every choice (the palette's "Theme") kept."""
        name, problem = saved_theme(self.prefs.get(THEME_KEY), self.available_themes)
        if name:
            self.theme = name
        if problem:
            self.notify(problem, severity="warning", timeout=8)
        self.watch(self, "theme", self._theme_chosen, init=False)

    def _theme_chosen(self, name: str) -> None:
        said = self.prefs.problem
        self.prefs.set(THEME_KEY, name)
        if self.prefs.problem and self.prefs.problem != said:  # once, not at every choice
            self.notify(self.prefs.problem, severity="warning", timeout=8)

    def _crash(self) -> None:
        raise RuntimeError("injected UI failure (TUISUP_FAULT=ui-crash)")

    # -- the tick -------------------------------------------------------------------------
    def _tick(self) -> None:
        started = time.perf_counter()
        self.ticks += 1
        lines = self.store.take_lines()
        if lines:
            self.logs.lines_added(lines)
        for n in self.store.notices:
            self._on_notice(n)
        self.store.notices.clear()
        dirty = self.store.take_dirty()
        table = self.table
        if self.store.order_changed:
            self.store.order_changed = False
            dirty = None  # type: ignore[assignment]
        views = {n: i.view for n, i in self.store.services.items()}
        table.sync(views, dirty if not self._backoff_rows() else None, now=self.clock())
        shown = set(table.selected_names())  # a group row shows its replicas
        if not self._follow_cursor() and (dirty is None or shown & dirty):
            self.detail.view_changed()
        self._widgets[3].render_from(
            self.store, self.mode, self.config_error, self.link, notice=self.last_notice,
            now=self.clock(), wall=self.wall_clock())
        self._arrange()  # the rows (filter, fold, services) or the header's height moved
        now = self.clock()
        if now - self._last_snapshot >= SNAPSHOT_EVERY:
            self._last_snapshot = now
            self.run_worker(self._refresh_snapshot(), group="snapshot", exclusive=True)
        self.tick_seconds = time.perf_counter() - started

    def _follow_cursor(self) -> bool:
        """The detail and log panes show the service under the cursor; True if it moved."""
        selected = self.table.selected_key  # a service, or a group row
        if selected == self._current or selected is None:
            return False
        self._current = selected
        self.detail.show(selected)
        if not self.merged_logs:
            self.logs.show(self.table.log_source)
        return True

    def on_data_table_row_highlighted(self) -> None:
        """(`table.on_cursor_row` switches the panes at once; this catches a move it did
        not see, e.g. a row highlighted as the rows were rebuilt.)"""
        if self._widgets:
            self._follow_cursor()

    def on_data_table_row_selected(self) -> None:
        """`enter` on the table (the table binds it, so the app's binding never sees it)."""
        self.action_detail()

    def _backoff_rows(self) -> bool:
        """Rows whose text moves with time (uptime, backoff countdown) need a repaint: the
        snapshot every second does it (it changes every row), unless it is late (another
        pass out of phase with it would repaint the table twice a second)."""
        return bool(self.ticks % int(1 / TICK) == 0
                    and self.clock() - self._stamped > 1.5 * SNAPSHOT_EVERY)
