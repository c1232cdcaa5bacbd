"""Probe checks: one `http`, `tcp` or `exec` check, bounded by its timeout, never
blocking the event loop.

http is a hand-written HTTP/1.1 GET on a non-blocking socket (`loop.sock_*`; https over
`asyncio.open_connection` with TLS): no thread per check
(200 services probed every second would need a pool whose threads cannot be stopped at
a timeout), no new dependency, and cancelling it at the timeout closes the socket.
exec runs the command as a child of the engine in its own session, watched and reaped
by the engine's `ChildWatcher`; at its timeout (or when the probe is stopped) its whole
process group is killed, and it is counted as a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import os
import re
import signal
import socket
import ssl
import struct
from collections.abc import Callable, Mapping
from typing import Any

from tui_supervisor.config.schema import HttpProbe, TcpProbe
from tui_supervisor.engine import proc
from tui_supervisor.engine.health import OUTPUT_MAX
from tui_supervisor.engine.policies import ExitInfo
from tui_supervisor.engine.reaper import ChildWatcher

BODY_MAX = 64 * 1024
"""Bytes of a response read at most; past them the connection is reset."""
REAP_GRACE = 5.0
"""Seconds to wait for a killed exec probe to be reaped."""
SESSION_LINGER = 2.0
"""Seconds an exec probe's session stays one the engine reaps orphans of, after it
ended (its killed grandchildren become the subreaper's zombies a moment later)."""

Result = tuple[bool, str]
"""(passed, output or the error in words)."""


def _insecure() -> ssl.SSLContext:
    """As Kubernetes: an https probe does not verify the certificate (a local
    self-signed one is the common case); it checks the service answers."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


_SSL: ssl.SSLContext | None = None


async def _connect(host: str, port: int) -> socket.socket:
    """A connected non-blocking TCP socket. An IP literal (the usual 127.0.0.1) skips
    getaddrinfo, which asyncio runs in a thread: the thread hop was most of a check's
    CPU (bench/probes.py)."""
    loop = asyncio.get_running_loop()
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
        addrs: list[tuple[int, Any]] = [(family, (host, port))]
    except ValueError:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addrs = [(info[0], info[4]) for info in infos]
    error: OSError | None = None
    for fam, addr in addrs:
        sock = socket.socket(fam, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            sock.setblocking(False)
            await loop.sock_connect(sock, addr)
            return sock
        except OSError as e:
            sock.close()
            error = e
        except BaseException:
            sock.close()
            raise
    raise error or OSError(f"cannot resolve {host}")


async def http_check(spec: HttpProbe, timeout: float) -> Result:
    """GET the URL: passes on a status in `status` (else 200-399) whose body holds
    `body` (if given)."""
    request = http_request(spec)
    try:
        async with asyncio.timeout(timeout):
            if spec.scheme == "https":
                data = await _https(spec, request)
            else:
                data = await _plain(spec, request)
    except TimeoutError:
        return False, f"timed out after {timeout:g}s"
    except (OSError, ssl.SSLError, ValueError, UnicodeError) as e:
        return False, _words(e)
    return http_verdict(spec, data)


def http_request(spec: HttpProbe) -> bytes:
    host = spec.host if spec.port in (80, 443) else f"{spec.host}:{spec.port}"
    head = [f"GET {spec.path} HTTP/1.1", f"Host: {host}", "User-Agent: tui-supervisor-probe",
            "Connection: close", *(f"{k}: {v}" for k, v in spec.headers)]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")


def http_verdict(spec: HttpProbe, data: bytes) -> Result:
    """What a response's first bytes say."""
    status_line, _, rest = data.partition(b"\r\n")
    parts = status_line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        return False, f"not an HTTP response: {status_line[:80]!r}"
    code = int(parts[1])
    body = rest.partition(b"\r\n\r\n")[2]
    text = status_line.decode("latin-1").strip()
    ok = code in spec.status if spec.status else 200 <= code <= 399
    if ok and spec.body is not None and spec.body.encode() not in body:
        return False, f"{text}: body lacks {spec.body!r}"
    return ok, text + ("" if ok or not body else f": {body[:200].decode('utf-8', 'replace')}")


def ip_family(host: str) -> int | None:
    """AF_INET or AF_INET6 for an IP address, None for a name."""
    try:
        return socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        return None


class FastCheck:
    """One plain-http or tcp check to an IP address, driven by the loop's reader/writer
    callbacks: no task, no future, no coroutine per step. Half the CPU of the coroutine
    form (bench/probes.py: 200 services probed every second). `done(result, None)`
    once, unless cancelled."""

    def __init__(self, loop: asyncio.AbstractEventLoop, host: str, port: int,
                 request: bytes | None, timeout: float,
                 done: Callable[[bytes | None, str | None], None],
                 family: int = socket.AF_INET) -> None:
        """`family`: AF_INET6 for an IPv6 `host` (`ip_family`)."""
        self.loop, self.request, self.done = loop, request, done
        self.timeout = timeout
        self.data = b""
        self.writing = False
        """Registered for writable (still connecting)."""
        self.sock = socket.socket(family, socket.SOCK_STREAM | socket.SOCK_NONBLOCK
                                  | socket.SOCK_CLOEXEC)
        self.fd = self.sock.fileno()
        self.timer = loop.call_later(timeout, self._timed_out)
        err = self.sock.connect_ex((host, port))
        if err not in (0, errno.EINPROGRESS):
            self.loop.call_soon(self._finish, None, os.strerror(err))
            return
        if request is not None:
            # Send at once: a loopback connection is usually up when connect returns,
            # which saves waiting for writable (two epoll_ctl and a getsockopt a check).
            try:
                self.sock.send(request)
            except (BlockingIOError, InterruptedError):
                pass  # still connecting: as below
            except OSError as e:
                if e.errno != errno.ENOTCONN:
                    self.loop.call_soon(self._finish, None, _words(e))
                    return
            else:
                loop.add_reader(self.fd, self._readable)
                return
        self.writing = True
        loop.add_writer(self.fd, self._connected)

    def _timed_out(self) -> None:
        self._finish(None, f"timed out after {self.timeout:g}s")

    def cancel(self) -> None:
        self.done = _ignore
        self._finish(None, "cancelled")

    def _finish(self, data: bytes | None, error: str | None) -> None:
        if self.fd < 0:
            return
        if self.writing:
            self.loop.remove_writer(self.fd)
        self.loop.remove_reader(self.fd)
        self.timer.cancel()
        with contextlib.suppress(OSError):  # close with a reset: no FIN exchange, no
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)  # TIME_WAIT
        self.sock.close()
        self.fd = -1
        self.done(data, error)

    def _connected(self) -> None:
        err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self._finish(None, os.strerror(err))
            return
        if self.request is None:  # tcp: connecting was the check
            self._finish(b"", None)
            return
        self.loop.remove_writer(self.fd)
        self.writing = False
        try:
            self.sock.send(self.request)  # a few hundred bytes: an empty socket takes them
        except OSError as e:
            self._finish(None, _words(e))
            return
        self.loop.add_reader(self.fd, self._readable)

    def _readable(self) -> None:
        # Two reads at most per wake-up: a server writes its head and body apart (Python's
        # http.server does), and the body is usually in by the time the head is read; a
        # second recv is cheaper than another turn of the loop.
        for _ in range(2):
            try:
                chunk = self.sock.recv(65536)
            except BlockingIOError:
                return
            except OSError as e:
                self._finish(None, _words(e))
                return
            self.data += chunk
            if not chunk or len(self.data) >= BODY_MAX or response_complete(self.data):
                self._finish(self.data, None)
                return


_RESET = struct.pack("ii", 1, 0)
"""SO_LINGER on, 0 s: close() resets the connection. 200 checks a second would leave
12 000 sockets in TIME_WAIT, and the FIN handshake is CPU on both sides."""


_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)
_CHUNKED = re.compile(rb"\r\ntransfer-encoding:[^\r]*chunked", re.IGNORECASE)


def response_complete(data: bytes) -> bool:
    """Whether `data` holds a whole HTTP response (head, and the body its Content-Length
    or chunked framing says; a response with neither ends at EOF). A check reads the
    whole response before it closes: a reset while the service still writes its body
    puts a "Connection reset by peer" traceback in the service's log at every check
    (Python's http.server does), as if the probe were a failing client."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    code = head[9:12]
    if code in (b"204", b"304") or code[:1] == b"1":
        return True
    if (m := _LENGTH.search(head)) is not None:
        return len(body) >= int(m.group(1))
    if _CHUNKED.search(head) is not None:
        return body.endswith(b"0\r\n\r\n")
    return False


def _ignore(_data: bytes | None, _error: str | None) -> None:
    pass


async def _plain(spec: HttpProbe, request: bytes) -> bytes:
    """The response (up to BODY_MAX), read on a raw socket."""
    loop = asyncio.get_running_loop()
    sock = await _connect(spec.host, spec.port)
    try:
        await loop.sock_sendall(sock, request)
        data = b""
        while len(data) < BODY_MAX:
            chunk = await loop.sock_recv(sock, 65536)
            if not chunk:
                break
            data += chunk
            if response_complete(data):
                break
        return data
    finally:
        sock.close()


async def _https(spec: HttpProbe, request: bytes) -> bytes:
    global _SSL
    if _SSL is None:
        _SSL = _insecure()
    reader, writer = await asyncio.open_connection(spec.host, spec.port, ssl=_SSL)
    try:
        writer.write(request)
        data = b""
        while len(data) < BODY_MAX:
            chunk = await reader.read(BODY_MAX - len(data))
            if not chunk:
                break
            data += chunk
            if response_complete(data):
                break
        return data
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def tcp_check(spec: TcpProbe, timeout: float) -> Result:
    """A connection succeeds."""
    try:
        async with asyncio.timeout(timeout):
            (await _connect(spec.host, spec.port)).close()
    except TimeoutError:
        return False, f"connect to {spec.host}:{spec.port} timed out after {timeout:g}s"
    except OSError as e:
        return False, f"connect to {spec.host}:{spec.port}: {_words(e)}"
    return True, f"connected to {spec.host}:{spec.port}"


def _words(e: Exception) -> str:
    if isinstance(e, OSError) and e.errno:  # (asyncio's own strerror names no cause)
        return os.strerror(e.errno)
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e) or type(e).__name__


async def exec_check(argv: tuple[str, ...], *, env: Mapping[str, str], cwd: str,
                     user: str | None, timeout: float, watcher: ChildWatcher,
                     running: set[int] | None = None) -> Result:
    """Run `argv`: passes on exit 0. Killed (its whole group) at `timeout`, or when
    cancelled; always reaped. Its pid is in `running` while it runs (whoever holds it
    can kill the group at once, without waiting for the cancelled task to run)."""
    loop = asyncio.get_running_loop()
    try:
        s = proc.spawn(argv, cwd=cwd, env=dict(env), user=user)
    except proc.SpawnError as e:
        return False, f"cannot run the probe: {e}"
    done: asyncio.Future[ExitInfo] = loop.create_future()

    def ended(_pid: int, info: ExitInfo) -> None:
        if not done.done():
            done.set_result(info)

    watcher.sessions.add(s.pid)
    watcher.watch(s.pid, ended)
    if running is not None:
        running.add(s.pid)
    out = bytearray()
    fds = [s.stdout_fd, s.stderr_fd]

    def readable(fd: int) -> None:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            _close(fd)
            return
        if len(out) < OUTPUT_MAX:
            out.extend(data[:OUTPUT_MAX - len(out)])

    def _close(fd: int) -> None:
        if fd in fds:
            fds.remove(fd)
            loop.remove_reader(fd)
            os.close(fd)

    for fd in tuple(fds):
        loop.add_reader(fd, readable, fd)
    try:
        try:
            info = await asyncio.wait_for(asyncio.shield(done), timeout)
        except TimeoutError:
            proc.signal_group(s.pid, signal.SIGKILL)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(done), REAP_GRACE)
            return False, f"timed out after {timeout:g}s (killed)" + _tail(out)
        for fd in tuple(fds):  # what it wrote before exiting
            readable(fd)
        text = out.decode("utf-8", "replace").strip()
        if info.code == 0:
            return True, text
        return False, (f"{info.describe()}: {text}" if text else info.describe())
    finally:
        proc.signal_group(s.pid, signal.SIGKILL)  # what it left behind, or it if cancelled
        if running is not None:
            running.discard(s.pid)
        for fd in tuple(fds):
            _close(fd)
        loop.call_later(SESSION_LINGER, watcher.sessions.discard, s.pid)


def _tail(out: bytearray) -> str:
    text = out.decode("utf-8", "replace").strip()
    return f": {text}" if text else ""
