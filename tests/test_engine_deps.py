"""engine/deps.py: order, dependents, and the wait decision, as tables."""

from __future__ import annotations

from pathlib import Path

import pytest

from tui_supervisor.config.schema import DependencySpec, ServiceSpec
from tui_supervisor.engine.deps import (
    DepStatus,
    dependencies,
    dependents,
    levels,
    met,
    reason,
    stop_levels,
    unmet,
)


def specs(**deps: str) -> dict[str, ServiceSpec]:
    """`specs(db="", api="db migrate")`: services with `started` dependencies."""
    return {n: ServiceSpec(n, ("x",), Path("/"),
                           depends_on=tuple(DependencySpec(d) for d in ds.split()))
            for n, ds in deps.items()}


CHAIN = specs(worker="api", api="db migrate", migrate="db", db="", cache="")


def test_levels_start_independent_services_together() -> None:
    assert levels(CHAIN) == [["db", "cache"], ["migrate"], ["api"], ["worker"]]
    assert stop_levels(CHAIN) == [["worker"], ["api"], ["migrate"], ["db", "cache"]]


def test_a_cycle_slipped_through_still_ends() -> None:
    assert levels(specs(a="b", b="a", c="")) == [["c"], ["a", "b"]]


def test_dependents_and_dependencies_are_transitive() -> None:
    assert dependents(["db"], CHAIN) == ["worker", "api", "migrate"]
    assert dependents(["migrate"], CHAIN) == ["worker", "api"]
    assert dependents(["cache"], CHAIN) == []
    assert dependencies(["worker"], CHAIN) == ["api", "migrate", "db"]
    assert dependencies(["db"], CHAIN) == []


@pytest.mark.parametrize(("condition", "status", "want"), [
    ("started", DepStatus("running"), True),
    ("started", DepStatus("daemonized"), True),
    ("started", DepStatus("starting"), False),  # not yet up start_time
    ("started", DepStatus("completed"), False),  # a job: completed_successfully
    ("started", DepStatus("waiting"), False),
    ("started", DepStatus("backoff"), False),
    ("ready", DepStatus("running", ready=True), True),
    ("ready", DepStatus("starting", ready=True), True),
    ("ready", DepStatus("running", ready=False), False),
    ("ready", DepStatus("running", ready=None), False),  # no probe: never
    ("ready", DepStatus("stopping", ready=True), False),
    ("completed_successfully", DepStatus("completed"), True),
    ("completed_successfully", DepStatus("exited"), False),  # a failure
    ("completed_successfully", DepStatus("running"), False),
    ("log_ready", DepStatus("starting", log_ready=True), True),
    ("log_ready", DepStatus("running", log_ready=False), False),
    ("log_ready", DepStatus("exited", log_ready=True), False),
    ("healthy", DepStatus("running", ready=True), False),  # unknown: never
])
def test_met(condition: str, status: DepStatus, want: bool) -> None:
    assert met(condition, status) is want


def test_unmet_and_reason() -> None:
    s = {"db": ServiceSpec("db", ("x",), Path("/")),
         "migrate": ServiceSpec("migrate", ("x",), Path("/")),
         "api": ServiceSpec("api", ("x",), Path("/"), depends_on=(
             DependencySpec("db", "ready"), DependencySpec("migrate", "completed_successfully")))}
    status = {"db": DepStatus("running", ready=False), "migrate": DepStatus("running")}
    left = unmet(s["api"], s, status)
    assert reason(left) == "waiting for db (ready), migrate (completed_successfully)"
    status["db"] = DepStatus("running", ready=True)
    assert reason(unmet(s["api"], s, status)) == "waiting for migrate (completed_successfully)"
    status["migrate"] = DepStatus("completed")
    assert unmet(s["api"], s, status) == []
    del status["db"]  # removed by a reload: not met
    assert [d.name for d in unmet(s["api"], s, status)] == ["db"]


def test_a_group_means_all_its_replicas() -> None:
    """C's replicas: a spec with `group == "web"`; depends_on: [web] waits for all."""
    class Replica:  # the fields C adds to ServiceSpec (part C may not be merged yet)
        def __init__(self, name: str) -> None:
            self.name, self.group, self.depends_on = name, "web", ()

    s: dict[str, ServiceSpec] = {"web-0": Replica("web-0"),  # type: ignore[dict-item]
                                 "web-1": Replica("web-1"),
                                 "lb": ServiceSpec("lb", ("x",), Path("/"),
                                                   depends_on=(DependencySpec("web"),))}
    status = {"web-0": DepStatus("running"), "web-1": DepStatus("starting")}
    assert reason(unmet(s["lb"], s, status)) == "waiting for web (started)"
    status["web-1"] = DepStatus("running")
    assert unmet(s["lb"], s, status) == []
    assert levels(s) == [["web-0", "web-1"], ["lb"]]
    assert dependents(["web-1"], s) == ["lb"]
