"""The engine: the services of one config, their lifecycle, and the SupervisorAPI.

Two of its parts live beside it: the config apply (`config_apply.py`) and what outlives
the process, the state file and the handoff record (`persistence.py`)."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import os
import socket
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from tui_supervisor import __version__
from tui_supervisor.config.schema import Config
from tui_supervisor.config.units import parse_signal
from tui_supervisor.engine import deps, leftovers, outcomes, proc
from tui_supervisor.engine.api import UnknownService
from tui_supervisor.engine.bus import SUB_MAX_BYTES, EventBus, Subscription
from tui_supervisor.engine.cgroups import Cgroups
from tui_supervisor.engine.config_apply import ConfigApply
from tui_supervisor.engine.coordinator import Coordinator
from tui_supervisor.engine.events import AnyEvent, Event, LogLines, Notice, Topic
from tui_supervisor.engine.extension import Extension
from tui_supervisor.engine.persistence import StateFile, handoff_record, restore
from tui_supervisor.engine.reaper import ChildWatcher, get_watcher
from tui_supervisor.engine.repair import SWEEP_INTERVAL
from tui_supervisor.engine.rolling import rolling_restart
from tui_supervisor.engine.runtime import EngineLock, make_dirs, reopen_stdio
from tui_supervisor.engine.service import EngineContext, Service
from tui_supervisor.engine.states import ALIVE_STATES, STARTABLE_STATES, State

if TYPE_CHECKING:  # types only: the engine's import stays light (a code reload's
    # new image imports all of this before it reads the services' pipes again)
    from tui_supervisor.engine.views import (
        CodeReloadResult,
        EngineView,
        EventView,
        LogLine,
        ReloadResult,
        ReopenLogsResult,
        RestartResult,
        ScaleResult,
        ServiceOutcome,
        ServiceView,
        ShutdownResult,
        SignalResult,
        Snapshot,
        SnapshotEvent,
        StartResult,
        StopResult,
    )

__all__ = ["Extension", "Supervisor"]

RECENT_NOTICES = 100
"""Notices kept for a subscriber's first item (what happened before it came)."""
LOG_CHECK_INTERVAL = 5.0
"""Seconds between two looks at whether a log file was renamed or removed from outside
(logrotate, `rm`): at most this long of a service's output goes to the renamed file.
(At 1 s the looks were most of an idle engine's CPU: 0.09 % of a core for 100 services;
`reopen-logs` in logrotate's postrotate reopens at once.)"""
SPAWN_WAIT = 5.0
"""Seconds beyond its stop timeout a start waits for its spawn when an earlier process's
leftovers must be cleared first (else the spawn has happened when `start` returns)."""
log = logging.getLogger("tui_supervisor.engine")
STARTABLE_NOT_WAITING = STARTABLE_STATES - {State.WAITING}
"""A dependency in these is started by a start of its dependent (a waiting one is
already wanted: it starts once its own dependencies hold)."""


class Supervisor:
    """Owns the services of one config. Implements `SupervisorAPI`."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.bus = EventBus()
        self.services: dict[str, Service] = {}
        self.started_wall = time.time()
        self.lock: EngineLock | None = None
        self.watcher: ChildWatcher | None = None
        self.ctx: EngineContext | None = None
        self.reloads = 0
        self.reload_failures = 0
        self.config_error: str | None = None
        """Why the last reload of the config file was refused (None: the last one
        applied, or none tried): the running config is not the file's."""
        self.last_reload_seconds: float | None = None
        """How long applying the last config took (stopping changed services included)."""
        self.state_file = StateFile(self)
        self._closed = False
        self._closing = False
        self._tasks: set[asyncio.Task[None]] = set()
        self.code_reloader: Callable[[], Awaitable[Mapping[str, Any]]] | None = None
        """Set by the host process (cli/tui), which owns the exec: `reload_code()`."""
        self.shutdown_hook: Callable[[], None] | None = None
        """Set by the host process, which owns the engine's end: `shutdown()`."""
        self.extensions: list[Extension] = []
        """Layers above the engine (metrics) that add to snapshots and handoff records."""
        self._unlisten: dict[int, Callable[[], None]] = {}
        self.settings_hooks: list[Callable[[Any, Any], None]] = []
        """Called with (old, new) `settings` when a config reload changes them (the
        metrics layers re-attach themselves on a new sample_interval or metrics_listen)."""
        self.notices: deque[Notice] = deque(maxlen=RECENT_NOTICES)
        """The last notices, whoever emitted them (a new UI shows what it missed)."""
        self.stdio_log: Path | None = None
        """The engine's own log (set by the host): when stdout/stderr write to it, they
        are reopened with the services' logs (`reopen_logs`, `runtime.reopen_stdio`)."""
        self._log_timer: asyncio.TimerHandle | None = None
        self._stdio_failing = False
        self.config_apply = ConfigApply(self)
        self.config_lock = self.config_apply.lock
        self.scaled: dict[str, tuple[int, int]] = {}
        """Replica group -> (copies a `scale` chose, the file's `replicas:` then): kept
        across config and code reloads until the file's count changes."""
        """Held while a config is read and applied (see `ConfigApply.lock`)."""
        self.bus.add_listener(self._keep_notice)
        self.cgroups: Cgroups | None = None
        self.processes = "not started"
        """How the engine knows a service's processes (the engine view says it)."""
        self._sweep_timer: asyncio.TimerHandle | None = None
        self.sweeps = 0
        self._faults: set[str] = set()
        """"where: ExceptionType" of the engine-level faults said (each said once)."""
        self.coordinator = Coordinator(self)
        """Dependency order and waits (`depends_on`): every start goes through it."""

    def _keep_notice(self, ev: AnyEvent) -> None:
        if isinstance(ev, Notice):
            self.notices.append(ev)

    @property
    def state_path(self) -> Path:
        return self.state_file.path

    # -- lifecycle --------------------------------------------------------------------
    async def open(self, *, lock: bool = True, autostart: bool = True,
                   adopt: dict[str, Any] | None = None) -> None:
        """Take the config's lock, clear a dead predecessor's leftovers, start services
        (or adopt the live ones of a detach record)."""
        loop = asyncio.get_running_loop()
        for ext in self.extensions:
            self._hook(ext)
        if not proc.set_subreaper():
            self._notice("warning", "cannot become a child subreaper on this system: "
                         "processes that daemonize escape supervision",
                         topic=Topic.PLATFORM, data={"feature": "subreaper"})
        if adopt is not None and adopt.get("lock_fd") is not None:
            self.lock = EngineLock.adopt(Path(adopt["lock_path"]), adopt["lock_fd"])
        elif lock:
            self.lock = EngineLock.acquire(self.config.settings.runtime_dir)
        with contextlib.suppress(OSError):  # (its writers say it, as notices)
            make_dirs(self.config.settings.state_dir)  # 0700 before a log dir inside it
        self.watcher = get_watcher(loop)
        self.watcher.install()
        if not self.watcher.pidfd:
            self._notice("warning", "pidfd_open is not available: exits are detected via "
                         "SIGCHLD (slower with many services)",
                         topic=Topic.PLATFORM, data={"feature": "pidfd"})
        self.cgroups, self.processes = Cgroups.detect(
            self.config.settings.cgroups, self.config.config_id,
            proc.instance_key(self.config.settings.runtime_dir),
            (adopt or {}).get("cgroups"))
        self.ctx = EngineContext(loop, self.bus, self.watcher, self.config.settings.log_dir,
                                 self.config.config_id, self.state_file.changed,
                                 cgroups=self.cgroups,
                                 runtime_dir=self.config.settings.runtime_dir)
        if self.cgroups is None and self.config.settings.cgroups == "on":
            self._notice("warning", f"cgroups: on, but {self.processes}: processes are "
                         "found by marker and ancestry", topic=Topic.PLATFORM,
                         data={"feature": "cgroups"})
        if adopt is not None:
            for name in restore(self, adopt):  # adopted, but not in the config any more
                task = asyncio.ensure_future(self._remove(name, "not in the config any more"))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        else:
            await self.clear_leftovers()
        fresh = [n for n in self.config.services if n not in self.services]
        for name in fresh:
            self.services[name] = Service(self.config.services[name], self.ctx)
        if autostart:
            self.autostart(fresh)
        self.state_file.write()
        self._log_timer = loop.call_later(LOG_CHECK_INTERVAL, self._check_logs)
        for ext in self.extensions:
            self.guard(f"extension {ext.name} start", ext.start, self)
        self._sweep_timer = loop.call_later(SWEEP_INTERVAL, self._sweep)
        self.coordinator.recheck_soon()  # adopted waits resume (and their timeouts)

    def _sweep(self) -> None:
        """Every SWEEP_INTERVAL: check each service against its processes and repair
        what does not match (`repair.Repair.sweep`)."""
        if self.retired:
            return
        assert self.ctx is not None
        self._sweep_timer = self.ctx.loop.call_later(SWEEP_INTERVAL, self._sweep)
        self.sweeps += 1
        for svc in tuple(self.services.values()):
            self.guard(f"sweep of {svc.name}", svc.repair.sweep)
            # note its descendants: known once their parent dies (tree.py)
            self.guard(f"noting the processes of {svc.name}", svc.remember)

    def guard(self, where: str, fn: Callable[..., Any], *args: Any,
               default: Any = None) -> Any:
        """Call a part that must not stop the engine (an extension hook, a sweep): an
        exception is logged with its traceback and said once (topic internal)."""
        try:
            return fn(*args)
        except Exception as e:
            key = f"{where}: {type(e).__name__}"
            if key in self._faults:
                log.debug("exception in %s again: %r", where, e)
                return default
            self._faults.add(key)
            log.error("exception in %s", where, exc_info=e)
            self._notice("error", f"internal error in {where}: {type(e).__name__}: {e} "
                         "(traceback in the engine's log); the engine carries on",
                         topic=Topic.INTERNAL, data={"where": where, "error":
                                                     f"{type(e).__name__}: {e}",
                                                     "repairs": []})
            return default

    def _hook(self, ext: Extension) -> None:
        ext.sup = self
        if type(ext).on_event is not Extension.on_event:
            self._unlisten[id(ext)] = self.bus.add_listener(ext.on_event)

    def add_extension(self, ext: Extension) -> None:
        """Attach a layer to an engine that is already open (it starts now)."""
        if ext not in self.extensions:
            self.extensions.append(ext)
        self._hook(ext)
        self.guard(f"extension {ext.name} start", ext.start, self)

    def remove_extension(self, ext: Extension) -> None:
        """Stop a layer and take it off the engine."""
        self.guard(f"extension {ext.name} stop", ext.stop)
        unlisten = self._unlisten.pop(id(ext), None)
        if unlisten is not None:
            unlisten()
        if ext in self.extensions:
            self.extensions.remove(ext)

    def autostart(self, names: Iterable[str] | None = None) -> None:
        """Start the services (all by default) whose spec says `autostart`, and what
        they depend on (as `start` does), in dependency order: one whose dependencies
        do not hold yet waits for them."""
        want = [n for n in (self.services if names is None else names)
                if self.services[n].spec.autostart and self.services[n].state is State.STOPPED]
        self._start_in_order(want, "autostart")

    def _start_in_order(self, names: list[str], reason: str,
                        *, with_deps: bool = True) -> tuple[list[str], dict[str, bool]]:
        """Start `names` (and, `with_deps`, their stopped dependencies) through the
        coordinator, dependencies first. Returns (the dependencies pulled in, name ->
        whether it took the start)."""
        specs = self.coordinator.specs()
        pulled = [n for n in deps.dependencies(names, specs) if n not in names
                  and self.services[n].state in STARTABLE_NOT_WAITING] if with_deps else []
        asked: dict[str, bool] = {}
        for level in deps.levels(specs):
            for name in level:
                if name in asked or (name not in names and name not in pulled):
                    continue
                why = reason if name in names else f"{reason} (a dependency)"
                asked[name] = self.coordinator.start(self.services[name], why)
        return pulled, asked

    async def close(self) -> None:
        """Stop every service (signals sent in reverse config order), release the lock."""
        if self._closed:
            return
        self._closing = True  # reloads still queued are refused from here
        async with self.config_apply.lock:  # one under way finishes first (it may start some)
            pass
        if self._sweep_timer is not None:
            self._sweep_timer.cancel()
        for ext in self.extensions:  # a failing one must not keep services running
            self.guard(f"extension {ext.name} stop", ext.stop)
        self._stop_log_checks()
        self.coordinator.close()
        await self._stop_ordered(list(self.services), "supervisor shutting down")
        for svc in self.services.values():
            svc.close()
        if self.ctx is not None and self.ctx.cgroups is not None:
            self.ctx.cgroups.close()
        self._closed = True
        self.state_file.stop()
        with contextlib.suppress(OSError):
            self.state_path.unlink()
        if self.watcher is not None:
            self.watcher.uninstall()
        if self.lock is not None:
            self.lock.release()
        self.bus.close()

    @property
    def retired(self) -> bool:
        """Closing, closed, or handed over to another engine: it applies no config."""
        return self._closing or self._closed

    def kill_all(self) -> None:
        """SIGKILL every process of every service now (a second Ctrl-C while stopping)."""
        for svc in self.services.values():
            svc.kill_now()

    async def _stop_all(self, services: Iterable[Service], reason: str) -> None:
        tasks = [asyncio.ensure_future(s.stop(reason)) for s in services]
        if tasks:
            await asyncio.gather(*tasks)

    async def _stop_ordered(self, names: list[str], reason: str) -> None:
        """Stop `names` dependents first: each level of the reverse dependency order
        together (signals in reverse config order within it), the next once it is
        stopped."""
        for level in deps.stop_levels(self.coordinator.specs()):
            chosen = [self.services[n] for n in reversed(level) if n in names]
            for svc in chosen:
                self.coordinator.forget(svc.name)
            await self._stop_all(chosen, reason)

    def detach(self) -> dict[str, Any]:
        """Stop watching everything and hand over: a JSON-serialisable record that
        `open(adopt=record)` (same process or after an exec) continues from."""
        if self._sweep_timer is not None:
            self._sweep_timer.cancel()
        for ext in self.extensions:
            self.guard(f"extension {ext.name} stop", ext.stop)
        self._stop_log_checks()
        self.coordinator.close()
        record = handoff_record(self)
        self.state_file.stop()
        self.lock = None
        if self.watcher is not None:
            self.watcher.uninstall()
        self._closed = True
        self.bus.close()
        return record

    async def _remove(self, name: str, reason: str) -> None:
        svc = self.services[name]
        await svc.stop(reason)
        svc.close()
        if self.ctx is not None and self.ctx.cgroups is not None:
            self.ctx.cgroups.remove(name)
        self.services.pop(name, None)
        self.state_file.changed()

    # -- log files renamed or removed from outside --------------------------------------
    def _check_logs(self) -> None:
        """Every LOG_CHECK_INTERVAL: reopen the log files another tool renamed or removed
        (a stat and an fstat each: nothing on the output's hot path)."""
        assert self.ctx is not None
        self._log_timer = self.ctx.loop.call_later(LOG_CHECK_INTERVAL, self._check_logs)
        self._reopen(if_moved=True)

    def _stop_log_checks(self) -> None:
        if self._log_timer is not None:
            self._log_timer.cancel()
            self._log_timer = None

    def _reopen(self, *, if_moved: bool) -> tuple[list[str], list[str]]:
        """(paths reopened, why others could not be)."""
        done: list[str] = []
        errors: list[str] = []
        for svc in list(self.services.values()):
            if svc.log_file.closed or (if_moved and not svc.log_file.moved()):
                continue
            try:
                why = svc.reopen_log()
            except Exception as e:  # an engine bug: said, and the other files go on
                why = f"{svc.name}: {type(e).__name__}: {e}"
                self._notice("error", f"reopening the log failed: {why}", svc.name,
                             topic=Topic.INTERNAL)
            if why:
                errors.append(why)
            else:
                done.append(str(svc.log_file.path))
        if self.stdio_log is not None:
            try:
                if reopen_stdio(self.stdio_log, if_moved=if_moved):
                    done.append(str(self.stdio_log))
                self._stdio_failing = False
            except OSError as e:
                why = f"cannot reopen {self.stdio_log}: {e.strerror or e}"
                errors.append(why)
                if not self._stdio_failing:  # said once until it works
                    self._stdio_failing = True
                    self._notice("error", why, topic=Topic.LOG_WRITE,
                                 data={"path": str(self.stdio_log)})
        return done, errors

    # -- a dead predecessor's leftovers -----------------------------------------------
    async def clear_leftovers(self) -> list[int]:
        """Stop processes a hard-killed earlier engine of this config left running."""
        return await leftovers.clear_leftovers(self.config, self.state_path, self._notice,
                                               self.cgroups)

    def _notice(self, level: str, message: str, service: str | None = None, *,
                topic: Topic = Topic.GENERAL, data: dict[str, Any] | None = None) -> None:
        self.bus.emit(Notice(time.time(), level, message, service, topic, data))

    # -- SupervisorAPI ----------------------------------------------------------------
    def snapshot_now(self) -> Snapshot:
        engine: EngineView = {
            "pid": os.getpid(),
            "version": __version__,
            "config": str(self.config.path),
            "config_id": self.config.config_id,
            "host": socket.gethostname(),
            "started_at": self.started_wall,
            "uptime": time.time() - self.started_wall,
            "reloads": self.reloads,
            "reload_failures": self.reload_failures,
            "config_error": self.config_error,
            "last_reload_seconds": self.last_reload_seconds,
            "pidfd": bool(self.watcher and self.watcher.pidfd),
            "processes": self.processes if self.ctx is None or self.ctx.cgroups
            else f"marker and ancestry ({self.processes})",
        }
        extra = cast(dict[str, Any], engine)  # extensions add keys under their names
        for ext in self.extensions:
            view = self.guard(f"extension {ext.name} engine view", ext.engine_view,
                               default={})
            if view:
                extra[ext.name] = view
        return {"engine": engine,
                "services": [self._service_view(s) for s in self.services.values()]}

    def _service_view(self, svc: Service) -> ServiceView:
        view = svc.snapshot()
        view["depends_on"] = self.guard(f"dependencies of {svc.name}", self.coordinator.view,
                                        svc, default=[])
        for ext in self.extensions:
            view[ext.name] = self.guard(f"extension {ext.name} service view",
                                         ext.service_view, svc.name, default={})
        return cast("ServiceView", view)

    async def snapshot(self) -> Snapshot:
        return self.snapshot_now()

    def subscribe_now(self, *, logs: bool = True, max_bytes: int = SUB_MAX_BYTES
                      ) -> Subscription:
        """Snapshot and subscription in one step (no await between: nothing missed); the
        snapshot carries the last notices ("notices": oldest first). A subscriber more
        than `max_bytes` behind is dropped (bus.py)."""
        snap = self.snapshot_now()
        first: SnapshotEvent = {"kind": "snapshot", "engine": snap["engine"],
                                "services": snap["services"],
                                "notices": [cast(Any, n.as_dict()) for n in self.notices]}
        accept = None if logs else (lambda ev: not isinstance(ev, LogLines))
        return self.bus.subscribe(max_bytes=max_bytes, first=first, accept=accept)

    async def subscribe(self, *, logs: bool = True) -> AsyncIterator[EventView]:
        sub = self.subscribe_now(logs=logs)
        return _as_dicts(sub)

    def _get(self, names: list[str]) -> list[Service]:
        """The services named; a replica group's name is all its copies (in order)."""
        out: list[Service] = []
        for name in names:
            found = [self.services[name]] if name in self.services else [
                s for s in self.services.values() if s.spec.group == name]
            if not found:
                raise UnknownService(name)
            out.extend(s for s in found if s not in out)
        return out

    async def _started(self, svc: Service, asked: bool, verb: str) -> ServiceOutcome:
        """The immediate outcome of a start (the spawn is synchronous, unless it waits
        for an earlier process's leftovers to be cleared: that is waited for)."""
        if asked:
            await svc.spawned(svc.spec.stop.timeout + SPAWN_WAIT)
        return outcomes.started(svc.name, asked, svc.state.value, svc.rec.reason,
                                svc.spawn_error, verb=verb)

    async def start(self, names: list[str], no_deps: bool = False) -> StartResult:
        """Start `names`, and (unless `no_deps`) the stopped services they depend on,
        dependencies first; one whose dependencies do not hold yet waits for them. The
        outcomes: the dependencies pulled in first (`dependency_of`), then `names`."""
        svcs = self._get(names)
        pulled, asked = self._start_in_order(names, "started by operator",
                                             with_deps=not no_deps)
        order = [*(self.services[n] for n in pulled), *svcs]
        done = list(await asyncio.gather(*(self._started(s, asked.get(s.name, False),
                                                         "started") for s in order)))
        for o in done[:len(pulled)]:
            o["dependency_of"] = [n for n in names if o["name"] in
                                  deps.dependencies([n], self.coordinator.specs())]
        return {"ok": all(o["ok"] for o in done),
                "started": [s.name for s in order if asked.get(s.name)],
                "services": done}

    async def stop(self, names: list[str], no_deps: bool = False) -> StopResult:
        """Stop `names`, and first (unless `no_deps`) the services that depend on them,
        dependents first. The outcomes: the dependents first (`dependent_of`), then
        `names`."""
        svcs = self._get(names)
        specs = self.coordinator.specs()
        extra = [] if no_deps else [
            n for n in deps.dependents(names, specs)
            if self.services[n].state not in (State.STOPPED, State.COMPLETED)]
        order = [*(self.services[n] for n in extra), *svcs]
        before = [s.state.value for s in order]
        for s in order:
            self.coordinator.forget(s.name)
        await self._stop_ordered([s.name for s in order], "stopped by operator")
        done = [outcomes.stopped(s.name, b, s.state.value, s.rec.reason)
                for s, b in zip(order, before, strict=True)]
        for o in done[:len(extra)]:
            o["dependent_of"] = [n for n in names if o["name"] in deps.dependents([n], specs)]
        return {"ok": True, "stopped": [s.name for s in order], "services": done}

    async def restart(self, names: list[str], *, rolling: bool = False) -> RestartResult:
        """Stop and start each of `names` (alone: its dependents are left to the
        coordinator, which takes down those with `restart: true` and brings them back);
        the start waits for its dependencies as any start. `rolling`: one at a time,
        each up (ready) before the next (`rolling.py`)."""
        svcs = self._get(names)

        async def one(svc: Service) -> ServiceOutcome:
            self.coordinator.forget(svc.name)
            await svc.stop("restarting by operator")
            took = self.coordinator.start(svc)
            return await self._started(svc, took, "restarted")

        if rolling:
            return await rolling_restart(svcs, one, lambda s: self.services.get(s.name) is s)
        done = await asyncio.gather(*(one(s) for s in svcs))
        return {"ok": all(o["ok"] for o in done), "restarted": [s.name for s in svcs],
                "services": list(done)}

    async def signal(self, name: str, sig: int | str) -> SignalResult:
        svcs = self._get([name])  # (a group: each copy)
        num = parse_signal(sig)
        sent = [s.send_signal(num) for s in svcs]
        return {"ok": all(sent), "signal": proc.signal_name(num)}

    async def scale(self, name: str, n: int) -> ScaleResult:
        return await self.config_apply.scale(name, n)

    async def logs(self, names: list[str] | None = None, n: int = 100) -> list[LogLine]:
        svcs = self._get(names) if names else list(self.services.values())
        streams = [_sized(s.name, s.ring.tail(n), s.ring.next_offset) for s in svcs]
        merged = list(heapq.merge(*streams))
        return [{"service": name, "offset": off, "t": t, "stream": st, "text": text,
                 "size": size} for t, off, name, st, text, size in merged[-n:] if n > 0]

    async def query(self, extension: str, what: str,
                    args: dict[str, Any] | None = None) -> Any:
        ext = self.extension(extension)
        if ext is None:
            raise ValueError(f"no extension {extension!r} in this engine")
        return ext.query(what, dict(args or {}))

    def extension(self, name: str) -> Extension | None:
        return next((e for e in self.extensions if e.name == name), None)

    async def reload_code(self) -> CodeReloadResult:
        """Check the new code and re-exec this process with it, services kept. {"ok":
        False, "errors": [...]} when the check fails (nothing changes)."""
        r: CodeReloadResult
        if self.code_reloader is None:
            r = {"ok": False, "errors": ["code reload is not available in this engine"]}
        else:
            r = cast("CodeReloadResult", await self.code_reloader())
        if not r.get("ok"):  # said where every reload's outcome is: console, dashboards
            errors = list(r.get("errors") or [])
            self._notice("error", "code not reloaded: " + "; ".join(errors),
                         topic=Topic.CODE_REFUSED, data={"errors": errors})
        return r

    async def shutdown(self) -> ShutdownResult:
        """Stop every service, then end the engine's process (as SIGTERM does); returns
        at once, before the stopping starts, naming the services that were up."""
        up = [s.name for s in self.services.values() if s.state in ALIVE_STATES]
        hook = self.shutdown_hook
        if hook is None:
            return {"ok": False, "pid": os.getpid(), "stopping": [],
                    "error": "this engine's host cannot be shut down from here"}
        asyncio.get_running_loop().call_soon(hook)  # (after this reply is sent)
        return {"ok": True, "pid": os.getpid(), "stopping": up}

    async def reopen_logs(self) -> ReopenLogsResult:
        done, errors = self._reopen(if_moved=False)
        return {"ok": not errors, "reopened": done, "errors": errors}

    async def reload(self) -> ReloadResult:
        """Read the config file and apply it, one apply at a time (`ConfigApply.reload`:
        a burst of reloads costs one or two applies and ends in the file's last state)."""
        return await self.config_apply.reload()

    async def apply_config(self, new: Config) -> ReloadResult:
        """Diff the running config against `new` and apply it: stop removed, start added,
        restart changed, update in place the rest; unchanged services are not touched.
        Waits for a reload or apply under way (see `reload`)."""
        return await self.config_apply.apply(new)


async def _as_dicts(sub: Subscription) -> AsyncIterator[EventView]:
    try:
        async for item in sub:
            yield cast("EventView", item.as_dict() if isinstance(item, Event | LogLines)
                       else item)
    finally:
        sub.close()


def _sized(service: str, tail: list[tuple[int, float, str, str]], end: int
           ) -> list[tuple[float, int, str, str, str, int]]:
    """A ring's lines as (t, offset, service, stream, text, size): a line's size is where
    the next one starts (the ring's end after the last), exact whatever its bytes."""
    if not tail:
        return []
    nexts = [off for off, *_ in tail[1:]] + [end]
    return [(t, off, service, st, text, nxt - off)
            for (off, t, st, text), nxt in zip(tail, nexts, strict=True)]
