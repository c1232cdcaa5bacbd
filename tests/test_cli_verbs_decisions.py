"""The pure decisions behind the client verbs' words (engine/outcomes.py, control/verbs.py,
cli.py), as tables; the verbs themselves run against real engines in
test_control_cli_verbs.py."""

from __future__ import annotations

import time
from typing import Any

import pytest
from support import FixedAPI

from tui_supervisor.cli import signal_order
from tui_supervisor.control import verbs
from tui_supervisor.engine import outcomes


@pytest.mark.parametrize(("asked", "state", "spawn_error", "want"), [
    (True, "starting", None, ("started", True, "")),
    (True, "running", None, ("started", True, "")),
    (True, "fatal", "command not found: x", ("error", False, "command not found: x")),
    (True, "backoff", "permission denied", ("error", False, "permission denied")),
    (True, "exited", None, ("error", False, "why")),  # (gone before it was asked)
    (False, "running", None, ("already running", True, "")),
    (False, "daemonized", None, ("already running", True, "")),
    (False, "stopping", None, ("error", False, "cannot start while stopping")),
])
def test_start_outcome(asked: bool, state: str, spawn_error: str | None,
                       want: tuple[str, bool, str]) -> None:
    o = outcomes.started("s", asked, state, "why" if want[2] == "why" else "", spawn_error)
    assert (o["outcome"], o["ok"], o["reason"] if not o["ok"] else "") == want


def test_restart_outcome_says_restarted() -> None:
    assert outcomes.started("s", True, "running", "", None, verb="restarted")[
        "outcome"] == "restarted"


@pytest.mark.parametrize(("before", "want"), [
    ("running", "stopped"), ("starting", "stopped"), ("backoff", "stopped"),
    ("stopping", "stopped"), ("daemonized", "stopped"), ("stopped", "already stopped"),
    ("exited", "already stopped"), ("fatal", "already stopped"),
])
def test_stop_outcome(before: str, want: str) -> None:
    assert outcomes.stopped("s", before, "stopped", "")["outcome"] == want


@pytest.mark.parametrize(("args", "want"), [
    (("web", "HUP"), ("web", "HUP")),
    (("HUP", "web"), ("web", "HUP")),  # supervisorctl's order
    (("SIGTERM", "web"), ("web", "SIGTERM")),
    (("9", "web"), ("web", "9")),
    (("web", "BOGUS"), ("web", "BOGUS")),  # neither: as given (then "bad signal")
    (("hup", "term"), ("hup", "term")),  # both: as given (a service called hup)
])
def test_signal_order(args: tuple[str, str], want: tuple[str, str]) -> None:
    assert signal_order(*args) == want


@pytest.mark.parametrize(("names", "known", "want"), [
    (None, ["a", "b"], ["a", "b"]),
    (["all"], ["a", "b"], ["a", "b"]),
    (["all"], ["a", "all"], ["all"]),  # a service called all is that service
    (["a", "all"], ["a", "b"], ["a", "all"]),  # (then: no such service: all)
    (["b"], ["a", "b"], ["b"]),
])
def test_resolve_all(names: list[str] | None, known: list[str], want: list[str]) -> None:
    assert verbs.resolve(names, known) == want


def _snap(*svcs: tuple[str, str, bool]) -> Any:
    return {"engine": {}, "services": [{"name": n, "state": st, "wanted": w}
                                       for n, st, w in svcs]}


@pytest.mark.parametrize(("svcs", "named", "want"), [
    ([("a", "running", True), ("b", "daemonized", True)], False, 0),
    ([("a", "running", True), ("b", "fatal", True)], False, 3),
    ([("a", "running", True), ("b", "backoff", True)], False, 3),
    ([("a", "running", True), ("b", "starting", True)], False, 3),
    ([("a", "running", True), ("b", "stopped", False)], False, 0),  # operator stopped it
    ([("b", "stopped", False)], True, 3),  # named: it is asked about
    ([("c", "completed", True)], False, 0),  # a run-once job that is done
])
def test_status_code(svcs: list[tuple[str, str, bool]], named: bool, want: int) -> None:
    assert verbs.status_code(_snap(*svcs), named) == want


def test_outcome_line() -> None:
    assert verbs.outcome_line({"name": "web", "outcome": "started", "ok": True}) == \
        "web: started"
    assert verbs.outcome_line({"name": "api", "outcome": "error", "ok": False,
                               "reason": "command not found: x", "state": "fatal"}) == \
        "api: ERROR (command not found: x)"


async def test_an_older_engine_reply_prints_as_before(capsys) -> None:
    """A reply without per-service outcomes (an engine from before them: the tests'
    fake answers so) prints the old summary."""
    assert await verbs.control(FixedAPI(), "start", ["web"]) == 0
    assert capsys.readouterr().out == "started: web\n"
    assert await verbs.control(FixedAPI(), "stop", None) == 0
    assert capsys.readouterr().out.startswith("stopped: web, worker, ")


def test_incident_lines() -> None:
    """A crash tells its uptime, pid and last lines; a failed spawn had none of them."""
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(0))
    crash = {"t": 0.0, "service": "w", "kind": "crash", "text": "exit code 3", "uptime": 1.5,
             "pid": 7, "restarts": 2, "lines": [{"stream": "stderr", "text": "oops"}]}
    assert verbs.format_incident(crash) == (
        f"{when}  w  crash: exit code 3 after 1s up (pid 7, restarts 2)\n"
        "    err | oops\n")
    spawn = {"t": 0.0, "service": "api", "kind": "failed start", "pid": 0, "uptime": 0.0,
             "text": "cannot spawn: command not found: x", "restarts": 0, "lines": []}
    assert verbs.format_incident(spawn) == (
        f"{when}  api  failed start: cannot spawn: command not found: x "
        "(restarts 0)\n    (nothing was spawned)\n")
