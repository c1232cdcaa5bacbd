"""The command palette (ctrl+p): every action of the dashboard, by name, first; Textual's
own commands (theme, screenshot, ...) after them.

One provider yields both, so the order is fixed: two providers' hits arrive in whatever
order their tasks run, and the palette sorts only by score (all 0 when the query is empty)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider

COMMANDS: tuple[tuple[str, str], ...] = (
    ("Restart the selected service", "restart"), ("Stop the selected service", "stop"),
    ("Start the selected service", "start"), ("Send a signal to the selected service…",
                                              "signal"),
    ("Restart all services…", "restart_all"), ("Stop all services…", "stop_all"),
    ("Start all services…", "start_all"),
    ("Scale the selected group…", "scale"), ("Fold / unfold the selected group", "fold"),
    ("Reload the config file", "reload"),
    ("Reload the supervisor's own code (services kept)", "reload_code"),
    ("Logs full screen (toggle)", "logs_full"), ("All services' logs (toggle)",
                                                 "logs_all"),
    ("Table: smaller share of the screen", "table_size(-1)"),
    ("Table: bigger share of the screen", "table_size(1)"),
    ("Detail pane: narrower", "detail_size(-1)"), ("Detail pane: wider", "detail_size(1)"),
    ("Logs: follow the end again", "follow"), ("Logs: time stamps (toggle)", "timestamps"),
    ("Event log: what happened (toggle)", "events"),
    ("Charts: window (1 min, 10 min, 1 h, all; cycle)", "chart_window"),
    ("Search the logs", "search"), ("Filter the services", "filter"),
    ("Sort the services (cycle)", "sort"), ("Help: every key", "help"), ("Quit", "quit"),
)
"""(what a user reads, the app's action)."""


def key_help(bindings: Iterable[Binding], action: str, display: Callable[[Binding], str]) -> str:
    """"key r" for an action bound to r (the first key bound); "" for none."""
    keys = [display(b) for b in bindings if b.action == action]
    return f"key {keys[0]}" if keys else ""


class Actions(Provider):
    """The app's actions, then Textual's system commands not already named by ours."""

    def _entries(self) -> list[tuple[str, Callable[[], Any], str]]:
        app = self.app
        bindings = list(Binding.make_bindings(app.BINDINGS))

        def runner(action: str) -> Callable[[], Any]:
            return lambda: app.run_action(action)

        ours = [(label, runner(action), key_help(bindings, action, app.get_key_display))
                for label, action in COMMANDS]
        named = {label for label, _ in COMMANDS}
        system = [(c.title, c.callback, c.help) for c in app.get_system_commands(self.screen)
                  if c.title not in named]
        return ours + system

    async def discover(self) -> Hits:
        for label, run, help in self._entries():
            yield DiscoveryHit(label, run, help=help or None)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for i, (label, run, help) in enumerate(self._entries()):
            score = matcher.match(label)
            if score > 0:  # ours first among equals: a tiny nudge by place in the list
                yield Hit(score - i * 1e-6, matcher.highlight(label), run,
                          help=help or None)
