"""Probe checks: one `http`, `tcp` or `exec` check, bounded by its timeout, never
blocking the event loop.

http is a hand-written HTTP/1.1 GET over `asyncio.open_connection`: no thread per check
(200 services probed every second would need a pool whose threads cannot be stopped at
a timeout), no new dependency, and cancelling it at the timeout closes the socket.
exec runs the command as a child of the engine in its own session, watched and reaped
by the engine's `ChildWatcher`; at its timeout (or when the probe is stopped) its whole
process group is killed, and it is counted as a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import ssl
from collections.abc import Mapping

from tui_supervisor.config.schema import HttpProbe, TcpProbe
from tui_supervisor.engine import proc
from tui_supervisor.engine.health import OUTPUT_MAX
from tui_supervisor.engine.policies import ExitInfo
from tui_supervisor.engine.reaper import ChildWatcher

BODY_MAX = 64 * 1024
"""Bytes of a response read (for `body:`); the rest is not waited for."""
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


async def http_check(spec: HttpProbe, timeout: float) -> Result:
    """GET the URL: passes on a status in `status` (else 200-399) whose body holds
    `body` (if given)."""
    global _SSL
    try:
        async with asyncio.timeout(timeout):
            if spec.scheme == "https" and _SSL is None:
                _SSL = _insecure()
            reader, writer = await asyncio.open_connection(
                spec.host, spec.port, ssl=_SSL if spec.scheme == "https" else None)
            try:
                host = spec.host if spec.port in (80, 443) else f"{spec.host}:{spec.port}"
                head = [f"GET {spec.path} HTTP/1.1", f"Host: {host}",
                        "User-Agent: tui-supervisor-probe", "Connection: close",
                        *(f"{k}: {v}" for k, v in spec.headers)]
                writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
                status_line = await reader.readline()
                parts = status_line.split(None, 2)
                if len(parts) < 2 or not parts[0].startswith(b"HTTP/") \
                        or not parts[1].isdigit():
                    return False, f"not an HTTP response: {status_line[:80]!r}"
                code = int(parts[1])
                body = b""
                if spec.body is not None:
                    body = await _body(reader)
            finally:
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
    except TimeoutError:
        return False, f"timed out after {timeout:g}s"
    except (OSError, ssl.SSLError, ValueError, UnicodeError) as e:
        return False, _words(e)
    text = status_line.decode("latin-1").strip()
    ok = code in spec.status if spec.status else 200 <= code <= 399
    if ok and spec.body is not None and spec.body.encode() not in body:
        return False, f"{text}: body lacks {spec.body!r}"
    return ok, text + ("" if ok or not body else f": {body[:200].decode('utf-8', 'replace')}")


async def _body(reader: asyncio.StreamReader) -> bytes:
    """The response body after the headers (up to BODY_MAX; raw, chunked or not)."""
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
    data = b""
    while len(data) < BODY_MAX:
        chunk = await reader.read(BODY_MAX - len(data))
        if not chunk:
            break
        data += chunk
    return data


async def tcp_check(spec: TcpProbe, timeout: float) -> Result:
    """A connection succeeds."""
    try:
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(spec.host, spec.port)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
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
