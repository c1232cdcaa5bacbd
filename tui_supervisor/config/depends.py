"""`depends_on:` of a service, and the checks across services (unknown names, cycles,
a condition no probe can meet), each one issue at file:line:col. Pure: no I/O.

Two forms, as docker compose's:
    depends_on: [db, cache]                       # condition started, restart true
    depends_on:
      db:      {condition: ready, restart: true, timeout: 30s}
      migrate: {condition: completed_successfully}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from yaml.nodes import MappingNode, Node, SequenceNode

from tui_supervisor.config.reader import ConfigIssue, Items, Reader, join
from tui_supervisor.config.schema import DependencySpec, ServiceSpec
from tui_supervisor.config.units import in_range, parse_duration, show, show_duration, to_bool

CONDITIONS = ("started", "ready", "completed_successfully", "log_ready")
KEYS = {"condition", "restart", "timeout"}
MAX_WAIT = 7 * 24 * 3600.0
"""A dependency timeout is at most a week (longer is "for ever": leave it out)."""


def to_condition(value: Any) -> str:
    if value not in CONDITIONS:
        raise ValueError(f"must be one of {', '.join(CONDITIONS)}, got {show(value)}")
    return str(value)


def _timeout(value: Any) -> float:
    seconds: float = in_range(parse_duration, 0.0, MAX_WAIT, show_duration)(value)
    if seconds <= 0:
        raise ValueError(f"must be greater than 0, got {show(value)}")
    return seconds


def _at(node: Node, **kw: Any) -> DependencySpec:
    return DependencySpec(line=node.start_mark.line + 1, col=node.start_mark.column + 1, **kw)


def load_depends(r: Reader, items: Items, path: str) -> tuple[DependencySpec, ...]:
    """The `depends_on` entries of one service (bad entries reported and left out)."""
    if "depends_on" not in items:
        return ()
    node, sub = items["depends_on"][1], join(path, "depends_on")
    if r.is_null(node):
        return ()
    out: list[DependencySpec] = []
    if isinstance(node, SequenceNode):
        for i, item in enumerate(node.value):
            try:
                name = r.plain(item)
                if not isinstance(name, str) or not name:
                    raise ValueError(f"expected a service name, got {r.describe(item)}")
            except ValueError as e:
                r.add(item, f"{sub}[{i}]", str(e))
                continue
            if any(d.name == name for d in out):
                r.add(item, f"{sub}[{i}]", f"{name!r} is listed twice")
                continue
            out.append(_at(item, name=name))
        return tuple(out)
    if not isinstance(node, MappingNode):
        r.add(node, sub, f"expected a list of names or a mapping, got {r.describe(node)}")
        return ()
    entries = r.mapping(node, sub) or {}
    for name, (key_node, value_node) in entries.items():
        dep_path = join(sub, name)
        found = r.mapping(value_node, dep_path)
        if found is None:
            continue
        r.check_keys(found, KEYS, dep_path)
        out.append(_at(
            key_node, name=name,
            condition=r.get(found, "condition", dep_path, to_condition, "started"),
            restart=r.get(found, "restart", dep_path, to_bool, True),
            timeout=r.get(found, "timeout", dep_path, _timeout, None),
        ))
    return tuple(out)


def resolve(name: str, services: Mapping[str, ServiceSpec]) -> list[str]:
    """The services a dependency on `name` means: itself, or all the replicas of the
    group `name` (specs whose `group` is `name`); [] for an unknown name."""
    if name in services:
        return [name]
    return [n for n, s in services.items() if getattr(s, "group", None) == name]


def _probe_kind(spec: ServiceSpec, which: str) -> str | bool | None:
    """The kind of a probe of `spec` (None: no such probe); False when this build has no
    probes at all (part A not merged), so the check is skipped."""
    health = getattr(spec, "health", None)
    if health is None:
        return False
    probe = getattr(health, which, None)
    return None if probe is None else str(getattr(probe, "kind", ""))


def check_depends(r: Reader, services: Mapping[str, ServiceSpec]) -> None:
    """Cross-service checks, after every service is parsed (and replicas expanded)."""
    def issue(svc: str, dep: DependencySpec, message: str) -> None:
        r.issues.append(ConfigIssue(r.file, dep.line, dep.col,
                                    f"services.{svc}.depends_on.{dep.name}", message))

    edges: dict[str, list[str]] = {}
    for name, spec in services.items():
        edges[name] = []
        for dep in spec.depends_on:
            targets = resolve(dep.name, services)
            if not targets:
                issue(name, dep, f"unknown service {dep.name!r}")
                continue
            if name in targets:
                issue(name, dep, "a service cannot depend on itself")
                continue
            edges[name].extend(targets)
            for target in targets:
                if dep.condition == "ready":
                    if _probe_kind(services[target], "readiness") is None:
                        issue(name, dep, f"condition ready, but {target!r} has no "
                                         "readiness probe (health.readiness)")
                        break
                elif dep.condition == "log_ready":
                    kinds = {_probe_kind(services[target], w)
                             for w in ("startup", "readiness", "liveness")}
                    if False not in kinds and "log" not in kinds:
                        issue(name, dep, f"condition log_ready, but {target!r} has no log "
                                         "probe (health: {readiness: {log: REGEX}})")
                        break
    cycle = find_cycle(edges)
    if cycle:
        first = services[cycle[0]]
        dep = next((d for d in first.depends_on if cycle[1] in resolve(d.name, services)),
                   DependencySpec(cycle[1], line=first.line, col=5))
        issue(cycle[0], dep, "dependency cycle: " + " -> ".join(cycle))


def find_cycle(edges: Mapping[str, list[str]]) -> list[str] | None:
    """One cycle of the graph as a path that ends where it starts (`a -> b -> a`), the
    first found from the services in order; None if there is none. Iterative: a chain
    of a thousand services does not hit the recursion limit."""
    done: set[str] = set()
    for root in edges:
        if root in done:
            continue
        path: list[str] = [root]
        on_path = {root}
        stack = [iter(edges.get(root, ()))]
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                stack.pop()
                gone = path.pop()
                done.add(gone)
                on_path.discard(gone)
                continue
            if nxt in on_path:
                return [*path[path.index(nxt):], nxt]
            if nxt in done:
                continue
            path.append(nxt)
            on_path.add(nxt)
            stack.append(iter(edges.get(nxt, ())))
    return None
