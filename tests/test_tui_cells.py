"""FastCellTable paints its one-line text cells itself: the segments must be the ones
DataTable's own path gives (same characters, same styles, same click metadata), for every
kind of cell the services table shows and a few it does not."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.app import App, ComposeResult
from textual.widgets import DataTable

from tui_supervisor.tui.widgets.cells import FastCellTable

CELLS: list[Any] = [
    Text("", justify="left"),
    Text("web-1", style="bold"),
    Text("● running", justify="left", no_wrap=True, overflow="ellipsis"),
    Text("12.5%", justify="right"),
    Text("⣀⣤⣶⣿⣿⣶⣤⣀", style="cyan"),
    Text("↻ restarting in 3.2s (4/5) and then some", overflow="ellipsis", no_wrap=True),
    Text("a name far too long for its column", justify="right"),
    Text("中文服务名称", justify="center"),
    Text.assemble(("err", "red"), " / ", ("ok", "green"), justify="right"),
    Text("two\nlines"),  # DataTable's path: a newline
    Text("tab\there"),  # DataTable's path: a tab
    Text("full", justify="full"),  # DataTable's path: full justify
    "plain str",  # DataTable's path: not a Text
]


def norm(lines: Any) -> list[list[Segment]]:
    """The same picture however it was cut into segments."""
    return [list(Segment.simplify(s for s in line if s.text)) for line in lines]


class Cells(App[None]):
    def compose(self) -> ComposeResult:
        yield FastCellTable()


@asynccontextmanager
async def table_of(columns: list[tuple[str, int]], rows: dict[str, list[Any]]
                   ) -> AsyncIterator[FastCellTable]:
    """A mounted FastCellTable with these (key, width) columns and key -> cells rows."""
    app = Cells()
    async with app.run_test(size=(120, 30)):
        table = app.query_one(FastCellTable)
        for key, width in columns:
            table.add_column(key.upper(), key=key, width=width)
        for key, cells in rows.items():
            table.add_row(*cells, key=key)
        yield table


@pytest.mark.parametrize("width", [4, 10, 16])
async def test_each_cell_paints_as_datatable_paints_it(width: int) -> None:
    async with table_of([(f"c{i}", width) for i in range(len(CELLS))],
                        {"r0": CELLS, "r1": CELLS[::-1]}) as table:
        base = Style(color="white", bgcolor="black")
        compared = 0
        for row in range(2):
            for col in range(len(CELLS)):
                for cursor, hover in ((False, False), (True, False), (False, True)):
                    table._cell_render_cache.clear()
                    ours = table._render_cell(row, col, base, width, cursor, hover)
                    table._cell_render_cache.clear()
                    theirs = DataTable._render_cell(table, row, col, base, width, cursor,
                                                    hover)
                    assert norm(ours) == norm(theirs), (row, col, cursor, hover)
                    compared += 1
        assert compared == 2 * len(CELLS) * 3


async def test_text_cells_skip_richs_layout_and_the_rest_do_not() -> None:
    async with table_of([("a", 8), ("b", 8)],
                        {"r": [Text("fast", justify="right"), Text("slow\npath")]}) as table:
        calls = []
        console = table.app.console
        orig = console.render_lines

        def counted(*a: Any, **kw: Any) -> Any:
            calls.append(a)
            return orig(*a, **kw)

        console.render_lines = counted  # type: ignore[method-assign]
        try:
            base = Style()
            table._cell_render_cache.clear()
            table._render_cell(0, 0, base, 8)
            assert calls == []
            table._render_cell(0, 1, base, 8)
            slow = len(calls)
            assert slow > 0
            table._render_cell(-1, 0, base, 8)  # the header: DataTable's path
            assert len(calls) > slow
            # cached: the second paint of the same cell renders nothing
            seen = len(calls)
            table._render_cell(0, 0, base, 8)
            assert len(calls) == seen
        finally:
            console.render_lines = orig  # type: ignore[method-assign]


async def test_a_cell_is_painted_again_only_when_its_text_is_replaced() -> None:
    """DataTable's caches all go when any cell changes; ours keeps the other cells'."""
    async with table_of([("name", 8), ("uptime", 8)],
                        {"web": [Text("web"), Text("1s", justify="right")]}) as table:
        base = Style()
        name, uptime = table._render_cell(0, 0, base, 8), table._render_cell(0, 1, base, 8)
        count = table._update_count
        table.update_cell("web", "uptime", Text("2s", justify="right"))
        assert table._update_count > count  # DataTable's own caches are void now
        assert table._render_cell(0, 0, base, 8) is name
        again = table._render_cell(0, 1, base, 8)
        assert again is not uptime
        assert "".join(s.text for s in again[0]).strip() == "2s"
        # the same cell under the cursor is another picture
        assert table._render_cell(0, 0, base, 8, cursor=True) is not name
