"""Placeholder help screen (replaced by the real one)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.widgets import Static


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        lines = [f"{b.key:>10}  {b.description}" for b in self.app.BINDINGS
                 if isinstance(b, Binding)]
        yield Static("\n".join(lines))
