"""A DataTable that paints its one-line text cells without Rich's layout pass.

DataTable renders every cell as `Styled(Padding(cell))` through `Console.render_lines`
(measure, wrap, split into lines, crop, pad) and throws its cache away whenever any cell
changes (`_update_count`): a sort, or the uptime column ticking, repaints every visible
cell. The services table's cells are all one-line `Text`, so the same segments come from
`Text.align` and `Text.render` at about a third of the cost, and they are kept per cell
until that cell's Text is replaced: a tick that moves every uptime repaints one cell a
row, not all of them. Anything else (a header, a label, a cell with a newline or a tab, a
taller row) takes DataTable's own path; the output is the same segments either way
(tests/test_tui_cells.py compares them cell by cell)."""

from __future__ import annotations

from typing import Any

from rich.align import AlignMethod
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual._types import SegmentLines
from textual.widgets import DataTable

ALIGN: dict[str | None, AlignMethod | None] = {
    None: None, "default": None, "left": "left", "right": "right", "center": "center"}
"""A cell's justify -> how `Text.align` pads it to the cell's width (None: not at all, the
cell's padding fills it, unstyled by the text; "full": DataTable's path)."""


KEYED_BY_COUNT = ("_cell_render_cache", "_row_render_cache", "_row_renderable_cache",
                  "_line_cache")
"""DataTable's caches whose keys hold `_update_count`."""


PAINTED_MAX = 8192
"""Cells kept painted (a screenful is a few hundred; past this, start again)."""


class FastCellTable(DataTable[Any]):
    def __init__(self, *args: Any, **kw: Any) -> None:
        self._painted: dict[tuple[Any, ...], tuple[Text, SegmentLines]] = {}
        """Cell key -> (the Text painted, its lines): a Text is never changed in place
        (`update_cell` puts a new one), so the same object paints the same."""
        super().__init__(*args, **kw)

    @property
    def _update_count(self) -> int:
        return self._updates

    @_update_count.setter
    def _update_count(self, value: int) -> None:
        """DataTable counts every change; its caches are keyed by the count, so what they
        held can never be hit again: drop it now rather than keep up to 13,000 stale
        renders alive (garbage the collector walks at every full pass) until LRU evicts
        them."""
        self._updates = value
        for name in KEYED_BY_COUNT:
            cache = self.__dict__.get(name)
            if cache is not None:
                cache.clear()

    def _render_cell(self, row_index: int, column_index: int, base_style: Style,
                     width: int, cursor: bool = False, hover: bool = False) -> SegmentLines:
        if row_index < 0 or column_index < 0:  # the header row, a row label
            return super()._render_cell(row_index, column_index, base_style, width,
                                        cursor, hover)
        row_key = self._row_locations.get_key(row_index)
        column_key = self._column_locations.get_key(column_index)
        if row_key is None or column_key is None:
            return super()._render_cell(row_index, column_index, base_style, width,
                                        cursor, hover)
        cell = self._get_row_renderables(row_index)[1][column_index]
        row = self.rows[row_key]
        if not isinstance(cell, Text) or row.height != 1 or row.auto_height or \
                cell.justify not in ALIGN or "\n" in cell.plain or "\t" in cell.plain:
            return super()._render_cell(row_index, column_index, base_style, width,
                                        cursor, hover)
        # DataTable's key without its `_update_count`, which moves at every cell update
        # (one new uptime would repaint every cell): a cell is painted again when its Text
        # was replaced (`update_cell`, checked below), it moved, or its styles changed
        # (show_cursor, padding, fixed rows/columns and CSS clear the caches instead).
        key = (row_index, column_index, width, base_style, cursor, hover,
               self._show_hover_cursor, self._pseudo_class_state)
        hit = self._painted.get(key)
        if hit is not None and hit[0] is cell:
            return hit[1]
        fixed = row_index < self.fixed_rows or column_index < self.fixed_columns
        component_style, post_style = self._get_styles_to_render_cell(
            False, False, fixed, hover, cursor, self.show_cursor, self._show_hover_cursor,
            self.cursor_foreground_priority == "css",
            self.cursor_background_priority == "css")
        console = self.app.console
        pre_style = base_style + Style.from_meta({"row": row_index, "column": column_index})
        text = cell.copy()
        text.end = ""
        pad = self.cell_padding
        inner = max(0, width - 2 * pad)
        align = ALIGN[cell.justify]
        if align is None:
            text.truncate(inner, overflow=text.overflow or "fold")
        else:
            text.align(align, inner)
        # Text.render leaves the text's own style to its caller when it has no spans
        body = list(text.render(console)) if text.spans else \
            [Segment(text.plain, console.get_style(text.style) if text.style else None)]
        rest = inner - text.cell_len if align is None else 0
        if pad or rest:
            body = [Segment(" " * pad), *body, Segment(" " * (pad + rest))]
        line = list(Segment.apply_style(body, console.get_style(pre_style + component_style),
                                        console.get_style(post_style)))
        lines = [line]
        if len(self._painted) >= PAINTED_MAX:
            self._painted.clear()
        self._painted[key] = (cell, lines)
        return lines

    def _clear_caches(self) -> None:
        super()._clear_caches()
        self._painted.clear()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._painted.clear()
