"""Extension: a layer built on the engine's events (metrics) that adds to snapshots and
survives a handoff. The engine calls it; it never imports one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tui_supervisor.engine.events import AnyEvent

if TYPE_CHECKING:
    from tui_supervisor.engine.supervisor import Supervisor


class Extension:
    """A layer built on the engine's events (metrics) that adds to snapshots and must
    survive a handoff; the engine never imports one. Subclass and override what you need.

    Order: `adopt` (if handing over) -> `on_event` from then on (registered by `open`,
    before any service starts) -> `start` (the engine is open) -> ... -> `detach`
    (handing over) or `stop` (closing)."""

    name: str = "extension"
    sup: Supervisor | None = None
    """The engine, set by its `open()` before any event."""

    def on_event(self, ev: AnyEvent) -> None:
        """Every engine event, synchronously at emit time (override to listen)."""

    def service_view(self, service: str) -> dict[str, Any]:
        """Added to the service's snapshot under `name`."""
        return {}

    def engine_view(self) -> dict[str, Any]:
        """Added to the snapshot's `engine` under `name` (left out when empty)."""
        return {}

    def start(self, sup: Supervisor) -> None:
        """The engine is open (services started or adopted)."""

    def stop(self) -> None:
        """The engine closes or detaches: stop timers and threads."""

    def detach(self) -> dict[str, Any]:
        """What a successor's `adopt` continues from (JSON-serialisable)."""
        return {}

    def query(self, what: str, args: dict[str, Any]) -> Any:
        """Answer `SupervisorAPI.query` (JSON-serialisable); ValueError if unknown."""
        raise ValueError(f"{self.name}: no query {what!r}")

    def adopt(self, record: dict[str, Any]) -> None:
        """Continue from a predecessor's `detach` record."""
