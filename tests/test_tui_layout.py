"""The pane sizes (tui/layout.py): pure decisions, table-tested."""

from __future__ import annotations

from typing import Any

import pytest

from tui_supervisor.tui import layout
from tui_supervisor.tui.layout import Sizes


@pytest.mark.parametrize(("cls", "body", "wanted", "share", "rows"), [
    ("medium", 40, 5, 50, 5),      # a short table: as tall as its rows
    ("medium", 40, 60, 50, 20),    # a long one: its share, then it scrolls
    ("medium", 20, 60, 85, 15),    # the logs keep MIN_LOGS rows
    ("small", 20, 1, 50, 3),       # no rows: still the header and two
    ("small", 20, 6, 15, 3),       # the smallest share still shows the header and two
    ("large", 55, 5, 55, 30),      # large: the share (the detail beside uses it)
    ("large", 8, 5, 55, 3),
])
def test_top_rows(cls: str, body: int, wanted: int, share: int, rows: int) -> None:
    assert layout.top_rows(cls, body, wanted, share) == rows


@pytest.mark.parametrize(("cls", "mode", "width", "expected"), [
    ("medium", "", 140, ("48 1fr", "6 1fr")),
    ("small", "", 80, ("48 1fr", "6 1fr")),
    ("small", "detail-full", 80, ("48 1fr", "6 1fr")),
    ("large", "", 200, ("1fr 60", "22 1fr")),
    ("large", "detail-full", 200, ("1fr 60", "6 1fr")),  # the table's rows, detail below
    ("medium", "logs-full", 140, ("1fr 1fr", "1fr")),
])
def test_grid(cls: str, mode: str, width: int, expected: tuple[str, str]) -> None:
    sizes = layout.sizes_for(cls, None)
    assert layout.grid(cls, mode, width, 40, 6, sizes) == expected


@pytest.mark.parametrize(("saved", "expected"), [
    (None, Sizes(50, 48)),
    ({"medium": {"table": 30, "detail": 70}}, Sizes(30, 70)),
    ({"small": {"table": 30}}, Sizes(50, 48)),                 # another class's
    ({"medium": {"table": "30", "detail": True}}, Sizes(50, 48)),  # hand-edited junk
    ({"medium": {"table": 99, "detail": 3}}, Sizes(50, 48)),   # out of bounds
    ({"medium": {"table": 4, "detail": 29}}, Sizes(50, 48)),
    ({"medium": [1, 2]}, Sizes(50, 48)),
    ("not a dict", Sizes(50, 48)),
])
def test_sizes_for_reads_only_sane_values(saved: Any, expected: Sizes) -> None:
    assert layout.sizes_for("medium", saved) == expected


def test_saved_with_keeps_other_classes() -> None:
    saved = {"small": {"table": 20, "detail": 40}}
    out = layout.saved_with(saved, "large", Sizes(60, 90))
    assert out == {"small": {"table": 20, "detail": 40}, "large": {"table": 60, "detail": 90}}
    assert saved == {"small": {"table": 20, "detail": 40}}  # not changed in place


@pytest.mark.parametrize(("cls", "share", "shown", "by", "new"), [
    ("medium", 50, 20, 1, 55),
    ("medium", 85, 34, 1, 85),     # at most SHARE_MAX
    ("medium", 50, 6, -1, 10),     # a short table shrinks from what it shows (15% of 40)
    ("medium", 50, 20, -1, 45),
    ("medium", 5, 2, -1, 5),       # at least SHARE_MIN
    ("large", 55, 6, -1, 50),      # large: from the share (the row is the share)
])
def test_grow_table(cls: str, share: int, shown: int, by: int, new: int) -> None:
    assert layout.grow_table(cls, Sizes(share, 48), 40, shown, by).table == new


@pytest.mark.parametrize(("width", "detail", "by", "new"), [
    (140, 48, 1, 52), (140, 48, -1, 44), (140, 30, -1, 30),
    (140, 110, 1, 110),            # leaves MIN_OTHER to the logs
    (80, 200, -1, 46),             # from what is shown (80 - 30 = 50), one step
])
def test_widen_detail(width: int, detail: int, by: int, new: int) -> None:
    assert layout.widen_detail(Sizes(50, detail), width, by).detail == new
