"""Feeds per-service reliability metrics from the engine's events and adds them to its
snapshots (as `reliability`), carried across a handoff. Attach before `open()`:

    sup = Supervisor(cfg); ReliabilityCollector.attach(sup); await sup.open()
"""

from __future__ import annotations

import time
from typing import Any

from tui_supervisor.engine.events import AnyEvent, Exited, HealthChanged, StateChanged
from tui_supervisor.engine.states import UP_STATES
from tui_supervisor.engine.supervisor import Extension, Supervisor
from tui_supervisor.metrics.reliability import Reliability

UP = frozenset(s.value for s in UP_STATES)


class ReliabilityCollector(Extension):
    name = "reliability"

    def __init__(self, window: float = 3600.0, clock: Any = time.monotonic) -> None:
        self.window = window
        self.clock = clock
        self.services: dict[str, Reliability] = {}
        self.health: dict[str, str | None] = {}
        """The last health of each service (HealthChanged)."""
        self.started: dict[str, float] = {}
        """When each readiness-gated service was last spawned, until it is ready."""

    @classmethod
    def attach(cls, sup: Supervisor, window: float = 3600.0) -> ReliabilityCollector:
        c = cls(window)
        sup.extensions.append(c)
        return c

    def _get(self, name: str) -> Reliability:
        r = self.services.get(name)
        if r is None:
            r = self.services[name] = Reliability(self.window)
        return r

    def on_event(self, ev: AnyEvent) -> None:
        # Listeners run synchronously at emit time, so "now" on the monotonic clock is
        # the event's time; it is immune to wall-clock steps and CLOCK_MONOTONIC is the
        # same for a successor exec'd on the same boot (code reload).
        if isinstance(ev, StateChanged):
            r = self._get(ev.service)
            now = self.clock()
            r.set_wanted(now, ev.wanted)
            gated = self.gated(ev.service)
            if gated and ev.new == "starting":
                self.started[ev.service] = now
            # with a readiness probe, up means ready (docs/METRICS.md)
            r.set_up(now, ev.new in UP and (not gated or self.health.get(ev.service)
                                            == "ready"))
        elif isinstance(ev, Exited) and ev.failure:
            self._get(ev.service).failure(self.clock())
        elif isinstance(ev, HealthChanged):
            self.health[ev.service] = ev.health
            if self.gated(ev.service):
                self._health(ev.service, ev.health)

    def gated(self, service: str) -> bool:
        """The service has a readiness probe: its availability is measured on it."""
        svc = self.sup.services.get(service) if self.sup is not None else None
        return svc is not None and svc.spec.health.readiness is not None

    def _health(self, service: str, health: str | None) -> None:
        r, now = self._get(service), self.clock()
        if health == "ready":
            r.set_up(now, True)
            started = self.started.pop(service, None)
            if started is not None:
                r.became_ready(now - started)
        elif health == "unready":
            r.unready(now)
        else:  # starting, or its process ending (the state change says the rest)
            r.set_up(now, False)

    def service_view(self, service: str) -> dict[str, Any]:
        r = self.services.get(service)
        return r.snapshot(self.clock()) if r is not None else {}

    def detach(self) -> dict[str, Any]:
        return {n: r.to_dict() for n, r in self.services.items()}

    def adopt(self, record: dict[str, Any]) -> None:
        self.services = {n: Reliability.from_dict(d) for n, d in record.items()}

