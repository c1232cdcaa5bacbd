"""What probe results mean, decided in one pure place (Kubernetes' semantics).

A `Track` counts one probe's consecutive results: `failure_threshold` failures in a row
make it fail, `success_threshold` successes in a row make it pass, and a result of the
other kind resets the count. `health_of` turns the tracks of a spawn into the service's
health; `verdict` says whether the service must be restarted. No clock, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from tui_supervisor.config.schema import HealthSpec, ProbeSpec

OUTPUT_MAX = 4096
"""A probe's output kept (and shown) is cut to this many characters."""


@dataclass(frozen=True, slots=True)
class Track:
    """One probe's verdict within one spawn."""

    passing: bool | None = None
    """None: no verdict yet (too few results)."""
    successes: int = 0
    """Consecutive successes so far."""
    failures: int = 0
    """Consecutive failures so far."""
    total_failures: int = 0
    output: str = ""
    """The last result's output or error."""
    duration: float | None = None
    """Seconds the last check took."""


def initial(name: str) -> Track:
    """Liveness passes until it fails (Kubernetes); startup and readiness wait to pass."""
    return Track(passing=True) if name == "liveness" else Track()


def record(track: Track, ok: bool, spec: ProbeSpec, output: str = "",
           duration: float | None = None) -> Track:
    """`track` after one result."""
    output = output[:OUTPUT_MAX]  # (Track(...), not replace(): this runs for every check)
    if ok:
        successes = track.successes + 1
        passing = True if successes >= spec.success_threshold else track.passing
        return Track(passing, successes, 0, track.total_failures, output, duration)
    failures = track.failures + 1
    passing = False if failures >= spec.failure_threshold else track.passing
    return Track(passing, 0, failures, track.total_failures + 1, output, duration)


def startup_budget(spec: ProbeSpec) -> float:
    """Seconds after a spawn by which a startup probe must have passed."""
    return spec.initial_delay + spec.period * spec.failure_threshold


def startup_passed(health: HealthSpec, tracks: dict[str, Track]) -> bool:
    """No startup probe, or it has passed (once passed, it is not run again)."""
    return health.startup is None or tracks.get("startup", Track()).passing is True


def health_of(health: HealthSpec, tracks: dict[str, Track]) -> str | None:
    """"starting", "ready", "unready" or None (no probe). Before the startup probe
    passes: starting. With a readiness probe: ready / unready once it has a verdict
    (starting before). Without one: ready once started."""
    if health.startup is None and health.readiness is None and health.liveness is None:
        return None  # (not `health.probes()`: this runs for every check)
    if not startup_passed(health, tracks):
        return "starting"
    if health.readiness is None:
        return "ready"
    passing = tracks.get("readiness", Track()).passing
    return "starting" if passing is None else "ready" if passing else "unready"


def verdict(health: HealthSpec, tracks: dict[str, Track], up_for: float) -> str | None:
    """Why the service must be restarted now (None: it need not): a liveness probe
    failed `failure_threshold` times in a row, or the startup probe did not pass
    within its budget. `up_for`: seconds since the spawn."""
    startup = health.startup
    if startup is not None and not startup_passed(health, tracks):
        track = tracks.get("startup", Track())
        if track.passing is False or up_for >= startup_budget(startup):
            last = f": {track.output}" if track.output else ""
            return f"startup probe did not pass within {startup_budget(startup):g}s{last}"
        return None
    if health.liveness is not None and tracks.get("liveness", Track()).passing is False:
        out = tracks["liveness"].output
        return "liveness probe failed" + (f": {out}" if out else "")
    return None
