"""Charts of the detail pane drawn in braille (pure: strings in, strings out).

Why hand-written braille and not textual-plotext: the pane redraws its charts once a
second while the dashboard repaints at 10 Hz. plotext 5.3.2 (with textual-plotext 1.0.1,
which imports under our Textual 8.2; ~1 MB installed) builds each figure through a
general-purpose canvas, axes and legend in pure Python: 19 ms for a 60x8 braille figure of
600 points, 44 ms at 120x14 (measured on this machine), for each of four charts. Here a
120x7 chart of 600 points takes 1.1 ms (0.5 ms at 60x3), the whole section 3-6 ms; no new
dependency, and exact strings make it table-testable. Braille cells give 2x4 dots per
character, so a 60-column, 3-row chart has 120x12 points.

Time: a series is sampled every `interval` seconds and its last value belongs to
`end`; the value at `t` covers (t - interval, t]. A chart covers `window` seconds up to
`end` over `2 * width` dot columns; each dot column shows the MAXIMUM of the values that
cover part of it (a spike is never averaged away), and a column no value covers is blank
(a gap: the process was down or nothing was sampled). A sampled zero is the lowest dot,
so a gap and a zero never look alike.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

Num = float | int | None

WINDOWS: tuple[float | None, ...] = (60.0, 600.0, 3600.0, None)
"""The windows `w` cycles through, in seconds; None: all the history kept."""

# dot bits of a braille cell (U+2800 + bits), bottom row first: (left, right)
_DOTS = ((0x40, 0x80), (0x04, 0x20), (0x02, 0x10), (0x01, 0x08))
RESTART, FAILURE = "↻", "✖"


def window_label(window: float | None) -> str:
    """"1m", "10m", "1h", "all"."""
    return "all" if window is None else short_duration(window)


def next_window(window: float | None) -> float | None:
    """The window after `window` in WINDOWS (the first after the last, or if unknown)."""
    i = WINDOWS.index(window) if window in WINDOWS else -1
    return WINDOWS[(i + 1) % len(WINDOWS)]


def short_duration(seconds: float) -> str:
    """Axis labels: 45s, 10m, 7m30s, 1h, 1h30m (whole seconds)."""
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m" + (f"{s % 60}s" if s % 60 else "")
    return f"{s // 3600}h" + (f"{s % 3600 // 60}m" if s % 3600 // 60 else "")


def span(values: Sequence[Num], interval: float, window: float | None) -> float:
    """Seconds a chart covers: `window`, or for "all" what the history holds (at least
    one interval, so an empty chart still has an axis)."""
    return window if window is not None else max(1, len(values)) * interval


def columns(values: Sequence[Num], interval: float, end: float, window: float,
            n: int) -> list[float | None]:
    """`values` (oldest first, the last at `end`) over `n` columns covering
    (end - window, end]: each column the maximum of the values covering part of it."""
    out: list[float | None] = [None] * n
    if n <= 0 or window <= 0:
        return out
    start, dc = end - window, window / n
    last = len(values) - 1
    for i, v in enumerate(values):
        if v is None:
            continue
        t = end - (last - i) * interval
        lo = max(0, math.floor((t - interval - start) / dc + 1e-9))
        hi = min(n - 1, math.ceil((t - start) / dc - 1e-9) - 1)
        for c in range(lo, hi + 1):
            cur = out[c]
            out[c] = v if cur is None or v > cur else cur
    return out


def plot(cols: Sequence[float | None], rows: int, vmax: float) -> list[str]:
    """Dot columns as an area chart of `rows` braille rows (top row first), each
    len(cols) / 2 characters (rounded up); scaled 0..vmax; None blank, 0 the lowest dot;
    a cell without dots is a space."""
    levels = rows * 4
    heights = []
    for v in cols:
        if v is None:
            heights.append(0)
        elif vmax <= 0:
            heights.append(1)
        else:
            heights.append(max(1, min(levels, round(v / vmax * levels))))
    if len(heights) % 2:
        heights.append(0)
    out = []
    for r in range(rows - 1, -1, -1):
        line = []
        for c in range(0, len(heights), 2):
            bits = 0
            for side in (0, 1):
                filled = min(4, max(0, heights[c + side] - r * 4))
                for dot in range(filled):
                    bits |= _DOTS[dot][side]
            line.append(chr(0x2800 + bits) if bits else " ")  # (U+2800 shows in some fonts)
        out.append("".join(line))
    return out


def chart(values: Sequence[Num], interval: float, end: float, window: float | None,
          width: int, rows: int, fmt: Callable[[float], str], gutter: int) -> list[str]:
    """A chart of `rows` lines, each `gutter` + `width` characters: the value axis at the
    left (max at the top, mid in the middle when there are 3 rows or more, 0 at the
    bottom), then the plot. The scale is the maximum over the window."""
    cols = columns(values, interval, end, span(values, interval, window), 2 * width)
    vmax = max((v for v in cols if v is not None), default=0.0)
    labels = [""] * rows
    labels[0] = fmt(vmax)
    if rows >= 3:
        labels[rows // 2] = fmt(vmax * (rows - 1 - rows // 2) / (rows - 1))
    if rows >= 2:
        labels[-1] = fmt(0)
    edge = ["┤" if lab else "│" for lab in labels]
    return [lab.rjust(gutter - 1)[-(gutter - 1):] + e + line
            for lab, e, line in zip(labels, edge, plot(cols, rows, vmax), strict=True)]


def strip(values: Sequence[Num], interval: float, end: float, window: float | None,
          width: int) -> str:
    """A 0/1 series (readiness) as one row: █ where every value in the cell is 1, ▁
    where one is 0, blank where none was sampled."""
    cols = columns([None if v is None else 1 - v for v in values], interval, end,
                   span(values, interval, window), width)  # (max of 1 - v: any 0 shows)
    return "".join(" " if c is None else "▁" if c > 0 else "█" for c in cols)


def mark_row(marks: Sequence[Sequence[object]], end: float, window: float,
             width: int) -> str:
    """Restarts (↻) and failures (✖) at the columns of their times; a failure wins a
    shared column (a crash and its respawn often land in the same one)."""
    cells = [" "] * width
    start = end - window
    for t, kind in ((float(m[0]), str(m[1])) for m in marks):  # type: ignore[arg-type]
        if not start < t <= end + 1e-9 or width <= 0:
            continue
        c = min(width - 1, int((t - start) / window * width))
        if kind == "failure":
            cells[c] = FAILURE
        elif cells[c] == " ":
            cells[c] = RESTART
    return "".join(cells)


NICE_STEPS = (5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600, 7200)
"""Seconds between ticks that read well (a window of odd length gets just its middle)."""


def time_axis(window: float, width: int) -> str:
    """Ticks under a chart: "-10m" at the left, "now" at the right, and as many evenly
    spaced ones between as fit with room to spare, at a step that reads well."""
    labels = {0: f"-{short_duration(window)}", width: "now"}
    for parts in (12, 10, 6, 5, 4, 3, 2):
        step = window / parts
        if parts > 2 and not any(abs(step - n) < 1e-6 for n in NICE_STEPS):
            continue
        cand = {round(width * k / parts): f"-{short_duration(window - k * step)}"
                for k in range(1, parts)}
        if all(width / parts >= len(s) + 3 for s in (*cand.values(), labels[0])):
            labels.update(cand)
            break
    line = [" "] * width
    # "now" first, then the left end, then the ticks between: the ends win a tight fit
    for pos, text in sorted(labels.items(), key=lambda kv: (kv[0] != width, kv[0])):
        at = 0 if pos == 0 else min(max(0, pos - len(text) // 2), width - len(text))
        if at < 0 or at + len(text) > width or any(
                c != " " for c in line[max(0, at - 1):at + len(text) + 1]):
            continue  # no room: left out rather than overwritten
        line[at:at + len(text)] = text
    return "".join(line)
