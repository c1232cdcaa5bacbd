"""The engine: the services of one config, their lifecycle, and the SupervisorAPI."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import os
import signal as _signal
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

from tui_supervisor import __version__
from tui_supervisor.config.schema import Config, ServiceSpec
from tui_supervisor.config.units import parse_signal
from tui_supervisor.engine import proc
from tui_supervisor.engine.api import UnknownService
from tui_supervisor.engine.bus import EventBus, Subscription
from tui_supervisor.engine.events import AnyEvent, Event, LogLines, Notice
from tui_supervisor.engine.reaper import ChildWatcher, get_watcher
from tui_supervisor.engine.runtime import EngineLock, read_state, write_state
from tui_supervisor.engine.service import EngineContext, Service
from tui_supervisor.engine.states import State


class Extension:
    """A layer built on the engine's events (metrics) that adds to snapshots and must
    survive a handoff; the engine never imports one. Subclass and override what you need.

    Order: `adopt` (if handing over) -> `on_event` from then on (registered by `open`,
    before any service starts) -> `start` (the engine is open) -> ... -> `detach`
    (handing over) or `stop` (closing)."""

    name: str = "extension"
    sup: Supervisor | None = None
    """The engine, set by its `open()` before any event."""

    def on_event(self, ev: AnyEvent) -> None:
        """Every engine event, synchronously at emit time (override to listen)."""

    def service_view(self, service: str) -> dict[str, Any]:
        """Added to the service's snapshot under `name`."""
        return {}

    def engine_view(self) -> dict[str, Any]:
        """Added to the snapshot's `engine` under `name` (left out when empty)."""
        return {}

    def start(self, sup: Supervisor) -> None:
        """The engine is open (services started or adopted)."""

    def stop(self) -> None:
        """The engine closes or detaches: stop timers and threads."""

    def detach(self) -> dict[str, Any]:
        """What a successor's `adopt` continues from (JSON-serialisable)."""
        return {}

    def query(self, what: str, args: dict[str, Any]) -> Any:
        """Answer `SupervisorAPI.query` (JSON-serialisable); ValueError if unknown."""
        raise ValueError(f"{self.name}: no query {what!r}")

    def adopt(self, record: dict[str, Any]) -> None:
        """Continue from a predecessor's `detach` record."""


STATE_WRITE_DELAY = 0.2
RECENT_NOTICES = 100
"""Notices kept for a subscriber's first item (what happened before it came)."""
LEFTOVER_TIMEOUT = 10.0


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
        self.last_reload_seconds: float | None = None
        """How long applying the last config took (stopping changed services included)."""
        self._state_timer: asyncio.TimerHandle | None = None
        self._closed = False
        self._tasks: set[asyncio.Task[None]] = set()
        self.code_reloader: Callable[[], Awaitable[dict[str, Any]]] | None = None
        """Set by the host process (cli/tui), which owns the exec: `reload_code()`."""
        self.extensions: list[Extension] = []
        """Layers above the engine (metrics) that add to snapshots and handoff records."""
        self._unlisten: dict[int, Callable[[], None]] = {}
        self.settings_hooks: list[Callable[[Any, Any], None]] = []
        """Called with (old, new) `settings` when a config reload changes them (the
        metrics layers re-attach themselves on a new sample_interval or metrics_listen)."""
        self.notices: deque[Notice] = deque(maxlen=RECENT_NOTICES)
        """The last notices, whoever emitted them (a new UI shows what it missed)."""
        self.bus.add_listener(self._keep_notice)

    def _keep_notice(self, ev: AnyEvent) -> None:
        if isinstance(ev, Notice):
            self.notices.append(ev)

    @property
    def state_path(self) -> Path:
        return self.config.settings.state_dir / "state.json"

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
                         "processes that daemonize escape supervision")
        if adopt is not None and adopt.get("lock_fd") is not None:
            self.lock = EngineLock.adopt(Path(adopt["lock_path"]), adopt["lock_fd"])
        elif lock:
            self.lock = EngineLock.acquire(self.config.settings.runtime_dir)
        self.watcher = get_watcher(loop)
        self.watcher.install()
        if not self.watcher.pidfd:
            self._notice("warning", "pidfd_open is not available: exits are detected via "
                         "SIGCHLD (slower with many services)")
        self.ctx = EngineContext(loop, self.bus, self.watcher, self.config.settings.log_dir,
                                 self.config.config_id, self._changed)
        if adopt is not None:
            self.started_wall = adopt.get("started_wall", self.started_wall)
            self.reloads = adopt.get("reloads", 0)
            self.reload_failures = adopt.get("reload_failures", 0)
            self.last_reload_seconds = adopt.get("last_reload_seconds")
            self.notices.extend(Notice(*n) for n in adopt.get("notices", []))
            for ext in self.extensions:
                if ext.name in adopt.get("extensions", {}):
                    ext.adopt(adopt["extensions"][ext.name])
            self._adopt(adopt)
        else:
            await self.clear_leftovers()
        fresh = [n for n in self.config.services if n not in self.services]
        for name in fresh:
            self.services[name] = Service(self.config.services[name], self.ctx)
        if autostart:
            self.autostart(fresh)
        self._write_state()
        for ext in self.extensions:
            ext.start(self)

    def _hook(self, ext: Extension) -> None:
        ext.sup = self
        if type(ext).on_event is not Extension.on_event:
            self._unlisten[id(ext)] = self.bus.add_listener(ext.on_event)

    def add_extension(self, ext: Extension) -> None:
        """Attach a layer to an engine that is already open (it starts now)."""
        if ext not in self.extensions:
            self.extensions.append(ext)
        self._hook(ext)
        ext.start(self)

    def remove_extension(self, ext: Extension) -> None:
        """Stop a layer and take it off the engine."""
        ext.stop()
        unlisten = self._unlisten.pop(id(ext), None)
        if unlisten is not None:
            unlisten()
        if ext in self.extensions:
            self.extensions.remove(ext)

    def autostart(self, names: Iterable[str] | None = None) -> None:
        """Start the services (all by default) whose spec says `autostart`."""
        for name in self.services if names is None else names:
            svc = self.services[name]
            if svc.spec.autostart and svc.state is State.STOPPED:
                svc.start("autostart")

    async def close(self) -> None:
        """Stop every service (signals sent in reverse config order), release the lock."""
        if self._closed:
            return
        for ext in self.extensions:
            ext.stop()
        await self._stop_all(reversed(list(self.services.values())), "supervisor shutting down")
        for svc in self.services.values():
            svc.close()
        self._closed = True
        if self._state_timer is not None:
            self._state_timer.cancel()
        with contextlib.suppress(OSError):
            self.state_path.unlink()
        if self.watcher is not None:
            self.watcher.uninstall()
        if self.lock is not None:
            self.lock.release()
        self.bus.close()

    def kill_all(self) -> None:
        """SIGKILL every process of every service now (a second Ctrl-C while stopping)."""
        for svc in self.services.values():
            svc.kill_now()

    async def _stop_all(self, services: Iterable[Service], reason: str) -> None:
        tasks = [asyncio.ensure_future(s.stop(reason)) for s in services]
        if tasks:
            await asyncio.gather(*tasks)

    def detach(self) -> dict[str, Any]:
        """Stop watching everything and hand over: a JSON-serialisable record that
        `open(adopt=record)` (same process or after an exec) continues from."""
        for ext in self.extensions:
            ext.stop()
        record = {
            "version": 1,
            "engine_pid": os.getpid(),
            "config_path": str(self.config.path),
            "config_id": self.config.config_id,
            "started_wall": self.started_wall,
            "reloads": self.reloads,
            "reload_failures": self.reload_failures,
            "last_reload_seconds": self.last_reload_seconds,
            "services": [s.detach() for s in self.services.values()],
            "lock_fd": self.lock.fd if self.lock else None,
            "extensions": {ext.name: ext.detach() for ext in self.extensions},
            "notices": [[n.t, n.level, n.message, n.service] for n in self.notices],
            "lock_path": str(self.lock.path) if self.lock else None,
            # when the pipes stopped being read (CLOCK_MONOTONIC is the same in a successor
            # exec'd on this boot): the successor says how long that lasted
            "detached_mono": time.monotonic(),
        }
        if self._state_timer is not None:
            self._state_timer.cancel()
        self.lock = None
        if self.watcher is not None:
            self.watcher.uninstall()
        self._closed = True
        self.bus.close()
        return record

    def _adopt(self, record: dict[str, Any]) -> None:
        assert self.ctx is not None
        for rec in record["services"]:
            spec = self.config.services.get(rec["name"]) or ServiceSpec(
                name=rec["name"], argv=tuple(rec["argv"]), cwd=Path(rec["cwd"]))
            svc = Service(spec, self.ctx)
            svc.adopt(rec)
            self.services[spec.name] = svc
        gone = [n for n in self.services if n not in self.config.services]
        for name in gone:
            task = asyncio.ensure_future(self._remove(name, "not in the config any more"))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _remove(self, name: str, reason: str) -> None:
        svc = self.services[name]
        await svc.stop(reason)
        svc.close()
        self.services.pop(name, None)
        self._changed()

    # -- a dead predecessor's leftovers -----------------------------------------------
    async def clear_leftovers(self) -> list[int]:
        """Stop processes a hard-killed earlier engine of this config left running (found
        by their marker, and by the state file's pid + start time)."""
        prefix = f"{self.config.config_id}/"
        found = proc.pids_with_marker(prefix)
        prev = read_state(self.state_path) or {}
        for info in (prev.get("services") or {}).values():
            pid = info.get("pid")
            if pid and proc.create_time(pid) == info.get("starttime"):
                found.setdefault(pid, prefix + "?")
        found.pop(os.getpid(), None)
        if not found:
            return []
        by_service: dict[str, list[int]] = {}
        for pid, m in sorted(found.items()):
            by_service.setdefault(m[len(prefix):], []).append(pid)
        listing = "; ".join(f"{n} (pid {', '.join(map(str, p))})"
                            for n, p in by_service.items())
        who = f"pid {prev['engine_pid']}" if prev.get("engine_pid") else "an earlier engine"
        self._notice("warning", f"{who} of this config died leaving {len(found)} processes "
                     f"running: {listing}; stopping them before starting fresh")
        results = await asyncio.gather(*(
            self._stop_leftovers(name, pids) for name, pids in by_service.items()))
        alive = sorted(p for r in results for p in r)
        if alive:
            self._notice("error", f"could not stop leftovers: {alive}")
        else:
            self._notice("info", f"stopped {len(found)} leftover processes")
        return sorted(found)

    async def _stop_leftovers(self, service: str, pids: list[int]) -> set[int]:
        """Stop signal (the service's, to each pid and its group), its timeout, SIGKILL."""
        spec = self.config.services.get(service)
        sig = spec.stop.signal if spec else _signal.SIGTERM
        timeout = min(spec.stop.timeout if spec else LEFTOVER_TIMEOUT, LEFTOVER_TIMEOUT)
        for pid in pids:
            st = proc.stat(pid)
            if st is not None and st.pgrp == pid:
                proc.signal_group(pid, sig)
            proc.signal_pid(pid, sig)
        alive = await _wait_gone(set(pids), timeout)
        if alive:
            for pid in alive:
                proc.signal_pid(pid, _signal.SIGKILL)
            alive = await _wait_gone(alive, 5.0)
        return alive

    # -- persistence ------------------------------------------------------------------
    def _changed(self) -> None:
        if self._state_timer is None and not self._closed and self.ctx is not None:
            self._state_timer = self.ctx.loop.call_later(STATE_WRITE_DELAY, self._write_state)

    def _write_state(self) -> None:
        self._state_timer = None
        services = {}
        for s in self.services.values():
            if s.pid is not None:
                services[s.name] = {"pid": s.pid, "pgid": s.pgid,
                                    "starttime": proc.create_time(s.pid)}
        data = {"engine_pid": os.getpid(), "engine_starttime": proc.create_time(os.getpid()),
                "config": str(self.config.path), "services": services}
        try:
            write_state(self.state_path, data)
        except OSError as e:
            self._notice("error", f"cannot write state file {self.state_path}: {e.strerror}")

    def _notice(self, level: str, message: str, service: str | None = None) -> None:
        self.bus.emit(Notice(time.time(), level, message, service))

    # -- SupervisorAPI ----------------------------------------------------------------
    def snapshot_now(self) -> dict[str, Any]:
        snap: dict[str, Any] = {
            "engine": {
                "pid": os.getpid(),
                "version": __version__,
                "config": str(self.config.path),
                "config_id": self.config.config_id,
                "started_at": self.started_wall,
                "uptime": time.time() - self.started_wall,
                "reloads": self.reloads,
                "reload_failures": self.reload_failures,
                "last_reload_seconds": self.last_reload_seconds,
                "pidfd": bool(self.watcher and self.watcher.pidfd),
            },
            "services": [self._service_view(s) for s in self.services.values()],
        }
        for ext in self.extensions:
            view = ext.engine_view()
            if view:
                snap["engine"][ext.name] = view
        return snap

    def _service_view(self, svc: Service) -> dict[str, Any]:
        view = svc.snapshot()
        for ext in self.extensions:
            view[ext.name] = ext.service_view(svc.name)
        return view

    async def snapshot(self) -> dict[str, Any]:
        return self.snapshot_now()

    def subscribe_now(self, *, logs: bool = True, maxsize: int = 10_000) -> Subscription:
        """Snapshot and subscription in one step (no await between: nothing missed); the
        snapshot carries the last notices ("notices": oldest first)."""
        first = {"kind": "snapshot", **self.snapshot_now(),
                 "notices": [n.as_dict() for n in self.notices]}
        accept = None if logs else (lambda ev: not isinstance(ev, LogLines))
        return self.bus.subscribe(maxsize=maxsize, first=first, accept=accept)

    async def subscribe(self, *, logs: bool = True) -> AsyncIterator[dict[str, Any]]:
        sub = self.subscribe_now(logs=logs)
        return _as_dicts(sub)

    def _get(self, names: list[str]) -> list[Service]:
        missing = [n for n in names if n not in self.services]
        if missing:
            raise UnknownService(missing[0])
        return [self.services[n] for n in names]

    async def start(self, names: list[str]) -> dict[str, Any]:
        started = [s.name for s in self._get(names) if s.start()]
        return {"ok": True, "started": started}

    async def stop(self, names: list[str]) -> dict[str, Any]:
        svcs = self._get(names)
        await self._stop_all(svcs, "stopped by operator")
        return {"ok": True, "stopped": [s.name for s in svcs]}

    async def restart(self, names: list[str]) -> dict[str, Any]:
        svcs = self._get(names)
        await asyncio.gather(*(s.restart() for s in svcs))
        return {"ok": True, "restarted": [s.name for s in svcs]}

    async def signal(self, name: str, sig: int | str) -> dict[str, Any]:
        (svc,) = self._get([name])
        num = parse_signal(sig)
        return {"ok": svc.send_signal(num), "signal": proc.signal_name(num)}

    async def logs(self, names: list[str] | None = None, n: int = 100) -> list[dict[str, Any]]:
        svcs = self._get(names) if names else list(self.services.values())
        streams = [[(t, off, s.name, st, text) for off, t, st, text in s.ring.tail(n)]
                   for s in svcs]
        merged = list(heapq.merge(*streams))
        return [{"service": name, "offset": off, "t": t, "stream": st, "text": text}
                for t, off, name, st, text in merged[-n:] if n > 0]

    async def query(self, extension: str, what: str,
                    args: dict[str, Any] | None = None) -> Any:
        ext = self.extension(extension)
        if ext is None:
            raise ValueError(f"no extension {extension!r} in this engine")
        return ext.query(what, dict(args or {}))

    def extension(self, name: str) -> Extension | None:
        return next((e for e in self.extensions if e.name == name), None)

    async def reload_code(self) -> dict[str, Any]:
        """Check the new code and re-exec this process with it, services kept. {"ok":
        False, "errors": [...]} when the check fails (nothing changes)."""
        if self.code_reloader is None:
            r = {"ok": False, "errors": ["code reload is not available in this engine"]}
        else:
            r = await self.code_reloader()
        if not r.get("ok"):  # said where every reload's outcome is: console, dashboards
            self._notice("error", "code not reloaded: " + "; ".join(r.get("errors") or []))
        return r

    async def reload(self) -> dict[str, Any]:
        from tui_supervisor.config import ConfigError, load_config

        try:
            new = load_config(self.config.path)
        except ConfigError as e:
            self.reload_failures += 1
            errors = [str(i) for i in e.issues]
            self._notice("error", "config not reloaded: " + "; ".join(errors))
            return {"ok": False, "errors": errors}
        return await self.apply_config(new)

    async def apply_config(self, new: Config) -> dict[str, Any]:
        """Diff the running config against `new` and apply it: stop removed, start added,
        restart changed, update in place the rest; unchanged services are not touched."""
        from tui_supervisor.config import diff

        assert self.ctx is not None
        began = time.monotonic()
        d = diff(self.config, new)
        old_settings, self.config = self.config.settings, new
        if d.settings_changed:
            for hook in tuple(self.settings_hooks):
                hook(old_settings, new.settings)
        await asyncio.gather(*(self._remove(n, "removed from config") for n in d.removed))
        changed = [self.services[n] for n in d.changed]
        restart = {s.name for s in changed if s.wanted}
        await self._stop_all(changed, "config changed")
        for name in (*d.changed, *d.in_place):
            self.services[name].update_spec(new.services[name])
        for name in d.added:
            self.services[name] = Service(new.services[name], self.ctx)
        self.services = {n: self.services[n] for n in new.services}  # config order
        self.autostart(d.added)
        for name in restart:
            self.services[name].start("config changed")
        self.reloads += 1
        self.last_reload_seconds = time.monotonic() - began
        summary = {"ok": True, "added": list(d.added), "removed": list(d.removed),
                   "restarted": list(d.changed), "in_place": list(d.in_place)}
        done = ", ".join(f"{k} {', '.join(v)}" for k, v in summary.items() if k != "ok" and v)
        self._notice("info", "config reloaded: " + (done or "nothing changed"))
        return summary


async def _as_dicts(sub: Subscription) -> AsyncIterator[dict[str, Any]]:
    try:
        async for item in sub:
            yield item.as_dict() if isinstance(item, Event | LogLines) else item
    finally:
        sub.close()


async def _wait_gone(pids: set[int], timeout: float) -> set[int]:
    deadline = time.monotonic() + timeout
    alive = set(pids)
    while alive and time.monotonic() < deadline:
        alive = {p for p in alive if _exists(p)}
        if alive:
            await asyncio.sleep(0.02)
    return {p for p in alive if _exists(p)}


def _exists(pid: int) -> bool:
    st = proc.stat(pid)
    if st is not None and st.state == "Z" and st.ppid == os.getpid():
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        return False
    return st is not None and st.state != "Z"
