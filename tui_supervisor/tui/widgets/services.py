"""The services table: one keyed row per service, updated cell by cell (only cells whose
text changed), sortable, filterable; the cursor stays on the same service across updates,
sorts, filters and folds. Replicas (`group` in their view) sit under a group row
("▾ web", aggregates) that folds them away (`toggle_fold`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual.binding import Binding
from textual.coordinate import Coordinate

from tui_supervisor.formatting import health_colour, shown_state, state_colour
from tui_supervisor.tui.rows import (
    TRENDS,
    arrange,
    cells,
    columns_for,
    group_cells,
    group_key,
    group_of_key,
    group_state,
    replicas_of,
    sort_value,
)
from tui_supervisor.tui.widgets.cells import FastCellTable

RIGHT = {"pid", "restarts", "restarts_1h", "failures", "mttr", "avail", "cpu", "mem",
         "uptime"}
TREND_STYLE = {"cpu_trend": "cyan", "mem_trend": "magenta"}


class ServicesTable(FastCellTable):
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
        self.folded: set[str] = set()
        """Replica groups folded (kept while the app runs)."""
        self._views: dict[str, dict[str, Any]] = {}
        self._keep: str | None = None
        """The row under the cursor before the columns were rebuilt."""
        self._columns: tuple[tuple[str, str, int], ...] = ()
        """What `columns_for` chose for the current width."""
        self.shown_columns: tuple[str, ...] = ()
        """The keys of `_columns` (read per row per tick: kept, not rebuilt)."""
        self._trend_width = 0
        """The trend columns' width (0: none shown)."""
        self._now = 0.0
        self.on_cursor_row: Callable[[], object] | None = None
        """Called when the cursor changes row, at once: the panes that follow it switch in
        the key's own frame (the RowHighlighted message reaches the app a frame later)."""
        self._quiet = 0
        """>0 while `sync` moves rows (and the cursor with them): no calls then."""

    def watch_cursor_coordinate(self, old: Coordinate, new: Coordinate) -> None:
        super().watch_cursor_coordinate(old, new)
        if old.row != new.row and not self._quiet and self.on_cursor_row is not None:
            self.on_cursor_row()

    def on_mount(self) -> None:
        self._fit_columns()

    def on_resize(self) -> None:
        if self._fit_columns() and self._views:
            self.sync(self._views, now=self._now)

    def _fit_columns(self) -> bool:
        """Choose the columns for the table's width; rebuild them (rows re-added by the
        next sync) when the choice changed."""
        width = self.size.width or self.app.size.width
        names = [n for n in self._views if group_of_key(n) is None]
        name_width = max((len(n) + 2 for n in names), default=0)  # +2: a replica's indent
        wanted = columns_for(width, name_width)
        if wanted == self._columns:
            return False
        keep = self.selected_key
        self._quiet += 1  # (the cursor goes to the top; sync puts it back)
        try:
            self.clear(columns=True)
        finally:
            self._quiet -= 1
        self._shown.clear()
        self._order = []
        self._columns = wanted
        self.shown_columns = tuple(key for key, _, _ in wanted)
        self._trend_width = next((w for k, _, w in wanted if k in TRENDS), 0)
        for key, label, w in wanted:
            self.add_column(Text(label, justify="right" if key in RIGHT else "left"),
                            key=key, width=None if key == "name" else w)
        self._keep = keep
        return True

    @property
    def selected_key(self) -> str | None:
        """The row key under the cursor: a service's name, or a group row's key."""
        if not self.row_count:
            return None
        try:
            return str(self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value)
        except Exception:  # no row at the cursor
            return None

    @property
    def selected(self) -> str | None:
        """The service under the cursor (None on a group row)."""
        key = self.selected_key
        return key if key is None or group_of_key(key) is None else None

    @property
    def selected_group(self) -> str | None:
        """The replica group under the cursor: its row, or one of its replicas'."""
        key = self.selected_key
        if key is None:
            return None
        group = group_of_key(key)
        if group is None and key in self._views:
            group = self._views[key].get("group")
        return None if group is None else str(group)

    def selected_names(self) -> list[str]:
        """The services the cursor stands for: its service, or all of a group's replicas."""
        key = self.selected_key
        group = group_of_key(key) if key is not None else None
        if group is not None:
            return replicas_of(group, self._views)
        return [key] if key is not None else []

    @property
    def log_source(self) -> str | None:
        """The service whose logs the row under the cursor shows (a group row: its first
        replica's)."""
        names = self.selected_names()
        return names[0] if names else None

    def replicas(self, group: str) -> list[str]:
        """The replicas of `group` in the last views synced."""
        return replicas_of(group, self._views)

    def select(self, name: str) -> None:
        if name in self._shown:
            self.move_cursor(row=self.get_row_index(name), animate=False)

    def toggle_fold(self, group: str) -> None:
        """Fold or unfold a group's replicas; the caller re-syncs (order changed)."""
        self.folded ^= {group}

    def _texts(self, key: str, now: float) -> tuple[dict[str, str], dict[str, Any]]:
        """A row's cell texts (the shown columns') and the view its colours come from."""
        texts, view = self._all_texts(key, now)
        return {k: texts[k] for k in self.shown_columns}, view

    def _all_texts(self, key: str, now: float) -> tuple[dict[str, str], dict[str, Any]]:
        group = group_of_key(key)
        trend = self._trend_width
        if group is None:
            texts = cells(self._views[key], now, trend)
            if self._views[key].get("group") is not None:
                texts["name"] = "  " + texts["name"]  # under its group row
            return texts, self._views[key]
        reps = [self._views[n] for n in replicas_of(group, self._views)]
        all_ready = all(v.get("health") == "ready" for v in reps)
        return (group_cells(group, reps, group in self.folded),
                {"state": group_state(reps), "group_row": True,
                 "health": "ready" if all_ready else "unready"})

    def _cell(self, key: str, text: str, view: dict[str, Any]) -> Text:
        t = Text(text, justify="right" if key in RIGHT else "left", no_wrap=True,
                 overflow="ellipsis")
        if key == "state" and view.get("group_row"):
            # all up: running's colour; some: stopping's (yellow); all alike: theirs
            state = str(view.get("state"))
            t.stylize(state_colour(state if state != "mixed" else "stopping"))
        elif key == "state":
            t.stylize(state_colour(shown_state(str(view.get("state")),
                                               view.get("crash_looping"))))
        elif key == "health":  # a group row's: ready when all are, else unready
            t.stylize(health_colour(view.get("health") if view.get("group_row") else text))
        elif key == "name":
            t.stylize("bold")
        elif key in TREND_STYLE:
            t.stylize(TREND_STYLE[key])
        return t

    def _visible(self, views: dict[str, dict[str, Any]]) -> list[str]:
        f = self.filter_text.lower()
        names = [n for n, v in views.items()
                 if not f or f in n.lower() or f in str(v.get("state", "")).lower()]
        if self.sort_key is not None:
            names.sort(key=lambda n: sort_value(views[n], self.sort_key or "name"))
        return arrange(names, views, self.folded)

    def sync(self, views: dict[str, dict[str, Any]], changed: set[str] | None = None,
             now: float | None = None) -> int:
        """Bring the table in line with `views` (name -> snapshot view, config order).
        `changed`: only these services' cells can differ (None: check all). Returns the
        number of cells written."""
        if changed is not None and not changed and self._order:
            return 0  # nothing changed: same rows, same order, same texts (most ticks)
        self._quiet += 1
        try:
            return self._sync(views, changed, now)
        finally:
            self._quiet -= 1

    def _sync(self, views: dict[str, dict[str, Any]], changed: set[str] | None,
              now: float | None) -> int:
        now = now if now is not None else time.monotonic()
        self._now = now
        names_before = set(self._views)
        self._views = views
        keep = self.selected_key or self._keep
        self._keep = None
        if set(views) != names_before:
            self._fit_columns()  # the name column's width changed
            self._keep = None
        wanted = self._visible(views)
        if changed is not None:  # a replica's change is its group row's too
            changed = changed | {group_key(str(views[n]["group"])) for n in changed
                                 if n in views and views[n].get("group") is not None}
        written = 0
        if wanted != self._order:
            for gone in [n for n in self._order if n not in wanted]:
                self.remove_row(gone)
                self._shown.pop(gone, None)
            for name in wanted:
                if name not in self._shown:
                    texts, view = self._texts(name, now)
                    self.add_row(*(self._cell(k, texts[k], view)
                                   for k in self.shown_columns), key=name)
                    self._shown[name] = texts
                    written += len(texts)
            changed = None
        for name in wanted if changed is None else [n for n in changed if n in self._shown]:
            texts, view = self._texts(name, now)
            old = self._shown[name]
            for key in self.shown_columns:
                if texts[key] != old.get(key):
                    self.update_cell(name, key, self._cell(key, texts[key], view),
                                     update_width=key == "name")
                    written += 1
            self._shown[name] = texts
        if wanted != self._current_order():
            self._rows_in({self._shown[n]["name"]: i for i, n in enumerate(wanted)})
        self._order = wanted
        if keep is not None and keep not in self._shown and keep in views and \
                views[keep].get("group") is not None:  # folded away: onto its group
            keep = group_key(str(views[keep]["group"]))
        if keep is not None and keep in self._shown:
            self.select(keep)
        return written

    def _current_order(self) -> list[str]:
        return [str(r.key.value) for r in self.ordered_rows]

    def _rows_in(self, index: dict[str, int]) -> None:
        """Put rows in the order of `index` (DataTable sorts by cell values; sort by the
        row's position instead, through the name column's text, unique per row)."""
        self.sort("name", key=lambda name_cell: index.get(str(name_cell), 1 << 30))
