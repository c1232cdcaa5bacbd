"""Search in the log pane: which shown lines match, which match is current, and where a
line's matches are highlighted. Pure (no Textual): the pane owns scrolling and tells this
what it shows; this owns the pattern and the match list.

Lines are named by their absolute index: the position in the shown deque plus `base`,
the number of lines dropped off its front since the pane last reset. Dropped lines drop
their matches, so the indices of the lines still shown never move.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from typing import TYPE_CHECKING

from rich.text import Text

from tui_supervisor.tui.logtext import plain_text

if TYPE_CHECKING:
    from tui_supervisor.tui.store import LogLine


class LogSearch:
    """A substring search: case-insensitive unless the pattern has capitals."""

    def __init__(self) -> None:
        self.pattern: str | None = None
        """None: no search is active."""
        self._needle = ""
        self._fold = True
        self.matches: list[int] = []
        """Absolute indices of the lines that contain the pattern, ascending."""
        self.current: int | None = None
        """Position in `matches` of the current match."""

    def start(self, pattern: str, lines: Iterable[LogLine], base: int) -> None:
        """Search `lines` (the shown deque, whose first line is absolute index `base`)
        for a new pattern; no match is current yet."""
        self.pattern = pattern
        self._fold = pattern == pattern.lower()
        self._needle = pattern.lower() if self._fold else pattern
        self.matches = [base + i for i, line in enumerate(lines) if self.is_match(line)]
        self.current = None

    def rescan(self, lines: Iterable[LogLine]) -> None:
        """The pane reset (absolute index 0 is the first line again): search again, the
        newest match current."""
        self.matches = [i for i, line in enumerate(lines) if self.is_match(line)]
        self.current = len(self.matches) - 1 if self.matches else None

    def clear(self) -> None:
        self.pattern, self.matches, self.current = None, [], None

    def lines_added(self, new_reversed: list[LogLine], first: int, base: int,
                    dropped: int) -> None:
        """New lines (newest first) from absolute index `first`; when `dropped`, every
        line below `base` has gone, and its matches with it."""
        found = [first + i for i, line in enumerate(reversed(new_reversed))
                 if self.is_match(line)]
        gone = bisect_left(self.matches, base) if dropped else 0
        if gone:
            del self.matches[:gone]
            if self.current is not None:
                self.current = max(self.current - gone, 0)
        self.matches.extend(found)
        if not self.matches:
            self.current = None

    def is_match(self, line: LogLine) -> bool:
        hay = plain_text(line.text)
        return self._needle in (hay.lower() if self._fold else hay)

    def is_current(self, abs_idx: int) -> bool:
        return self.current is not None and self.matches[self.current] == abs_idx

    def last_at_or_above(self, bottom: int) -> int:
        """Position of the newest match at or above absolute index `bottom` (the first
        match if none is)."""
        return max(bisect_right(self.matches, bottom) - 1, 0)

    def next_pos(self) -> int:
        """The next (newer) match's position, wrapping to the oldest."""
        return 0 if self.current is None else (self.current + 1) % len(self.matches)

    def prev_pos(self) -> int:
        """The previous (older) match's position, wrapping to the newest."""
        n = len(self.matches)
        return n - 1 if self.current is None else (self.current - 1) % n

    def status(self) -> str:
        """The search position, for the pane's status line ("" when no search)."""
        if self.pattern is None:
            return ""
        cur = 0 if self.current is None else self.current + 1
        return f"{cur}/{len(self.matches)} {self.pattern!r}"

    def highlight(self, text: Text, plain: str, offset: int, current: bool) -> None:
        """Style every match in `text`, whose body `plain` starts at `offset`."""
        hay = plain.lower() if self._fold else plain
        if len(hay) != len(plain):  # lower() changed the length: offsets would be wrong
            return
        hl = "bold black on dark_orange" if current else "black on yellow"
        n, start = len(self._needle), hay.find(self._needle)
        while start >= 0:
            text.stylize(hl, offset + start, offset + start + n)
            start = hay.find(self._needle, start + n)
