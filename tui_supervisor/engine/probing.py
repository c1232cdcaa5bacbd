"""A service's probes during one spawn: their tasks, results and verdict.

Made before each spawn (it gives the spawn its `NOTIFY_SOCKET`), started after it,
closed when the service stops being up (its exit, a stop): tasks cancelled, exec probes
killed, the notify socket removed. What results mean is `engine/health.py`'s; here they
are gathered, published (`HealthChanged` through the service) and acted on (a restart
through `Service.end_for`, the path a memory limit takes).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import random
import re
import signal
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tui_supervisor.config.schema import ProbeSpec
from tui_supervisor.engine import proc
from tui_supervisor.engine.health import (
    Track,
    initial,
    record,
    startup_budget,
    startup_passed,
    verdict,
)
from tui_supervisor.engine.notify import NotifySocket
from tui_supervisor.engine.probes import (
    FastCheck,
    Result,
    exec_check,
    http_check,
    http_request,
    http_verdict,
    ip_family,
    tcp_check,
)

if TYPE_CHECKING:
    from tui_supervisor.engine.service import Service

LOOPED = ("exec", "http", "tcp", "silence")
"""Kinds checked every period (log and notify are told, not asked; a notify liveness
probe is checked every period for a ping)."""


class ServiceProbes:
    def __init__(self, svc: Service, handed: dict[str, Any] | None = None) -> None:
        """`handed`: an earlier image's `to_dict()` (a code reload)."""
        self.svc = svc
        self.health = svc.spec.health
        self.probes = self.health.probes()
        self.tracks: dict[str, Track] = {n: initial(n) for n in self.probes}
        self.tasks: list[asyncio.Task[None]] = []
        self.started = asyncio.Event()
        if startup_passed(self.health, self.tracks):
            self.started.set()
        self.spawned = time.monotonic()
        self.last_output = self.spawned
        self.log_ready = False
        self._patterns = {n: re.compile(p.pattern) for n, p in self.probes.items()
                          if p.kind == "log"}
        self.pings = 0
        """WATCHDOG=1 pings since the last liveness check."""
        self.status = ""
        self.main_pid: int | None = None
        self.closed = False
        self.exec_pids: set[int] = set()
        """Exec probes running now (process groups)."""
        self.timers: dict[str, asyncio.TimerHandle] = {}
        self._prepared: dict[ProbeSpec, tuple[int, bytes | None]] = {}
        """Per fast probe: its address family and request bytes."""
        self.checks: dict[str, FastCheck] = {}
        """The callback-driven checks (http, tcp to an IP) under way, and their timers."""
        self.notify: NotifySocket | None = None
        if any(p.kind == "notify" for p in self.probes.values()):
            self.notify = self._open_notify((handed or {}).get("notify"))
        elif (handed or {}).get("notify"):
            with contextlib.suppress(OSError, KeyError, TypeError, ValueError):
                os.close(int(handed["notify"]["fd"]))  # type: ignore[index]

    # -- the spawn's environment ------------------------------------------------------
    def _open_notify(self, handed: dict[str, Any] | None) -> NotifySocket | None:
        ctx, name = self.svc.ctx, self.svc.name
        if isinstance(handed, dict):
            with contextlib.suppress(OSError, KeyError, TypeError, ValueError):
                return NotifySocket(Path(), "", ctx.loop, self._notified, handed=handed)
        base = ctx.runtime_dir or ctx.log_dir
        owner = None
        if self.svc.spec.user is not None:
            with contextlib.suppress(KeyError):
                pw = pwd.getpwnam(self.svc.spec.user)
                if os.geteuid() == 0:
                    owner = (pw.pw_uid, pw.pw_gid)
        try:
            return NotifySocket(base / "notify" / f"{name}.sock",
                                f"tuisup/{ctx.config_id}/{name}", ctx.loop, self._notified,
                                owner)
        except OSError as e:
            self.svc._notice("error", f"cannot make its NOTIFY_SOCKET: {e.strerror or e}")
            return None

    def env(self) -> dict[str, str]:
        """What the spawn's environment gets: NOTIFY_SOCKET, and WATCHDOG_USEC when a
        notify liveness probe expects pings (every `period`)."""
        if self.notify is None:
            return {}
        out = {"NOTIFY_SOCKET": self.notify.address}
        live = self.probes.get("liveness")
        if live is not None and live.kind == "notify":
            out["WATCHDOG_USEC"] = str(int(live.period * 1_000_000))
        return out

    # -- running ----------------------------------------------------------------------
    def start(self, spawned: float | None = None) -> None:
        """Run the probes of a spawn made at `spawned` (monotonic; None: now)."""
        self.spawned = spawned if spawned is not None else time.monotonic()
        self.last_output = time.monotonic()
        for name, spec in self.probes.items():
            if self._fast(spec):
                self._schedule(name, spec, self._first_delay(name, spec))
            elif spec.kind in LOOPED or (spec.kind == "notify" and name == "liveness"):
                self.tasks.append(asyncio.ensure_future(self._loop(name, spec)))
        startup = self.probes.get("startup")
        if startup is not None:
            self.tasks.append(asyncio.ensure_future(self._budget(startup)))
        self.svc._health_moved("", "")

    def close(self) -> None:
        """Stop everything of this spawn's probes (exec probes are killed as their task
        is cancelled)."""
        self.closed = True
        for t in self.tasks:
            t.cancel()
        self.tasks.clear()
        for timer in self.timers.values():
            timer.cancel()
        for check in tuple(self.checks.values()):
            check.cancel()
        self.timers.clear()
        self.checks.clear()
        for pid in self.exec_pids:  # at once: a detach execs before the tasks run again
            proc.signal_group(pid, signal.SIGKILL)
        if self.notify is not None:
            self.notify.close()
            self.notify = None

    async def _budget(self, spec: ProbeSpec) -> None:
        await asyncio.sleep(startup_budget(spec))
        self._act()

    @staticmethod
    def _first_delay(name: str, spec: ProbeSpec) -> float:
        delay = spec.initial_delay
        if name == "liveness":  # as the kubelet: a random phase, so that services started
            delay += random.random() * spec.period  # together are not probed together
        return delay

    # -- http and tcp to an IP: timers and callbacks (the common, hot case) ------------
    def _fast(self, spec: ProbeSpec) -> bool:
        """An http (not https) or tcp probe of an IP address: prepared once here."""
        target = spec.tcp if spec.kind == "tcp" else spec.http if spec.kind == "http" \
            else None
        if target is None or (spec.http is not None and spec.http.scheme != "http"):
            return False
        family = ip_family(target.host)
        if family is None:
            return False
        self._prepared[spec] = (family, http_request(spec.http) if spec.http else None)
        return True

    def _schedule(self, name: str, spec: ProbeSpec, delay: float) -> None:
        self.timers[name] = self.svc.ctx.loop.call_later(delay, self._tick, name, spec)

    def _tick(self, name: str, spec: ProbeSpec) -> None:
        self.timers.pop(name, None)
        if self.closed:
            return
        if name != "startup" and not self.started.is_set():
            self._schedule(name, spec, spec.period)  # suspended until startup passes
            return
        t0 = time.monotonic()

        def done(data: bytes | None, error: str | None) -> None:
            self.checks.pop(name, None)
            if error is not None or data is None:
                ok, out = False, self._where(spec) + (error or "")
            elif spec.http is not None:
                ok, out = http_verdict(spec.http, data)
            else:
                ok, out = True, f"connected to {self._where(spec)}"
            try:
                self.result(name, ok, out, time.monotonic() - t0)
            finally:
                if not self.closed and not (name == "startup" and self.tracks[name].passing):
                    self._schedule(name, spec, spec.period)

        family, request = self._prepared[spec]
        target = spec.http or spec.tcp
        assert target is not None
        try:
            self.checks[name] = FastCheck(self.svc.ctx.loop, target.host, target.port, request,
                                          spec.timeout, done, family)
        except OSError as e:  # no socket (out of fds): a failed check, tried again
            done(None, str(e))

    @staticmethod
    def _where(spec: ProbeSpec) -> str:
        """"connect to HOST:PORT: " for a tcp probe's errors ("" for http)."""
        if spec.tcp is not None:
            return f"connect to {spec.tcp.host}:{spec.tcp.port}: "
        return ""

    # -- the other kinds: one task each -------------------------------------------------
    async def _loop(self, name: str, spec: ProbeSpec) -> None:
        await asyncio.sleep(self._first_delay(name, spec))
        if name != "startup":
            await self.started.wait()
        if spec.kind in ("notify", "silence"):
            await asyncio.sleep(spec.period)  # (a ping, or output, takes a period)
        while not self.closed:
            t0 = time.monotonic()
            try:
                ok, out = await self._check(spec)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # a probe's bug is its failure, never the engine's
                ok, out = False, f"probe error: {type(e).__name__}: {e}"
            self.result(name, ok, out, time.monotonic() - t0)
            if name == "startup" and self.tracks[name].passing:
                return  # done for this spawn
            await asyncio.sleep(spec.period)

    async def _check(self, spec: ProbeSpec) -> Result:
        if spec.kind == "http":
            assert spec.http is not None
            return await http_check(spec.http, spec.timeout)
        if spec.kind == "tcp":
            assert spec.tcp is not None
            return await tcp_check(spec.tcp, spec.timeout)
        if spec.kind == "exec":
            s = self.svc.spec
            return await exec_check(spec.argv, env=s.env, cwd=str(s.cwd), user=s.user,
                                    timeout=spec.timeout, watcher=self.svc.ctx.watcher,
                                    running=self.exec_pids)
        if spec.kind == "silence":
            quiet = time.monotonic() - self.last_output
            if quiet >= spec.silence:
                return False, f"no output for {quiet:.0f}s (silence: {spec.silence:g}s)"
            return True, ""
        # notify liveness: a WATCHDOG=1 ping since the last check
        pings, self.pings = self.pings, 0
        if pings:
            return True, "WATCHDOG=1"
        return False, f"no WATCHDOG=1 ping in {spec.period:g}s"

    def result(self, name: str, ok: bool, output: str, duration: float | None) -> None:
        """Record one result; publish a change of health; restart if the verdict says."""
        if self.closed:
            return
        spec = self.probes[name]
        self.tracks[name] = record(self.tracks[name], ok, spec, output, duration)
        self.svc._probe_result(name, spec.kind, ok, duration)
        if name == "startup" and self.tracks[name].passing:
            self.started.set()
        self.svc._health_moved(name, output)
        self._act()

    def _act(self) -> None:
        if self.closed:
            return
        why = verdict(self.health, self.tracks, time.monotonic() - self.spawned)
        if why is not None and self.svc.end_for(why, topic="probe", data={"reason": why}):
            self.close()

    # -- handoff (code reload) --------------------------------------------------------
    def handoff(self) -> dict[str, Any]:
        """Stop, handing the results and the notify socket (its fd) to the next image."""
        notify, self.notify = self.notify, None
        out = {"tracks": {n: asdict(t) for n, t in self.tracks.items()},
               "log_ready": self.log_ready, "status": self.status,
               "notify": notify.handoff() if notify is not None else None}
        self.close()
        return out

    def restore(self, d: dict[str, Any]) -> None:
        """Carry on with the results of the earlier image (timers restart here)."""
        for name, t in d.get("tracks", {}).items():
            if name in self.tracks:
                with contextlib.suppress(TypeError):
                    self.tracks[name] = Track(**t)
        self.log_ready = bool(d.get("log_ready"))
        self.status = str(d.get("status", ""))
        if startup_passed(self.health, self.tracks):
            self.started.set()

    # -- told by the service ----------------------------------------------------------
    def on_output(self, segments: list[Any]) -> None:
        """Lines the service printed: the silence clock, and log probes."""
        self.last_output = time.monotonic()
        if not self._patterns or self.log_ready:
            return
        lines = b"".join(segments).decode("utf-8", "replace").splitlines()
        for name, pattern in self._patterns.items():
            for line in lines:
                if pattern.search(line):
                    self.log_ready = True
                    self._tell(name, True, line)
                    break

    def _tell(self, name: str, ok: bool, output: str) -> None:
        """A result that is a fact (a matched line, READY=1): it counts as enough
        successes (or failures) at once."""
        spec = self.probes[name]
        n = spec.success_threshold if ok else spec.failure_threshold
        for _ in range(n):
            self.result(name, ok, output, None)

    def _notified(self, pid: int | None, fields: dict[str, str]) -> None:
        if self.closed or not self._from_service(pid):
            return
        if "STATUS" in fields:
            self.status = fields["STATUS"]
        if "MAINPID" in fields and fields["MAINPID"].isdigit():
            self.main_pid = int(fields["MAINPID"])
        if fields.get("WATCHDOG") == "1":
            self.pings += 1
        for name, spec in self.probes.items():
            if spec.kind != "notify" or name == "liveness":
                continue
            if fields.get("READY") == "1":
                self._tell(name, True, "READY=1" + (f" {self.status}" if self.status else ""))
            elif fields.get("STOPPING") == "1" and name == "readiness":
                self._tell(name, False, "STOPPING=1")

    def _from_service(self, pid: int | None) -> bool:
        """A sender that is the service's main process or in its session (its children;
        `systemd-notify` run by its script)."""
        if pid is None:
            return False
        svc = self.svc
        if pid == svc.pid or pid in svc.daemon_pids or pid == self.main_pid:
            return True
        st = proc.stat(pid)
        return st is not None and svc.pgid is not None and st.session == svc.pgid
