"""Text sparklines for the services table's trend cells (a Textual Sparkline widget
cannot live in a DataTable cell): pure, so a cell's text is exact and the table can
diff it like any other cell.

The points are bucketed on their absolute index (the count of points ever taken), not
counted back from the newest: a bucket's character changes only while it fills, so a
steady service's cell keeps its text between ticks and is not repainted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

BARS = "▁▂▃▄▅▆▇█"
SPAN = 300
"""Points a trend cell covers (one per sample, ~1 s: the last 5 minutes)."""
MEM_RANGE = 0.1
"""Memory's scale spans at least this share of its peak: a leak of a few percent shows,
a few pages of jitter do not."""
CPU_FLOOR = 1.0
"""CPU's scale reaches at least 1% of a core: an idle service's noise stays low."""


def buckets(values: Sequence[float], width: int, first: int, span: int = SPAN
            ) -> list[float | None]:
    """The peak of each of the last `width` buckets of `values` (oldest first), bucketed
    by absolute index (`first` is the index of `values[0]`), each bucket `span // width`
    points; None for a bucket with no point (before the history starts)."""
    if width <= 0:
        return []
    out: list[float | None] = [None] * width
    if not values:
        return out
    step = max(1, math.ceil(span / width))
    vals = list(values)  # slices of a list: each bucket's max is one C call
    top = (first + len(vals) - 1) // step
    for slot in range(width):
        b = top - (width - 1 - slot)  # the bucket's absolute number
        lo, hi = max(0, b * step - first), min(len(vals), (b + 1) * step - first)
        if lo < hi:
            out[slot] = max(vals[lo:hi])
    return out


def sparkline(points: Sequence[float | None], lo: float, hi: float) -> str:
    """One character per point on `lo`..`hi` (clamped), a space for None; a flat series
    sits on the baseline."""
    out = []
    for p in points:
        if p is None:
            out.append(" ")
        elif hi <= lo:
            out.append(BARS[0])
        else:
            x = (min(max(p, lo), hi) - lo) / (hi - lo)
            out.append(BARS[min(len(BARS) - 1, round(x * (len(BARS) - 1)))])
    return "".join(out)


def cpu_trend(values: Sequence[float], width: int, first: int, span: int = SPAN) -> str:
    """CPU percent from 0 to the window's peak (at least CPU_FLOOR)."""
    pts = buckets(values, width, first, span)
    peak = max((p for p in pts if p is not None), default=0.0)
    return sparkline(pts, 0.0, max(peak, CPU_FLOOR))


def mem_trend(values: Sequence[float], width: int, first: int, span: int = SPAN) -> str:
    """RSS from the window's low (or MEM_RANGE under its peak, whichever is lower) to its
    peak."""
    pts = buckets(values, width, first, span)
    seen = [p for p in pts if p is not None]
    if not seen:
        return sparkline(pts, 0.0, 0.0)
    peak = max(seen)
    return sparkline(pts, min(min(seen), peak * (1 - MEM_RANGE)), peak)
