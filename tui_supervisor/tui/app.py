"""The dashboard: header, services table, detail pane, log pane. A client of
`SupervisorAPI` only — the same app runs inside the engine's process (hosted) or over
the control socket (attached).

One refresh timer: every tick (10 Hz) the new log lines and the rows that changed go to
the widgets in one batch; every second the snapshot (metrics) is refreshed.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.command import Hit, Hits, Provider
from textual.containers import Horizontal
from textual.widgets import Footer, Static

from tui_supervisor.engine.api import SupervisorAPI
from tui_supervisor.engine.events import Topic
from tui_supervisor.engine.views import ConnectionEvent, EventView
from tui_supervisor.formatting import fmt_bytes, fmt_duration, fmt_percent
from tui_supervisor.tui.eventlog import (
    SUPERVISOR,
    Entry,
    EventLog,
    connected,
    earlier_notices,
    format_incident,
    notice_text,
)
from tui_supervisor.tui.rows import SORT_KEYS
from tui_supervisor.tui.screens.dialogs import (
    ConfirmScreen,
    PromptScreen,
    QuitScreen,
    SignalScreen,
)
from tui_supervisor.tui.screens.events import EventsScreen
from tui_supervisor.tui.screens.help import HelpScreen
from tui_supervisor.tui.store import Store
from tui_supervisor.tui.widgets.detail import DetailPane
from tui_supervisor.tui.widgets.logview import LogView
from tui_supervisor.tui.widgets.services import ServicesTable

TICK = 0.1
SNAPSHOT_EVERY = 1.0
BACKFILL_LINES = 2000


class EngineHeader(Static):
    """Config, engine uptime/CPU/RSS, services by state, reloads, pending config error."""

    _text = ""

    def render_from(self, store: Store, mode: str, error: str | None,
                    link: str | None = None) -> None:
        e = store.engine
        res = e.get("resources") or {}
        counts = store.counts_by_state()
        states = "  ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        usage = f"CPU {fmt_percent(res.get('cpu_percent'))} RSS {fmt_bytes(res.get('rss_bytes'))}" \
            if res else "sampling off"
        parts = [f"[b]{e.get('config', '?')}[/b]",
                 f"engine pid {e.get('pid', '?')}{' (attached)' if mode == 'attached' else ''}",
                 f"up {fmt_duration(e.get('uptime'))}", usage, states,
                 f"reloads {e.get('reloads', 0)}"]
        text = " · ".join(parts)
        if link:  # attached: the connection to the engine is down
            text += f"\n[b yellow]{link}[/]"
        if error:
            text += f"\n[b red]config error:[/] {error}"
        if text != self._text:  # a layout pass is of the whole screen: only if it may grow
            layout = not (self._one_line(text) and self._one_line(self._text))
            self._text = text
            self.update(text, layout=layout)

    def _one_line(self, text: str) -> bool:
        return "\n" not in text and Text.from_markup(text).cell_len <= self.content_size.width


class Actions(Provider):
    """Every action in the command palette (ctrl+p)."""

    COMMANDS = (
        ("Restart the selected service", "restart"), ("Stop the selected service", "stop"),
        ("Start the selected service", "start"), ("Send a signal…", "signal"),
        ("Restart all services…", "restart_all"), ("Stop all services…", "stop_all"),
        ("Start all services…", "start_all"), ("Reload the config file", "reload"),
        ("Reload the supervisor's own code (services kept)", "reload_code"),
        ("Logs full screen (toggle)", "logs_full"), ("All services' logs (toggle)",
                                                     "logs_all"),
        ("Event log: what happened (toggle)", "events"),
        ("Search the logs", "search"), ("Filter the services", "filter"),
        ("Sort the services (cycle)", "sort"), ("Help: every key", "help"), ("Quit", "quit"),
    )

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        app = self.app
        for label, action in self.COMMANDS:
            score = matcher.match(label)
            if score > 0:
                yield Hit(score, matcher.highlight(label),
                          lambda a=action: app.run_action(a), help=f"action: {action}")


class SupervisorApp(App[str]):
    """Returns "stop" (stop every service), "leave" (leave them running) or "detach"
    (an attached client quits)."""

    TITLE = "tui-supervisor"
    CSS_PATH = "app.tcss"
    COMMANDS = App.COMMANDS | {Actions}
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
        Binding("end", "follow", "Follow logs", show=False),
        Binding("f", "filter", "Filter"),
        Binding("o", "sort", "Sort"),
        Binding("enter", "detail", "Detail", show=False),
        Binding("R", "reload", "Reload config"),
        Binding("ctrl+r", "reload_code", "Reload code", show=False),
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, api: SupervisorAPI, *, mode: str = "hosted",
                 clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.api = api
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
        self.link: str | None = None
        """Attached: why the engine is out of reach right now (None: connected)."""

    # -- layout -----------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield EngineHeader(id="header")
        yield ServicesTable(id="services")
        with Horizontal(id="lower"):
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

    def on_resize(self) -> None:
        self.screen.set_class(self.size.width < 100, "-narrow")

    async def on_mount(self) -> None:
        # kept, not queried: queries look at the active screen (a dialog, at times)
        self._widgets = (self.query_one(ServicesTable), self.query_one(LogView),
                         self.query_one(DetailPane), self.query_one(EngineHeader))
        self.table.focus()
        self._follow_events()
        self.set_interval(TICK, self._tick)
        if os.environ.get("TUISUP_FAULT") == "ui-crash":  # fault injection for the tests
            self.set_timer(1.0, self._crash)

    def _crash(self) -> None:
        raise RuntimeError("injected UI failure (TUISUP_FAULT=ui-crash)")

    # -- data ---------------------------------------------------------------------------
    @work(exclusive=True, group="events")
    async def _follow_events(self) -> None:
        """Snapshot + every event after it (nothing missed), then history back-filled by
        offset so no line is shown twice."""
        stream = await self.api.subscribe(logs=True)
        self._stream = stream
        first = True
        async for ev in stream:
            if ev["kind"] == "connection":  # attached, with reconnecting on
                self._on_link(ev)
                self.events.add(ev)
                continue
            self.store.apply(ev)
            self.events.add(ev)
            if ev["kind"] == "snapshot":  # the first, or a reconnect's
                self._events_connected(ev)
            if first:
                first = False
                self._stamp_views()
                await self._backfill()
                self._tick()
        if not self._leaving:
            self.notify(self.link or "lost the engine's event stream", severity="error",
                        timeout=30)
            if not self.link:  # else the link's own entry said it
                self.events.append(Entry(self.wall_clock(), "error", SUPERVISOR,
                                         "lost the engine's event stream"))

    def _events_connected(self, snap: Mapping[str, Any]) -> None:
        """Mark where the live event log starts; add what the engine says came before."""
        seen = self.events.entries[-1].t if self.events.entries else None
        self.events.append(connected(self.wall_clock(), snap, again=seen is not None))
        self.events.add_history(earlier_notices(snap))
        self.run_worker(self._earlier_crashes(snap, seen), group="events-history")

    async def _earlier_crashes(self, snap: Mapping[str, Any], seen: float | None) -> None:
        """The event log's only history: crashes of this engine before the UI connected
        (after `seen`, the newest entry, on a new subscription)."""
        try:
            incidents = await self.api.query("incidents", "list", {"n": 50})
        except Exception:  # an engine without the extension: nothing earlier to show
            return
        engine = snap.get("engine") or {}
        since = float(engine.get("started_at") or 0.0)  # this engine's, not older ones
        cut = since + float(engine.get("uptime") or 0.0)  # the snapshot: live after it
        self.events.add_history(format_incident(i) for i in incidents
                                if since <= float(i.get("t") or 0.0) < cut and
                                (seen is None or float(i.get("t") or 0.0) > seen))

    def _on_link(self, ev: ConnectionEvent) -> None:
        """The attached client lost the engine, got it back, or gave up."""
        state, msg = ev["state"], ev["message"]
        if state == "restored":
            self.link = None
            self._stamp_views()
            self.notify(msg, timeout=4)
        else:
            safe = ev.get("safe_mode") if state == "lost" else None  # new code failed
            self.link = (f"the engine is {safe['summary']} — services kept; fix and save "
                         "the code" if safe else "engine reloading - reconnecting…"
                         if state == "lost" else f"disconnected: {msg}")
            if state == "lost":
                self.notify(msg if safe else self.link, severity="error" if safe else
                            "warning", timeout=30 if safe else 4)
        self._tick()

    async def _backfill(self) -> None:
        cut = {n: int(i.view.get("log_offset") or 0) for n, i in self.store.services.items()}
        try:
            old = await self.api.logs(None, BACKFILL_LINES)
        except Exception:  # history is a nicety: live lines flow anyway
            return
        live = {n: list(i.lines) for n, i in self.store.services.items()}
        for info in self.store.services.values():
            info.lines.clear()
        self.store.merged.clear()
        self.store.load_lines([x for x in old if x.get("offset", 0) < cut.get(x["service"], 0)])
        for lines in live.values():
            for line in lines:
                self.store.services[line.service].lines.append(line)
        self.store.merged.extend(sorted((x for ls in live.values() for x in ls),
                                        key=lambda x: x.t))
        self.logs.show(None if self.merged_logs else self._current)

    def _stamp_views(self) -> None:
        now = self._stamped = self.clock()
        for info in self.store.services.values():
            info.view["_seen_at"] = now

    async def _refresh_snapshot(self) -> None:
        if self.link:  # the subscription reconnects and brings a snapshot
            return
        try:
            snap = await self.api.snapshot()
        except Exception as e:
            self.notify(f"snapshot failed: {e}", severity="error")
            return
        self.store.load_snapshot(snap)
        self._stamp_views()
        if self.detail.display:
            await self.detail.refresh_data()

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
        selected = table.selected
        if not self._follow_cursor() and (dirty is None or (selected and selected in dirty)):
            self.detail.view_changed()
        self._widgets[3].render_from(
            self.store, self.mode, self.config_error, self.link)
        now = self.clock()
        if now - self._last_snapshot >= SNAPSHOT_EVERY:
            self._last_snapshot = now
            self.run_worker(self._refresh_snapshot(), group="snapshot", exclusive=True)
        self.tick_seconds = time.perf_counter() - started

    def _follow_cursor(self) -> bool:
        """The detail and log panes show the service under the cursor; True if it moved."""
        selected = self.table.selected
        if selected == self._current or selected is None:
            return False
        self._current = selected
        self.detail.show(selected)
        if not self.merged_logs:
            self.logs.show(selected)
        return True

    def on_data_table_row_highlighted(self) -> None:
        """Switch the panes at the key press, not at the next tick."""
        if self._widgets:
            self._follow_cursor()

    def _backoff_rows(self) -> bool:
        """Rows whose text moves with time (uptime, backoff countdown) need a repaint: the
        snapshot every second does it (it changes every row), unless it is late (another
        pass out of phase with it would repaint the table twice a second)."""
        return bool(self.ticks % int(1 / TICK) == 0
                    and self.clock() - self._stamped > 1.5 * SNAPSHOT_EVERY)

    def _on_notice(self, n: Mapping[str, Any]) -> None:
        topic, data = n.get("topic"), n.get("data") or {}
        if topic == Topic.CONFIG_INVALID:
            self.config_error = "; ".join(map(str, data.get("errors") or ()))
        elif topic == Topic.CONFIG_RELOADED:
            self.config_error = None
        if n.get("level") in ("warning", "error") or topic in (Topic.CONFIG_INVALID,
                                                               Topic.CONFIG_RELOADED):
            who = f"{n['service']}: " if n.get("service") else ""
            self.notify(who + notice_text(n),
                        severity="error" if n.get("level") == "error" else
                        "warning" if n.get("level") == "warning" else "information",
                        timeout=8)

    # -- actions --------------------------------------------------------------------------
    def _target(self) -> str | None:
        name = self.table.selected
        if name is None:
            self.notify("no service selected", severity="warning")
        return name

    async def _call(self, verb: str, names: list[str]) -> None:
        try:
            await getattr(self.api, verb)(names)
        except Exception as e:
            self.notify(f"{verb} {', '.join(names)}: {e}", severity="error")
            return
        self.notify(f"{verb}: {', '.join(names) if len(names) < 6 else f'{len(names)} services'}",
                    timeout=3)

    async def action_restart(self) -> None:
        if (name := self._target()) is not None:
            await self._call("restart", [name])

    async def action_stop(self) -> None:
        if (name := self._target()) is not None:
            await self._call("stop", [name])

    async def action_start(self) -> None:
        if (name := self._target()) is not None:
            await self._call("start", [name])

    def _all(self, verb: str) -> None:
        names = list(self.store.services)

        async def answered(yes: bool | None) -> None:
            if yes:
                await self._call(verb, names)

        self.push_screen(ConfirmScreen(f"{verb.capitalize()} all {len(names)} services?"),
                         answered)

    def action_restart_all(self) -> None:
        self._all("restart")

    def action_stop_all(self) -> None:
        self._all("stop")

    def action_start_all(self) -> None:
        self._all("start")

    def action_signal(self) -> None:
        name = self._target()
        if name is not None:
            self.push_screen(SignalScreen(name), lambda sig: self._send(name, sig))

    async def _send(self, name: str, sig: str | None) -> None:
        if sig:
            try:
                r = await self.api.signal(name, sig)
            except Exception as e:
                self.notify(f"signal {name}: {e}", severity="error")
                return
            self.notify(f"sent {r.get('signal', sig)} to {name}" if r.get("ok") else
                        f"{name} has no process to signal", timeout=3,
                        severity="information" if r.get("ok") else "warning")

    async def action_reload(self) -> None:
        """The outcome comes back as the engine's notice (`_on_notice`), as it does for
        every reload, whoever asked: only a failed request is said here."""
        try:
            await self.api.reload()
        except Exception as e:
            self.notify(f"reload: {e}", severity="error")

    async def action_reload_code(self) -> None:
        """A refusal comes back as the engine's notice (`_on_notice`)."""
        try:
            r = await self.api.reload_code()
        except Exception as e:
            self.notify(f"code reload: {e}", severity="error")
            return
        if r.get("ok"):
            self.notify("code checked: reloading (services kept)", timeout=3)

    def action_logs_full(self) -> None:
        self.screen.toggle_class("logs-full")

    def action_logs_all(self) -> None:
        self.merged_logs = not self.merged_logs
        self.logs.show(None if self.merged_logs else self.table.selected)

    def action_search(self) -> None:
        def answered(pattern: str | None) -> None:
            if pattern:
                self.logs.search(pattern)
            elif pattern == "":
                self.logs.clear_search()

        self.push_screen(PromptScreen("Search the logs:"), answered)

    def action_next_match(self) -> None:
        self.logs.next_match()

    def action_prev_match(self) -> None:
        self.logs.prev_match()

    def action_follow(self) -> None:
        self.logs.resume()

    def action_filter(self) -> None:
        def answered(text: str | None) -> None:
            if text is not None:
                self.table.filter_text = text.strip()
                self.store.order_changed = True
                self._tick()

        self.push_screen(PromptScreen("Filter services (name or state; empty shows all):",
                                      self.table.filter_text), answered)

    def action_sort(self) -> None:
        keys: list[str | None] = [None, *SORT_KEYS]
        self.table.sort_key = keys[(keys.index(self.table.sort_key) + 1) % len(keys)]
        self.store.order_changed = True
        self._tick()
        self.notify(f"sorted by {self.table.sort_key or 'config order'}", timeout=2)

    def action_detail(self) -> None:
        self.screen.toggle_class("detail-full")

    def on_data_table_row_selected(self) -> None:
        """`enter` on the table (the table binds it, so the app's binding never sees it)."""
        self.action_detail()

    def action_events(self) -> None:
        if isinstance(self.screen, EventsScreen):
            self.screen.dismiss()
        else:
            self.push_screen(EventsScreen(self.events))

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    async def action_quit(self) -> None:  # (App's is a coroutine: Textual awaits it)
        if self.mode == "attached":
            self._leave("detach")
            return

        def answered(choice: str | None) -> None:
            if choice in ("stop", "leave"):  # once the dialog is gone (exiting inside
                self.call_after_refresh(self._leave, choice)  # its dismiss hangs)

        self.push_screen(QuitScreen(), answered)

    def _leave(self, how: str) -> None:
        self._leaving = True  # the event worker is cancelled with the app
        self.exit(how)
