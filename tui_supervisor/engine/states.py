"""Service states, the allowed transitions, and named groups.

This module must stay stdlib-only so everybody (engine, control, tui) can import it.
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    """The state of one service."""

    STOPPED = "stopped"
    """Not running and not wanted (never started, or stopped by the operator)."""
    STARTING = "starting"
    """Spawned; has not yet stayed up `start_time`."""
    RUNNING = "running"
    """Up for at least `start_time`."""
    DAEMONIZED = "daemonized"
    """The main process exited cleanly but left processes of the service running (it
    forked into the background); they are supervised until they exit or are stopped."""
    STOPPING = "stopping"
    """Asked to stop: stop signal sent, waiting for the process tree to go."""
    BACKOFF = "backoff"
    """Exited unexpectedly; leftovers are cleared and a respawn is scheduled."""
    EXITED = "exited"
    """Exited by itself and is not respawned: a failure under `restart: never`, or an
    exit while no longer wanted. Still wanted: a failed one is down."""
    COMPLETED = "completed"
    """A job that is done: a clean exit (a success code) under a policy that does not
    restart on success (`never`, `on-failure`), however fast. Not a failure and no longer
    wanted (out of availability and downtime); `start` runs it again."""
    FATAL = "fatal"
    """Gave up: crash loop, or it cannot be spawned at all. Needs a manual start."""
    WAITING = "waiting"
    """Wanted, and waiting for its dependencies' conditions (`depends_on`); the reason
    says which ("waiting for db (ready)"). No process. Not up, and not down: like a
    start-up, a wait is neither (docs/METRICS.md)."""


S = State

TRANSITIONS: dict[State, frozenset[State]] = {
    S.STOPPED: frozenset({S.STARTING, S.WAITING}),
    S.STARTING: frozenset({S.RUNNING, S.STOPPING, S.BACKOFF, S.EXITED, S.FATAL, S.DAEMONIZED,
                           S.COMPLETED}),
    S.RUNNING: frozenset({S.STOPPING, S.BACKOFF, S.EXITED, S.FATAL, S.DAEMONIZED,
                          S.COMPLETED}),
    S.DAEMONIZED: frozenset({S.STOPPING, S.BACKOFF, S.EXITED, S.FATAL, S.COMPLETED}),
    S.STOPPING: frozenset({S.STOPPED, S.STARTING}),
    S.BACKOFF: frozenset({S.STARTING, S.STOPPING, S.STOPPED, S.FATAL, S.WAITING}),
    S.EXITED: frozenset({S.STARTING, S.WAITING}),
    S.COMPLETED: frozenset({S.STARTING, S.WAITING}),
    S.FATAL: frozenset({S.STARTING, S.WAITING}),
    S.WAITING: frozenset({S.STARTING, S.STOPPED, S.FATAL}),
}
"""state -> the states it may move to. Anything else is a bug (InvalidTransition)."""

UP_STATES = frozenset({S.RUNNING, S.DAEMONIZED})
"""The service is doing its job."""
ALIVE_STATES = frozenset({S.STARTING, S.RUNNING, S.DAEMONIZED, S.STOPPING})
"""Some process of the service may exist."""
STOPPABLE_STATES = frozenset({S.STARTING, S.RUNNING, S.DAEMONIZED, S.BACKOFF})
"""`stop` has something to do."""
STARTABLE_STATES = frozenset({S.STOPPED, S.EXITED, S.COMPLETED, S.FATAL, S.WAITING})
"""`start` has something to do (a completed job runs again; a waiting one starts)."""
WAITABLE_STATES = frozenset({S.STOPPED, S.EXITED, S.COMPLETED, S.FATAL, S.BACKOFF})
"""A service in these may go `waiting` for its dependencies (no process runs)."""
ENDED_STATES = frozenset({S.STOPPED, S.EXITED, S.COMPLETED, S.FATAL, S.WAITING})
"""Nothing of the service should be running: `stop` has nothing to stop but leftovers."""
SIGNALLABLE_STATES = frozenset({S.STARTING, S.RUNNING, S.DAEMONIZED, S.STOPPING})
"""A signal can be delivered."""


class InvalidTransition(RuntimeError):
    """A state change not in TRANSITIONS was attempted."""
