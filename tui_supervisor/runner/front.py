"""What the engine host drives: a *front* shows the engine (the headless console, or the
dashboard) and decides what the terminal-facing signals mean while it does."""

from __future__ import annotations

import asyncio
from enum import Enum
from typing import Any, Protocol

from tui_supervisor.engine.supervisor import Supervisor


class UiOutcome(Enum):
    """How a front's `serve` ended. The headless console only ever ends STOP or RELOAD;
    the dashboard also LEAVE (quit with "leave running"), LOST (its terminal hung up) or
    CRASHED (an exception in the UI): after those the engine goes on headless."""

    STOP = "stop"
    """Stop every service, then exit."""
    LEAVE = "leave"
    RELOAD = "reload"
    """A checked code reload is due: hand the services over to a new image."""
    LOST = "lost"
    CRASHED = "crashed"


class Front(Protocol):
    def attach(self, sup: Supervisor) -> None:
        """A (new) engine was built: listen to it. Called before it opens."""

    def failed(self, why: str) -> int:
        """The engine did not start: say why; returns the exit code."""

    def ready(self, sup: Supervisor, fresh: bool) -> None:
        """The engine and its socket are up; `fresh`: no services adopted (greet)."""

    async def serve(self, sup: Supervisor) -> UiOutcome:
        """Show the engine until it must stop or hand over (`end()` ends it too)."""

    def end(self, outcome: UiOutcome) -> None:
        """End `serve` with `outcome` (a signal, a checked code reload)."""

    def hangup(self, sup: Supervisor) -> None:
        """SIGHUP (docs/ARCHITECTURE.md §5)."""

    def say(self, msg: str) -> None:
        """A line of the host's own (where this front's output goes)."""

    def warn(self, sup: Supervisor, msg: str) -> None:
        """A warning about the engine's set-up (e.g. its own source is not followed)."""

    def stopping(self) -> None:
        """Every service is about to be stopped."""

    def stopped(self) -> None:
        """Every service has stopped; the process exits next."""

    def handing_over(self) -> dict[str, Any] | None:
        """A code reload's exec is next: flush; the handoff record's `host` field."""

    def successor(self, outcome: UiOutcome, sup: Supervisor) -> Front:
        """The front that takes over when this one went (LEAVE, LOST, CRASHED)."""

    def close(self) -> None:
        """The host is done with this front."""


class Ending:
    """A front's pending outcome: the first one asked for, except that STOP overrides."""

    def __init__(self) -> None:
        self.outcome: UiOutcome | None = None
        self.event = asyncio.Event()

    def set(self, outcome: UiOutcome) -> bool:
        """True if `outcome` is now the pending one."""
        if self.outcome is not None and outcome is not UiOutcome.STOP:
            return False
        self.outcome = outcome
        self.event.set()
        return True

    async def wait(self) -> UiOutcome:
        await self.event.wait()
        return self.take() or UiOutcome.STOP

    def take(self) -> UiOutcome | None:
        outcome, self.outcome = self.outcome, None
        self.event.clear()
        return outcome
