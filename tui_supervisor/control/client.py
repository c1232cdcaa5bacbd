"""RemoteSupervisor: the SupervisorAPI of an engine in another process, over its socket.

Errors come back as the exceptions the in-process engine raises (UnknownService,
ValueError for a bad signal), plus NotRunning (no engine listens) and PermissionError.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from tui_supervisor.control import protocol as p
from tui_supervisor.engine.api import UnknownService

_END = object()


class NotRunning(Exception):
    """No engine listens on this runtime dir's socket."""


class ControlError(Exception):
    """An error reply that maps to no engine exception (bad request, internal, ...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _raise(err: Any) -> None:
    if not isinstance(err, dict):
        raise ControlError(p.BAD_REQUEST, f"malformed error: {err!r}")
    code, message = str(err.get("code")), str(err.get("message"))
    if code == p.UNKNOWN_SERVICE:
        raise UnknownService(err.get("service") or message)
    if code == p.BAD_SIGNAL:
        raise ValueError(message)
    if code == p.PERMISSION_DENIED:
        raise PermissionError(f"permission denied: {message}")
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

    @classmethod
    async def open(cls, path: Path) -> _Conn:
        try:
            with p.bindable(path) as name:
                reader, writer = await asyncio.open_unix_connection(
                    name, limit=p.CLIENT_MAX_LINE)
        except (FileNotFoundError, ConnectionRefusedError, NotADirectoryError):
            raise NotRunning(f"no engine is listening on {path}") from None
        except PermissionError as e:
            raise PermissionError(f"permission denied: {path}: {e.strerror}") from None
        try:
            line = await reader.readline()
        except (ConnectionError, ValueError) as e:
            writer.close()
            raise NotRunning(f"engine at {path} did not answer: {e}") from None
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
    subscription gets its own connection, closed when the iterator is."""

    def __init__(self, runtime_dir: Path | str) -> None:
        self.path = p.socket_path(Path(runtime_dir))
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
    async def snapshot(self) -> dict[str, Any]:
        return await self._call("snapshot")  # type: ignore[no-any-return]

    async def subscribe(self, *, logs: bool = True) -> AsyncIterator[dict[str, Any]]:
        conn = await _Conn.open(self.path)
        return _closing(conn, conn.stream("subscribe", {"logs": logs}))

    async def start(self, names: list[str]) -> dict[str, Any]:
        return await self._call("start", names=list(names))  # type: ignore[no-any-return]

    async def stop(self, names: list[str]) -> dict[str, Any]:
        return await self._call("stop", names=list(names))  # type: ignore[no-any-return]

    async def restart(self, names: list[str]) -> dict[str, Any]:
        return await self._call("restart", names=list(names))  # type: ignore[no-any-return]

    async def signal(self, name: str, sig: int | str) -> dict[str, Any]:
        return await self._call("signal", name=name, sig=sig)  # type: ignore[no-any-return]

    async def reload(self) -> dict[str, Any]:
        return await self._call("reload")  # type: ignore[no-any-return]

    async def reload_code(self) -> dict[str, Any]:
        return await self._call("reload", code=True)  # type: ignore[no-any-return]

    async def logs(self, names: list[str] | None = None, n: int = 100) -> list[dict[str, Any]]:
        return await self._call(  # type: ignore[no-any-return]
            "logs", names=list(names) if names is not None else None, n=n)

    async def query(self, extension: str, what: str,
                    args: dict[str, Any] | None = None) -> Any:
        try:
            return await self._call("query", extension=extension, what=what, args=args or {})
        except ControlError as e:
            if e.code == p.BAD_ARGS:
                raise ValueError(str(e)) from None
            raise


async def _closing(conn: _Conn, it: AsyncIterator[dict[str, Any]]
                   ) -> AsyncIterator[dict[str, Any]]:
    try:
        async for ev in it:
            yield ev
    finally:
        await conn.close()


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
