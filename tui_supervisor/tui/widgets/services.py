"""The services table: one keyed row per service, updated cell by cell (only cells whose
text changed), sortable, filterable; the cursor stays on the same service across updates,
sorts and filters."""

from __future__ import annotations

import time
from typing import Any

from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable

from tui_supervisor.formatting import health_colour, shown_state, state_colour
from tui_supervisor.tui.rows import COLUMNS, cells, sort_value

RIGHT = {"pid", "restarts", "failures", "mttr", "avail", "cpu", "mem", "uptime"}
WIDTHS = {"state": 26, "health": 8, "pid": 7, "uptime": 7, "restarts": 8, "failures": 5, "mttr": 6,
          "avail": 7, "cpu": 6, "mem": 7, "last": 16}
"""Fixed widths (cells are updated in place; the name column grows with the names)."""


class ServicesTable(DataTable[Any]):
    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
        # home/end belong to the log pane (follow again, oldest line): the table, one
        # screen of services, keeps ctrl+home/ctrl+end (and g/G) for its first/last row
        Binding("home", "app.logs_top", "Logs: oldest line", show=False),
        Binding("end", "app.follow", "Follow logs", show=False),
        Binding("g", "scroll_top", "First service", show=False),
        Binding("G", "scroll_bottom", "Last service", show=False),
    ]

    def __init__(self, **kw: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kw)
        self.sort_key: str | None = None
        """None: config order."""
        self.filter_text = ""
        self._shown: dict[str, dict[str, str]] = {}
        """Service -> the cell texts on screen (to update only what changed)."""
        self._order: list[str] = []

    def on_mount(self) -> None:
        for key, label in COLUMNS:
            self.add_column(Text(label, justify="right" if key in RIGHT else "left"), key=key,
                            width=WIDTHS.get(key))

    @property
    def selected(self) -> str | None:
        """The service under the cursor."""
        if not self.row_count:
            return None
        try:
            return str(self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value)
        except Exception:  # no row at the cursor
            return None

    def select(self, name: str) -> None:
        if name in self._shown:
            self.move_cursor(row=self.get_row_index(name), animate=False)

    def _cell(self, key: str, text: str, view: dict[str, Any]) -> Text:
        t = Text(text, justify="right" if key in RIGHT else "left", no_wrap=True,
                 overflow="ellipsis")
        if key == "state":
            t.stylize(state_colour(shown_state(str(view.get("state")),
                                               view.get("crash_looping"))))
        elif key == "health":
            t.stylize(health_colour(text))
        elif key == "name":
            t.stylize("bold")
        return t

    def _visible(self, views: dict[str, dict[str, Any]]) -> list[str]:
        f = self.filter_text.lower()
        names = [n for n, v in views.items()
                 if not f or f in n.lower() or f in str(v.get("state", "")).lower()]
        if self.sort_key is not None:
            names.sort(key=lambda n: sort_value(views[n], self.sort_key or "name"))
        return names

    def sync(self, views: dict[str, dict[str, Any]], changed: set[str] | None = None,
             now: float | None = None) -> int:
        """Bring the table in line with `views` (name -> snapshot view, config order).
        `changed`: only these services' cells can differ (None: check all). Returns the
        number of cells written."""
        if changed is not None and not changed and self._order:
            return 0  # nothing changed: same rows, same order, same texts (most ticks)
        now = now if now is not None else time.monotonic()
        keep = self.selected
        wanted = self._visible(views)
        written = 0
        if wanted != self._order:
            for gone in [n for n in self._order if n not in wanted]:
                self.remove_row(gone)
                self._shown.pop(gone, None)
            for name in wanted:
                if name not in self._shown:
                    texts = cells(views[name], now)
                    self.add_row(*(self._cell(k, texts[k], views[name]) for k, _ in COLUMNS),
                                 key=name)
                    self._shown[name] = texts
                    written += len(texts)
            changed = None
        for name in wanted if changed is None else [n for n in changed if n in self._shown]:
            texts = cells(views[name], now)
            old = self._shown[name]
            for key, _ in COLUMNS:
                if texts[key] != old.get(key):
                    self.update_cell(name, key, self._cell(key, texts[key], views[name]),
                                     update_width=key == "name")
                    written += 1
            self._shown[name] = texts
        if wanted != self._current_order():
            self._rows_in({n: i for i, n in enumerate(wanted)})
        self._order = wanted
        if keep is not None and keep in self._shown:
            self.select(keep)
        return written

    def _current_order(self) -> list[str]:
        return [str(r.key.value) for r in self.ordered_rows]

    def _rows_in(self, index: dict[str, int]) -> None:
        """Put rows in the order of `index` (DataTable sorts by cell values; sort by the
        row key's position instead, through the name column)."""
        self.sort("name", key=lambda name_cell: index.get(str(name_cell), 1 << 30))
