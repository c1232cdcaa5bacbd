"""The dependency coordinator: carries out `deps.py`'s decisions on an engine's services.

- A start (autostart, `start`, a config change) goes through `start`: a service whose
  dependencies' conditions hold starts; else it goes `waiting` with the reason.
- Every `StateChanged` and `HealthChanged` on the bus asks for one re-check, run soon
  after (coalesced: a burst of events costs one, and nothing acts inside an emit). It
  starts the waiting services whose conditions now hold, updates the others' reasons,
  and, for each dependency that was met and no longer is (whatever the cause: a crash, a
  liveness restart, an operator stop, a config reload), stops the dependents that say
  `restart: true`, which then wait and start again once it holds again.
- A `timeout:` is armed per wait, counted from the start of the wait (`state_since`,
  which a code reload keeps): past it, the service is `fatal` with the reason.

Only `Service.start` spawns, and only from a startable state: a restart racing a wait
(process-compose #347, #530) cannot spawn twice. A fault here is contained (said once,
as the engine's other parts): it never stops the supervision of a service.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from tui_supervisor.config.schema import DependencySpec, ServiceSpec
from tui_supervisor.engine import deps
from tui_supervisor.engine.events import AnyEvent, HealthChanged, StateChanged
from tui_supervisor.engine.states import State

if TYPE_CHECKING:
    from tui_supervisor.engine.service import Service
    from tui_supervisor.engine.supervisor import Supervisor

ACTIVE = frozenset({State.STARTING, State.RUNNING, State.DAEMONIZED, State.BACKOFF})
"""A dependent in these is taken down when a `restart: true` dependency goes."""


class Coordinator:
    """Starts services in dependency order and keeps dependents in step at run time."""

    def __init__(self, sup: Supervisor) -> None:
        self.sup = sup
        self._met: dict[tuple[str, str], bool] = {}
        """(dependent, dependency) -> whether the condition held at the last re-check."""
        self._soon: asyncio.Handle | None = None
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._down: dict[str, object] = {}
        """Dependents being taken down -> a token; an operator stop takes it away, and
        then the dependent is not put back to wait."""
        self._tasks: set[asyncio.Task[None]] = set()
        self._unlisten = sup.bus.add_listener(self._on_event)

    # -- reading the engine -------------------------------------------------------------
    def specs(self) -> dict[str, ServiceSpec]:
        return {n: s.spec for n, s in self.sup.services.items()}

    def status(self) -> dict[str, deps.DepStatus]:
        return {n: deps.DepStatus(s.state.value, s.ready, s.log_ready)
                for n, s in self.sup.services.items()}

    def unmet(self, svc: Service, specs: Mapping[str, ServiceSpec] | None = None,
              status: Mapping[str, deps.DepStatus] | None = None) -> list[DependencySpec]:
        return deps.unmet(svc.spec, specs or self.specs(), status or self.status())

    def view(self, svc: Service) -> list[dict[str, object]]:
        """The snapshot's `depends_on`: [{"name", "condition", "met"}]."""
        if not svc.spec.depends_on:
            return []
        left = {id(d) for d in self.unmet(svc)}
        return [{"name": d.name, "condition": d.condition, "met": id(d) not in left}
                for d in svc.spec.depends_on]

    # -- starting -----------------------------------------------------------------------
    def start(self, svc: Service, reason: str = "started by operator") -> bool:
        """Start `svc`, or make it wait for its dependencies. True if it took either."""
        self._down.pop(svc.name, None)
        left = self.unmet(svc)
        if not left:
            return svc.start(reason)
        took = svc.wait(deps.reason(left))
        if took:
            self._arm(svc, left)
        return took

    def forget(self, name: str) -> None:
        """The operator stopped `name`: a take-down under way does not put it to wait."""
        self._down.pop(name, None)
        timer = self._timers.pop(name, None)
        if timer is not None:
            timer.cancel()

    # -- re-checks ----------------------------------------------------------------------
    def _on_event(self, ev: AnyEvent) -> None:
        if isinstance(ev, StateChanged | HealthChanged):
            self.recheck_soon()

    def recheck_soon(self) -> None:
        if self._soon is None and not self.sup.retired:
            self._soon = asyncio.get_running_loop().call_soon(self._recheck)

    def _recheck(self) -> None:
        self._soon = None
        if self.sup.retired:
            return
        self.sup.guard("dependency check", self.recheck)

    def recheck(self) -> None:
        """Start what can start, take down what lost a dependency, update reasons."""
        specs, status = self.specs(), self.status()
        seen: set[tuple[str, str]] = set()
        for svc in tuple(self.sup.services.values()):
            lost: list[str] = []
            for dep, names in deps.edges(svc.spec, specs):
                for n in names:
                    key = (svc.name, n)
                    seen.add(key)
                    now = n in status and deps.met(dep.condition, status[n])
                    if self._met.get(key) and not now and dep.restart:
                        lost.append(f"{dep.name} ({dep.condition})")
                    self._met[key] = now
            if lost and svc.wanted and svc.state in ACTIVE and svc.name not in self._down:
                self._take_down(svc, "dependency lost: " + ", ".join(lost))
            elif svc.state is State.WAITING:
                left = self.unmet(svc, specs, status)
                if left:
                    svc.wait(deps.reason(left))
                    self._arm(svc, left)
                else:
                    self._disarm(svc.name)
                    svc.start("dependencies met")
        for key in set(self._met) - seen:  # removed services, edges taken away
            del self._met[key]

    def _take_down(self, svc: Service, why: str) -> None:
        token = self._down[svc.name] = object()

        async def run() -> None:
            try:
                await svc.stop(why)
                if self._down.get(svc.name) is token and not self.sup.retired \
                        and self.sup.services.get(svc.name) is svc \
                        and svc.state is State.STOPPED:
                    self.start(svc, "dependencies met again")
            finally:
                if self._down.get(svc.name) is token:
                    del self._down[svc.name]

        task = asyncio.ensure_future(self._guarded(run(), f"taking down {svc.name}"))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _guarded(self, coro: object, where: str) -> None:
        try:
            await coro  # type: ignore[misc]
        except Exception as e:
            self.sup.guard(where, _raise, e)

    # -- timeouts -----------------------------------------------------------------------
    def _arm(self, svc: Service, left: list[DependencySpec]) -> None:
        limits = [d.timeout for d in left if d.timeout is not None]
        if not limits:
            self._disarm(svc.name)
            return
        since = svc.rec.state_since
        due = since + min(limits)
        old = self._timers.get(svc.name)
        if old is not None:
            old.cancel()
        loop = asyncio.get_running_loop()
        self._timers[svc.name] = loop.call_later(max(0.0, due - time.time()),
                                                 self._timed_out, svc.name, since)

    def _disarm(self, name: str) -> None:
        timer = self._timers.pop(name, None)
        if timer is not None:
            timer.cancel()

    def _timed_out(self, name: str, since: float) -> None:
        self._timers.pop(name, None)
        svc = self.sup.services.get(name)
        if svc is None or svc.state is not State.WAITING or svc.rec.state_since != since \
                or self.sup.retired:
            return
        left = self.unmet(svc)
        waited = time.time() - since
        over = [d for d in left if d.timeout is not None and waited >= d.timeout - 0.001]
        if over:
            limit = min(d.timeout or 0.0 for d in over)
            self.sup.guard("dependency timeout", svc.give_up_waiting,
                           f"{deps.reason(over)}: gave up after {limit:g}s")
        elif left:
            self._arm(svc, left)

    def close(self) -> None:
        """Stop listening, cancel the timers and the re-check (the engine is stopping or
        handing over: the next engine re-checks from the records)."""
        self._unlisten()
        if self._soon is not None:
            self._soon.cancel()
            self._soon = None
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()


def _raise(e: Exception) -> None:
    raise e
