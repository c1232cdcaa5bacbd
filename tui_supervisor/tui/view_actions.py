"""The keys and commands that change what the dashboard shows: the panes (full-screen
logs or detail, all services' logs), log search, the table's filter and sort, the event
log and help screens, and quitting (stop the services, leave them, or detach).

A mixin of `SupervisorApp`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tui_supervisor.tui.eventlog import EventLog
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
    """l, a, /, n, N, end, home, t, escape, f, o, enter, e, ?, q."""

    # What it uses of the app.
    api: SupervisorAPI
    store: Store
    events: EventLog
    mode: str
    merged_logs: bool
    _leaving: bool

    if TYPE_CHECKING:
        @property
        def table(self) -> ServicesTable: ...

        @property
        def logs(self) -> LogView: ...

        def _tick(self) -> None: ...

    def action_logs_full(self) -> None:
        self.screen.toggle_class("logs-full")

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
        self.logs.scroll_home(animate=False)  # scrolling up pauses the following

    def action_timestamps(self) -> None:
        self.logs.timestamps = not self.logs.timestamps

    def action_leave_full(self) -> None:
        self.screen.remove_class("logs-full", "detail-full")

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
        self.screen.toggle_class("detail-full")

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
