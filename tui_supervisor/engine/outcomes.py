"""What a start, stop or restart did to each service, as the operator is told it
(`ServiceOutcome`): decided from the service's state once the request has had its
immediate effect (a spawn is synchronous: it has run or failed by then). Pure."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tui_supervisor.engine.states import STOPPABLE_STATES, State

if TYPE_CHECKING:
    from tui_supervisor.engine.views import ServiceOutcome

SPAWNED = frozenset({State.STARTING, State.RUNNING, State.DAEMONIZED})
"""A process was spawned (and has not failed yet)."""


def _out(name: str, outcome: str, ok: bool, state: str, reason: str) -> ServiceOutcome:
    return {"name": name, "outcome": outcome, "ok": ok,  # type: ignore[typeddict-item]
            "state": state, "reason": reason}


def started(name: str, asked: bool, state: str, reason: str, spawn_error: str | None,
            *, verb: str = "started") -> ServiceOutcome:
    """`asked`: the service took the start (it was not up); `spawn_error`: why this
    start's spawn failed, if it did. `verb`: "restarted" for a restart."""
    if not asked:
        if state in SPAWNED:
            return _out(name, "already running", True, state, reason)
        return _out(name, "error", False, state, f"cannot start while {state}")
    if spawn_error is not None:
        return _out(name, "error", False, state, spawn_error)
    if state == State.WAITING:  # it starts once its dependencies hold
        return _out(name, "waiting", True, state, reason)
    if state in SPAWNED:
        return _out(name, verb, True, state, reason)
    return _out(name, "error", False, state, reason or state)


def stopped(name: str, before: str, state: str, reason: str) -> ServiceOutcome:
    """`before`: its state when the stop was asked."""
    if before in STOPPABLE_STATES or before == State.STOPPING:
        return _out(name, "stopped", True, state, reason)
    return _out(name, "already stopped", True, state, reason)
