"""`?` help: every key of the app in one table. The keys come from the bindings themselves
(the app's BINDINGS and those of the focused widget and its ancestors on the screen below),
so the list cannot drift from what the keys do; keys that widgets handle in code rather
than as bindings are listed from `OTHER_KEYS`."""

from __future__ import annotations

from collections.abc import Iterable

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.dom import DOMNode
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

OTHER_KEYS: list[tuple[str, str, str]] = [
    ("service table", "↑ ↓  j k", "move the selection"),
    ("service table", "enter", "show the selected service"),
    ("service table", "ctrl+home  ctrl+end", "first / last service"),
    ("log pane", "↑ ↓  pgup pgdn", "scroll (up pauses following)"),
    ("everywhere", "ctrl+p", "command palette; its \"Theme\" picks one, kept"),
]
"""(where, keys, what) for keys handled outside BINDINGS."""


def _where(node: DOMNode) -> str:
    from textual.app import App

    if isinstance(node, App):
        return "everywhere"
    if isinstance(node, Screen):
        return "screen"
    return type(node).__name__


def collect(app_bindings: Iterable[tuple[DOMNode, Binding]]
            ) -> list[tuple[str, list[Binding]]]:
    """(where, bindings of one action) in first-seen order; keys of the same action and
    description are grouped; system bindings (Textual's own ^c) left out."""
    groups: dict[tuple[str, str, str], tuple[str, list[Binding]]] = {}
    seen: set[tuple[str, str]] = set()
    for node, b in app_bindings:
        if b.system or (b.key, b.action) in seen:
            continue
        seen.add((b.key, b.action))
        where = _where(node)
        key = (where, b.action, b.description)
        groups.setdefault(key, (where, []))[1].append(b)
    return list(groups.values())


class HelpScreen(ModalScreen[None]):
    """Every key, in a table; escape, ? or q closes it."""

    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close help")]

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 90%; max-width: 100; height: auto; max-height: 90%;
        border: round $accent; padding: 0 1; background: $surface;
    }
    """

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(id="help-table")

    def on_mount(self) -> None:
        self.query_one("#help-table", Static).update(self.table())
        self.query_one(VerticalScroll).border_title = "Keys"
        self.query_one(VerticalScroll).border_subtitle = "escape / ? / q: close"

    def bindings(self) -> list[tuple[DOMNode, Binding]]:
        """The app's bindings, then those active on the screen below (focused widget up
        to the app): each key once."""
        app = self.app
        out: list[tuple[DOMNode, Binding]] = [
            (app, b) for b in Binding.make_bindings(app.BINDINGS)]
        stack = app.screen_stack
        below = stack[stack.index(self) - 1] if self in stack and stack.index(self) else None
        if below is not None:
            out += [(ab.node, ab.binding) for ab in below.active_bindings.values()]
        return out

    def table(self) -> Table:
        t = Table(box=None, show_header=True, header_style="bold", pad_edge=False)
        t.add_column("key", style="bold cyan", no_wrap=True)
        t.add_column("action")
        t.add_column("where", style="dim", no_wrap=True)
        for where, group in collect(self.bindings()):
            keys = "  ".join(self.app.get_key_display(b) for b in group)
            b = group[0]
            t.add_row(keys, b.description or b.action.split(".")[-1].replace("_", " "), where)
        for where, keys, what in OTHER_KEYS:
            t.add_row(keys, what, where)
        return t
