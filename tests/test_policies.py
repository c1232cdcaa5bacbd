"""Pure rules: restart policy, failure classification, backoff, crash loop, transitions."""

from __future__ import annotations

import pytest

from tui_supervisor.config.schema import BackoffSpec, CrashLoopSpec, RestartPolicy
from tui_supervisor.engine.policies import (
    ExitInfo,
    backoff_delay,
    crash_loop,
    is_completion,
    is_failure,
    should_restart,
)
from tui_supervisor.engine.states import TRANSITIONS, State

OK = ExitInfo(0, None)
BAD = ExitInfo(3, None)
KILLED = ExitInfo(None, 9)
CODES = frozenset({0, 2})


@pytest.mark.parametrize(("policy", "exit", "expect"), [
    (RestartPolicy.ALWAYS, OK, True), (RestartPolicy.ALWAYS, BAD, True),
    (RestartPolicy.ON_FAILURE, OK, False), (RestartPolicy.ON_FAILURE, ExitInfo(2, None), False),
    (RestartPolicy.ON_FAILURE, BAD, True), (RestartPolicy.ON_FAILURE, KILLED, True),
    (RestartPolicy.NEVER, BAD, False), (RestartPolicy.NEVER, KILLED, False),
])
def test_should_restart(policy: RestartPolicy, exit: ExitInfo, expect: bool) -> None:
    assert should_restart(policy, exit, CODES, requested=False) is expect
    assert should_restart(policy, exit, CODES, requested=True) is False


def test_failure_classification() -> None:
    assert is_failure(OK, CODES, was_starting=False, requested=False) is False  # job done
    assert is_failure(OK, CODES, was_starting=True, requested=False) is True  # too quick
    assert is_failure(BAD, CODES, was_starting=False, requested=False) is True
    assert is_failure(KILLED, CODES, was_starting=False, requested=True) is False


@pytest.mark.parametrize(("policy", "exit", "expect"), [
    (RestartPolicy.NEVER, OK, True), (RestartPolicy.ON_FAILURE, ExitInfo(2, None), True),
    (RestartPolicy.NEVER, BAD, False), (RestartPolicy.ON_FAILURE, KILLED, False),
    (RestartPolicy.ALWAYS, OK, False),  # meant to keep running: a clean exit is no end
])
def test_completion(policy: RestartPolicy, exit: ExitInfo, expect: bool) -> None:
    assert is_completion(policy, exit, CODES) is expect


def test_backoff_sequence_caps() -> None:
    spec = BackoffSpec(initial=0.1, factor=2, max=1.0, jitter=0.0, reset_after=30)
    assert [backoff_delay(spec, n) for n in range(1, 8)] == \
        [0.0, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0]


def test_backoff_jitter_bounds() -> None:
    spec = BackoffSpec(initial=1.0, factor=2, max=30.0, jitter=0.1, reset_after=30)
    assert backoff_delay(spec, 3, rand=0.0) == pytest.approx(1.8)
    assert backoff_delay(spec, 3, rand=0.5) == pytest.approx(2.0)
    assert backoff_delay(spec, 3, rand=0.999999) == pytest.approx(2.2, rel=1e-5)


def test_crash_loop_window() -> None:
    spec = CrashLoopSpec(max_failures=3, window=10)
    assert not crash_loop(spec, [1, 2], now=5)
    assert crash_loop(spec, [1, 2, 3], now=5)
    assert not crash_loop(spec, [1, 2, 13], now=12)  # 1 fell out of the window


def test_exit_describe() -> None:
    assert BAD.describe() == "exit code 3"
    assert KILLED.describe() == "killed by SIGKILL"


def test_transition_table_is_closed_and_fatal_needs_manual_start() -> None:
    assert set(TRANSITIONS) == set(State)
    assert all(t <= set(State) for t in TRANSITIONS.values())
    assert TRANSITIONS[State.FATAL] == {State.STARTING, State.WAITING}  # both: a start
    assert State.RUNNING not in TRANSITIONS[State.STOPPED]
    # waiting (depends_on): entered with no process, left by a start, a stop or a timeout
    assert TRANSITIONS[State.WAITING] == {State.STARTING, State.STOPPED, State.FATAL}
    assert {s for s, to in TRANSITIONS.items() if State.WAITING in to} == {
        State.STOPPED, State.EXITED, State.COMPLETED, State.FATAL, State.BACKOFF}
