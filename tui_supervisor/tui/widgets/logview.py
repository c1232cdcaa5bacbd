"""The log pane: a virtual view straight over the Store's bounded deques.

Only the visible lines are rendered (`ScrollView` + `render_line`), each from
`store.services[name].lines` (one service) or `store.merged` (all services, with a
coloured name prefix). New lines cost nothing here beyond the store's append: the app
calls `lines_added()` once per tick, which finds how many lines the shown deque gained
and lost (by line identity, O(new lines)), resizes the virtual area and, when following,
scrolls to the end — one repaint per tick whatever the line rate.

Choices: no wrapping (long lines scroll horizontally); switching service (`show`)
re-renders that service's history from the store and resets to following the end;
while paused, dropped old lines shift the scroll offset so the text under the viewer
stays put until it falls out of the store's buffer.

What a line's text becomes (escapes cleaned, colours parsed) is `tui/logtext.py`; which
lines match a search is `tui/logsearch.py`: this module is the scrolling and painting.
"""

from __future__ import annotations

import time
from collections import deque
from itertools import islice
from typing import TYPE_CHECKING, Any

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.cache import LRUCache
from textual.geometry import Region, Size
from textual.reactive import var
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tui_supervisor.tui.logsearch import LogSearch
from tui_supervisor.tui.logtext import name_colour, parse_line

_NO_STYLE = Style()

if TYPE_CHECKING:
    from ..store import LogLine, Store

NAME_WIDTH = 16
"""Widest service-name prefix in merged mode (longer names are cut with '…')."""
STDERR_MARK = "▌"
_EMPTY: deque[Any] = deque(maxlen=0)
"""What an unknown service shows (one object, so the view does not reset every tick)."""


class LogView(ScrollView, can_focus=True):
    """Log lines of one service, or of all services merged, followed live.

    The app calls `show(name | None)` to pick what is shown, `lines_added(lines)` once per
    tick, and `search(pattern)`; keys: `end` resumes following, `n`/`N` move between
    matches, `escape` clears the search, `t` toggles time stamps.
    """

    DEFAULT_CSS = """
    LogView {
        background: $surface;
        color: $text;
        overflow: auto auto;
        border: round $panel;
        border-subtitle-align: right;
        &:focus { border: round $accent; }
    }
    """
    BINDINGS = [
        Binding("end", "resume", "Follow", show=False),
        Binding("n", "next_match", "Next match"),
        Binding("N", "prev_match", "Prev match"),
        Binding("escape", "clear_search", "Clear search", show=False),
        Binding("t", "toggle_timestamps", "Times"),
    ]

    following: var[bool] = var(True)
    """New lines scroll into view; scrolling up pauses, `end` (or `resume()`) resumes."""
    timestamps: var[bool] = var(False)
    """Show each line's HH:MM:SS time."""

    def __init__(self, store: Store, *, name: str | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.store = store
        self.service: str | None = None
        """The service shown, or None for all services merged."""
        self._dq: deque[LogLine] = store.merged
        self._len = 0
        self._base = 0
        """Absolute index of `_dq[0]`: lines dropped off the front since `show()`."""
        self._last: LogLine | None = None
        self._width = 0
        self._namew = 4
        self._adjusting = False
        self._gen = 0
        """Bumped whenever every line's rendering changes (cached strips go stale)."""
        self._parsed: LRUCache[int, tuple[LogLine, Text]] = LRUCache(4096)
        self._strips: LRUCache[int, tuple[LogLine, int, Strip]] = LRUCache(1024)
        self._frame: tuple[Style, int] | None = None
        """Base style and width, computed once per `render_lines` (not once per line)."""
        self._search = LogSearch()
        """The pattern and its matches (by absolute index: `_base` + position)."""

    # -- public API -------------------------------------------------------------------
    def show(self, service: str | None) -> None:
        """Show one service's lines (its kept history), or all services merged (None).

        Resets to following the end; an active search is re-run over the new lines.
        """
        self.service = service
        self.border_title = f"logs · {service}" if service else "logs · all services"
        if self.is_mounted:
            self._reset()

    def lines_added(self, lines: list[LogLine]) -> None:
        """The lines the store took this tick (call once per tick; cost ~ len(lines))."""
        if lines:
            self._sync()

    def resume(self) -> None:
        """Follow new lines again (scroll to the end)."""
        self.following = True
        self._scroll_end()

    def search(self, pattern: str) -> None:
        """Highlight `pattern` (substring; case-insensitive unless it has capitals) and
        jump to the nearest match at or above the bottom of the view."""
        if not pattern:
            self.clear_search()
            return
        found = self._search
        found.start(pattern, self._dq, self._base)
        if found.matches:
            if self.following:
                pos = len(found.matches) - 1
            else:
                height = self.scrollable_content_region.height
                bottom = self._base + int(self.scroll_y) + max(height, 1) - 1
                pos = found.last_at_or_above(bottom)
            self._goto(pos)
        self._changed()

    def next_match(self) -> None:
        """Move to the next (newer) match, wrapping to the oldest."""
        if self._search.matches:
            self._goto(self._search.next_pos())
            self._changed()

    def prev_match(self) -> None:
        """Move to the previous (older) match, wrapping to the newest."""
        if self._search.matches:
            self._goto(self._search.prev_pos())
            self._changed()

    def clear_search(self) -> None:
        self._search.clear()
        self._changed()

    @property
    def match_count(self) -> int:
        """Number of lines (still in the buffer) that contain the search pattern."""
        return len(self._search.matches)

    @property
    def current_match(self) -> int | None:
        """Line index (in the shown buffer, 0 = oldest kept line) of the current match."""
        current, matches = self._search.current, self._search.matches
        if current is None or not matches:
            return None
        return matches[current] - self._base

    @property
    def line_count(self) -> int:
        return self._len

    @property
    def status(self) -> str:
        """One line: following or paused, and the search position."""
        parts = ["following" if self.following else "paused — end to follow"]
        if self._search.pattern is not None:
            parts.append(self._search.status())
        return " · ".join(parts)

    # -- actions ----------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("next_match", "prev_match", "clear_search"):
            return self._search.pattern is not None
        return True

    def action_resume(self) -> None:
        self.resume()

    def oldest(self) -> None:
        """The oldest line, following paused: asked for, not inferred from where the
        scroll lands (before the pane's first layout every position is "the end", and
        the following would scroll straight back)."""
        self.following = False
        self._adjusting = True
        try:
            self.scroll_home(animate=False)
        finally:
            self._adjusting = False

    def action_next_match(self) -> None:
        self.next_match()

    def action_prev_match(self) -> None:
        self.prev_match()

    def action_clear_search(self) -> None:
        self.clear_search()

    def action_toggle_timestamps(self) -> None:
        self.timestamps = not self.timestamps

    # -- Textual hooks ----------------------------------------------------------------
    def on_mount(self) -> None:
        super().on_mount()
        if self.service is None:
            self.border_title = "logs · all services"
        self._reset()

    def on_resize(self) -> None:
        if self.following:
            self._scroll_end()

    def watch_following(self) -> None:
        self._update_status()

    def watch_timestamps(self) -> None:
        self._resize()
        self._changed()

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if self._adjusting:
            return
        at_end = round(new_value) >= self.max_scroll_y
        if self.following != at_end:
            self.following = at_end

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._gen += 1

    def render_lines(self, crop: Region) -> list[Strip]:
        self._frame = (self.rich_style, self.scrollable_content_region.width)
        try:
            return super().render_lines(crop)
        finally:
            self._frame = None

    def render_line(self, y: int) -> Strip:
        # No segment without a style: Textual's NO_COLOR (monochrome) filter reads
        # `style.color` of every segment and fails on None.
        strip = self._render_line(y)
        segs = list(strip)
        if any(seg.style is None for seg in segs):
            strip = Strip([Segment(seg.text, _NO_STYLE, seg.control) if seg.style is None
                           else seg for seg in segs], strip.cell_length)
        return strip

    def _render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        style, width = self._frame or (self.rich_style, self.scrollable_content_region.width)
        idx = scroll_y + y
        dq = self._dq
        if idx >= len(dq):
            if idx == 0:
                return Strip([*Text(" (no output yet)", style="dim").render(self.app.console)
                              ]).crop_extend(0, width, style)
            return Strip.blank(width, style)
        strip = self._line_strip(dq[idx], self._base + idx, style)
        return strip.crop_extend(scroll_x, scroll_x + width, style).apply_offsets(scroll_x, idx)

    # -- internals --------------------------------------------------------------------
    def _deque(self) -> deque[LogLine]:
        if self.service is None:
            return self.store.merged
        info = self.store.services.get(self.service)
        return info.lines if info is not None else _EMPTY

    def _prefix_width(self) -> int:
        w = 1 + (9 if self.timestamps else 0)
        if self.service is None:
            w += self._namew + 1
        return w

    def _name_width(self) -> int:
        return min(NAME_WIDTH, max((len(n) for n in self.store.services), default=4))

    def _reset(self) -> None:
        self._dq = dq = self._deque()
        self._len, self._base = len(dq), 0
        self._last = dq[-1] if dq else None
        self._width = max((len(x.text) for x in dq), default=0)
        self._namew = self._name_width()
        if self._search.pattern is not None:
            self._search.rescan(dq)
        self._gen += 1
        self._resize()
        self.following = True
        self._scroll_end()
        self._changed()

    def _sync(self) -> None:
        """Catch up with the shown deque: count lines gained and dropped since last time."""
        dq = self._deque()
        if dq is not self._dq:  # the service appeared, or came back after a reload
            self._reset()
            return
        if self.service is None and self._name_width() != self._namew:
            self._namew = self._name_width()
            self._gen += 1
        n, last = len(dq), self._last
        if n == self._len and (n == 0 or dq[-1] is last):
            return
        added = 0
        for x in reversed(dq):
            if x is last:
                break
            added += 1
        dropped = self._len + added - n
        self._base += dropped
        self._len, self._last = n, (dq[-1] if n else None)
        new = list(islice(reversed(dq), added))
        if new:
            self._width = max(self._width, max(len(x.text) for x in new))
        if self._search.pattern is not None:
            self._search.lines_added(new, self._base + self._len - len(new), self._base,
                                     dropped)
        self._resize()
        if self.following:
            self._scroll_end()
        elif dropped:
            self._adjusting = True
            try:
                self.scroll_to(y=max(0, self.scroll_y - dropped), animate=False)
            finally:
                self._adjusting = False
        self._update_status()
        self.refresh()

    def _goto(self, pos: int) -> None:
        """Make match `pos` current and bring it into view (pauses if it scrolls)."""
        self._search.current = pos
        y = self._search.matches[pos] - self._base
        height = max(self.scrollable_content_region.height, 1)
        top = int(self.scroll_y)
        if top <= y < top + height:
            return
        self.following = False
        self._adjusting = True
        try:
            self.scroll_to(y=max(0, y - height // 2), animate=False)
        finally:
            self._adjusting = False

    def _resize(self) -> None:
        self.virtual_size = Size(self._width + self._prefix_width(), self._len)

    def _scroll_end(self) -> None:
        self._adjusting = True
        try:
            self.scroll_to(y=self.max_scroll_y, animate=False)
        finally:
            self._adjusting = False
        # the pane's size may be out of date (lines arrived before its first layout):
        # again once the screen is laid out, or it stays at the top while "following"
        self.call_after_refresh(self._scroll_end_again)

    def _scroll_end_again(self) -> None:
        if self.following and round(self.scroll_y) < self.max_scroll_y:
            self._adjusting = True
            try:
                self.scroll_to(y=self.max_scroll_y, animate=False)
            finally:
                self._adjusting = False

    def _changed(self) -> None:
        self._gen += 1
        self._update_status()
        self.refresh()

    def _update_status(self) -> None:
        status = self.status
        if self.border_subtitle != status:
            self.border_subtitle = status

    def _parsed_text(self, line: LogLine) -> Text:
        hit = self._parsed.get(id(line))
        if hit is not None and hit[0] is line:
            return hit[1]
        text = parse_line(line.text)
        self._parsed[id(line)] = (line, text)
        return text

    def _line_strip(self, line: LogLine, abs_idx: int, style: Style) -> Strip:
        hit = self._strips.get(id(line))
        if hit is not None and hit[0] is line and hit[1] == self._gen:
            return hit[2]
        text = Text(no_wrap=True, end="")
        if line.stream == "stderr":
            text.append(STDERR_MARK, style="bold red")
        else:
            text.append(" ")
        if self.timestamps:
            text.append(time.strftime("%H:%M:%S ", time.localtime(line.t)), style="dim")
        if self.service is None:
            w = self._namew
            name = line.service if len(line.service) <= w else line.service[: w - 1] + "…"
            text.append(f"{name:<{w}} ", style=name_colour(line.service))
        offset = len(text)
        body = self._parsed_text(line)
        text.append_text(body)
        if self._search.pattern is not None:
            self._search.highlight(text, body.plain, offset, self._search.is_current(abs_idx))
        width = cell_len(text.plain)
        if width > self._width + self._prefix_width():
            self._width = width - self._prefix_width()
            self.call_later(self._resize)
        strip = Strip(list(text.render(self.app.console)), width).apply_style(style)
        self._strips[id(line)] = (line, self._gen, strip)
        return strip
