"""The detail pane's Health and Dependencies sections (pure: a view in, Rich out).

Health: the service's health word, each probe (kind, passing or failing, consecutive
failures, last duration) and the last probe output, a few lines, wrapped. Dependencies: a
small tree, what the service waits for (each dependency, its condition, met ✓ / not met ✗)
and what waits for it (from the other services' `depends_on`). Both are empty for an
engine whose views carry none of these keys (before health probes and dependencies)."""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from tui_supervisor.formatting import (
    fmt_duration,
    fmt_seconds,
    health_colour,
    shown_state,
    state_colour,
)

OUTPUT_LINES = 4
"""Rows of the last probe output shown (after wrapping)."""
PROBE_ORDER = ("startup", "readiness", "liveness")
MET, UNMET = "✓", "✗"


def output_rows(output: str, width: int, rows: int = OUTPUT_LINES) -> list[str]:
    """The probe output wrapped to `width`, at most `rows` rows (the last one ending in
    "…" when there was more)."""
    wrapped: list[str] = []
    for line in output.strip().splitlines():
        wrapped += textwrap.wrap(line, max(1, width), replace_whitespace=False) or [""]
    if len(wrapped) > rows:
        wrapped = wrapped[:rows]
        wrapped[-1] = wrapped[-1][:max(0, width - 1)] + "…"
    return wrapped


def health(view: Mapping[str, Any], width: int) -> RenderableType:
    """The Health section ("" when the engine tells no health)."""
    if "health" not in view and not view.get("probes"):
        return Text("")
    word = view.get("health")
    title = Text()
    title.append("Health", style="bold underline")
    title.append("  ")
    title.append(str(word or "-"), style=health_colour(word))
    probes: Mapping[str, Any] = view.get("probes") or {}
    if not probes:
        title.append("  no probe", style="dim")
        return title
    grid = Table.grid(padding=(0, 1))
    for style in ("dim", "", "", "", "dim"):
        grid.add_column(style=style, no_wrap=True)
    for name in sorted(probes, key=lambda k: (*PROBE_ORDER, k).index(k)):
        p = probes[name] or {}
        passing = p.get("passing")
        failures = int(p.get("failures") or 0)
        grid.add_row(name, str(p.get("kind", "?")),
                     Text("passing" if passing else "failing",
                          style="green" if passing else "bold yellow"),
                     f"{failures} failure{'s' if failures != 1 else ''}" if failures else "",
                     fmt_seconds(p.get("last_duration")))
    parts: list[RenderableType] = [title, grid]
    out = str(view.get("health_output") or "")
    if out.strip():
        parts += [Text(f"│ {row}", style="dim") for row in output_rows(out, width - 2)]
    return Group(*parts)


def dependents(name: str, group: str | None, views: Iterable[Mapping[str, Any]]
               ) -> list[tuple[str, dict[str, Any]]]:
    """(service, its dependency entry) for every service that depends on `name` (or on
    its replica `group`: a dependency on `web` is one on every replica)."""
    out = []
    for v in views:
        for d in v.get("depends_on") or ():
            if d.get("name") == name or (group is not None and d.get("name") == group):
                out.append((str(v.get("name")), dict(d)))
    return out


DOWN = ("stopped", "exited", "completed", "fatal", "waiting")
"""States of a dependent with no process (a stop of its dependency takes nothing down)."""


def stop_affects(names: list[str], views: Iterable[Mapping[str, Any]]) -> list[str]:
    """The services (not in `names`) that depend on any of `names` and are not down:
    those stopping `names` would take down too (or leave waiting)."""
    views = list(views)
    groups = {str(v.get("group")) for v in views
              if v.get("name") in names and v.get("group") is not None}
    targets = set(names) | groups
    return [str(v.get("name")) for v in views
            if v.get("name") not in names and v.get("state") not in DOWN
            and any(d.get("name") in targets for d in v.get("depends_on") or ())]


def _leaf(name: str, dep: Mapping[str, Any]) -> Text:
    met = bool(dep.get("met"))
    t = Text()
    t.append(MET if met else UNMET, style="green" if met else "bold red")
    t.append(f" {name} ")
    t.append(f"({dep.get('condition', '?')})", style="dim")
    return t


def dependencies(view: Mapping[str, Any], views: Iterable[Mapping[str, Any]]
                 ) -> RenderableType:
    """The Dependencies section: a tree of what `view` waits for and what waits for it
    ("" when neither: an engine without dependencies, or a service without any)."""
    name = str(view.get("name", "?"))
    waits = list(view.get("depends_on") or ())
    needed = dependents(name, view.get("group"), (v for v in views if v.get("name") != name))
    if not waits and not needed:
        return Text("")
    tree = Tree(Text(name, style="bold"), guide_style="dim")
    if waits:
        branch = tree.add(Text("waits for", style="dim"))
        for d in waits:
            branch.add(_leaf(str(d.get("name", "?")), d))
    if needed:
        branch = tree.add(Text("needed by", style="dim"))
        for who, d in needed:
            branch.add(_leaf(who, d))
    return Group(Text("Dependencies", style="bold underline"), tree)


def group_summary(group: str, views: list[Mapping[str, Any]]) -> RenderableType:
    """A replica group's row in the detail pane: the group, then one line a replica
    (state, health, pid, uptime) and what depends on the group."""
    reps = [v for v in views if v.get("group") == group]
    up = sum(1 for v in reps if v.get("state") in ("running", "daemonized"))
    head = Text()
    head.append(group, style="bold")
    head.append(f"  replica group: {up}/{len(reps)} running", style="dim")
    if any("health" in v for v in reps):
        ready = sum(1 for v in reps if v.get("health") == "ready")
        head.append(f", {ready}/{len(reps)} ready", style="dim")
    grid = Table.grid(padding=(0, 1))
    for style in ("bold", "", "", "dim", "dim"):
        grid.add_column(style=style, no_wrap=True)
    for v in reps:
        state = shown_state(str(v.get("state", "?")), v.get("crash_looping"))
        grid.add_row(str(v.get("name")), Text(state, style=state_colour(state)),
                     Text(str(v.get("health") or "-") if "health" in v else "",
                          style=health_colour(v.get("health"))),
                     str(v.get("pid") or "-"), fmt_duration(v.get("uptime")))
    parts: list[RenderableType] = [head, grid]
    needed = dependents(group, None, views)
    if needed:
        tree = Tree(Text("needed by", style="dim"), guide_style="dim")
        for who, d in needed:
            tree.add(_leaf(who, d))
        parts += [Text(""), tree]
    return Group(*parts)
