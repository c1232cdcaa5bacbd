"""Feeds per-service reliability metrics from the engine's events and adds them to its
snapshots (as `reliability`), carried across a handoff. Attach before `open()`:

    sup = Supervisor(cfg); ReliabilityCollector.attach(sup); await sup.open()
"""

from __future__ import annotations

import time
from typing import Any

from tui_supervisor.engine.events import AnyEvent, Exited, StateChanged
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
            r.set_up(now, ev.new in UP)
        elif isinstance(ev, Exited) and ev.failure:
            self._get(ev.service).failure(self.clock())

    def service_view(self, service: str) -> dict[str, Any]:
        r = self.services.get(service)
        return r.snapshot(self.clock()) if r is not None else {}

    def detach(self) -> dict[str, Any]:
        return {n: r.to_dict() for n, r in self.services.items()}

    def adopt(self, record: dict[str, Any]) -> None:
        self.services = {n: Reliability.from_dict(d) for n, d in record.items()}

