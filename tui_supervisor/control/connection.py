"""One connection to an engine's control socket: the hello, then requests out and their
replies and stream items routed back by request id."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from tui_supervisor.control import protocol as p
from tui_supervisor.control.errors import (
    AccessDenied,
    ControlError,
    NotRunning,
    raise_reply_error,
)

END = object()
"""Put on every request's queue when the connection ends."""


class Connection:
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
    async def open(cls, path: Path) -> Connection:
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
            raise_reply_error(msg.get("error"))
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
                q.put_nowait(END)

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
                if msg is END:
                    raise NotRunning("the engine closed the connection")
                if "ok" in msg:
                    if not msg["ok"]:
                        raise_reply_error(msg.get("error"))
                    return msg.get("result")
        finally:
            self._queues.pop(req_id, None)

    async def stream(self, cmd: str, args: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        req_id, q = await self.request(cmd, args)
        try:
            while True:
                msg = await q.get()
                if msg is END:
                    return
                if "event" in msg:
                    yield msg["event"]
                elif "ok" in msg:
                    if not msg["ok"]:
                        raise_reply_error(msg.get("error"))
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
