"""Bad clients against a real control socket: the engine keeps supervising through each."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import json
import os
import random
import shutil
import signal
import socket
import stat
import tempfile
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import child, make_config, spec, wait_for

from tui_supervisor.control import protocol as p
from tui_supervisor.control.client import RemoteSupervisor
from tui_supervisor.control.errors import ControlError
from tui_supervisor.control.resume import Reconnect
from tui_supervisor.control.server import ControlServer, peer_allowed, peer_uid
from tui_supervisor.engine.supervisor import Supervisor


class Raw:
    """A bare protocol client: bytes out, parsed lines in."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.hello: dict[str, Any] = {}

    @classmethod
    async def open(cls, path: Path, limit: int = 1 << 28) -> Raw:
        """`limit`: the reader stops taking data off the socket at 2 * limit unread."""
        reader, writer = await asyncio.open_unix_connection(str(path), limit=limit)
        raw = cls(reader, writer)
        raw.hello = await raw.recv()  # type: ignore[assignment]
        return raw

    async def send(self, msg: dict[str, Any] | bytes) -> None:
        self.writer.write(msg if isinstance(msg, bytes) else json.dumps(msg).encode() + b"\n")
        await self.writer.drain()

    async def recv(self, timeout: float = 10) -> dict[str, Any] | None:
        line = await asyncio.wait_for(self.reader.readline(), timeout)
        return json.loads(line) if line else None

    async def call(self, msg: dict[str, Any]) -> dict[str, Any]:
        await self.send(msg)
        out = await self.recv()
        assert out is not None
        return out

    def close(self) -> None:
        self.writer.transport.abort()


@pytest.fixture
async def served(engine_factory: Callable[..., Any], tmp_path: Path
                 ) -> AsyncIterator[Callable[..., Any]]:
    servers: list[ControlServer] = []

    async def make(*specs: Any, config: Any = None, **srv_kw: Any
                   ) -> tuple[Supervisor, ControlServer]:
        sup = await engine_factory(*specs, config=config)
        srv = ControlServer(sup, sup.config.settings.runtime_dir, **srv_kw)
        await srv.start()
        servers.append(srv)
        return sup, srv

    try:
        yield make
    finally:
        for s in servers:
            await s.close()


async def still_supervises(sup: Supervisor, name: str = "a") -> None:
    """Kill the service's process: the engine respawns it."""
    svc = sup.services[name]
    await wait_for(lambda: svc.state.value == "running", what=f"{name} running")
    old = svc.pid
    assert old is not None
    os.kill(old, signal.SIGKILL)
    await wait_for(lambda: svc.state.value == "running" and svc.pid not in (None, old),
                   what=f"{name} respawned")


def sleeper(tmp: Path, name: str = "a") -> Any:
    return spec(name, child("sleeper"), tmp)


async def test_socket_file_modes_hello_and_cleanup(served, tmp_path: Path) -> None:
    sup, srv = await served(sleeper(tmp_path))
    assert stat.S_IMODE(os.stat(srv.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(srv.path.parent).st_mode) == 0o700
    raw = await Raw.open(srv.path)
    assert raw.hello == {"hello": "tui-supervisor", "protocol": p.PROTOCOL_VERSION,
                         "pid": os.getpid(), "version": raw.hello["version"]}
    sub = await raw.call({"id": "s", "cmd": "subscribe", "args": {"logs": False}})
    assert sub["id"] == "s" and sub["event"]["kind"] == "snapshot"
    await srv.close()
    assert not srv.path.exists()
    lines = []
    while (msg := await raw.recv()) is not None:
        lines.append(msg)
    assert not sup.bus._subs
    await still_supervises(sup)


async def test_garbage_lines(served, tmp_path: Path) -> None:
    sup, srv = await served(sleeper(tmp_path))
    raw = await Raw.open(srv.path)
    for junk in (b"\x00\xff\xfe not json\n", b"[1, 2]\n", b"\"text\"\n", b"{\"id\": 1\n"):
        r = await raw.call(junk)  # type: ignore[arg-type]
        assert r["ok"] is False and r["error"]["code"] == "bad_request", r
    r = await raw.call({"id": 7, "cmd": "snapshot"})
    assert r["id"] == 7 and r["ok"] is True  # the same connection still works
    await raw.send(b"\n\n")
    raw.close()
    await still_supervises(sup)


async def test_ten_megabyte_line_closes_that_connection_only(served, tmp_path: Path) -> None:
    sup, srv = await served(sleeper(tmp_path))
    other = await Raw.open(srv.path)
    raw = await Raw.open(srv.path)

    async def flood() -> None:
        with contextlib.suppress(ConnectionError, OSError):
            await raw.send(b"{\"id\": 1, \"cmd\": \"" + b"x" * (10 << 20) + b"\"}\n")

    task = asyncio.ensure_future(flood())
    r = await raw.recv()
    assert r is not None and r["error"]["code"] == "line_too_long"
    with contextlib.suppress(ConnectionError):
        assert await raw.recv() is None  # closed by the server
    await asyncio.wait_for(task, 10)
    raw.close()
    assert (await other.call({"id": 2, "cmd": "snapshot"}))["ok"] is True
    other.close()
    await still_supervises(sup)


async def test_unknown_verbs_and_wrong_types(served, tmp_path: Path) -> None:
    sup, srv = await served(sleeper(tmp_path))
    await wait_for(lambda: sup.services["a"].state.value == "running")
    pid = sup.services["a"].pid
    raw = await Raw.open(srv.path)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"id": 1, "cmd": "frobnicate"}, "unknown_verb"),
        ({"id": 2, "cmd": "_serve"}, "unknown_verb"),
        ({"id": 3}, "bad_request"),
        ({"id": 4, "cmd": 5}, "bad_request"),
        ({"id": [4], "cmd": "snapshot"}, "bad_request"),
        ({"id": 5, "cmd": "start", "args": {"names": "a"}}, "bad_args"),
        ({"id": 6, "cmd": "start", "args": [1]}, "bad_args"),
        ({"id": 7, "cmd": "stop", "args": {"names": ["a"], "force": True}}, "bad_args"),
        ({"id": 8, "cmd": "stop", "args": {"names": ["a"], "all": True}}, "bad_args"),
        ({"id": 9, "cmd": "stop", "args": {"all": "yes"}}, "bad_args"),
        ({"id": 10, "cmd": "restart", "args": {"names": [1]}}, "bad_args"),
        ({"id": 11, "cmd": "logs", "args": {"n": "5"}}, "bad_args"),
        ({"id": 12, "cmd": "logs", "args": {"n": True}}, "bad_args"),
        ({"id": 13, "cmd": "logs", "args": {"n": -1}}, "bad_args"),
        ({"id": 14, "cmd": "logs", "args": {"names": "a"}}, "bad_args"),
        ({"id": 15, "cmd": "signal", "args": {"name": "a", "sig": [15]}}, "bad_args"),
        ({"id": 16, "cmd": "signal", "args": {"name": 5, "sig": 15}}, "bad_args"),
        ({"id": 17, "cmd": "signal", "args": {"name": "a", "sig": True}}, "bad_args"),
        ({"id": 18, "cmd": "signal", "args": {"name": "a", "sig": "NOPE"}}, "bad_signal"),
        ({"id": 19, "cmd": "signal", "args": {"name": "a", "sig": 999}}, "bad_signal"),
        ({"id": 20, "cmd": "subscribe", "args": {"logs": "yes"}}, "bad_args"),
        ({"id": 21, "cmd": "snapshot", "args": {"x": 1}}, "bad_args"),
        ({"id": 22, "cmd": "stop", "args": {"names": ["zz"]}}, "unknown_service"),
    ]
    for req, code in cases:
        r = await raw.call(req)
        assert r["ok"] is False and r["error"]["code"] == code, (req, r)
        assert r["id"] == (req["id"] if not isinstance(req["id"], list) else None)
        assert isinstance(r["error"]["message"], str) and r["error"]["message"]
    assert sup.services["a"].pid == pid  # none of them touched the service
    assert (await raw.call({"id": 23, "cmd": "logs", "args": None}))["ok"] is True
    raw.close()
    await still_supervises(sup)


async def test_client_vanishing_mid_subscribe(served, tmp_path: Path) -> None:
    sup, srv = await served(sleeper(tmp_path),
                            spec("c", child("counter", "0", "0.001"), tmp_path))
    for _ in range(3):
        raw = await Raw.open(srv.path)
        await raw.send({"id": 1, "cmd": "subscribe"})
        for _ in range(5):
            assert "event" in (await raw.recv())  # type: ignore[operator]
        raw.close()
    await wait_for(lambda: not sup.bus._subs and not srv._conns, what="subscriptions gone")
    await still_supervises(sup)
    assert (await RemoteSupervisor(srv.path.parent).snapshot())["services"]


async def test_slow_subscriber_dropped_with_a_notice(served, tmp_path: Path) -> None:
    sup, srv = await served(sleeper(tmp_path),
                            spec("c", child("counter", "0", "0.0002"), tmp_path),
                            sub_max_bytes=100 * 1024)
    raw = await Raw.open(srv.path, limit=1 << 16)
    await raw.send({"id": 1, "cmd": "subscribe", "args": {"logs": True}})
    await wait_for(lambda: sup.bus._subs, what="subscribed")
    await wait_for(lambda: not sup.bus._subs, timeout=30, what="slow subscriber dropped")
    await still_supervises(sup)
    last: list[dict[str, Any]] = []
    while (msg := await raw.recv()) is not None:
        last = [*last[-1:], msg]
        if "ok" in msg:
            break
    notice, end = last
    assert notice["event"]["kind"] == "notice"
    assert notice["event"]["message"] == "subscriber too slow: dropped"
    assert end == {"id": 1, "ok": True, "result": {"end": "dropped: too slow"}}
    raw.close()


async def test_reconnecting_client_skips_to_the_present_after_a_drop(
        served, tmp_path: Path) -> None:
    """A client the engine dropped for being too slow (an attached dashboard under a
    flood of output) says so and subscribes again from the present, without replaying
    what it missed (that would fall behind again): it keeps showing the engine."""
    sup, srv = await served(sleeper(tmp_path), sub_max_bytes=4096)
    client = RemoteSupervisor(srv.path.parent, reconnect=Reconnect(give_up_after=5))
    try:
        it = await client.subscribe(logs=True)
        assert (await anext(it))["kind"] == "snapshot"
        sup.bus._subs[0].max_bytes = 1  # this subscription overflows at the next event
        await sup.restart(["a"])
        items: list[dict[str, Any]] = []
        async for ev in it:
            items.append(dict(ev))
            if ev["kind"] == "connection" and ev["state"] == "restored":
                break
        kinds = [(ev["kind"], ev.get("topic") or ev.get("state")) for ev in items]
        drop = kinds.index(("notice", "subscriber_dropped"))
        assert kinds[drop + 1:] == [("connection", "lost"), ("snapshot", None),
                                    ("connection", "restored")], kinds
        assert "skipping to the present" in items[drop + 1]["message"]
        assert items[-1]["same_engine"]
        await sup.restart(["a"])  # and it follows the engine again
        assert (await asyncio.wait_for(anext(it), 10))["kind"] in ("state", "spawn")
    finally:
        await client.close()


def test_peer_check() -> None:
    assert peer_allowed(1000, 1000) and peer_allowed(0, 1000)
    assert not peer_allowed(1001, 1000) and not peer_allowed(65534, 0)
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with a, b:
        assert peer_uid(a) == os.getuid()


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to connect as another uid")
async def test_other_uid_is_refused(served, tmp_path: Path) -> None:
    base = Path(tempfile.mkdtemp(prefix="tst-ctl-"))
    try:
        cfg = make_config(tmp_path, sleeper(tmp_path))
        cfg = dataclasses.replace(cfg, settings=dataclasses.replace(
            cfg.settings, runtime_dir=base / "run"))
        sup, srv = await served(config=cfg)
        for path, mode in ((base, 0o711), (srv.path.parent, 0o711), (srv.path, 0o666)):
            os.chmod(path, mode)  # let the other uid reach the socket: the uid check
            # alone must refuse it
        rfd, wfd = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: no asyncio, no pytest, just a socket
            try:
                os.close(rfd)
                os.setgid(65534)
                os.setuid(65534)
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(10)
                s.connect(str(srv.path))
                data = b""
                while chunk := s.recv(65536):
                    data += chunk
                os.write(wfd, data)
            except BaseException as e:
                os.write(wfd, f"child failed: {e!r}".encode())
            finally:
                os._exit(0)
        os.close(wfd)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, os.waitpid, pid, 0)
        with os.fdopen(rfd, "rb") as f:
            data = f.read()
        lines = data.decode().splitlines()
        assert len(lines) == 1, data  # no hello, one error line, then closed
        err = json.loads(lines[0])
        assert err["ok"] is False and err["error"]["code"] == "permission_denied"
        assert "uid 65534" in err["error"]["message"]
        await still_supervises(sup)
    finally:
        shutil.rmtree(base, ignore_errors=True)


async def test_pipelined_requests_all_answered(served, tmp_path: Path) -> None:
    """Hundreds of requests in one write (more than run at once): each gets its reply."""
    sup, srv = await served(sleeper(tmp_path))
    raw = await Raw.open(srv.path)
    n = 500
    await raw.send(b"".join(json.dumps({"id": i, "cmd": "logs", "args": {"n": 5}}).encode()
                            + b"\n" for i in range(n)))
    ids = set()
    for _ in range(n):
        r = await raw.recv()
        assert r is not None and r["ok"] is True
        ids.add(r["id"])
    assert ids == set(range(n))
    raw.close()
    await still_supervises(sup)


async def test_runtime_dir_too_long_for_sun_path(served, tmp_path: Path) -> None:
    """A socket path over 108 bytes is still served and reached (via the dir's fd)."""
    cfg = make_config(tmp_path, sleeper(tmp_path))
    deep = tmp_path / ("d" * 60) / ("e" * 60) / "run"
    cfg = dataclasses.replace(cfg, settings=dataclasses.replace(cfg.settings,
                                                                runtime_dir=deep))
    sup, srv = await served(config=cfg)
    assert len(str(srv.path)) > 108 and srv.path.exists()
    client = RemoteSupervisor(deep)
    assert [s["name"] for s in (await client.snapshot())["services"]] == ["a"]
    await client.close()
    await srv.close()
    assert not srv.path.exists()
    await still_supervises(sup)


@contextlib.contextmanager
def loop_errors() -> Iterator[list[dict[str, Any]]]:
    """What the loop would print as errors ("Task exception was never retrieved", ...)
    while the block runs; collected garbage included."""
    loop = asyncio.get_running_loop()
    seen: list[dict[str, Any]] = []
    old = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, ctx: seen.append(ctx))
    try:
        yield seen
        gc.collect()
    finally:
        loop.set_exception_handler(old)


async def test_subscriber_that_leaves_is_freed_at_once(served, tmp_path: Path) -> None:
    """Subscribe, read nothing while a service prints, disconnect: the subscription and
    what it had queued are freed then, not at the next full collection (a cancelled
    request task used to keep them through a reference cycle), and nothing is left for
    the loop to complain about."""
    sup, srv = await served(sleeper(tmp_path),
                            spec("c", child("counter", "0", "0.0005"), tmp_path))
    with loop_errors() as errors:
        for _ in range(3):
            raw = await Raw.open(srv.path, limit=1 << 16)
            await raw.send({"id": 1, "cmd": "subscribe"})
            await wait_for(lambda: sup.bus.subscribers == 1, what="subscribed")
            sub = weakref.ref(sup.bus._subs[0])
            await wait_for(lambda: sup.bus.queued_bytes > 20_000, 30, "lines queued")
            gc.disable()
            try:
                raw.close()
                await wait_for(lambda s=sub: s() is None, 10,  # type: ignore[misc]
                               lambda s=sub: f"it freed: {gc.get_referrers(s())}")
            finally:
                gc.enable()
            assert sup.bus.subscribers == 0 and sup.bus.queued_bytes == 0
            await wait_for(lambda: not srv._conns, what="the connection gone")
    assert not errors, errors
    await still_supervises(sup)


async def test_idle_connections_make_room_for_a_client(served, tmp_path: Path) -> None:
    """Full of connections that never asked anything (idle, or abuse): a new client is
    served, the oldest idle one closed with one line; none that asked is touched."""
    sup, srv = await served(sleeper(tmp_path), max_connections=5)
    busy = await Raw.open(srv.path)
    assert (await busy.call({"id": 1, "cmd": "snapshot"}))["ok"] is True
    idle = [await Raw.open(srv.path) for _ in range(4)]
    client = RemoteSupervisor(srv.path.parent)
    try:
        assert (await client.snapshot())["services"]  # served: `status` is not locked out
        first = await idle[0].recv()
        assert first is not None and first["error"]["code"] == "idle_timeout", first
        assert "closed to make room" in first["error"]["message"]
        assert await idle[0].recv() is None  # then closed
        assert (await busy.call({"id": 2, "cmd": "snapshot"}))["ok"] is True
        for h in idle[1:]:  # the younger idle ones stay
            assert (await h.call({"id": 1, "cmd": "snapshot"}))["ok"] is True
    finally:
        await client.close()
        for h in [busy, *idle]:
            h.close()
    await still_supervises(sup)


async def test_connection_cap_refuses_with_one_line(served, tmp_path: Path) -> None:
    """Full of connections that all asked something: one more is refused, one line."""
    sup, srv = await served(sleeper(tmp_path), max_connections=5)
    held = [await Raw.open(srv.path) for _ in range(5)]
    for h in held:  # each has asked something: none is idle, none can be evicted
        assert (await h.call({"id": 1, "cmd": "snapshot"}))["ok"] is True
    reader, writer = await asyncio.open_unix_connection(str(srv.path))
    try:
        lines = (await asyncio.wait_for(reader.read(), 10)).splitlines()
    finally:
        writer.transport.abort()
    assert len(lines) == 1, lines  # no hello: one error line, then closed
    err = json.loads(lines[0])
    assert err["ok"] is False and err["error"]["code"] == "busy"
    assert "too many connections (5 open)" in err["error"]["message"]
    with pytest.raises(ControlError, match="too many connections") as e:
        await RemoteSupervisor(srv.path.parent).snapshot()
    assert e.value.code == "busy"
    for h in held:  # the held ones are served as before
        assert (await h.call({"id": 2, "cmd": "snapshot"}))["ok"] is True
    held.pop().close()
    await wait_for(lambda: len(srv._conns) == 4, what="a slot free")
    client = RemoteSupervisor(srv.path.parent)
    assert (await client.snapshot())["services"]
    assert (await client.snapshot())["engine"]["control"]["connections"] == 5
    await client.close()
    for h in held:
        h.close()
    await still_supervises(sup)


async def test_silent_connection_times_out_a_quiet_subscription_never(
        served, tmp_path: Path) -> None:
    """A connection that sends no request in `first_request_timeout` is closed with an
    `idle_timeout` line; one that sent a request, and a subscription with nothing to
    read for much longer, stay."""
    sup, srv = await served(sleeper(tmp_path), first_request_timeout=0.5)
    silent = await Raw.open(srv.path)
    asked = await Raw.open(srv.path)
    assert (await asked.call({"id": 1, "cmd": "snapshot"}))["ok"] is True
    quiet = await Raw.open(srv.path)
    await quiet.send({"id": "s", "cmd": "subscribe", "args": {"logs": False}})
    assert (await quiet.recv())["event"]["kind"] == "snapshot"  # type: ignore[index]
    err = await silent.recv()
    assert err is not None and err["error"]["code"] == "idle_timeout", err
    assert "no request in 0.5s" in err["error"]["message"]
    assert await silent.recv() is None
    await asyncio.sleep(2)  # four timeouts' worth of nothing on the other two
    assert (await asked.call({"id": 2, "cmd": "snapshot"}))["ok"] is True
    await sup.restart(["a"])
    ev = await quiet.recv()
    assert ev is not None and ev["event"]["kind"] == "state"
    asked.close()
    quiet.close()
    await still_supervises(sup)


async def test_random_bytes_get_errors_or_a_close_never_a_traceback(
        served, tmp_path: Path) -> None:
    sup, srv = await served(sleeper(tmp_path))
    rnd = random.Random(12)
    with loop_errors() as errors:
        for i in range(20):
            raw = await Raw.open(srv.path)
            junk = rnd.randbytes(rnd.choice((10, 1000, 100_000, 3 << 20)))
            with contextlib.suppress(ConnectionError):
                raw.writer.write(junk + b"\n" * (i % 2))
                await asyncio.wait_for(raw.writer.drain(), 10)
                raw.writer.write_eof()  # (a last line without a newline is read at EOF)
            with contextlib.suppress(ConnectionError):
                while (r := await raw.recv()) is not None:  # error lines, then closed
                    assert r["ok"] is False, r
                    assert r["error"]["code"] in ("bad_request", "line_too_long"), r
            raw.close()
        await wait_for(lambda: not srv._conns, what="the connections gone")
    assert not errors, errors
    assert not [n for n in sup.notices if n.topic == "control"]
    await still_supervises(sup)
