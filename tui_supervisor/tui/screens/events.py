"""`e`: the event log full screen: what happened, newest at the bottom, coloured by
severity, following new entries while scrolled to the end; escape / e / q closes it."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, RichLog

from tui_supervisor.tui.eventlog import SUPERVISOR, Entry, EventLog, clock_time

STYLES = {"error": "red", "warning": "yellow", "success": "green", "info": "",
          "dim": "dim"}
WHO_WIDTH = 16
"""Widest name column (longer names are cut with '…')."""
POLL = 0.1
"""Seconds between looks for new entries (the app's tick)."""


def render_entry(entry: Entry, who_width: int) -> Table:
    """time, who (padded), text in the entry's colour; a long text wraps in its column."""
    who = entry.who if len(entry.who) <= who_width else entry.who[:who_width - 1] + "…"
    row = Table.grid(padding=(0, 1), expand=True)
    row.add_column(width=8, style="dim", no_wrap=True)
    row.add_column(width=who_width, no_wrap=True,
                   style="bold cyan" if entry.who == SUPERVISOR else "bold")
    row.add_column(ratio=1, style=STYLES.get(entry.level, ""), overflow="fold")
    row.add_row(clock_time(entry.t), who, entry.text)
    return row


class EventsScreen(Screen[None]):
    """The app's `EventLog`, live."""

    BINDINGS = [Binding("escape,e,q", "dismiss", "Close")]

    DEFAULT_CSS = """
    EventsScreen #events {
        height: 1fr;
        border: round $primary 50%;
        border-title-align: left;
        padding: 0 1;
        overflow-y: auto;
    }
    """

    def __init__(self, log: EventLog) -> None:
        super().__init__()
        self.log_ = log
        self._added = 0
        self._rebuilt = -1
        self._width = WHO_WIDTH
        self._follow = True
        """Keep the newest entry in view: until the user scrolls up, again at the end."""

    def compose(self) -> ComposeResult:
        yield RichLog(id="events", wrap=True, markup=False, highlight=False,
                      max_lines=self.log_.entries.maxlen)
        yield Footer()

    @property
    def view(self) -> RichLog:
        return self.query_one("#events", RichLog)

    def on_mount(self) -> None:
        view = self.view
        view.border_title = "Events"
        view.border_subtitle = "escape / e: close"
        self.watch(view, "scroll_y", self._scrolled, init=False)
        self.sync()
        self.set_interval(POLL, self.sync)
        view.focus()

    def _scrolled(self, y: float) -> None:
        """Any scroll (keys, wheel, ours): follow again only once at the end. A layout
        change that moves the end (a resize) is not a scroll: following goes on."""
        self._follow = y >= self.view.max_scroll_y

    def sync(self) -> None:
        """Show what was added since the last look (all of it after a reorder)."""
        log, view = self.log_, self.view
        if log.rebuilt != self._rebuilt:
            self._rebuilt, self._added = log.rebuilt, 0
            view.clear()
            widest = max((len(e.who) for e in log.entries), default=0)
            self._width = max(10, min(WHO_WIDTH, widest))
        new = log.since(self._added)
        self._added = log.added
        for entry in new:
            view.write(render_entry(entry, self._width), expand=True, scroll_end=False)
        if self._follow and view.scroll_y < view.max_scroll_y:
            view.scroll_end(animate=False, immediate=False, x_axis=False)

    def lines(self) -> list[str]:
        """One plain line per entry shown (wrapped rows joined; for the tests)."""
        out: list[str] = []
        for strip in self.view.lines:
            text = strip.text.rstrip()
            if out and text[:9].isspace():
                out[-1] += " " + text.strip()
            else:
                out.append(text)
        return out
