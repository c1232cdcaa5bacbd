"""Placeholder detail pane (replaced by the real one): the selected service's view."""

from __future__ import annotations

from typing import Any

from textual.widgets import Static

from tui_supervisor.tui.store import Store


class DetailPane(Static):
    def __init__(self, api: Any, store: Store, **kw: Any) -> None:
        super().__init__("", **kw)
        self.api = api
        self.store = store
        self.service: str | None = None

    def show(self, service: str | None) -> None:
        self.service = service
        self.view_changed()

    def view_changed(self) -> None:
        info = self.store.services.get(self.service or "")
        if info is not None:
            v = info.view
            self.update(f"{v.get('name')}  {v.get('state')}  {' '.join(v.get('command', []))}")

    async def refresh_data(self) -> None:
        self.view_changed()
