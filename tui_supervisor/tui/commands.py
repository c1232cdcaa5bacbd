"""The command palette (ctrl+p): every action of the dashboard, by name."""

from __future__ import annotations

from textual.command import Hit, Hits, Provider


class Actions(Provider):
    """Every action in the command palette (ctrl+p)."""

    COMMANDS = (
        ("Restart the selected service", "restart"), ("Stop the selected service", "stop"),
        ("Start the selected service", "start"), ("Send a signal…", "signal"),
        ("Restart all services…", "restart_all"), ("Stop all services…", "stop_all"),
        ("Start all services…", "start_all"), ("Reload the config file", "reload"),
        ("Reload the supervisor's own code (services kept)", "reload_code"),
        ("Logs full screen (toggle)", "logs_full"), ("All services' logs (toggle)",
                                                     "logs_all"),
        ("Event log: what happened (toggle)", "events"),
        ("Search the logs", "search"), ("Filter the services", "filter"),
        ("Sort the services (cycle)", "sort"), ("Help: every key", "help"), ("Quit", "quit"),
    )

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        app = self.app
        for label, action in self.COMMANDS:
            score = matcher.match(label)
            if score > 0:
                yield Hit(score, matcher.highlight(label),
                          lambda a=action: app.run_action(a), help=f"action: {action}")
