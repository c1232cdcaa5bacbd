"""The pure probe logic: thresholds, health, and when a service must be restarted."""

from __future__ import annotations

import pytest

from tui_supervisor.config.schema import HealthSpec, ProbeSpec
from tui_supervisor.engine.health import (
    OUTPUT_MAX,
    Track,
    health_of,
    initial,
    record,
    startup_budget,
    verdict,
)

P = ProbeSpec(kind="tcp", failure_threshold=3, success_threshold=2)


def run(results: str, name: str = "readiness", spec: ProbeSpec = P) -> Track:
    track = initial(name)
    for r in results:
        track = record(track, r == "+", spec, r)
    return track


@pytest.mark.parametrize(("name", "results", "passing"), [
    ("readiness", "", None),
    ("readiness", "+", None),          # success_threshold 2
    ("readiness", "++", True),
    ("readiness", "--", None),         # failure_threshold 3
    ("readiness", "---", False),
    ("readiness", "++--", True),       # two failures are not enough
    ("readiness", "++---", False),
    ("readiness", "++--+-", True),     # one success resets the failures
    ("readiness", "---+", False),      # one success is not enough to pass again
    ("readiness", "---++", True),
    ("liveness", "", True),            # liveness passes until it fails
    ("liveness", "--", True),
    ("liveness", "---", False),
])
def test_thresholds(name: str, results: str, passing: bool | None) -> None:
    assert run(results, name).passing is passing


def test_counts_and_output() -> None:
    t = run("+--")
    assert (t.successes, t.failures, t.total_failures, t.output) == (0, 2, 2, "-")
    assert len(record(Track(), False, P, "x" * 10_000).output) == OUTPUT_MAX


S = ProbeSpec(kind="http", period=1.0, failure_threshold=5, initial_delay=2.0)
R = ProbeSpec(kind="tcp")
L = ProbeSpec(kind="exec", failure_threshold=1)


@pytest.mark.parametrize(("health", "tracks", "expected"), [
    (HealthSpec(), {}, None),
    (HealthSpec(startup=S), {}, "starting"),
    (HealthSpec(startup=S), {"startup": Track(passing=True)}, "ready"),
    (HealthSpec(startup=S, readiness=R), {"startup": Track(passing=True)}, "starting"),
    (HealthSpec(startup=S, readiness=R), {"readiness": Track(passing=True)}, "starting"),
    (HealthSpec(readiness=R), {"readiness": Track(passing=True)}, "ready"),
    (HealthSpec(readiness=R), {"readiness": Track(passing=False)}, "unready"),
    (HealthSpec(liveness=L), {"liveness": Track(passing=False)}, "ready"),
])
def test_health_of(health: HealthSpec, tracks: dict[str, Track], expected: str | None) -> None:
    assert health_of(health, tracks) == expected


@pytest.mark.parametrize(("health", "tracks", "up_for", "expected"), [
    (HealthSpec(), {}, 1e6, None),
    (HealthSpec(startup=S), {}, 6.9, None),
    (HealthSpec(startup=S), {}, 7.0, "startup probe did not pass within 7s"),
    (HealthSpec(startup=S), {"startup": Track(passing=False, output="refused")}, 3.0,
     "startup probe did not pass within 7s: refused"),
    (HealthSpec(startup=S), {"startup": Track(passing=True)}, 100.0, None),
    # liveness is suspended until the startup probe passes
    (HealthSpec(startup=S, liveness=L), {"liveness": Track(passing=False)}, 1.0, None),
    (HealthSpec(startup=S, liveness=L),
     {"startup": Track(passing=True), "liveness": Track(passing=False, output="500")}, 1.0,
     "liveness probe failed: 500"),
    (HealthSpec(liveness=L), {"liveness": Track(passing=False)}, 1.0,
     "liveness probe failed"),
    # readiness never restarts
    (HealthSpec(readiness=R), {"readiness": Track(passing=False)}, 1e6, None),
])
def test_verdict(health: HealthSpec, tracks: dict[str, Track], up_for: float,
                 expected: str | None) -> None:
    assert verdict(health, tracks, up_for) == expected


def test_startup_budget() -> None:
    assert startup_budget(S) == 7.0
