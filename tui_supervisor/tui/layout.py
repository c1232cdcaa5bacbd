"""Where the dashboard's panes sit and how big they are: pure decisions, table-tested.

The body below the header is a two-column grid holding `#services`, `#detail`, `#logs`
(in that order). CSS (app.tcss) says which cells each spans per screen class (`-small`,
`-medium`, `-large`) and mode (`logs-full`, `detail-full`); this module says how many
rows and columns those cells get:

- small / medium: the table on top, as tall as its rows up to a share of the body (then
  it scrolls), the detail | logs below (small: the logs alone; the detail is `enter`).
- large: the table and the detail side by side on top (a share of the body: the detail
  uses the height), the logs below at full width.
- detail-full (`enter`), any class: the table as tall as its rows, the detail below at
  full width; logs-full (`l`): the logs alone.

The user's sizes (`Sizes`) are kept per size class in the prefs under "layout".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TABLE_SHARE = {"small": 50, "medium": 50, "large": 55}
"""Default: the most of the body the top row may take, in percent."""
DETAIL_WIDTH = {"small": 48, "medium": 48, "large": 60}
"""Default detail pane width, in columns."""
SHARE_STEP, SHARE_MIN, SHARE_MAX = 5, 5, 85
WIDTH_STEP, WIDTH_MIN = 4, 30
MIN_OTHER = 30
"""Columns left to the table (large) or the logs (medium) beside the detail pane."""
MIN_TOP = 3
"""The table's header and two rows, whatever the share."""
MIN_LOGS = 5
"""The log pane's border and three lines, whatever the share."""


@dataclass(frozen=True)
class Sizes:
    table: int
    """The top row's share of the body, percent (small/medium: its most)."""
    detail: int
    """The detail pane's width, columns."""


def sizes_for(cls: str, saved: Any) -> Sizes:
    """The sizes of a class: those saved (the prefs' "layout" value) where they are sane
    numbers, the defaults otherwise (a hand-edited file must never break the UI)."""
    entry = saved.get(cls) if isinstance(saved, dict) else None
    entry = entry if isinstance(entry, dict) else {}

    def num(key: str, default: int, lo: int, hi: int) -> int:
        v = entry.get(key)
        if isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi:
            return v
        return default

    return Sizes(table=num("table", TABLE_SHARE[cls], SHARE_MIN, SHARE_MAX),
                 detail=num("detail", DETAIL_WIDTH[cls], WIDTH_MIN, 1000))


def saved_with(saved: Any, cls: str, sizes: Sizes) -> dict[str, Any]:
    """The prefs' "layout" value with one class's sizes replaced (others kept)."""
    out = dict(saved) if isinstance(saved, dict) else {}
    out[cls] = {"table": sizes.table, "detail": sizes.detail}
    return out


def top_rows(cls: str, body: int, wanted: int, share: int) -> int:
    """Rows of the top grid row. `wanted`: what the table needs to show every row
    (header, rows, a scroll bar). Small/medium: `wanted`, at most `share`% of the body;
    large: the share itself (the detail beside the table uses the height). Always leaves
    the logs MIN_LOGS rows and the table MIN_TOP."""
    cap = body * share // 100
    rows = cap if cls == "large" else min(wanted, cap)
    return max(MIN_TOP, min(rows, body - MIN_LOGS))


def detail_columns(width: int, wanted: int) -> int:
    """The detail pane's width on a screen `width` wide: leaves MIN_OTHER to its
    neighbour."""
    return max(WIDTH_MIN, min(wanted, width - MIN_OTHER))


def grid(cls: str, mode: str, width: int, body: int, wanted: int,
         sizes: Sizes) -> tuple[str, str]:
    """(grid-columns, grid-rows) of the body. mode: "" | "logs-full" | "detail-full"."""
    detail = detail_columns(width, sizes.detail)
    columns = f"1fr {detail}" if cls == "large" else f"{detail} 1fr"
    if mode == "logs-full":  # only the logs shown
        return "1fr 1fr", "1fr"
    if mode == "detail-full":  # the table as tall as its rows, the detail full width below
        return columns, f"{top_rows('medium', body, wanted, sizes.table)} 1fr"
    return columns, f"{top_rows(cls, body, wanted, sizes.table)} 1fr"


def grow_table(cls: str, sizes: Sizes, body: int, shown: int, by: int) -> Sizes:
    """`]` (by=+1) / `[` (by=-1): one step of the top row's share. Shrinking starts from
    what is shown (a short table's share is above its height: a step from the share
    would change nothing to see)."""
    current = sizes.table
    if by < 0 and cls != "large" and body > 0:
        current = min(current, -(-shown * 100 // body))  # the share it takes now
    share = max(SHARE_MIN, min(SHARE_MAX, current + by * SHARE_STEP))
    return Sizes(table=share, detail=sizes.detail)


def widen_detail(sizes: Sizes, width: int, by: int) -> Sizes:
    """`>` (by=+1) / `<` (by=-1): one step of the detail pane's width, from what is shown."""
    current = detail_columns(width, sizes.detail)
    wide = max(WIDTH_MIN, min(width - MIN_OTHER, current + by * WIDTH_STEP))
    return Sizes(table=sizes.table, detail=max(WIDTH_MIN, wide))
