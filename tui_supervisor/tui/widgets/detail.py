"""The detail pane of one service: charts over a chosen window (CPU, memory, probe
check durations and readiness, restarts and failures on the time line), the numbers
(state, uptime, restarts, reliability, respawn latency), command/cwd/policy, the failure
timeline and the last incidents with the lines the process wrote before dying.

The charts are braille plots (tui/charts.py, which says why not plotext) with a value
axis at the left and a time axis under them; `w` cycles the window (1 min, 10 min, 1 h,
all the history kept), remembered in the UI preferences ("chart_window"). 1 h and "all"
come from the sampler's coarse rings (a point per 10 s, 100 minutes kept).

Every part renders for the width it is given (`DetailPart.render`), and the charts take
more rows as the pane grows (`chart_rows`): two at 80x24, six at 200x60.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.visual import visualize
from textual.widget import Widget

from tui_supervisor.engine.api import SupervisorAPI
from tui_supervisor.formatting import (
    fmt_bytes,
    fmt_duration,
    fmt_percent,
    fmt_ratio,
    fmt_seconds,
    shown_state,
    state_colour,
)
from tui_supervisor.tui import charts
from tui_supervisor.tui.rows import group_of_key
from tui_supervisor.tui.store import Store
from tui_supervisor.tui.widgets.health import dependencies, group_summary, health

TIMELINE = 5
"""Failures shown in the timeline (newest first)."""
INCIDENTS = 3
"""Incidents asked for and shown."""
PROBE_PREFIX = "probe_"
"""The history answer's per-probe series: probe_<name>_seconds (metrics/sampler.py, which
the UI does not import: the answer is the contract)."""
GUTTER = 8
"""Columns of a chart's value axis: "1023.9M┤"."""
INCIDENT_LINES = 5
DEFAULT_WINDOW = 600.0
WINDOW_PREF = "chart_window"
COARSE_FROM = 600.0
"""Windows longer than this (1 h, all) are drawn from the sampler's coarse rings (10 s a
point, 100 minutes), the others from its 1 s rings (10 minutes)."""
"""Output lines shown per incident (its last ones)."""

Num = float | int | None


# -- charts (pure) ------------------------------------------------------------------------
def last_value(values: Sequence[Num]) -> Num:
    return next((v for v in reversed(values) if v is not None), None)


def _label(out: Text, name: str, now: str, top: str, colour: str) -> None:
    out.append(name, style=f"bold {colour}")
    out.append(f" {now}", style="bold")
    out.append(f"  max {top}\n", style="dim")


def _probe_name(series: str) -> str:
    """"probe_readiness_seconds" -> "readiness"."""
    return series.removeprefix(PROBE_PREFIX).removesuffix("_seconds")


def chart_section(history: dict[str, Any], window: float | None, width: int,
                  rows: int) -> Text:
    """The charts of a `resources.history` answer over `window` seconds (None: all kept):
    CPU and memory, each probe's check duration and readiness when the service has
    probes, restarts (↻) and failures (✖) on a marker row, and the time axis. Each chart
    has its current value and maximum above it and its scale at the left."""
    series = history.get("series") or {}
    interval = float(history.get("interval") or 1.0)
    end = float(history.get("t_last") or 0.0)
    cpu: list[Num] = list(series.get("cpu_percent") or [])
    span = charts.span(cpu, interval, window)
    if last_value(cpu) is None and last_value(series.get("rss_bytes") or []) is None:
        return Text("CPU / MEM: no samples yet", style="dim")
    pw = max(1, width - GUTTER)
    out = Text()
    title = (f"last {charts.window_label(window)}" if window is not None
             else f"all kept history ({charts.short_duration(span)})")
    out.append(f"Charts · {title}", style="bold underline")
    out.append(f"  w → {charts.window_label(charts.next_window(window))}\n", style="dim")
    probes = sorted(n for n in series if n.startswith(PROBE_PREFIX))
    specs: list[tuple[str, list[Num], Callable[[float | None], str], str, int]] = [
        ("CPU", cpu, fmt_percent, "green", rows),
        ("MEM", list(series.get("rss_bytes") or []), fmt_bytes, "magenta", rows)]
    specs += [(f"{_probe_name(n)} probe", list(series[n]), fmt_seconds, "cyan",
               max(1, rows // 2)) for n in probes]
    for name, vals, fmt, colour, r in specs:
        shown = charts.columns(vals, interval, end, span, 2 * pw)
        top = max((v for v in shown if v is not None), default=None)
        _label(out, name, fmt(last_value(vals)), fmt(top), colour)
        for line in charts.chart(vals, interval, end, span, pw, r, fmt, GUTTER):
            out.append(line[:GUTTER], style="dim")
            out.append(line[GUTTER:] + "\n", style=colour)
    if "ready" in series:
        out.append("ready".rjust(GUTTER - 1) + "│", style="dim")
        for c in charts.strip(series["ready"], interval, end, span, pw):
            out.append(c, style="green" if c == "█" else "red")
        out.append("\n")
    marks = history.get("marks") or []
    out.append(f"{charts.RESTART}{charts.FAILURE}".rjust(GUTTER - 1) + "│", style="dim")
    for c in charts.mark_row(marks, end, span, pw):
        out.append(c, style="red bold" if c == charts.FAILURE else "yellow bold")
    out.append("\n" + " " * GUTTER + charts.time_axis(span, pw), style="dim")
    return out


# -- text parts (pure) --------------------------------------------------------------------
def clock(t: float | None) -> str:
    return "--:--:--" if t is None else time.strftime("%H:%M:%S", time.localtime(t))


def ago(t: float | None, now: float) -> str:
    return "" if t is None else f"{fmt_duration(max(0.0, now - t))} ago"


def header(view: dict[str, Any], now: float) -> RenderableType:
    state = shown_state(str(view.get("state", "?")), view.get("crash_looping"))
    out = Text()
    out.append(str(view.get("name", "?")), style="bold")
    out.append("  ")
    reason = str(view.get("reason") or "")
    if state == "waiting" and reason.startswith("waiting"):  # "waiting for db (ready)"
        out.append(reason, style=state_colour(state))
    else:
        out.append(state, style=state_colour(state))
        # "running (up for 1s)" said how it passed `start_time`; beside "up 5m" it reads
        # as a wrong uptime
        if reason and not (state == "running" and reason.startswith("up for")):
            out.append(f" ({reason})")
    out.append(f"   pid {view.get('pid') or '-'}   up {fmt_duration(view.get('uptime'))}")
    last = view.get("last_exit") or {}
    if last.get("text"):
        out.append(f"   last exit {last['text']} {ago(last.get('t'), now)}", style="dim")
    return out


def facts(view: dict[str, Any], width: int) -> RenderableType:
    """The figures as key/value pairs, as many pairs per row as the width takes; then the
    command, cwd and restart policy (wrapped, never cut)."""
    rel = view.get("reliability") or {}
    respawn = (view.get("latency") or {}).get("respawn") or {}
    pairs = [
        ("restarts", str(view.get("restarts", 0))),
        ("failures", str(view.get("failures", 0))),
        ("availability", fmt_ratio(rel.get("availability"))),
        ("MTTR", fmt_seconds(rel.get("mttr"))),
        ("MTBF", fmt_seconds(rel.get("mtbf"))),
        ("respawn p50/p99",
         f"{fmt_seconds(respawn.get('p50'))} / {fmt_seconds(respawn.get('p99'))}"),
    ]
    per_row = next(n for n in range(len(pairs), 0, -1) if _grid_width(pairs, n) <= width
                   or n == 1)
    grid = Table.grid(padding=(0, 1))
    for _ in range(per_row):
        grid.add_column(style="dim", no_wrap=True)
        grid.add_column(style="bold", no_wrap=True)
    for i in range(0, len(pairs), per_row):
        row = [x for k, v in pairs[i:i + per_row] for x in (k, v + "  ")]
        grid.add_row(*row, *[""] * (2 * per_row - len(row)))
    conf = Table.grid(padding=(0, 1))
    conf.add_column(style="dim", no_wrap=True)
    conf.add_column(overflow="fold")
    conf.add_row("command", " ".join(str(a) for a in view.get("command") or ()) or "-")
    conf.add_row("cwd", str(view.get("cwd") or "-"))
    conf.add_row("restart", str(view.get("restart_policy") or "-"))
    return Group(grid, conf)


def _grid_width(pairs: list[tuple[str, str]], per_row: int) -> int:
    """Width of `pairs` laid out `per_row` pairs a row (key, space, value, two spaces)."""
    total = 0
    for c in range(per_row):
        col = pairs[c::per_row]
        total += max(len(k) for k, _ in col) + max(len(v) for _, v in col) + 4
    return total


def timeline(view: dict[str, Any], now: float) -> RenderableType:
    """The last failures, newest first: time, how long ago, crash or failed start, why."""
    failures = list(view.get("recent_failures") or ())[-TIMELINE:][::-1]
    out = Text()
    out.append(f"Failures ({view.get('failures', 0)})", style="bold underline")
    if not failures:
        out.append("\nnone", style="dim")
    for f in failures:
        kind = "failed start" if f.get("starting") else "crash"
        out.append(f"\n{clock(f.get('t'))} ")
        out.append(f"{ago(f.get('t'), now):>10}  ", style="dim")
        out.append(f"{kind:<12} ", style="yellow" if f.get("starting") else "red")
        out.append(str(f.get("reason") or ""))
    return out


def incidents(items: list[dict[str, Any]] | None, error: str | None, now: float,
              width: int) -> RenderableType:
    """The last incidents, newest first, each with its last output lines (dimmed)."""
    title = Text("Incidents", style="bold underline")
    if error is not None:
        return Group(title, Text(error, style="dim"))
    if items is None:
        return Group(title, Text("loading…", style="dim"))
    if not items:
        return Group(title, Text("no incidents", style="dim"))
    parts: list[RenderableType] = [title]
    for inc in reversed(items[-INCIDENTS:]):
        head = Text()
        head.append(f"{clock(inc.get('t'))} ")
        head.append(f"{ago(inc.get('t'), now)}  ", style="dim")
        head.append(f"{inc.get('kind', 'crash')}: ", style="red")
        head.append(str(inc.get("text") or "?"), style="bold")
        head.append(f" after {fmt_seconds(inc.get('uptime'))} up, pid {inc.get('pid', '-')}")
        parts.append(head)
        lines = list(inc.get("lines") or ())[-INCIDENT_LINES:]
        if not lines:
            parts.append(Text("  (no output)", style="dim"))
        for ln in lines:
            err = ln.get("stream") == "stderr"
            t = Text(f"  {'!' if err else '│'} {ln.get('text', '')}",
                     style="dim red" if err else "dim", no_wrap=True, overflow="ellipsis")
            t.truncate(max(1, width), overflow="ellipsis")
            parts.append(t)
    return Group(*parts)


# -- widgets ------------------------------------------------------------------------------
class DetailPart(Widget):
    """One section of the pane: drawn by a function of the width, at render time.
    `optional`: hidden (no line, no margin) while it draws nothing."""

    DEFAULT_CSS = """
    DetailPart { height: auto; margin-bottom: 1; }
    """

    def __init__(self, draw: Callable[[int], RenderableType], *, id: str | None = None,
                 optional: bool = False) -> None:
        super().__init__(id=id)
        self._draw = draw
        self.optional = optional
        self.display = not optional

    def render(self) -> RenderableType:
        return self._draw(max(1, self.size.width))

    def redraw(self) -> None:
        """Repaint; a layout pass (of the whole screen) only when the height changes."""
        if self.optional:  # a hidden part has no width: judge emptiness at a nominal one
            drawn = self._draw(max(1, self.content_size.width or 40))
            empty = isinstance(drawn, Text) and not drawn.plain
            if self.display == empty:
                self.display = not empty  # (a layout pass follows)
                return
            if empty:
                return  # hidden, and stays so: nothing to paint, no layout pass
        width = self.content_size.width
        if not width:
            self.refresh(layout=True)
            return
        height = visualize(self, self._draw(width)).get_height(
            self.styles, width)  # type: ignore[arg-type]  # (a RulesMap in Textual's use)
        self.refresh(layout=height != self.content_size.height)


class DetailPane(VerticalScroll):
    """Everything about one service. The app calls `show(name)`, `view_changed()` when the
    service's snapshot row changed (cheap, no api call) and `refresh_data()` about once a
    second while the pane is visible (history and incidents, two api queries)."""

    DEFAULT_CSS = """
    DetailPane { height: 1fr; padding: 0 1; }
    """

    def __init__(self, api: SupervisorAPI, store: Store, *,
                 clock: Callable[[], float] = time.time, name: str | None = None,
                 id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.api = api
        self.store = store
        self.clock = clock
        self.service: str | None = None
        self.history: dict[str, Any] | None = None
        self.history_error: str | None = None
        self.incident_list: list[dict[str, Any]] | None = None
        self.incident_error: str | None = None
        self._charts: tuple[dict[str, Any], tuple[Any, ...], Text] | None = None
        """The last chart section drawn: (the history answer, (window, width, rows),
        the drawing)."""
        self.window: float | None = DEFAULT_WINDOW
        """Seconds the charts cover (None: all the history kept): `cycle_window`."""

    def compose(self) -> ComposeResult:
        yield DetailPart(self._draw_header, id="detail-header")
        yield DetailPart(self._draw_health, id="detail-health", optional=True)
        yield DetailPart(self._draw_deps, id="detail-deps", optional=True)
        yield DetailPart(self._draw_graphs, id="detail-graphs")
        yield DetailPart(self._draw_facts, id="detail-facts")
        yield DetailPart(self._draw_timeline, id="detail-timeline")
        yield DetailPart(self._draw_incidents, id="detail-incidents")

    def on_mount(self) -> None:
        prefs = getattr(self.app, "prefs", None)
        if prefs is not None:
            w = prefs.get(WINDOW_PREF, DEFAULT_WINDOW)
            self.window = w if w in charts.WINDOWS else DEFAULT_WINDOW

    # -- the app's calls ----------------------------------------------------------------
    def cycle_window(self) -> float | None:
        """The charts' next window (1 min, 10 min, 1 h, all), remembered; returns it."""
        self.window = charts.next_window(self.window)
        prefs = getattr(self.app, "prefs", None)
        if prefs is not None:
            prefs.set(WINDOW_PREF, self.window)
        self._refresh_part("#detail-graphs")
        if self.service is not None and self.is_mounted:  # (fine or coarse rings)
            self.run_worker(self.refresh_data(), group="detail-show", exclusive=True)
        return self.window

    def show(self, service: str | None) -> None:
        """Show `service` (None: nothing selected); fetches its data once at once."""
        if service == self.service:
            return
        self.service = service
        self.history = self.incident_list = None
        self.history_error = self.incident_error = None
        self._repaint()
        if service is not None and self.is_mounted and group_of_key(service) is None:
            self.run_worker(self.refresh_data(), group="detail-show", exclusive=True)

    def view_changed(self) -> None:
        """The service's snapshot row changed: redraw the text parts from the store."""
        for part in ("#detail-header", "#detail-health", "#detail-deps", "#detail-facts",
                     "#detail-timeline"):
            self._refresh_part(part)

    async def refresh_data(self) -> None:
        """Fetch the history and the last incidents of the shown service and redraw."""
        name = self.service
        if name is None or group_of_key(name) is not None:
            return  # (a group row: no history or incidents of its own)
        args: dict[str, Any] = {"service": name}
        if self.window is None or self.window > COARSE_FROM:
            args["coarse"] = True  # (an older engine ignores it: its 10 minutes, drawn)
        hist, herr = await self._ask("resources", "history", args)
        incs, ierr = await self._ask("incidents", "list", {"service": name, "n": INCIDENTS})
        if name != self.service:
            return  # switched meanwhile: these belong to another service
        self.history, self.history_error = hist, herr
        self.incident_list, self.incident_error = incs, ierr
        self._repaint()

    # -- internals ----------------------------------------------------------------------
    async def _ask(self, ext: str, what: str, args: dict[str, Any]
                   ) -> tuple[Any, str | None]:
        """(answer, None) or (None, why not): the pane never raises for missing data."""
        try:
            return await self.api.query(ext, what, args), None
        except ValueError:
            return None, "sampling off" if ext == "resources" else f"no {ext} in this engine"
        except LookupError:
            return None, "no such service"
        except Exception as e:  # a lost connection: the app says so; the pane just waits
            return None, f"unavailable ({type(e).__name__}: {e})"

    def _view(self) -> dict[str, Any] | None:
        info = self.store.services.get(self.service) if self.service else None
        return info.view if info is not None else None

    def _repaint(self) -> None:
        if self.is_mounted:
            for part in self.query(DetailPart):
                part.redraw()

    def _refresh_part(self, selector: str) -> None:
        if self.is_mounted:
            for part in self.query(selector).results(DetailPart):  # none before compose
                part.redraw()

    def on_resize(self) -> None:
        self._refresh_part("#detail-graphs")  # chart height follows the pane's height

    def chart_rows(self) -> int:
        """Rows of the CPU and memory charts (probe charts get half): from the pane's
        height, so 80x24 keeps two readable rows and 200x60 gets six."""
        return min(6, max(2, (self.size.height - 6) // 6))

    def _draw_header(self, width: int) -> RenderableType:
        if self.service is None:
            return Text("no service selected", style="dim")
        group = group_of_key(self.service)
        if group is not None:
            return group_summary(group, [i.view for i in self.store.services.values()])
        view = self._view()
        if view is None:
            return Text(f"{self.service}: no longer in the config", style="dim")
        return header(view, self.clock())

    def _draw_graphs(self, width: int) -> RenderableType:
        if self.service is None or group_of_key(self.service) is not None:
            return Text("")
        if self.history_error is not None:
            return Text(f"CPU / MEM: {self.history_error}", style="dim")
        if self.history is None:
            # as tall as the charts it replaces: the data comes within a frame or two, and
            # a height change would cost a layout pass of the whole screen, twice
            lines = len(self._charts[2].plain.split("\n")) if self._charts else 1
            return Text("CPU / MEM: loading…" + "\n" * (lines - 1), style="dim")
        key = (self.window, width, self.chart_rows())
        last = self._charts
        if last is None or last[0] is not self.history or last[1] != key:
            # (drawn twice a refresh, measured then rendered: 3-6 ms each at 140-200
            # columns; the answer is a new object at every fetch)
            last = self._charts = (self.history, key, chart_section(self.history, *key))
        return last[2]

    def _draw_health(self, width: int) -> RenderableType:
        view = self._view()
        return health(view, width) if view is not None else Text("")

    def _draw_deps(self, width: int) -> RenderableType:
        view = self._view()
        if view is None:
            return Text("")
        return dependencies(view, (i.view for i in self.store.services.values()))

    def _draw_facts(self, width: int) -> RenderableType:
        view = self._view()
        return facts(view, width) if view is not None else Text("")

    def _draw_timeline(self, width: int) -> RenderableType:
        view = self._view()
        return timeline(view, self.clock()) if view is not None else Text("")

    def _draw_incidents(self, width: int) -> RenderableType:
        if self._view() is None:
            return Text("")
        return incidents(self.incident_list, self.incident_error, self.clock(), width)
