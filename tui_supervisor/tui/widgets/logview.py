"""Placeholder log pane (replaced by the virtual LogView): the last lines of a service."""

from __future__ import annotations

from typing import Any

from textual.widgets import Static

from tui_supervisor.tui.store import LogLine, Store


class LogView(Static):
    def __init__(self, store: Store, **kw: Any) -> None:
        super().__init__("", **kw)
        self.store = store
        self.service: str | None = None
        self.following = True
        self.match_count = 0

    def show(self, service: str | None) -> None:
        self.service = service
        self._paint()

    def lines_added(self, lines: list[LogLine]) -> None:
        if lines:
            self._paint()

    def _paint(self) -> None:
        src = self.store.merged if self.service is None else (
            self.store.services[self.service].lines if self.service in self.store.services
            else [])
        self.update("\n".join(f"{x.service}: {x.text}" for x in list(src)[-20:]))

    def search(self, pattern: str) -> None:
        pass

    def next_match(self) -> None:
        pass

    def prev_match(self) -> None:
        pass

    def clear_search(self) -> None:
        pass

    def resume(self) -> None:
        self.following = True
