"""Dependencies between services, as pure decisions: the start order (levels: the
services of one level are independent and start in parallel), the stop order (its
reverse: dependents first), who depends on whom, and the wait decision (is each
condition met, and the words of the reason: "waiting for db (ready)").

Conditions:
- `started`: the dependency is `running` or `daemonized` — up for its `start_time`, the
  start rule of this supervisor (docker compose's `service_started` and process-compose's
  `process_started` hold as soon as the process is spawned; here a process that dies in
  its first second has not "started"). A job that has `completed` is no longer started:
  for jobs, `completed_successfully` is the condition.
- `ready`: its readiness probe passes (`Service.ready is True`) while it is up.
- `completed_successfully`: it is `completed` (a clean exit of a job).
- `log_ready`: its `log` probe matched a line since its current spawn.
The graph is acyclic (config/depends.py refuses cycles); a cycle that slips through
anyway (a hand-built config) puts its services in a last level rather than loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from tui_supervisor.config.depends import resolve
from tui_supervisor.config.schema import DependencySpec, ServiceSpec
from tui_supervisor.engine.states import UP_STATES, State

SPAWNED = frozenset({State.STARTING, State.RUNNING, State.DAEMONIZED})
"""A probe's verdict counts while a process is up, already in `starting` (a server that
says "listening" in its first second is ready then); not once it is being stopped."""


@dataclass(frozen=True, slots=True)
class DepStatus:
    """What the wait decision reads of one dependency."""

    state: str
    ready: bool | None = None
    log_ready: bool = False


def met(condition: str, dep: DepStatus) -> bool:
    """Whether `condition` holds for a dependency in `dep`."""
    if condition == "started":
        return dep.state in UP_STATES
    if condition == "ready":
        return dep.ready is True and dep.state in SPAWNED
    if condition == "completed_successfully":
        return dep.state == State.COMPLETED
    if condition == "log_ready":
        return dep.log_ready and dep.state in SPAWNED
    return False


def edges(spec: ServiceSpec, specs: Mapping[str, ServiceSpec]
          ) -> list[tuple[DependencySpec, list[str]]]:
    """Each dependency of `spec` with the services it means (a group: its replicas)."""
    return [(d, [n for n in resolve(d.name, specs) if n != spec.name]) for d in spec.depends_on]


def unmet(spec: ServiceSpec, specs: Mapping[str, ServiceSpec],
          status: Mapping[str, DepStatus]) -> list[DependencySpec]:
    """The dependencies of `spec` whose condition does not hold (for a group: for any of
    its replicas). An unknown service (removed since) does not hold."""
    out = []
    for dep, names in edges(spec, specs):
        if not names or not all(n in status and met(dep.condition, status[n]) for n in names):
            out.append(dep)
    return out


def reason(waiting_for: list[DependencySpec]) -> str:
    """ "waiting for db (ready), migrate (completed_successfully)"."""
    return "waiting for " + ", ".join(f"{d.name} ({d.condition})" for d in waiting_for)


def levels(specs: Mapping[str, ServiceSpec]) -> list[list[str]]:
    """Start order: level 0 depends on nothing, level k only on levels < k; in each
    level, the config's order."""
    need = {n: {t for _, ts in edges(s, specs) for t in ts} for n, s in specs.items()}
    placed: set[str] = set()
    out: list[list[str]] = []
    while len(placed) < len(need):
        level = [n for n in need if n not in placed and need[n] <= placed]
        if not level:  # a cycle: the rest together, rather than never
            level = [n for n in need if n not in placed]
        out.append(level)
        placed.update(level)
    return out


def stop_levels(specs: Mapping[str, ServiceSpec]) -> list[list[str]]:
    """Stop order: dependents first (the start order reversed)."""
    return levels(specs)[::-1]


def dependents(names: list[str], specs: Mapping[str, ServiceSpec]) -> list[str]:
    """Every service that depends on one of `names`, directly or not (config order;
    `names` themselves excluded)."""
    found: set[str] = set()
    frontier = set(names)
    while frontier:
        new = {n for n, s in specs.items() if n not in found and n not in names
               and any(frontier & set(ts) for _, ts in edges(s, specs))}
        found |= new
        frontier = new
    return [n for n in specs if n in found]


def dependencies(names: list[str], specs: Mapping[str, ServiceSpec]) -> list[str]:
    """Every service one of `names` depends on, directly or not (config order; `names`
    themselves excluded)."""
    found: set[str] = set()
    frontier = [n for n in names if n in specs]
    while frontier:
        n = frontier.pop()
        for _, ts in edges(specs[n], specs):
            for t in ts:
                if t not in found and t not in names:
                    found.add(t)
                    frontier.append(t)
    return [n for n in specs if n in found]
