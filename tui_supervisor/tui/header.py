"""The dashboard's header: what an operator glances at. The config's name and host, the
services by state (a segmented bar, with the counts in words so it reads without colour),
restarts in the last minute, aggregate availability, the engine's CPU/RSS, uptime, pid and
reloads, the last warning or error notice with its age; and on a line of its own the two
things the user must not miss (the engine out of reach, a pending config error).

At most two lines (three with that alarm), nothing cut mid-word: parts that do not fit go,
least important first (`layout`, pure). Repainted only when its text changes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import PurePath
from typing import Any

from rich.text import Text
from textual.widgets import Static

from tui_supervisor.formatting import (
    CRASH_LOOP,
    fmt_bytes,
    fmt_duration,
    fmt_percent,
    fmt_ratio,
    shown_state,
    state_colour,
)
from tui_supervisor.tui.store import Store

SEP = " · "
BAR_CELLS = 12
RESTART_WINDOW = 60.0
MIN_CUT = 40
"""A cuttable part (the notice) fills the rest of a line if that leaves it this many
cells; else it starts a line of its own."""
STATE_ORDER = ("running", "daemonized", "completed", "starting", "waiting", "stopping",
               "backoff", CRASH_LOOP, "fatal", "exited", "stopped")
"""Bar and words: up first, then on the way, then in trouble, then down on purpose."""
GLYPHS = {"running": "█", "daemonized": "█", "completed": "█", "exited": "░",
          "stopped": "░"}
"""Up solid, stopped light, the rest in between: the bar has a shape without colour."""


# -- what it says (pure) ----------------------------------------------------------------
def config_name(path: str) -> str:
    """The config's file name; with its folder when the name says nothing
    (`app/tui-supervisor.yaml`). Never the full path."""
    p = PurePath(path)
    if p.name == "tui-supervisor.yaml" and p.parent.name:
        return f"{p.parent.name}/{p.name}"
    return p.name or path


def state_counts(views: Iterable[Mapping[str, Any]]) -> list[tuple[str, int]]:
    """(shown state, services in it), in STATE_ORDER (states it does not know last)."""
    counts: dict[str, int] = {}
    for v in views:
        s = shown_state(str(v.get("state", "?")), v.get("crash_looping"))
        counts[s] = counts.get(s, 0) + 1
    rank = {s: i for i, s in enumerate(STATE_ORDER)}
    return sorted(counts.items(), key=lambda kv: (rank.get(kv[0], len(rank)), kv[0]))


def segments(counts: Sequence[tuple[str, int]], cells: int) -> list[tuple[str, int]]:
    """Cells per state, proportional to the counts (largest remainders), every state with
    services at least one cell (so one fatal among 50 still shows); at most `cells` in all,
    or one per state when there are more states than cells."""
    counts = [(s, n) for s, n in counts if n > 0]
    total = sum(n for _, n in counts)
    if not total:
        return []
    cells = max(cells, len(counts))
    spare = cells - len(counts)  # one each first, the rest by share
    exact = [spare * n / total for _, n in counts]
    given = [int(x) for x in exact]
    order = sorted(range(len(counts)), key=lambda i: (given[i] - exact[i], i))
    for i in order[: spare - sum(given)]:
        given[i] += 1
    return [(s, 1 + g) for (s, _), g in zip(counts, given, strict=True)]


def aggregate_availability(views: Iterable[Mapping[str, Any]]) -> float | None:
    """Σ up time / Σ (up time + downtime) over the services that have reliability figures
    (docs/METRICS.md): each service's availability, weighted by its time. None when no
    service was ever up or down."""
    up = down = 0.0
    for v in views:
        rel = v.get("reliability") or {}
        u, d = rel.get("up_time"), rel.get("downtime")
        if u is not None and d is not None:
            up, down = up + float(u), down + float(d)
    return up / (up + down) if up + down > 0 else None


RestartSample = tuple[float, Mapping[str, int]]
"""(monotonic time of a snapshot, {service: its restarts counter})."""


def restarts_in_window(samples: Sequence[RestartSample], now: float,
                       window: float = RESTART_WINDOW) -> int:
    """Restarts between snapshots in the last `window` seconds: per service, the increase
    of its counter between consecutive samples, the later one inside the window. A
    service that appears (a reload) brings no increase; one that goes, none either."""
    total = 0
    for (_, a), (t, b) in pairwise(samples):
        if t > now - window:
            total += sum(max(0, n - a.get(name, n)) for name, n in b.items())
    return total


def prune(samples: deque[RestartSample], now: float, window: float = RESTART_WINDOW) -> None:
    """Keep the samples inside the window and the one just before (the baseline)."""
    while len(samples) > 1 and samples[1][0] <= now - window:
        samples.popleft()


def styled(text: str, style: str = "") -> Text:
    """`text` in `style` as a span, not as the Text's base style (which would spread to
    whatever is appended after it on the line)."""
    out = Text()
    out.append(text, style or None)
    return out


@dataclass(frozen=True)
class Part:
    """One piece of the header: its text, how much it matters (0 most), the separator
    before it on a line, whether it starts a line, whether it may be cut (at a word)."""

    text: Text
    prio: int
    sep: str = SEP
    own_line: bool = False
    cut: bool = False


def cut_words(text: Text, width: int) -> Text | None:
    """`text` cut at the last whole word that fits `width` with an ellipsis; None when
    not even its first word does."""
    if text.cell_len <= width:
        return text
    plain = text.plain
    end = width - 1
    while True:
        end = plain.rfind(" ", 0, end + 1)
        if end <= 0:
            return None
        out = text[:end]
        out.rstrip()
        out.append("…")
        if out.cell_len <= width:
            return out
        end -= 1


def _flow(parts: Sequence[Part], width: int) -> list[Text]:
    lines: list[Text] = []
    for p in parts:
        line = lines[-1] if lines and not p.own_line else None
        room = width - line.cell_len - len(p.sep) if line is not None else -1
        t: Text | None = p.text
        if p.text.cell_len > room and p.cut and room >= MIN_CUT:  # the rest of this line
            t = cut_words(p.text, room)
        if line is not None and t is not None and t.cell_len <= room:
            line.append(p.sep)
            line.append_text(t)
            continue
        t = cut_words(p.text, width) if p.cut else p.text if p.text.cell_len <= width \
            else None
        if t is not None:
            lines.append(t.copy())
    return lines


def layout(parts: Sequence[Part], width: int, max_lines: int) -> list[Text]:
    """The parts flowed into lines of `width` cells, in order, whole (a cuttable part cut
    at a word): while more than `max_lines`, the least important part goes (the last of
    the least important, so reading order decides ties)."""
    keep = list(parts)
    while True:
        lines = _flow(keep, width)
        if len(lines) <= max_lines or not keep:
            return lines
        del keep[max(range(len(keep)), key=lambda i: (keep[i].prio, i))]


def state_parts(counts: Sequence[tuple[str, int]]) -> list[Part]:
    """The counts in words and the segmented bar (colour and glyph per state)."""
    bar = Text()
    for s, cells in segments(counts, BAR_CELLS):
        bar.append(GLYPHS.get(s, "▒") * cells, state_colour(s))
    words = Text("  ").join(styled(f"{n} {s}", state_colour(s)) for s, n in counts)
    # words first: when the bar goes, nothing is left hanging on a separator
    return [Part(words, 1), Part(bar, 5, sep=" ")] if counts else \
        [Part(Text("no services"), 1)]


def header_parts(engine: Mapping[str, Any], views: Sequence[Mapping[str, Any]], *,
                 mode: str, restarts: int, notice: tuple[float, str, str] | None,
                 wall: float, alarm: str | None) -> list[Part]:
    """Everything the header may say, in reading order. `notice`: (wall time, level,
    text) of the last warning or error; `alarm`: the link down or a config error (markup)."""
    res = engine.get("resources") or {}
    parts = [Part(styled(config_name(str(engine.get("config", "?"))), "bold"), 0)]
    if engine.get("host"):
        parts.append(Part(Text(f"on {engine['host']}"), 4, sep=" "))
    parts += state_parts(state_counts(views))
    parts.append(Part(styled(f"{restarts} restart{'s' if restarts != 1 else ''}/min",
                             "bold yellow" if restarts else ""), 2))
    avail = aggregate_availability(views)
    if avail is not None:
        parts.append(Part(Text(f"avail {fmt_ratio(avail)}"), 2))
    parts.append(Part(Text(f"engine CPU {fmt_percent(res.get('cpu_percent'))} "
                           f"RSS {fmt_bytes(res.get('rss_bytes'))}" if res else
                           "engine: sampling off"), 4))
    parts.append(Part(Text(f"up {fmt_duration(engine.get('uptime'))}"), 6))
    parts.append(Part(Text(f"pid {engine.get('pid', '?')}"
                           f"{' (attached)' if mode == 'attached' else ''}"), 7))
    parts.append(Part(Text(f"reloads {engine.get('reloads', 0)}"), 7))
    if notice:
        t, level, said = notice
        style = "red" if level == "error" else "yellow"
        # the age first: a cut at the line's end takes words of the message, not it
        line = Text.assemble(("✖ " if level == "error" else "⚠ ", style),
                             (f"{fmt_duration(max(0.0, wall - t))} ago ", "dim"),
                             said.replace("\n", " "))
        parts.append(Part(line, 3, cut=True))
    if alarm:
        parts.append(Part(Text.from_markup(alarm), -1, own_line=True, cut=True))
    return parts


# -- the widget -------------------------------------------------------------------------
class EngineHeader(Static):
    """Renders `header_parts` laid out to its width; samples the restart counters at each
    new snapshot."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._text = Text()
        self._lines = 0
        self._engine: object = None
        self._restarts: deque[RestartSample] = deque()
        self._per_minute = 0
        self._key: tuple[Any, ...] | None = None

    def render_from(self, store: Store, mode: str, error: str | None,
                    link: str | None = None, *, notice: tuple[float, str, str] | None = None,
                    now: float = 0.0, wall: float = 0.0) -> None:
        """`now`: monotonic (the restart window), `wall`: wall-clock (the notice's age)."""
        width = self.content_size.width or max(20, self.app.size.width - 2)
        if store.engine is not self._engine:  # a new snapshot: its counters are new
            self._engine = store.engine
            self._restarts.append((now, {n: int(i.view.get("restarts") or 0)
                                         for n, i in store.services.items()}))
            prune(self._restarts, now)
            self._per_minute = restarts_in_window(self._restarts, now)
        # Only what changed between snapshots (states, by events) or the notice's age in
        # whole seconds makes new parts: at 10 Hz with 300 services the parts and their
        # layout cost ~2 ms a tick otherwise.
        key = (id(store.engine), tuple(i.view.get("state") for i in store.services.values()),
               mode, error, link, notice, int(wall), width)
        if key == self._key:
            return
        self._key = key
        alarms = ([f"[b yellow]{link}[/]"] if link else []) + \
            ([f"[b red]config error:[/] {error}"] if error else [])
        views = [i.view for i in store.services.values()]
        parts = header_parts(store.engine, views, mode=mode, notice=notice, wall=wall,
                             restarts=self._per_minute,
                             alarm="  ".join(alarms) or None)
        lines = layout(parts, width, 3 if alarms else 2)
        text = Text("\n").join(lines)
        if text != self._text:  # a layout pass is of the whole screen: only if it may grow
            grown = len(lines) != self._lines
            self._text, self._lines = text, len(lines)
            self.update(text, layout=grown)
