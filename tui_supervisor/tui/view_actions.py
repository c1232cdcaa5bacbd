"""The keys and commands that change what the dashboard shows: the panes (full-screen
logs or detail, all services' logs), log search, the table's filter and sort, the event
log and help screens, and quitting (stop the services, leave them, or detach).

A mixin of `SupervisorApp`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.widget import Widget

from tui_supervisor.tui import layout
from tui_supervisor.tui.eventlog import EventLog
from tui_supervisor.tui.prefs import Prefs, size_class
from tui_supervisor.tui.rows import SORT_KEYS
from tui_supervisor.tui.screens.dialogs import PromptScreen, QuitScreen
from tui_supervisor.tui.screens.events import EventsScreen
from tui_supervisor.tui.screens.help import HelpScreen
from tui_supervisor.tui.store import Store
from tui_supervisor.tui.widgets.logview import LogView
from tui_supervisor.tui.widgets.services import ServicesTable

if TYPE_CHECKING:
    from textual.app import App

    from tui_supervisor.engine.api import SupervisorAPI

    _AppBase = App[str]
else:  # mypy checks it as the App it is mixed into; at run time a plain class, so
    # SupervisorApp stays the only Textual class (one CSS path, one bindings list)
    _AppBase = object


class ViewActions(_AppBase):
    """l, a, /, n, N, end, home, t, escape, f, o, enter, [, ], <, >, e, ?, q."""

    # What it uses of the app.
    api: SupervisorAPI
    store: Store
    events: EventLog
    mode: str
    merged_logs: bool
    prefs: Prefs
    _leaving: bool
    _arranged: tuple[object, ...] = ()
    """What the grid was last sized for (re-sized only when that changes)."""

    if TYPE_CHECKING:
        @property
        def table(self) -> ServicesTable: ...

        @property
        def logs(self) -> LogView: ...

        def _tick(self) -> None: ...

    def action_logs_full(self) -> None:
        self.screen.remove_class("detail-full")
        self.screen.toggle_class("logs-full")
        # the table hides: no focus (as before the grid; its sibling, the log pane, would
        # take it and its escape clear a search before leaving); back on the table after
        self.set_focus(None if self.screen.has_class("logs-full") else self.table)
        self._arrange()

    def action_logs_all(self) -> None:
        self.merged_logs = not self.merged_logs
        self.logs.show(None if self.merged_logs else self.table.log_source)

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

    def action_logs_top(self) -> None:
        self.logs.oldest()

    def action_timestamps(self) -> None:
        self.logs.timestamps = not self.logs.timestamps

    def action_leave_full(self) -> None:
        if self.screen.has_class("logs-full"):
            self.set_focus(self.table)
        self.screen.remove_class("logs-full", "detail-full")
        self._arrange()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "leave_full":  # escape does nothing (and is not shown) otherwise
            return self.screen.has_class("logs-full") or self.screen.has_class("detail-full")
        return True

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

    def action_fold(self) -> None:
        """Fold / unfold the replica group under the cursor (its row or a replica's)."""
        group = self.table.selected_group
        if group is None:
            self.notify("not a replica group", severity="warning", timeout=2)
            return
        self.table.toggle_fold(group)
        self.store.order_changed = True
        self._tick()

    def action_detail(self) -> None:
        self.screen.remove_class("logs-full")
        self.screen.toggle_class("detail-full")
        self._arrange()

    # -- pane sizes (layout.py decides; the prefs remember them per size class) ----------
    def _size_class(self) -> str:
        return size_class(self.size.width, self.size.height)

    def _mode(self) -> str:
        screen = self.screen_stack[0] if self.screen_stack else None
        for mode in ("logs-full", "detail-full"):
            if screen is not None and screen.has_class(mode):
                return mode
        return ""

    def _sizes(self) -> layout.Sizes:
        return layout.sizes_for(self._size_class(), self.prefs.get("layout"))

    def _table_wanted(self) -> int:
        """Rows the table needs to show all its rows: its header, the rows, a scroll bar."""
        table = self.table
        scrollbar = table.virtual_size.width > table.scrollable_content_region.width
        return table.row_count + 1 + int(scrollbar)

    def _arrange(self) -> None:
        """Size the body's grid for the screen, the mode, the table's rows and the user's
        sizes; cheap when nothing changed (it runs every tick)."""
        if not getattr(self, "_widgets", None):
            return
        body = self.table.parent  # #body (queries would look at a dialog when one is up)
        if not isinstance(body, Widget):  # unmounted: the app is closing
            return
        cls, width = self._size_class(), self.size.width
        height = body.size.height or max(1, self.size.height - 4)
        key = (cls, self._mode(), width, height, self._table_wanted(), self._sizes())
        if key == self._arranged:
            return
        self._arranged = key
        self._classify(cls)
        columns, rows = layout.grid(*key)
        body.styles.grid_columns = columns
        body.styles.grid_rows = rows

    def _classify(self, cls: str) -> None:
        """The screen class of the size: -small, -medium or -large (app.tcss)."""
        screen = self.screen_stack[0] if self.screen_stack else None
        if screen is not None:
            for c in ("small", "medium", "large"):
                screen.set_class(c == cls, f"-{c}")

    def action_table_size(self, by: int) -> None:
        """`[` / `]`: the table's share of the screen (large: the top row's)."""
        body = self.table.parent
        if not isinstance(body, Widget):
            return
        shown = self.table.outer_size.height
        cls = self._size_class()
        sizes = layout.grow_table(cls, self._sizes(), body.size.height, shown, by)
        self._remember(cls, sizes)
        if cls != "large" and by > 0 and self._table_wanted() <= shown:
            self.notify("the table shows all its rows", timeout=2)

    def action_detail_size(self, by: int) -> None:
        """`<` / `>`: the detail pane's width."""
        cls = self._size_class()
        self._remember(cls, layout.widen_detail(self._sizes(), self.size.width, by))
        if cls == "small" and not self.screen.has_class("detail-full"):
            self.notify("the detail pane shows with enter on this small screen", timeout=2)

    def _remember(self, cls: str, sizes: layout.Sizes) -> None:
        self.prefs.set("layout", layout.saved_with(self.prefs.get("layout"), cls, sizes))
        self._arrange()

    def action_events(self) -> None:
        if isinstance(self.screen, EventsScreen):
            self.screen.dismiss()
        else:
            self.push_screen(EventsScreen(self.events))

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    async def action_quit(self) -> None:  # (App's is a coroutine: Textual awaits it)
        attached = self.mode == "attached"

        def answered(choice: str | None) -> None:
            if choice == "stop" and attached:  # the engine stops everything, then exits
                self.run_worker(self._shut_down(), exclusive=True, group="quit")
            elif choice in ("stop", "leave"):  # once the dialog is gone (exiting inside
                self.call_after_refresh(  # its dismiss hangs)
                    self._leave, "detach" if attached else choice)

        self.push_screen(QuitScreen(attached=attached), answered)

    async def _shut_down(self) -> None:
        """An attached dashboard's "stop all": the engine's `shutdown` (as the CLI's)."""
        try:
            r = await self.api.shutdown()
        except Exception as e:  # the engine went, or is older: say so, stay
            self.notify(f"cannot shut the engine down: {e}", severity="error")
            return
        if not r.get("ok"):
            self.notify(f"cannot shut the engine down: {r.get('error')}", severity="error")
            return
        self.call_after_refresh(self._leave, "stop")

    def _leave(self, how: str) -> None:
        self._leaving = True  # the event worker is cancelled with the app
        self.exit(how)
