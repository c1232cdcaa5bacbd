"""One probe check against a real local server: http (the callback form for an IP, the
coroutine form for a name), tcp, and their timeouts; exec's exit status and output."""

from __future__ import annotations

import asyncio
import http.server
import socket
import threading
from collections.abc import Iterator

import pytest

from tui_supervisor.config.schema import HttpProbe, TcpProbe
from tui_supervisor.engine.probes import (
    FastCheck,
    exec_check,
    http_check,
    http_request,
    http_verdict,
    response_complete,
    tcp_check,
)
from tui_supervisor.engine.reaper import get_watcher


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        code = int(self.path.strip("/") or 200)
        body = f"answer {code}".encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def port() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


async def fast(spec: HttpProbe, timeout: float = 2.0) -> tuple[bool, str]:
    loop = asyncio.get_running_loop()
    got: asyncio.Future[tuple[bytes | None, str | None]] = loop.create_future()
    FastCheck(loop, spec.host, spec.port, http_request(spec), timeout,
              lambda data, error: got.set_result((data, error)))
    data, error = await got
    return (False, error or "") if data is None else http_verdict(spec, data)


@pytest.mark.parametrize(("path", "status", "body", "ok", "said"), [
    ("/200", (), None, True, "HTTP/1.0 200 OK"),
    ("/302", (), None, True, "HTTP/1.0 302"),
    ("/500", (), None, False, "HTTP/1.0 500"),
    ("/500", (500,), None, True, "HTTP/1.0 500"),
    ("/200", (204,), None, False, "HTTP/1.0 200 OK"),
    ("/200", (), "answer 200", True, "HTTP/1.0 200 OK"),
    ("/200", (), "nope", False, "body lacks 'nope'"),
])
async def test_http(port: int, path: str, status: tuple[int, ...], body: str | None,
                    ok: bool, said: str) -> None:
    spec = HttpProbe(port=port, path=path, status=frozenset(status), body=body)
    for result in (await fast(spec),
                   await http_check(HttpProbe(port=port, host="localhost", path=path,
                                              status=frozenset(status), body=body), 2.0)):
        assert result[0] is ok and said in result[1], result


@pytest.mark.parametrize(("data", "whole"), [
    (b"HTTP/1.0 200 OK\r\nServer: x", False),
    (b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nabc", False),
    (b"HTTP/1.0 200 OK\r\ncontent-length:5\r\n\r\nabcde", True),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", True),
    (b"HTTP/1.1 204 No Content\r\n\r\n", True),
    (b"HTTP/1.1 304 Not Modified\r\nETag: x\r\n\r\n", True),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n", False),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", True),
    (b"HTTP/1.0 200 OK\r\n\r\nno length: until EOF", False),
])
def test_response_complete(data: bytes, whole: bool) -> None:
    assert response_complete(data) is whole


class BigSlowBody(http.server.BaseHTTPRequestHandler):
    """Writes 256 KiB in pieces, and notes whether a client reset it mid-body."""

    resets: list[str] = []

    def do_GET(self) -> None:
        piece = b"x" * 16384
        self.send_response(200)
        self.send_header("Content-Length", str(4 * len(piece)))
        self.end_headers()
        try:
            for _ in range(4):
                self.wfile.write(piece)
                self.wfile.flush()
                threading.Event().wait(0.02)
        except ConnectionError as e:
            self.resets.append(repr(e))

    def log_message(self, *args: object) -> None:
        pass


async def test_a_check_reads_the_whole_response_and_resets_nothing() -> None:
    """A probe that closed after the status line reset the server while it wrote its body:
    Python's http.server then logged a ConnectionResetError traceback at every check (the
    demo's web did, issue 15's first look)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), BigSlowBody)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        spec = HttpProbe(port=server.server_address[1], path="/")
        for _ in range(3):
            assert (await fast(spec))[0]
            assert (await http_check(HttpProbe(port=spec.port, host="localhost"), 2.0))[0]
        await asyncio.sleep(0.2)  # (the handler threads finish their writes)
        assert BigSlowBody.resets == []
    finally:
        server.shutdown()
        server.server_close()


async def test_a_server_that_keeps_the_connection_is_not_waited_out() -> None:
    """Content-Length ends the read: a keep-alive server that ignores `Connection: close`
    does not make the check time out."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        held: list[socket.socket] = []

        def serve() -> None:
            for _ in range(2):
                c, _ = s.accept()
                c.recv(4096)
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                held.append(c)  # never closed by the server while the check runs

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        spec = HttpProbe(port=s.getsockname()[1])
        try:
            assert await fast(spec, timeout=5.0) == (True, "HTTP/1.1 200 OK")
            assert await http_check(spec, 5.0) == (True, "HTTP/1.1 200 OK")
        finally:
            t.join(5)
            for c in held:
                c.close()


async def test_refused_and_timeout() -> None:
    with socket.socket() as s:  # listens, never answers: a hung server
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        hung = s.getsockname()[1]
        with socket.socket() as free:
            free.bind(("127.0.0.1", 0))
            closed = free.getsockname()[1]
        assert await fast(HttpProbe(port=closed)) == (False, "Connection refused")
        assert await fast(HttpProbe(port=hung), 0.3) == (False, "timed out after 0.3s")
        assert await http_check(HttpProbe(port=hung, host="localhost"), 0.3) == (
            False, "timed out after 0.3s")
        assert (await tcp_check(TcpProbe(port=hung), 1.0))[0] is True
        ok, out = await tcp_check(TcpProbe(port=closed), 1.0)
        assert not ok and out == f"connect to 127.0.0.1:{closed}: Connection refused"


async def test_exec(tmp_path) -> None:  # type: ignore[no-untyped-def]
    watcher = get_watcher()
    watcher.install()
    try:
        kw = {"env": {"PATH": "/usr/bin:/bin", "X": "from env"}, "cwd": str(tmp_path),
              "user": None, "timeout": 2.0, "watcher": watcher}
        assert await exec_check(("/bin/sh", "-c", "echo $X; pwd"), **kw) == (
            True, f"from env\n{tmp_path}")
        assert await exec_check(("/bin/sh", "-c", "echo bad; exit 3"), **kw) == (
            False, "exit code 3: bad")
        running: set[int] = set()
        ok, out = await exec_check(("/bin/sh", "-c", "echo hung; sleep 100"),
                                   **{**kw, "timeout": 0.3}, running=running)
        assert (ok, out) == (False, "timed out after 0.3s (killed): hung") and not running
        ok, out = await exec_check(("/nonexistent",), **kw)
        assert not ok and out.startswith("cannot run the probe: command not found")
    finally:
        watcher.uninstall()
