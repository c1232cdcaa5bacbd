"""The control socket server: the engine's SupervisorAPI for other processes.

`<runtime_dir>/control.sock` (dir 0700, socket 0600), only the engine's own uid (and root)
may talk, checked with SO_PEERCRED. Each request runs as its own task, so a slow `stop`
does not hold up a `snapshot` on the same connection. A bad client (garbage, huge lines,
vanishing mid-stream, never reading, never asking) costs the engine at most one of
MAX_CONNECTIONS connections and byte-bounded subscriptions (bus.py); it is dropped,
never waited for (README "What a client can cost the engine").
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from tui_supervisor import __version__
from tui_supervisor.control import protocol as p
from tui_supervisor.engine.api import UnknownService
from tui_supervisor.engine.bus import SUB_MAX_BYTES, Subscription
from tui_supervisor.engine.events import Notice, Topic
from tui_supervisor.engine.extension import Extension
from tui_supervisor.engine.supervisor import Supervisor

MAX_CONNECTIONS = 128
"""Connections open at once; one more is refused with a `busy` error line. (A dashboard
holds two, a CLI verb one for its run.)"""
FIRST_REQUEST_TIMEOUT = 60.0
"""Seconds a new connection may stay without sending a complete request; then it is
closed with an `idle_timeout` error line. Once it has sent one it is never timed out
(a client may hold it between commands; a subscription may be quiet for hours)."""
REPLY_TIMEOUT = 60.0
"""Seconds a reply may wait for its client to read it before the connection is cut."""
WRITE_BUFFER = 64 * 1024
"""What the transport holds for a client beyond the kernel's socket buffer before the
engine waits for it to read (asyncio's high-water mark): a stream's next event is not
taken off the bus until the client has read down to a quarter of it."""
MAX_INFLIGHT = 64
"""Requests of one connection running at once."""
DROP_GRACE = 5.0
"""Seconds a dropped subscriber gets to read its notice before the connection is cut."""


async def _drain(writer: asyncio.StreamWriter, timeout: float) -> None:
    """Wait for the client to read what was written; cut it off after `timeout`."""
    try:
        async with asyncio.timeout(timeout):
            await writer.drain()
    except TimeoutError:
        writer.transport.abort()
        raise


async def _refuse(writer: asyncio.StreamWriter, code: str, message: str) -> None:
    """One error line (no id: it answers the connection), then the connection closes."""
    with contextlib.suppress(ConnectionError, OSError, TimeoutError):
        writer.write(p.encode(p.error(None, code, message)))
        await _drain(writer, 1.0)
    writer.transport.abort()


def peer_uid(sock: socket.socket) -> int:
    """The uid of the process at the other end of a Unix socket (SO_PEERCRED)."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid


def peer_allowed(uid: int, own_uid: int | None = None) -> bool:
    """Only the engine's own uid, and root, may use its socket."""
    return uid in (0, os.getuid() if own_uid is None else own_uid)


class BadArgs(Exception):
    pass


def _no_deps(args: dict[str, Any]) -> bool:
    value = args.get("no_deps", False)
    if not isinstance(value, bool):
        raise BadArgs("no_deps: expected true or false")
    return value


def _names(args: dict[str, Any], sup: Supervisor) -> list[str]:
    if args.get("all") is True:
        if "names" in args:
            raise BadArgs("give names or all, not both")
        return list(sup.services)
    if "all" in args and args["all"] is not False:
        raise BadArgs("all: expected true or false")
    names = args.get("names")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise BadArgs("names: expected a list of service names")
    return names


def _check_keys(args: dict[str, Any], allowed: set[str]) -> None:
    extra = sorted(set(args) - allowed)
    if extra:
        raise BadArgs(f"unexpected argument: {extra[0]}")


class ControlStats(Extension):
    """The socket's load in the snapshot (`engine.control`): connections open, the bus's
    subscribers and the bytes queued for them (a client that stopped reading shows)."""

    name = "control"

    def __init__(self, server: ControlServer) -> None:
        self.server = server

    def engine_view(self) -> dict[str, Any]:
        bus = self.server.sup.bus
        return {"connections": len(self.server._conns), "subscribers": bus.subscribers,
                "queued_bytes": bus.queued_bytes}


class ControlServer:
    """Serves one Supervisor on `<runtime_dir>/control.sock`."""

    def __init__(self, sup: Supervisor, runtime_dir: Path, *,
                 sub_max_bytes: int = SUB_MAX_BYTES,
                 max_connections: int = MAX_CONNECTIONS,
                 first_request_timeout: float = FIRST_REQUEST_TIMEOUT) -> None:
        self.sup = sup
        self.path = p.socket_path(runtime_dir)
        self.sub_max_bytes = sub_max_bytes
        self.max_connections = max_connections
        self.first_request_timeout = first_request_timeout
        self.stats = ControlStats(self)
        self._server: asyncio.AbstractServer | None = None
        self._inode: int | None = None
        self._conns: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self._silent: dict[asyncio.Task[None], None] = {}
        """Connections that have sent no request yet, oldest first (evicted first)."""
        self._requests: set[asyncio.Task[None]] = set()
        self._streams: dict[asyncio.StreamWriter, Any] = {}
        """Each subscribed connection and its subscription's request id (for the last
        word at close)."""
        self.own_uid = os.getuid()
        self.verbs: dict[str, Callable[[dict[str, Any]], Awaitable[Any]]] = {
            "snapshot": self._cmd_snapshot, "start": self._cmd_start,
            "stop": self._cmd_stop, "restart": self._cmd_restart,
            "signal": self._cmd_signal, "reload": self._cmd_reload, "logs": self._cmd_logs,
            "query": self._cmd_query, "reopen_logs": self._cmd_reopen_logs,
            "shutdown": self._cmd_shutdown, "scale": self._cmd_scale,
        }
        """Every verb but `subscribe` (a stream, handled apart)."""

    async def start(self) -> None:
        with p.bindable(self.path) as name:
            self._server = await asyncio.start_unix_server(self._serve, name,
                                                           limit=p.MAX_LINE)
        os.chmod(self.path, 0o600)
        self._inode = os.stat(self.path).st_ino
        if self.stats not in self.sup.extensions:
            self.sup.extensions.append(self.stats)  # a view only: nothing to start

    async def close(self, reason: str = "engine closing") -> None:
        """Stop listening, end every connection, remove the socket file.

        Each subscription first gets its end with `reason` and the engine's time, written
        only if the socket takes it at once (no wait: a code reload is not held up by a
        slow client). A client stamps the loss with that time rather than with when it
        noticed, which under load can be after the new image's first events."""
        if self.stats in self.sup.extensions:
            self.sup.extensions.remove(self.stats)
        if self._server is not None:
            self._server.close()
            self._server = None
        now = time.time()
        for writer, req_id in tuple(self._streams.items()):
            if writer.transport.get_write_buffer_size() == 0:  # (else a half line waits)
                with contextlib.suppress(Exception):
                    writer.write(p.encode(p.reply(req_id, {"end": reason, "t": now})))
        for writer in tuple(self._conns.values()):
            writer.transport.abort()
        if self._conns:
            await asyncio.wait(tuple(self._conns), timeout=5)
        with contextlib.suppress(OSError):
            if os.lstat(self.path).st_ino == self._inode:  # ours, not one bound since
                os.unlink(self.path)

    # -- one connection ---------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if len(self._conns) >= self.max_connections and self._silent:
            # make room: the oldest connection that never asked anything goes (else
            # idle connections could lock every client out until their timeout)
            oldest = next(iter(self._silent))
            self._silent.pop(oldest)
            old = self._conns.pop(oldest, None)  # (its task ends on its own)
            if old is not None:
                with contextlib.suppress(Exception):
                    old.write(p.encode(p.error(None, p.IDLE_TIMEOUT, "closed to make room: "
                                               "no request yet, and the engine is full")))
                old.transport.abort()
        if len(self._conns) >= self.max_connections:
            await _refuse(writer, p.BUSY, f"too many connections ({len(self._conns)} "
                          "open): try again when some have closed")
            return
        self._conns[task] = writer
        self._silent[task] = None
        writer.transport.set_write_buffer_limits(high=WRITE_BUFFER)
        streams: set[asyncio.Task[Any]] = set()
        inflight = asyncio.Semaphore(MAX_INFLIGHT)
        try:
            uid = peer_uid(writer.get_extra_info("socket"))
            if not peer_allowed(uid, self.own_uid):
                await _refuse(writer, p.PERMISSION_DENIED,
                              f"uid {uid} may not control this engine")
                return
            writer.write(p.encode(p.hello(os.getpid(), __version__)))
            await _drain(writer, REPLY_TIMEOUT)
            first = True
            while True:
                try:
                    async with asyncio.timeout(self.first_request_timeout if first
                                               else None):
                        line = await reader.readline()
                except ValueError:  # longer than MAX_LINE
                    await _refuse(writer, p.LINE_TOO_LONG,
                                  f"request longer than {p.MAX_LINE} bytes")
                    return
                except TimeoutError:
                    await _refuse(writer, p.IDLE_TIMEOUT, "no request in "
                                  f"{self.first_request_timeout:g}s: closing")
                    return
                if not line:
                    return
                if not line.strip():
                    continue
                first = False
                self._silent.pop(task, None)
                # commands run to the end even if the client goes; streams do not.
                # A client that pipelines more than MAX_INFLIGHT waits (it is not read).
                await inflight.acquire()
                t = asyncio.ensure_future(self._request(line, writer, streams))
                self._requests.add(t)
                t.add_done_callback(self._requests.discard)
                t.add_done_callback(lambda _t: inflight.release())
        except (TimeoutError, ConnectionError, OSError):
            pass
        finally:
            for t in tuple(streams):
                t.cancel()
            writer.transport.abort()
            self._conns.pop(task, None)
            self._silent.pop(task, None)

    async def _request(self, line: bytes, writer: asyncio.StreamWriter,
                       streams: set[asyncio.Task[Any]]) -> None:
        req_id: Any = None
        try:
            try:
                msg = p.decode(line)
                req_id = msg.get("id")
                if not (req_id is None or isinstance(req_id, str | int)) \
                        or isinstance(req_id, bool):
                    req_id = None
                    raise p.ProtocolError(p.BAD_REQUEST, "id: expected a string or number")
                cmd, args = msg.get("cmd"), msg.get("args", {})
                if not isinstance(cmd, str):
                    raise p.ProtocolError(p.BAD_REQUEST, "cmd: expected a string")
                if args is None:
                    args = {}
                if not isinstance(args, dict):
                    raise p.ProtocolError(p.BAD_ARGS, "args: expected an object")
                if cmd == "subscribe":
                    # (no local names this task: a cancelled task keeps its frames
                    # through its exception, and a cycle would keep them till a full GC)
                    streams.add(asyncio.current_task())  # type: ignore[arg-type]
                    try:
                        await self._subscribe(req_id, args, writer)
                    except ConnectionError:
                        pass  # the client went, or was cut off: not an engine failure
                    finally:
                        streams.discard(asyncio.current_task())
                    return
                handler = self.verbs.get(cmd)
                if handler is None:
                    raise p.ProtocolError(p.UNKNOWN_VERB, f"unknown command: {cmd[:100]}")
                out = p.reply(req_id, await handler(args))
            except p.ProtocolError as e:
                out = p.error(req_id, e.code, e.message)
            except BadArgs as e:
                out = p.error(req_id, p.BAD_ARGS, str(e))
            except UnknownService as e:
                out = p.error(req_id, p.UNKNOWN_SERVICE, str(e), service=e.args[0])
            except Exception as e:  # an engine bug: say so, keep serving
                out = p.error(req_id, p.INTERNAL, f"{type(e).__name__}: {e}")
                self.sup.bus.emit(Notice(time.time(), "error",
                                         f"control request failed: {type(e).__name__}: {e}",
                                         topic=Topic.CONTROL))
            if writer.transport.is_closing():
                return  # (writing to it would only log "socket.send() raised")
            writer.write(p.encode(out))
            await _drain(writer, REPLY_TIMEOUT)
        except (ConnectionError, OSError, TimeoutError):
            pass

    async def _subscribe(self, req_id: Any, args: dict[str, Any],
                         writer: asyncio.StreamWriter) -> None:
        """Snapshot first, then every event; the reply `{"end": reason}` ends it.

        The bus bounds what waits for this client (bus.py); here it is taken off the bus
        only as fast as the client reads (WRITE_BUFFER)."""
        _check_keys(args, {"logs"})
        logs = args.get("logs", True)
        if not isinstance(logs, bool):
            raise BadArgs("logs: expected true or false")
        sub = self.sup.subscribe_now(logs=logs, max_bytes=self.sub_max_bytes)
        self._streams[writer] = req_id
        try:
            async for item in sub:
                ev = item if isinstance(item, dict) else item.as_dict()
                writer.write(p.encode(p.event(req_id, ev)))
                del item, ev  # (what the client has not read is the transport's)
                await self._drain_stream(writer, sub)
            writer.write(p.encode(p.reply(req_id, {
                "end": "dropped: too slow" if sub.dropped else "engine closing"})))
            await self._drain_stream(writer, sub)
        finally:
            self._streams.pop(writer, None)
            sub.close()

    @staticmethod
    async def _drain_stream(writer: asyncio.StreamWriter, sub: Subscription) -> None:
        """Wait for the client to read, as long as it likes while it is subscribed (the
        bus drops it if it falls too far behind); once dropped, it has DROP_GRACE to
        read its notice before the connection is cut."""
        waited = 0.0
        while True:
            try:
                async with asyncio.timeout(0.5):
                    await writer.drain()
                return
            except TimeoutError:
                if sub.dropped:
                    waited += 0.5
                    if waited >= DROP_GRACE:
                        writer.transport.abort()
                        raise ConnectionAbortedError from None

    # -- verbs ------------------------------------------------------------------------
    async def _cmd_snapshot(self, args: dict[str, Any]) -> Any:
        _check_keys(args, set())
        return await self.sup.snapshot()

    async def _cmd_start(self, args: dict[str, Any]) -> Any:
        _check_keys(args, {"names", "all", "no_deps"})
        return await self.sup.start(_names(args, self.sup), no_deps=_no_deps(args))

    async def _cmd_stop(self, args: dict[str, Any]) -> Any:
        _check_keys(args, {"names", "all", "no_deps"})
        return await self.sup.stop(_names(args, self.sup), no_deps=_no_deps(args))

    async def _cmd_restart(self, args: dict[str, Any]) -> Any:
        _check_keys(args, {"names", "all", "rolling"})
        rolling = args.get("rolling", False)
        if not isinstance(rolling, bool):
            raise BadArgs("rolling: expected true or false")
        return await self.sup.restart(_names(args, self.sup), rolling=rolling)

    async def _cmd_scale(self, args: dict[str, Any]) -> Any:
        _check_keys(args, {"name", "n"})
        name, n = args.get("name"), args.get("n")
        if not isinstance(name, str):
            raise BadArgs("name: expected a replica group's name")
        if not isinstance(n, int) or isinstance(n, bool):
            raise BadArgs("n: expected a number of replicas")
        return await self.sup.scale(name, n)

    async def _cmd_signal(self, args: dict[str, Any]) -> Any:
        _check_keys(args, {"name", "sig"})
        name, sig = args.get("name"), args.get("sig")
        if not isinstance(name, str):
            raise BadArgs("name: expected a service name")
        if not isinstance(sig, str | int) or isinstance(sig, bool):
            raise BadArgs("sig: expected a signal name or number")
        try:
            return await self.sup.signal(name, sig)
        except ValueError as e:
            raise p.ProtocolError(p.BAD_SIGNAL, str(e)) from None

    async def _cmd_reload(self, args: dict[str, Any]) -> Any:
        _check_keys(args, {"code"})
        if args.get("code") is True:
            return await self.sup.reload_code()
        return await self.sup.reload()

    async def _cmd_shutdown(self, args: dict[str, Any]) -> Any:
        _check_keys(args, set())
        return await self.sup.shutdown()

    async def _cmd_reopen_logs(self, args: dict[str, Any]) -> Any:
        _check_keys(args, set())
        return await self.sup.reopen_logs()

    async def _cmd_logs(self, args: dict[str, Any]) -> Any:
        _check_keys(args, {"names", "n"})
        names = args.get("names")
        if names is not None and (not isinstance(names, list)
                                  or not all(isinstance(x, str) for x in names)):
            raise BadArgs("names: expected a list of service names or null")
        n = args.get("n", 100)
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise BadArgs("n: expected a count >= 0")
        return await self.sup.logs(names, n)

    async def _cmd_query(self, args: dict[str, Any]) -> Any:
        _check_keys(args, {"extension", "what", "args"})
        ext, what, qargs = args.get("extension"), args.get("what"), args.get("args") or {}
        if not isinstance(ext, str) or not isinstance(what, str):
            raise BadArgs("extension, what: expected names")
        if not isinstance(qargs, dict):
            raise BadArgs("args: expected an object")
        try:
            return await self.sup.query(ext, what, qargs)
        except ValueError as e:
            raise BadArgs(str(e)) from None
