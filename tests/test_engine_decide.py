"""What follows an exit, as tables: lifecycle.decide over event x state x policy. Pure:
no process is spawned and nothing sleeps."""

from __future__ import annotations

import signal
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tui_supervisor.config.schema import BackoffSpec, CrashLoopSpec, RestartPolicy, ServiceSpec
from tui_supervisor.engine.events import Exited, Topic
from tui_supervisor.engine.lifecycle import (
    Cleanup,
    DaemonGone,
    Effect,
    Emit,
    LifecycleEvent,
    MainExit,
    Now,
    OperatorSignal,
    Respawn,
    SetState,
    SpawnFailed,
    StayedUp,
    Tell,
    WatchDaemons,
    decide,
)
from tui_supervisor.engine.policies import ExitInfo
from tui_supervisor.engine.record import ServiceRecord, recent_times
from tui_supervisor.engine.states import TRANSITIONS, State

OK = ExitInfo(0, None)
BAD = ExitInfo(3, None)
KILLED = ExitInfo(None, signal.SIGKILL)
NOW = Now(mono=10_000.0, wall=1_700_000_000.0)
ALWAYS, ON_FAILURE, NEVER = RestartPolicy.ALWAYS, RestartPolicy.ON_FAILURE, RestartPolicy.NEVER


def make_spec(restart: RestartPolicy = ALWAYS, max_failures: int = 5, window: float = 60.0,
              give_up: bool = False, **kw: object) -> ServiceSpec:
    kw.setdefault("backoff", BackoffSpec(initial=1.0, factor=2.0, max=30.0, jitter=0.0,
                                         reset_after=30.0))
    return ServiceSpec(name="s", argv=("x",), cwd=Path("/"), restart=restart,
                       start_time=1.0, crash_loop=CrashLoopSpec(max_failures, window, give_up),
                       **kw)  # type: ignore[arg-type]


GIVE_UP = make_spec(give_up=True)


def up(state: State = State.RUNNING, **kw: object) -> ServiceRecord:
    """A record of a service whose main process (pid 100) is in `state`."""
    base = ServiceRecord(state=state, reason="started", pid=None, pgid=100,
                         started_mono=NOW.mono - 5, started_wall=NOW.wall - 5, spawns=1,
                         wanted=True)
    return replace(base, **kw)  # type: ignore[arg-type]


def main_exit(exit: ExitInfo, *, uptime: float = 5.0, requested: bool = False,
              leftovers: frozenset[int] = frozenset()) -> MainExit:
    return MainExit(100, exit, uptime, requested, leftovers)


def run(rec: ServiceRecord, ev: LifecycleEvent, spec: ServiceSpec | None = None,
        rand: float = 0.5) -> tuple[ServiceRecord, list[Effect]]:
    spec = spec or make_spec()
    before = rec.to_dict()
    out = decide(rec, ev, spec, NOW, rand)
    assert rec.to_dict() == before, "decide changed its input"
    assert decide(rec, ev, spec, NOW, rand) == out, "decide is not deterministic"
    # every state it moves through is a legal transition from where it was
    state = rec.state
    for e in out[1]:
        if isinstance(e, SetState):
            assert e.state is state or e.state in TRANSITIONS[state], (state, e.state)
            state = e.state
    return out


def exits(effects: list[Effect]) -> list[Exited]:
    return [e.event for e in effects if isinstance(e, Emit)]


def final(rec: ServiceRecord, effects: list[Effect]) -> State:
    moves = [e.state for e in effects if isinstance(e, SetState)]
    return moves[-1] if moves else rec.state


# -- main exit: failure x restart policy --------------------------------------------
FAILURE = [  # state it died in, how, operator signalled it -> a failure (unless DONE)
    (State.RUNNING, OK, False, False),  # a job that finished
    (State.RUNNING, BAD, False, True),
    (State.RUNNING, KILLED, False, True),
    (State.STARTING, OK, False, True),  # too quick: a failed start, under `always`
    (State.STARTING, BAD, False, True),
    (State.STARTING, KILLED, False, True),
    (State.RUNNING, OK, True, False),
    (State.RUNNING, BAD, True, False),  # the operator's signal: not a failure
    (State.RUNNING, KILLED, True, False),
    (State.STARTING, OK, True, False),
    (State.STARTING, BAD, True, False),
    (State.STARTING, KILLED, True, False),
]
RESTART = {  # policy, how -> respawned (when wanted)
    (ALWAYS, OK): True, (ALWAYS, BAD): True, (ALWAYS, KILLED): True,
    (ON_FAILURE, OK): False, (ON_FAILURE, BAD): True, (ON_FAILURE, KILLED): True,
    (NEVER, OK): False, (NEVER, BAD): False, (NEVER, KILLED): False,
}
DONE = {(ON_FAILURE, OK), (NEVER, OK)}
"""policy, how -> a job that is done (`completed`, whatever the state it ended in): a
clean exit under a policy that does not restart on success."""


@pytest.mark.parametrize("policy", [ALWAYS, ON_FAILURE, NEVER])
@pytest.mark.parametrize(("state", "exit", "signalled", "failure"), FAILURE)
def test_main_exit(policy: RestartPolicy, state: State, exit: ExitInfo, signalled: bool,
                   failure: bool) -> None:
    rec = up(state, operator_signal=signalled, consecutive=0)
    new, effects = run(rec, main_exit(exit), make_spec(policy))
    done = (policy, exit) in DONE
    failure = failure and not done
    (ev,) = exits(effects)
    assert (ev.pid, ev.code, ev.signal, ev.failure, ev.requested, ev.cause) == \
        (100, exit.code, exit.signal, failure, False, "exit")
    assert new.failures == int(failure) and new.consecutive == int(failure)
    assert new.last_exit is not None and new.last_exit["text"] == exit.describe()
    assert new.pid is None
    assert new.wanted is not done, "a job that is done is no longer wanted"
    if done:
        assert effects[1:] == [SetState(State.COMPLETED, exit.describe())]
    elif RESTART[policy, exit]:
        assert final(rec, effects) is State.BACKOFF
        assert effects[-1] == Respawn(0.0, clear=False)  # a first failure: at once
        assert new.backoff_until == NOW.mono
    else:
        assert final(rec, effects) is State.EXITED and effects[-1] == \
            SetState(State.EXITED, exit.describe())
    assert isinstance(effects[0], Emit), "Exited first: seen in the state it died in"


@pytest.mark.parametrize("exit", [OK, BAD, KILLED])
def test_not_wanted_is_never_respawned(exit: ExitInfo) -> None:
    _, effects = run(up(wanted=False), main_exit(exit))
    assert final(up(), effects) is State.EXITED
    assert not any(isinstance(e, Respawn) for e in effects)


@pytest.mark.parametrize("exit", [OK, BAD, KILLED])
@pytest.mark.parametrize("state", [State.STARTING, State.RUNNING, State.STOPPING])
def test_requested_exit_is_reported_and_left_to_the_stop(state: State, exit: ExitInfo) -> None:
    rec = up(state, consecutive=3, failures=3)
    new, effects = run(rec, main_exit(exit, requested=True))
    (ev,) = exits(effects)
    assert ev.requested and not ev.failure
    assert effects == [Emit(ev)]  # no state move: the stop task finishes the job
    assert (new.failures, new.consecutive, new.state) == (3, 3, state)
    assert new.pid is None and new.last_exit is not None


# -- backoff: the consecutive count ----------------------------------------------------
@pytest.mark.parametrize(("before", "delay"), [
    (0, 0.0), (1, 1.0), (2, 2.0), (3, 4.0), (5, 16.0), (6, 30.0), (1100, 30.0),
    (10**7, 30.0),  # past ~1,025 the float power used to raise OverflowError
])
def test_backoff_grows_with_consecutive_failures(before: int, delay: float) -> None:
    spec = make_spec(max_failures=10**9)
    rec = up(consecutive=before, failures=before)
    new, effects = run(rec, main_exit(BAD, uptime=1.0), spec)
    assert new.consecutive == before + 1 and new.failures == before + 1
    assert effects[-2:] == [SetState(State.BACKOFF, f"exit code 3; restarting in {delay:.2f}s"),
                            Respawn(delay, clear=False)]
    assert new.backoff_until == NOW.mono + delay


def test_jitter_comes_from_rand() -> None:
    spec = make_spec(backoff=BackoffSpec(initial=1.0, factor=2.0, max=30.0, jitter=0.5))
    rec = up(consecutive=2)
    assert run(rec, main_exit(BAD), spec, rand=0.0)[1][-1] == Respawn(1.0, clear=False)
    assert run(rec, main_exit(BAD), spec, rand=0.5)[1][-1] == Respawn(2.0, clear=False)


@pytest.mark.parametrize(("state", "uptime", "after"), [
    (State.RUNNING, 31.0, 1),  # up start_time + reset_after: the count starts again
    (State.RUNNING, 30.9, 5),
    (State.STARTING, 100.0, 5),  # never got to running: no reset
])
def test_a_long_run_resets_the_count(state: State, uptime: float, after: int) -> None:
    new, _ = run(up(state, consecutive=4), main_exit(KILLED, uptime=uptime))
    assert new.consecutive == after


# -- crash loop -----------------------------------------------------------------------
def loop_data(give_up: bool, max_failures: int = 5) -> dict[str, object]:
    return {"crash_looping": not give_up, "give_up": give_up, "max_failures": max_failures,
            "window": 60.0, "retry_every": None if give_up else 30.0}


@pytest.mark.parametrize("max_failures", [1, 2, 5, 1000, 1001, 5000])
def test_crash_loop_is_marked_and_retried_at_the_cap(max_failures: int) -> None:
    spec = make_spec(max_failures=max_failures, window=60.0)
    times = tuple(NOW.mono - 50 + i * 1e-3 for i in range(max_failures - 1))
    rec = up(failure_times=times, consecutive=max_failures - 1)
    new, effects = run(rec, main_exit(BAD), spec)
    why = f"crash loop: {max_failures} failures in 60s (last: exit code 3)"
    assert effects[1:] == [
        SetState(State.BACKOFF, f"{why}; restarting in 30.00s"),
        Tell("error", f"{why}; retrying every 30s until it stays up 31s", Topic.CRASH_LOOP,
             loop_data(False, max_failures)),
        Respawn(30.0, clear=False)]  # the cap, whatever the count: no hammering
    assert exits(effects)[0].failure and new.failures == 1 and new.crash_looping
    assert len(new.failure_times) == max_failures
    assert new.backoff_until == NOW.mono + 30.0


@pytest.mark.parametrize("max_failures", [1, 2, 5, 1000, 1001, 5000])
def test_crash_loop_gives_up_when_told_to(max_failures: int) -> None:
    spec = make_spec(max_failures=max_failures, window=60.0, give_up=True)
    times = tuple(NOW.mono - 50 + i * 1e-3 for i in range(max_failures - 1))
    rec = up(failure_times=times, consecutive=max_failures - 1)
    new, effects = run(rec, main_exit(BAD), spec)
    why = f"crash loop: {max_failures} failures in 60s (last: exit code 3)"
    assert effects[1:] == [SetState(State.FATAL, why),
                           Tell("error", f"crash loop, giving up: {why}",
                                Topic.CRASH_LOOP, loop_data(True, max_failures))]
    assert exits(effects)[0].failure and new.failures == 1 and not new.crash_looping
    assert len(new.failure_times) == max_failures


LOOPING = up(crash_looping=True, consecutive=7, failure_times=(NOW.mono - 30,))


@pytest.mark.parametrize(("policy", "exit", "uptime", "state", "reason", "delay", "looping"), [
    # another failure: at the cap again, marked (not said again in a notice)
    (ALWAYS, BAD, 5.0, State.BACKOFF, "exit code 3", 30.0, True),
    (ALWAYS, KILLED, 5.0, State.BACKOFF, "killed by SIGKILL", 30.0, True),
    (ON_FAILURE, BAD, 5.0, State.BACKOFF, "exit code 3", 30.0, True),
    # a job that finished is no failure: respawned at once, still marked; or done
    (ALWAYS, OK, 5.0, State.BACKOFF, "exit code 0", 0.0, True),
    (ON_FAILURE, OK, 5.0, State.COMPLETED, "exit code 0", None, False),
    (NEVER, BAD, 5.0, State.EXITED, "exit code 3", None, True),
    # up start_time + reset_after before it died: recovered, a first failure again
    (ALWAYS, BAD, 31.0, State.BACKOFF, "exit code 3", 0.0, False),
])
def test_a_crash_looping_service(policy: RestartPolicy, exit: ExitInfo, uptime: float,
                                 state: State, reason: str, delay: float | None,
                                 looping: bool) -> None:
    new, effects = run(LOOPING, main_exit(exit, uptime=uptime), make_spec(policy))
    assert not any(isinstance(e, Tell) for e in effects)
    assert new.crash_looping is looping
    if delay is None:
        assert effects[1:] == [SetState(state, reason)]
    else:
        assert effects[1:] == [SetState(state, f"{reason}; restarting in {delay:.2f}s"),
                               Respawn(delay, clear=False)]


def test_a_crash_looping_service_is_retried_at_the_cap_with_jitter() -> None:
    spec = make_spec(backoff=BackoffSpec(initial=1.0, factor=2.0, max=30.0, jitter=0.1))
    assert run(LOOPING, main_exit(BAD), spec, rand=0.0)[1][-1] == Respawn(27.0, clear=False)
    assert run(LOOPING, main_exit(BAD), spec, rand=0.5)[1][-1] == Respawn(30.0, clear=False)


@pytest.mark.parametrize(("state", "up_for", "rec_kw", "after", "told"), [
    (State.RUNNING, 31.0, {"crash_looping": True, "consecutive": 9}, (0, False), True),
    (State.RUNNING, 31.0, {"consecutive": 3}, (0, False), False),
    (State.RUNNING, 30.5, {"crash_looping": True, "consecutive": 9}, (9, True), False),
    (State.STARTING, 99.0, {"crash_looping": True, "consecutive": 9}, (9, True), False),
    (State.BACKOFF, 99.0, {"crash_looping": True, "consecutive": 9}, (9, True), False),
    (State.RUNNING, 99.0, {}, (0, False), False),
])
def test_staying_up_forgets_the_failures(state: State, up_for: float,
                                         rec_kw: dict[str, object],
                                         after: tuple[int, bool], told: bool) -> None:
    rec = up(state, started_mono=NOW.mono - up_for, failures=9, **rec_kw)
    new, effects = run(rec, StayedUp())
    assert (new.consecutive, new.crash_looping) == after
    assert new.failures == 9 and new.state is state  # a count of history, kept
    assert effects == ([Tell("info", f"recovered from its crash loop: up {up_for:.0f}s",
                             Topic.CRASH_LOOP, {"crash_looping": False})] if told else [])


def test_crash_loop_counts_only_the_window_and_keeps_only_what_it_needs() -> None:
    spec = make_spec(max_failures=3, window=60.0)
    old = (NOW.mono - 61, NOW.mono - 60.5, NOW.mono - 10)  # two fell out of the window
    new, _ = run(up(failure_times=old), main_exit(BAD), spec)
    assert not new.crash_looping
    assert new.failure_times == (NOW.mono - 10, NOW.mono)
    many = tuple(NOW.mono - 1 - i for i in range(50))  # an older record kept up to 1000
    new, _ = run(up(failure_times=many), main_exit(BAD), spec)
    assert new.crash_looping and len(new.failure_times) == 3


@pytest.mark.parametrize(("policy", "exit", "state"), [
    (NEVER, BAD, State.EXITED),  # it would not be respawned anyway: it just exited
    (ON_FAILURE, OK, State.COMPLETED),  # a clean exit of a job is no failure...
    (ALWAYS, OK, State.BACKOFF),  # ... nor a step towards a crash loop
])
def test_crash_loop_needs_a_failure_that_would_be_respawned(
        policy: RestartPolicy, exit: ExitInfo, state: State) -> None:
    rec = up(failure_times=(NOW.mono - 1,) * 4)
    _, effects = run(rec, main_exit(exit), make_spec(policy, max_failures=5))
    assert final(rec, effects) is state


# -- a run-once job: completed -----------------------------------------------------------
@pytest.mark.parametrize("policy", [NEVER, ON_FAILURE])
@pytest.mark.parametrize(("state", "uptime"), [(State.STARTING, 0.3), (State.RUNNING, 5.0)])
def test_a_clean_exit_of_a_job_is_completed_however_fast(
        policy: RestartPolicy, state: State, uptime: float) -> None:
    """`sh -c 'echo done'` in 0.3 s: done, not a failed start; no longer wanted (so out
    of availability and downtime), its crash-loop history over."""
    rec = up(state, consecutive=2, crash_looping=True, failure_times=(NOW.mono - 1,) * 2)
    new, effects = run(rec, main_exit(OK, uptime=uptime), make_spec(policy))
    (ev,) = exits(effects)
    assert not ev.failure and new.failures == 0
    assert effects[1:] == [SetState(State.COMPLETED, "exit code 0")]  # no Tell, no Respawn
    assert (new.wanted, new.consecutive, new.crash_looping) == (False, 0, False)
    assert State.STARTING in TRANSITIONS[State.COMPLETED]  # `start` runs it again


@pytest.mark.parametrize(("codes", "exit", "state", "failure"), [
    (frozenset({0, 3}), BAD, State.COMPLETED, False),  # exit 3 is a success here
    (frozenset({3}), OK, State.EXITED, True),  # exit 0 is not
    (frozenset({0}), KILLED, State.EXITED, True),  # a signal death never is
])
def test_success_codes_say_what_completes(codes: frozenset[int], exit: ExitInfo,
                                          state: State, failure: bool) -> None:
    rec = up(State.STARTING)
    new, effects = run(rec, main_exit(exit, uptime=0.3), make_spec(NEVER, success_codes=codes))
    assert final(rec, effects) is state and exits(effects)[0].failure is failure
    assert new.wanted is not (state is State.COMPLETED)


def test_under_always_a_quick_clean_exit_is_a_failed_start_with_a_hint() -> None:
    """`restart: always` says the service keeps running: exiting 0 at once is a failed
    start (a loop of them a crash loop), and the first one says how to write a job."""
    new, effects = run(up(State.STARTING), main_exit(OK, uptime=0.3))
    assert exits(effects)[0].failure and new.failures == 1 and new.wanted
    (tell,) = [e for e in effects if isinstance(e, Tell)]
    assert tell.level == "warning" and "restart: never or on-failure" in tell.message
    assert final(up(), effects) is State.BACKOFF
    _, again = run(new, main_exit(OK, uptime=0.3))  # said once per run of failures
    assert not any(isinstance(e, Tell) for e in again)
    _, later = run(up(State.RUNNING), main_exit(OK))  # up start_time: a clean restart
    assert not exits(later)[0].failure and not any(isinstance(e, Tell) for e in later)


# -- leftovers and daemonizing ----------------------------------------------------------
def test_clean_exit_leaving_processes_is_daemonized() -> None:
    rec = up()
    new, effects = run(rec, main_exit(OK, leftovers=frozenset({7, 8})))
    assert not exits(effects)[0].failure and new.failures == 0
    assert effects[1:] == [WatchDaemons(frozenset({7, 8})), SetState(
        State.DAEMONIZED, "main process exit code 0; still running: pid 7, 8")]
    assert new.daemon_pids == {7, 8}


def test_many_daemon_pids_are_shortened() -> None:
    _, effects = run(up(), main_exit(OK, leftovers=frozenset(range(10, 17))))
    assert effects[-1] == SetState(
        State.DAEMONIZED, "main process exit code 0; still running: pid 10, 11, 12, 13, 14, ...")


@pytest.mark.parametrize(("policy", "tail"), [
    (ALWAYS, [SetState(State.BACKOFF, "exit code 3; restarting in 0.00s"),
              Respawn(0.0, clear=True)]),  # the leftovers go before the new copy
    (NEVER, [SetState(State.EXITED, "exit code 3"), Cleanup()]),
])
def test_failing_exit_with_leftovers_clears_them(policy: RestartPolicy,
                                                 tail: list[Effect]) -> None:
    _, effects = run(up(), main_exit(BAD, leftovers=frozenset({7})), make_spec(policy))
    assert exits(effects)[0].failure and effects[1:] == tail


def test_crash_loop_with_leftovers_clears_them() -> None:
    rec = up(failure_times=(NOW.mono,) * 4)
    _, effects = run(rec, main_exit(KILLED, leftovers=frozenset({7})), GIVE_UP)
    assert final(rec, effects) is State.FATAL and effects[-1] == Cleanup()
    _, effects = run(rec, main_exit(KILLED, leftovers=frozenset({7})))
    assert final(rec, effects) is State.BACKOFF and effects[-1] == Respawn(30.0, clear=True)


# -- daemon death -----------------------------------------------------------------------
DAEMONIZED = up(State.DAEMONIZED, reason="main process exit code 0; still running: pid 7")


@pytest.mark.parametrize("policy", [ALWAYS, ON_FAILURE, NEVER])
@pytest.mark.parametrize(("exit", "signalled", "failure"), [
    (KILLED, False, True), (BAD, False, True), (OK, False, False),
    (KILLED, True, False), (BAD, True, False),
])
def test_daemon_death(policy: RestartPolicy, exit: ExitInfo, signalled: bool,
                      failure: bool) -> None:
    rec = replace(DAEMONIZED, operator_signal=signalled)
    new, effects = run(rec, DaemonGone(7, exit, frozenset()), make_spec(policy))
    (ev,) = exits(effects)  # the exit the metrics never saw before
    assert (ev.pid, ev.cause, ev.failure, ev.requested) == (7, "daemon", failure, False)
    assert ev.uptime == pytest.approx(5.0)  # since the service's spawn
    assert new.failures == int(failure) and new.daemon_pids == frozenset()
    assert new.last_exit is not None and new.last_exit["uptime"] is None
    reason = f"daemon {exit.describe()}"
    if (policy, exit) in DONE:  # the daemon finished its work
        assert effects[1:] == [SetState(State.COMPLETED, reason)] and not new.wanted
    elif RESTART[policy, exit]:
        assert effects[1].state is State.BACKOFF and effects[1].reason.startswith(reason)
    else:
        assert effects[1:] == [SetState(State.EXITED, reason)]


@pytest.mark.parametrize("exit", [OK, ExitInfo(None, None)], ids=["clean", "unknown"])
def test_daemon_handing_over_to_processes_left_watches_those(exit: ExitInfo) -> None:
    new, effects = run(DAEMONIZED, DaemonGone(7, exit, frozenset({9})))
    assert effects == [WatchDaemons(frozenset({9}))]  # not the end: no Exited
    assert new.daemon_pids == {9} and new.failures == 0


@pytest.mark.parametrize("exit", [KILLED, BAD], ids=["killed", "failed"])
def test_daemon_crash_leaving_workers_is_a_failure_cleared_before_respawn(
        exit: ExitInfo) -> None:
    """nginx's master SIGKILLed, its workers still holding the port."""
    new, effects = run(DAEMONIZED, DaemonGone(7, exit, frozenset({9})))
    (ev,) = exits(effects)
    assert (ev.pid, ev.cause, ev.failure) == (7, "daemon", True)
    assert new.failures == 1 and new.daemon_pids == frozenset()
    assert effects[1].state is State.BACKOFF
    assert isinstance(effects[-1], Respawn) and effects[-1].clear


@pytest.mark.parametrize("state", [State.STOPPING, State.STOPPED, State.RUNNING])
def test_daemon_death_outside_daemonized_is_left_to_the_stop(state: State) -> None:
    rec = replace(DAEMONIZED, state=state)
    assert run(rec, DaemonGone(7, KILLED, frozenset())) == (rec, [])


# -- spawn errors -----------------------------------------------------------------------
STARTING = up(State.STARTING, pid=None)


def test_spawn_error_is_a_failed_start_and_retried() -> None:
    new, effects = run(STARTING, SpawnFailed("cannot start x: Resource busy", False))
    assert effects[0] == Tell("error", "cannot spawn: cannot start x: Resource busy",
                              Topic.SPAWN_FAILED)
    (ev,) = exits(effects)
    assert (ev.pid, ev.code, ev.signal, ev.cause, ev.failure) == (0, None, None, "spawn", True)
    assert ev.detail == "cannot spawn: cannot start x: Resource busy"
    assert new.failures == 1 and new.recent_failures[-1]["starting"] is True
    assert final(STARTING, effects) is State.BACKOFF and effects[-1] == Respawn(0.0, False)


def test_permanent_spawn_error_is_fatal_and_counted() -> None:
    new, effects = run(STARTING, SpawnFailed("executable not found: x", True))
    (ev,) = exits(effects)
    assert ev.failure and ev.cause == "spawn" and new.failures == 1
    assert effects[-1] == SetState(State.FATAL, "executable not found: x")


def test_repeated_spawn_errors_are_a_crash_loop() -> None:
    rec = replace(STARTING, failure_times=(NOW.mono - 1,) * 4)
    new, effects = run(rec, SpawnFailed("cannot start x: Resource busy", False))
    assert final(rec, effects) is State.BACKOFF and new.crash_looping
    assert effects[-1] == Respawn(30.0, clear=False)
    _, effects = run(rec, SpawnFailed("cannot start x: Resource busy", False), GIVE_UP)
    assert final(rec, effects) is State.FATAL


def test_spawn_error_after_an_operator_signal_still_counts() -> None:
    rec = replace(STARTING, operator_signal=True)  # left over from the previous process
    new, effects = run(rec, SpawnFailed("boom", False))
    assert exits(effects)[0].failure and new.failures == 1


# -- operator signal --------------------------------------------------------------------
@pytest.mark.parametrize("state", [State.STARTING, State.RUNNING, State.DAEMONIZED])
def test_operator_signal_is_only_marked(state: State) -> None:
    new, effects = run(up(state), OperatorSignal())
    assert effects == [] and new == replace(up(state), operator_signal=True)


# -- the record -------------------------------------------------------------------------
def test_record_round_trips_through_its_handoff_form() -> None:
    rec, _ = run(up(consecutive=2), main_exit(KILLED, leftovers=frozenset({3})))
    rec = replace(rec, daemon_pids=frozenset({5, 4}))
    assert ServiceRecord.from_dict(rec.to_dict()) == rec


def test_record_of_the_previous_version_is_adopted() -> None:
    old = {  # a detach record as the previous version wrote it (its record part)
        "name": "s", "state": "backoff", "reason": "exit code 1; restarting in 0.40s",
        "state_since": 1.0, "pid": None, "pgid": 42, "started_mono": 5.0,
        "started_wall": 2.0, "spawns": 7, "restarts": 6, "failures": 1500,
        "consecutive": 1100, "failure_times": [NOW.mono - 50 + i / 100 for i in range(1000)],
        "recent_failures": [{"t": 1.0, "reason": "exit code 1", "starting": False}] * 20,
        "last_exit": {"pid": 9, "code": 1, "signal": None, "t": 1.0, "uptime": 0.1,
                      "text": "exit code 1"},
        "wanted": True, "backoff_until": 6.0, "start_left": None, "daemon_pids": [],
        "cleanup": False, "operator_signal": False, "pipes": [],
        "ring": {"next_offset": 0, "lines": []}, "argv": ["x"], "cwd": "/",
        "log_path": "/tmp/s.log", "log_max_bytes": 1, "log_backups": 0,
    }
    rec = ServiceRecord.from_dict(old)
    assert (rec.state, rec.failures, rec.consecutive, len(rec.failure_times)) == \
        (State.BACKOFF, 1500, 1100, 1000)
    assert {k: v for k, v in old.items() if k in rec.to_dict()} == \
        {k: v for k, v in rec.to_dict().items()
         if k not in ("crash_looping", "health", "ready_since", "restart_times")}
    # fields that version lacked: their defaults
    assert not rec.crash_looping and rec.health is None and rec.ready_since is None
    # and the next failure of such a service is decided without trouble
    new, effects = run(replace(rec, state=State.RUNNING), main_exit(BAD), make_spec())
    assert final(rec, effects) is State.BACKOFF and len(new.failure_times) <= 5
    assert new.crash_looping


# -- never stranded: a property over any run of exits ----------------------------------
@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=1, max_value=20),
       st.lists(st.tuples(st.sampled_from([OK, BAD, KILLED]),
                          st.floats(min_value=0.0, max_value=100.0),
                          st.floats(min_value=0.0, max_value=1.0, exclude_max=True)),
                min_size=1, max_size=60))
def test_by_default_a_wanted_service_is_always_retried_within_the_cap(
        max_failures: int, run_of: list[tuple[ExitInfo, float, float]]) -> None:
    spec = make_spec(max_failures=max_failures,
                     backoff=BackoffSpec(initial=0.1, factor=2.0, max=30.0, jitter=0.1,
                                         reset_after=30.0))
    rec, mono = up(), NOW.mono
    for exit, uptime, rand in run_of:
        mono += uptime
        now = Now(mono, NOW.wall + mono)
        state = State.RUNNING if uptime >= spec.start_time else State.STARTING
        rec = replace(rec, state=state, pid=100, started_mono=mono - uptime)
        rec, effects = decide(rec, MainExit(100, exit, uptime, False, frozenset()), spec,
                              now, rand)
        assert final(rec, effects) is State.BACKOFF, effects  # never fatal, never exited
        (respawn,) = [e for e in effects if isinstance(e, Respawn)]
        assert 0.0 <= respawn.delay <= 33.0
        if rec.crash_looping and exits(effects)[0].failure:
            assert respawn.delay >= 27.0  # once marked: the cap, not a hammering
        mono += respawn.delay



# -- an exit the engine caused (a resource limit) ---------------------------------------
LIMIT = "memory limit 64 MB exceeded: 130 MB"


@pytest.mark.parametrize("policy", [ALWAYS, ON_FAILURE, NEVER])
@pytest.mark.parametrize("exit", [OK, BAD, ExitInfo(None, signal.SIGTERM)],
                         ids=["clean", "failed", "termed"])
def test_exit_ended_by_the_engine_is_a_failure_with_its_reason(
        policy: RestartPolicy, exit: ExitInfo) -> None:
    ev = MainExit(100, exit, 5.0, False, frozenset(), None, LIMIT)
    new, effects = run(up(), ev, make_spec(policy))
    (ex,) = exits(effects)
    assert ex.failure and ex.detail == LIMIT and new.failures == 1
    state = final(up(), effects)
    assert state is (State.EXITED if policy is NEVER else State.BACKOFF)
    assert effects[1].reason.startswith(LIMIT)


def test_daemon_ended_by_the_engine_is_not_handed_over() -> None:
    new, effects = run(DAEMONIZED, DaemonGone(7, OK, frozenset({9}), LIMIT))
    (ex,) = exits(effects)
    assert ex.failure and ex.cause == "daemon" and new.daemon_pids == frozenset()
    assert isinstance(effects[-1], Respawn) and effects[-1].clear


# -- restarts in the last hour ----------------------------------------------------------
@pytest.mark.parametrize(("times", "now", "keep", "expected"), [
    ((), 5000.0, 1000, ()),
    ((1000.0, 1500.0, 5000.0), 5000.0, 1000, (1500.0, 5000.0)),  # 1000.0: 4000 s ago
    ((1400.0,), 5000.0, 1000, ()),  # exactly an hour ago: out
    ((1401.0,), 5000.0, 1000, (1401.0,)),
    ((4000.0, 4001.0, 4002.0), 5000.0, 2, (4001.0, 4002.0)),  # bounded: the newest kept
])
def test_recent_times(times: tuple[float, ...], now: float, keep: int,
                      expected: tuple[float, ...]) -> None:
    assert recent_times(times, now, keep=keep) == expected


def test_restarts_1h_ages_out_without_new_restarts() -> None:
    rec = replace(ServiceRecord(), restarts=3, restart_times=(100.0, 3000.0, 3500.0))
    assert rec.view(3600.0)["restarts_1h"] == 3
    assert rec.view(6601.0)["restarts_1h"] == 1  # 100 and 3000 are over an hour old
    assert rec.view(7200.0)["restarts"] == 3  # the lifetime count stays
