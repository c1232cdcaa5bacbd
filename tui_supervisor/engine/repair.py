"""Fault containment and the invariant check of one service (`Service.repair`).

Every handler the event loop calls for a service (exit callbacks, timers, the backoff,
stop and cleanup tasks, pipe readers) is wrapped by `contained`: an exception is logged
with its traceback (logger `tui_supervisor.engine`: the engine's stderr, engine.log when
detached), said once as a notice (topic internal, per place and exception type), and the
service is then checked: its record compared with the facts — is its main process alive?
what did it exit with? is anything watching it, or scheduled for it? — and repaired,
never blindly given up on. The engine's sweep (`Supervisor`) runs the same check every
few seconds, so a state that drifted from the process table in any other way is
repaired too.

Cheap by design: a check looks only at the pids the engine knows (main pid, daemon pids,
processes seen before, the process group) with waitid(WNOWAIT) / kill(pid, 0); it lists
a group's members only when that group is alive and should not be.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import os
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar, cast

from tui_supervisor.config.schema import RestartPolicy
from tui_supervisor.engine import proc
from tui_supervisor.engine.events import Topic
from tui_supervisor.engine.lifecycle import DaemonGone, LifecycleEvent, MainExit
from tui_supervisor.engine.policies import ExitInfo
from tui_supervisor.engine.states import ENDED_STATES, TRANSITIONS, State

if TYPE_CHECKING:
    from tui_supervisor.engine.service import Service

log = logging.getLogger("tui_supervisor.engine")

FAULT_RETRY = 1.0
"""Seconds before a timer or task that failed is tried again (a fault that repeats must
not spin the loop)."""
SWEEP_INTERVAL = 5.0
"""Seconds between two checks of every service by the engine's sweep ("every few
seconds": at 2 s it cost an idle engine 0.03 % of a core for 100 services)."""
STOP_ROUNDS = 3
"""Stops a `stop()` call waits for: the one it started and its retries after faults (the
sweep goes on retrying after that, in the background)."""

F = TypeVar("F", bound=Callable[..., Any])


def contained(where: str) -> Callable[[F], F]:
    """Wrap a Service handler (sync, or a coroutine run as a task): an exception goes to
    `Repair.contain`, not to the event loop's default handler."""
    def wrap(fn: F) -> F:
        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def run_async(self: Any, *args: Any) -> Any:
                try:
                    return await fn(self, *args)
                except Exception as e:
                    self.repair.contain(where, e, args)
                    return None
            return cast(F, run_async)

        @functools.wraps(fn)
        def run(self: Any, *args: Any) -> Any:
            try:
                return fn(self, *args)
            except Exception as e:
                self.repair.contain(where, e, args)
                return None
        return cast(F, run)
    return wrap


def exited(pid: int) -> bool:
    """The process has ended (a zombie counts): waitid(WNOWAIT) leaves the status to the
    watcher; kill(pid, 0) for a process that is not our child."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        pass
    except OSError:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    st = proc.stat(pid)
    return st is None or st.state == "Z"


def pending(task: asyncio.Task[None] | None) -> bool:
    """A task still to run (not the one calling: a task that failed is over)."""
    if task is None or task.done():
        return False
    try:
        return task is not asyncio.current_task()
    except RuntimeError:  # no running loop
        return True


class Repair:
    """The containment and check of one service (see the module docstring)."""

    def __init__(self, svc: Service) -> None:
        self.svc = svc
        self.internal_errors = 0
        """Exceptions contained (each logged; the first of each kind said)."""
        self._faults: set[str] = set()
        """"where: ExceptionType" of the faults said."""
        self._repairing = False
        self._suspects: set[int] = set()
        """Main pids the sweep found dead once (their exit callback may have been due)."""
        self._said: set[str] = set()
        """Repairs the sweep said and still finds needed."""

    # -- containment ------------------------------------------------------------------
    def contain(self, where: str, e: Exception, args: tuple[Any, ...] = (),
                event: LifecycleEvent | None = None) -> None:
        """After an exception in a handler: log, say once, check against the facts. An
        exception while checking falls back to a rule that needs no decision."""
        svc = self.svc
        self.internal_errors += 1
        key = f"{where}: {type(e).__name__}"
        first = key not in self._faults
        self._faults.add(key)
        if first:
            log.error("%s: exception in %s", svc.name, where, exc_info=e)
        else:
            log.debug("%s: exception in %s again: %r", svc.name, where, e)
        if self._repairing:
            self._fallback(f"{type(e).__name__}: {e}")
            return
        self._repairing = True
        repairs: list[str] = []
        try:
            if where == "output reader" and args:
                self._rest_pipe(args[0])
            repairs = self.check(exit_of=_exit_of(where, args, event), after_fault=True)
        except Exception as e2:
            log.error("%s: exception while checking it", svc.name, exc_info=e2)
            self._fallback(f"{type(e2).__name__}: {e2}")
        finally:
            self._repairing = False
        if first:
            then = "; ".join(repairs) or "its state matches its processes"
            svc._notice("error", f"internal error in {where}: {type(e).__name__}: {e} "
                        f"(traceback in the engine's log); checked: {then}",
                        topic=Topic.INTERNAL,
                        data={"where": where, "error": f"{type(e).__name__}: {e}",
                              "repairs": repairs})

    def _rest_pipe(self, fd: int) -> None:
        """A pipe whose reading failed is left alone FAULT_RETRY seconds (a failure on
        every read must not spin the loop), then read again."""
        svc = self.svc
        if fd in svc.pipes and fd not in svc._paused:
            svc.ctx.loop.remove_reader(fd)
            svc._paused[fd] = svc.ctx.loop.call_later(FAULT_RETRY, svc._resume_pipe, fd)

    def _fallback(self, why: str) -> None:
        """The decision itself keeps failing for this service: without it, a wanted
        service whose policy restarts waits `backoff.max` (at least FAULT_RETRY) and is
        respawned; any other ends `exited`; `fatal` only if neither move is allowed."""
        svc = self.svc
        try:
            s = svc.state
            if svc.pid is not None or s in (State.STOPPING, State.STOPPED) or \
                    (s is State.BACKOFF and pending(svc._task)):
                return  # a process to watch, a stop under way, a respawn scheduled
            if svc.wanted and svc.spec.restart is not RestartPolicy.NEVER and \
                    (s is State.BACKOFF or State.BACKOFF in TRANSITIONS[s]):
                delay = max(svc.spec.backoff.max, FAULT_RETRY)
                svc.backoff_until = time.monotonic() + delay
                svc._set_state(State.BACKOFF, f"internal error ({why}); "
                               f"restarting in {delay:.2f}s")
                svc._task = asyncio.ensure_future(svc._respawn_later(True))
            elif s is not State.EXITED and State.EXITED in TRANSITIONS[s]:
                svc._set_state(State.EXITED, f"internal error ({why})")
                svc._task = asyncio.ensure_future(svc._cleanup())
        except Exception as e:
            log.error("%s: exception in the fallback", svc.name, exc_info=e)
            svc._give_up(e)

    # -- the check ----------------------------------------------------------------------
    def check(self, *, exit_of: tuple[int, ExitInfo] | None = None,
              after_fault: bool = False, sweep: bool = False) -> list[str]:
        """Compare the record with the processes and repair what does not match; returns
        the repairs in words. `exit_of`: an exit the failed handler was given (its status
        was reaped: this is the only place it is known). With `sweep`, a main process
        found dead while its exit callback may still be due is left to it once."""
        svc, out = self.svc, []
        retry = FAULT_RETRY if after_fault else 0.0
        if svc.state in (State.STARTING, State.RUNNING, State.STOPPING):
            out += self._check_main(exit_of, sweep)
        if svc.state is State.DAEMONIZED:
            out += self._check_daemons(sweep)
        if svc.state in (State.STARTING, State.RUNNING, State.DAEMONIZED) and \
                not svc.wanted and not pending(svc._stop_task):
            # a stop that failed half-way: the operator asked for this
            svc._stop_task = asyncio.ensure_future(self._stop_again(svc.reason, retry))
            out.append(f"{svc.state.value} but not wanted: stopping it again")
        if svc.state is State.STOPPING and not pending(svc._stop_task):
            svc._stop_task = asyncio.ensure_future(self._stop_again(svc.reason, retry))
            out.append("stopping with no stop under way: stopping it again")
        if svc.state is State.STARTING and svc.pid is not None and svc._timer is None:
            left = svc.spec.start_time - (time.monotonic() - (svc.started_mono or 0.0))
            svc._timer = svc.ctx.loop.call_later(max(left, retry), svc._started, svc._epoch)
            out.append("starting with no start timer: timer set")
        if svc.state is State.BACKOFF and not pending(svc._task):
            until = max(svc.backoff_until or 0.0, time.monotonic() + retry)
            svc.rec = replace(svc.rec, backoff_until=until)
            svc._task = asyncio.ensure_future(svc._respawn_later(True))
            out.append("backoff with no respawn scheduled: respawn scheduled")
        if svc.state in ENDED_STATES:
            out += self._check_stray(retry)
        return out

    def _check_main(self, exit_of: tuple[int, ExitInfo] | None, sweep: bool) -> list[str]:
        svc = self.svc
        pid, watcher, was = svc.pid, svc.ctx.watcher, svc.state.value
        if pid is not None and not exited(pid):
            if watcher.watching(pid):
                return []
            watcher.watch(pid, svc._on_main_exit)
            return [f"main process {pid} was not watched: watched again"]
        if pid is not None and sweep and watcher.watching(pid) and pid not in self._suspects:
            self._suspects.add(pid)  # its exit callback may be due this very turn
            return []
        if pid is None and svc.state is State.STOPPING:
            return []  # the stop finishes the job (the caller checks there is one)
        # gone: what did it exit with? the failed handler was told, or reap it now
        if exit_of is not None and pid in (None, exit_of[0]):
            gone, status = exit_of
        elif pid is not None:
            watcher.unwatch(pid)
            gone, status = pid, proc.reap(pid) or ExitInfo(None, None)
        else:
            gone, status = 0, ExitInfo(None, None)
        self._suspects.discard(gone)
        now = time.monotonic()
        requested = svc._stopping or svc.state is State.STOPPING
        leftovers: frozenset[int] = frozenset()
        if not requested:
            with contextlib.suppress(Exception):  # a fault there must not stop this
                leftovers = frozenset(svc._leftovers())
        svc.pid = None
        svc._cancel_timer()
        svc._decide(MainExit(gone, status, now - (svc.started_mono or now), requested,
                             leftovers))
        what = status.describe() if gone else "no process"
        return [f"{was} with main process {gone or '-'} gone ({what}): handled as its "
                f"exit, now {svc.state.value}"]

    def _check_daemons(self, sweep: bool) -> list[str]:
        svc, out = self.svc, []
        watcher = svc.ctx.watcher
        for p in sorted(svc.daemon_pids):
            if exited(p) and sweep and watcher.watching(p) and p not in self._suspects:
                self._suspects.add(p)  # its exit callback may be due this very turn
            elif exited(p):
                watcher.unwatch(p)
                svc.daemon_pids = svc.daemon_pids - {p}
                out.append(f"daemon process {p} gone unnoticed")
            elif not watcher.watching(p):
                watcher.watch(p, svc._on_daemon_exit)
                out.append(f"daemon process {p} was not watched: watched again")
        if not svc.daemon_pids:
            svc._decide(DaemonGone(0, ExitInfo(None, None), frozenset(svc._leftovers())))
            out.append("daemonized with no daemon process left: handled as its exit")
        return out

    def _check_stray(self, retry: float) -> list[str]:
        """A stopped, exited or fatal service with a live process the engine started:
        stop it. The state is what the operator or the restart policy decided; adopting
        the process would undo that decision (and leave it with no pipes, its output
        lost), and a start by hand would then find a copy already running."""
        svc = self.svc
        if pending(svc._task) or pending(svc._stop_task):
            return []  # its leftovers are being cleared
        live = {p for p in (svc.pid, *svc.daemon_pids) if p is not None and not exited(p)}
        live |= {p for p, start in svc._known.items()
                 if (st := proc.stat(p)) is not None and st.starttime == start
                 and st.state != "Z"}
        if svc.pgid is not None and proc.group_alive(svc.pgid):
            live |= {p for p in proc.group_members(svc.pgid)
                     if proc.read_marker(p) == svc.marker}
        if not live:
            return []
        if svc.pid is not None:  # a stray now: its exit must not be decided as one
            svc.ctx.watcher.unwatch(svc.pid)
            svc.pid = None
        svc._task = asyncio.ensure_future(self._cleanup_later(retry))
        shown = ", ".join(map(str, sorted(live)))
        return [f"{svc.state.value} but process {shown} alive: stopping it"]

    async def _stop_again(self, reason: str, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        await self.svc._do_stop(reason)

    async def _cleanup_later(self, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        await self.svc._cleanup()

    def sweep(self) -> list[str]:
        """The engine's periodic check: repairs, each said once (while it is needed)."""
        svc = self.svc
        repairs = self.check(sweep=True)
        self._suspects &= {svc.pid, *svc.daemon_pids}
        new = [r for r in repairs if r not in self._said]
        if repairs:
            self._said = set(repairs)
        elif not (pending(svc._task) or pending(svc._stop_task)):
            self._said = set()  # all is well again: a new occurrence is said again
        for r in new:
            log.warning("%s: sweep: %s", svc.name, r)
            svc._notice("warning", f"state did not match its processes: {r}",
                        topic=Topic.INTERNAL,
                        data={"where": "sweep", "error": None, "repairs": [r]})
        return repairs


def _exit_of(where: str, args: tuple[Any, ...],
             event: LifecycleEvent | None) -> tuple[int, ExitInfo] | None:
    if isinstance(event, MainExit):
        return event.pid, event.exit
    if where == "exit callback" and len(args) == 2 and isinstance(args[1], ExitInfo):
        return int(args[0]), args[1]
    return None
