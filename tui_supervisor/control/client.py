"""RemoteSupervisor: the SupervisorAPI of an engine in another process, over its socket.

Errors come back as the exceptions the in-process engine raises (UnknownService,
ValueError for a bad signal), plus NotRunning (no engine listens) and PermissionError.

With a `Reconnect` policy a subscription outlives its connection (a code reload closes
the socket for a moment): it says so with `{"kind": "connection", "state": "lost" |
"restored" | "gave_up", "message"}` items (`views.ConnectionEvent`; a "lost" one carries
`safe_mode` while the engine waits in safe mode for fixed code), and after a reconnect
gives the new snapshot, then the log lines written in between (replayed by offset: none
lost, none twice).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal, cast

from tui_supervisor.control import protocol as p
from tui_supervisor.control.resume import LogMarks, Reconnect, delays
from tui_supervisor.engine import proc
from tui_supervisor.engine.api import UnknownService
from tui_supervisor.engine.events import Topic
from tui_supervisor.engine.runtime import read_lock_pid
from tui_supervisor.engine.views import (
    CodeReloadResult,
    ConnectionEvent,
    EventView,
    LogLine,
    NoticeEvent,
    ReloadResult,
    RestartResult,
    SafeModeInfo,
    SignalResult,
    Snapshot,
    SnapshotEvent,
    StartResult,
    StopResult,
)

_END = object()
HELLO_WAIT = 5.0
SAFE_MODE_POLL = 1.0
"""Seconds between asks while the engine is in safe mode."""


class AccessDenied(PermissionError):
    """The engine's socket or the engine refused this user; `str()` says so in full."""


class NotRunning(Exception):
    """No engine listens on this runtime dir's socket."""


class ControlError(Exception):
    """An error reply that maps to no engine exception (bad request, internal, ...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class InSafeMode(ControlError):
    """The engine is in safe mode (reload/safe.py): its new code failed at start-up, the
    services keep running; only `reload_code` is answered."""

    def __init__(self, message: str, info: Any) -> None:
        super().__init__(p.SAFE_MODE, message)
        self.info = safe_mode_info(message, info)


def safe_mode_info(message: str, marker: Any) -> SafeModeInfo:
    """What a safe mode says about itself, from its reply's `safe_mode` marker. A safe
    mode started from the previous code's copy of safe.py (the first code reload after
    an upgrade) has no marker, only its message: then the summary is the message's first
    part (its text up to "; its N services keep running"), the other fields None."""
    if isinstance(marker, dict) and isinstance(marker.get("why"), str):
        mins = float(marker.get("seconds") or 0.0) / 60
        pid, why = marker.get("pid"), marker["why"]
        return {"pid": pid, "seconds": marker.get("seconds"), "why": why,
                "services": marker.get("services"),
                "summary": f"in safe mode for {mins:.1f} min (pid {pid}): the new code "
                           f"failed at start-up ({why})"}
    return {"pid": None, "seconds": None, "why": None, "services": None,
            "summary": message.split("; its ")[0]}  # (text fallback: see above)


def _raise(err: Any) -> None:
    if not isinstance(err, dict):
        raise ControlError(p.BAD_REQUEST, f"malformed error: {err!r}")
    code, message = str(err.get("code")), str(err.get("message"))
    if code == p.SAFE_MODE:
        raise InSafeMode(message, err.get("safe_mode"))
    if code == p.UNKNOWN_SERVICE:
        raise UnknownService(err.get("service") or message)
    if code == p.BAD_SIGNAL:
        raise ValueError(message)
    if code == p.PERMISSION_DENIED:
        raise AccessDenied(f"permission denied: {message}")
    raise ControlError(code, message)


class _Conn:
    """One socket connection: requests out, replies and stream items routed by id."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 hello: dict[str, Any]) -> None:
        self.reader, self.writer, self.hello = reader, writer, hello
        self._ids = itertools.count(1)
        self._queues: dict[int, asyncio.Queue[Any]] = {}
        self._task = asyncio.ensure_future(self._read())
        self.closed = False
        self.closed_at: float | None = None
        """Wall time the engine's end of the connection went (its stream ended then)."""
        self.opened = time.monotonic()

    @classmethod
    async def open(cls, path: Path) -> _Conn:
        try:
            with p.bindable(path) as name:
                reader, writer = await asyncio.open_unix_connection(
                    name, limit=p.CLIENT_MAX_LINE)
        except (FileNotFoundError, ConnectionRefusedError, NotADirectoryError):
            raise NotRunning(f"no engine is listening on {path}") from None
        except PermissionError as e:
            raise AccessDenied(f"permission denied: {path}: {e.strerror}") from None
        try:
            line = await reader.readline()
        except (ConnectionError, ValueError) as e:
            writer.close()
            raise NotRunning(f"engine at {path} did not answer: {e}") from None
        except asyncio.CancelledError:
            writer.close()
            raise
        if not line:
            writer.close()
            raise NotRunning(f"engine at {path} closed the connection")
        msg = p.decode(line)
        if msg.get("ok") is False:
            writer.close()
            _raise(msg.get("error"))
        if msg.get("hello") != "tui-supervisor" or msg.get("protocol") != p.PROTOCOL_VERSION:
            writer.close()
            raise ControlError(p.BAD_REQUEST, f"unsupported engine hello: {msg}")
        return cls(reader, writer, msg)

    async def _read(self) -> None:
        try:
            while True:
                line = await self.reader.readline()
                if not line:
                    break
                msg = p.decode(line)
                q = self._queues.get(msg.get("id"))  # type: ignore[arg-type]
                if q is not None:
                    q.put_nowait(msg)
        except (ConnectionError, ValueError, p.ProtocolError):
            pass
        finally:
            self.closed = True
            self.closed_at = time.time()
            for q in self._queues.values():
                q.put_nowait(_END)

    async def request(self, cmd: str, args: dict[str, Any]) -> tuple[int, asyncio.Queue[Any]]:
        if self.closed:
            raise NotRunning("the engine closed the connection")
        req_id = next(self._ids)
        q: asyncio.Queue[Any] = asyncio.Queue()
        self._queues[req_id] = q
        self.writer.write(p.encode({"id": req_id, "cmd": cmd, "args": args}))
        try:
            await self.writer.drain()
        except ConnectionError:
            raise NotRunning("the engine closed the connection") from None
        return req_id, q

    def forget(self, req_id: int) -> None:
        self._queues.pop(req_id, None)

    async def call(self, cmd: str, args: dict[str, Any]) -> Any:
        req_id, q = await self.request(cmd, args)
        try:
            while True:
                msg = await q.get()
                if msg is _END:
                    raise NotRunning("the engine closed the connection")
                if "ok" in msg:
                    if not msg["ok"]:
                        _raise(msg.get("error"))
                    return msg.get("result")
        finally:
            self._queues.pop(req_id, None)

    async def stream(self, cmd: str, args: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        req_id, q = await self.request(cmd, args)
        try:
            while True:
                msg = await q.get()
                if msg is _END:
                    return
                if "event" in msg:
                    yield msg["event"]
                elif "ok" in msg:
                    if not msg["ok"]:
                        _raise(msg.get("error"))
                    return
        finally:
            self._queues.pop(req_id, None)

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()


class RemoteSupervisor:
    """SupervisorAPI over `<runtime_dir>/control.sock`. Connects on first use; each
    subscription gets its own connection, closed when the iterator is. With `reconnect`,
    subscriptions ride out the engine going away for a while (see the module doc)."""

    def __init__(self, runtime_dir: Path | str, *, reconnect: Reconnect | None = None
                 ) -> None:
        self.path = p.socket_path(Path(runtime_dir))
        self.reconnect = reconnect
        self._conn: _Conn | None = None
        self._lock = asyncio.Lock()

    async def connect(self) -> dict[str, Any]:
        """Connect (if not yet) and return the engine's hello."""
        async with self._lock:
            if self._conn is None or self._conn.closed:
                self._conn = await _Conn.open(self.path)
            return self._conn.hello

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def _drop_stale(self, before: float) -> None:
        """Close the request connection if it was opened before `before` (it went to an
        engine image that is gone): the next call opens a new one."""
        conn = self._conn
        if conn is not None and conn.opened < before:
            self._conn = None
            await conn.close()

    async def __aenter__(self) -> RemoteSupervisor:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _call(self, cmd: str, **args: Any) -> Any:
        await self.connect()
        assert self._conn is not None
        return await self._conn.call(cmd, args)

    # -- SupervisorAPI ----------------------------------------------------------------
    # (replies are the engine's views as JSON: typed as such, not re-checked here)
    async def snapshot(self) -> Snapshot:
        return cast(Snapshot, await self._call("snapshot"))

    async def subscribe(self, *, logs: bool = True) -> AsyncIterator[EventView]:
        conn = await _Conn.open(self.path)
        if self.reconnect is None:
            return _closing(conn, conn.stream("subscribe", {"logs": logs}))
        return _Resuming(self, conn, logs, self.reconnect).events()

    async def start(self, names: list[str]) -> StartResult:
        return cast(StartResult, await self._call("start", names=list(names)))

    async def stop(self, names: list[str]) -> StopResult:
        return cast(StopResult, await self._call("stop", names=list(names)))

    async def restart(self, names: list[str]) -> RestartResult:
        return cast(RestartResult, await self._call("restart", names=list(names)))

    async def signal(self, name: str, sig: int | str) -> SignalResult:
        return cast(SignalResult, await self._call("signal", name=name, sig=sig))

    async def reload(self) -> ReloadResult:
        return cast(ReloadResult, await self._call("reload"))

    async def reload_code(self) -> CodeReloadResult:
        return cast(CodeReloadResult, await self._call("reload", code=True))

    async def logs(self, names: list[str] | None = None, n: int = 100) -> list[LogLine]:
        return cast(list[LogLine], await self._call(
            "logs", names=list(names) if names is not None else None, n=n))

    async def query(self, extension: str, what: str,
                    args: dict[str, Any] | None = None) -> Any:
        try:
            return await self._call("query", extension=extension, what=what, args=args or {})
        except ControlError as e:
            if e.code == p.BAD_ARGS:
                raise ValueError(str(e)) from None
            raise


async def _closing(conn: _Conn, it: AsyncIterator[dict[str, Any]]
                   ) -> AsyncIterator[EventView]:
    try:
        async for ev in it:
            yield cast(EventView, ev)
    finally:
        await conn.close()


class _GaveUp(Exception):
    pass


def engine_alive(runtime_dir: Path) -> int | None:
    """The pid the config's engine lock names, if that process is alive (not a zombie).
    Read from the file, without taking the lock (that could make an engine starting at
    this moment think another one runs)."""
    pid = read_lock_pid(runtime_dir / "engine.lock")
    st = proc.stat(pid) if pid else None
    return pid if st is not None and st.state != "Z" else None


class _Resuming:
    """One subscription across reconnects (RemoteSupervisor(reconnect=...).subscribe)."""

    def __init__(self, client: RemoteSupervisor, conn: _Conn, logs: bool,
                 policy: Reconnect) -> None:
        self.client, self.conn, self.logs, self.policy = client, conn, logs, policy
        self.pid = conn.hello.get("pid")
        self.marks = LogMarks()
        self.ended: str | None = None
        """Why the engine ended the last stream (None: the connection was cut)."""

    async def events(self) -> AsyncIterator[EventView]:
        try:
            lost_at: float | None = None
            alive_at = 0.0  # the last answer from an engine in safe mode
            said = ""
            while True:
                safe: InSafeMode | None = None
                try:
                    async for ev in self._one(lost_at):
                        if ev["kind"] == "connection":  # restored
                            lost_at, said = None, ""
                        yield ev
                except NotRunning:
                    self.ended = None
                except InSafeMode as e:
                    safe, self.ended = e, None
                if self.ended is not None and self.ended.startswith("dropped"):
                    return  # too slow for the engine: reconnecting would not help
                if lost_at is None:
                    lost_at = time.monotonic()
                message = f"the engine is {safe}" if safe is not None else \
                    "engine went away (reloading?): reconnecting…"
                if message != said:
                    said = message  # (stamped when it happened, not when read: the
                    lost = _link("lost", message, self.conn.closed_at)  # event log's order)
                    if safe is not None:
                        lost["safe_mode"] = safe.info
                    yield lost
                try:
                    if safe is not None:  # alive, waiting for fixed code: ask again soon,
                        await asyncio.sleep(SAFE_MODE_POLL)  # for as long as it takes
                        alive_at = time.monotonic()
                    await self._reopen(max(lost_at, alive_at))
                except _GaveUp as e:
                    yield _link("gave_up", str(e))
                    return
        finally:
            await self.conn.close()

    async def _one(self, lost_at: float | None) -> AsyncIterator[EventView]:
        """One subscription on `self.conn`. After a reconnect (`lost_at` set) its snapshot
        is followed by the lines missed in between and a "restored" item."""
        self.ended = None
        req_id, q = await self.conn.request("subscribe", {"logs": self.logs})
        first = True
        try:
            while True:
                msg = await q.get()
                if msg is _END:
                    return
                if "ok" in msg:
                    if not msg["ok"]:
                        _raise(msg.get("error"))
                    self.ended = str((msg.get("result") or {}).get("end") or "ended")
                    return
                item = msg.get("event")
                if not isinstance(item, dict):
                    continue
                ev = cast(EventView, item)
                if first and ev["kind"] == "snapshot":
                    first = False
                    yield ev
                    if lost_at is not None:
                        for item in await self._replay(ev):
                            yield item
                    self.marks.from_snapshot(ev)
                    if lost_at is not None:
                        yield self._restored(ev, time.monotonic() - lost_at)
                    continue
                if ev["kind"] == "log":
                    self.marks.saw(ev)
                yield ev
        finally:
            self.conn.forget(req_id)

    def _restored(self, snap: SnapshotEvent, down: float) -> ConnectionEvent:
        pid = snap["engine"].get("pid", self.conn.hello.get("pid"))
        same = pid == self.pid
        self.pid = pid
        ev = _link("restored", f"reconnected to the engine after {down:.1f}s"
                   + ("" if same else f" (a new engine, pid {pid})"))
        ev["pid"], ev["same_engine"], ev["down"] = pid, same, down
        return ev

    async def _replay(self, snap: SnapshotEvent) -> list[EventView]:
        """Log events for what was written while disconnected (same engine only: offsets
        of another engine are not comparable), plus a warning per service whose lines
        are no longer all in the engine's memory."""
        pid = snap["engine"].get("pid")
        gaps = self.marks.gaps(snap) if self.logs and pid == self.pid else []
        if not gaps:
            return []
        upto = {s["name"]: int(s.get("log_offset") or 0) for s in snap["services"]}
        try:
            history = cast(list[LogLine], await self.conn.call(
                "logs", {"names": gaps, "n": self.policy.replay_lines}))
        except (NotRunning, ControlError, UnknownService) as e:
            return [_notice(None, f"output written while reconnecting not replayed: {e}",
                            None)]
        out: list[EventView] = []
        notices: list[EventView] = []
        for name in gaps:
            events, lost = self.marks.replay(name, history, upto[name])
            out.extend(events)
            if lost:
                notices.append(_notice(name, f"{lost} bytes of output written while "
                                             "reconnecting not replayed (in its log file)",
                                       lost))
        out.sort(key=lambda ev: cast(float, ev.get("t")))
        return out + notices

    async def _reopen(self, lost_at: float) -> None:
        """Connect again, retrying while an engine holds the config's lock; _GaveUp when
        none does, or after the policy's bound."""
        await self.client._drop_stale(lost_at)
        await self.conn.close()
        runtime_dir = self.client.path.parent
        deadline = lost_at + self.policy.give_up_after
        for delay in delays(self.policy):
            try:  # bounded: a socket that accepts but never says hello is not an engine
                self.conn = await asyncio.wait_for(_Conn.open(self.client.path), HELLO_WAIT)
                return
            except (NotRunning, TimeoutError):
                pass
            except (PermissionError, ControlError) as e:
                raise _GaveUp(f"cannot reconnect to the engine: {e}") from None
            if engine_alive(runtime_dir) is None:
                raise _GaveUp("the engine stopped: not reconnecting") from None
            if time.monotonic() + delay > deadline:
                raise _GaveUp(f"the engine did not come back within "
                              f"{self.policy.give_up_after:g}s: not reconnecting") from None
            await asyncio.sleep(delay)


def _link(state: Literal["lost", "restored", "gave_up"], message: str,
          t: float | None = None) -> ConnectionEvent:
    return {"kind": "connection", "t": time.time() if t is None else t, "state": state,
            "message": message}


def _notice(service: str | None, message: str, lost: int | None) -> NoticeEvent:
    return {"kind": "notice", "t": time.time(), "level": "warning", "service": service,
            "message": message, "topic": Topic.REPLAY_GAP.value,
            "data": None if lost is None else {"bytes": lost}}


def runtime_dir_for(config_path: str | os.PathLike[str]) -> Path:
    """Where the engine of a config listens. Found from the config even when it no longer
    validates (an edit with a typo must not cut the user off from the running engine):
    then from its path, and its `settings.runtime_dir` if that can still be read.
    A missing or unreadable file raises ConfigError."""
    import yaml

    from tui_supervisor.config import ConfigError, load_config
    from tui_supervisor.config.loader import default_dirs, make_config_id
    from tui_supervisor.config.reader import expand_path
    from tui_supervisor.config.units import interpolate

    try:
        return load_config(config_path).settings.runtime_dir
    except ConfigError as e:
        error = e
    path = Path(os.path.abspath(os.path.expanduser(config_path)))
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError):
        raise error from None
    path = path.resolve()
    _state, run = default_dirs(make_config_id(path), os.environ)
    with contextlib.suppress(Exception):
        value = yaml.safe_load(text)["settings"]["runtime_dir"]
        if isinstance(value, str):
            run = expand_path(interpolate(value, os.environ), path.parent, os.environ)
    return run
