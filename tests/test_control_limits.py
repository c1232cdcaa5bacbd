"""The control socket's bounds on a real engine process (`run --headless`): what bad or
slow clients cost it in memory (psutil on its pid), what its console shows, and that it
keeps respawning a crash-looping service through all of it.

Quick by default; TUISUP_CONTROL_SOAK=1 makes each phase longer (the issue's 20 s and
96 s unread subscribers)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
from support import Headless, svc, wait_for, write_cfg

from tui_supervisor.control import protocol as p
from tui_supervisor.control.errors import ControlError
from tui_supervisor.control.server import MAX_CONNECTIONS

SOAK = os.environ.get("TUISUP_CONTROL_SOAK") == "1"
UNREAD = 20.0 if SOAK else 3.0
"""Seconds a subscriber reads nothing, each round."""
GROWTH = 80 << 20
"""Engine RSS growth allowed over its baseline: generous (the bounds are 8 MiB a
subscriber, 64 MiB in all); before them, 3 s unread cost ~100 MiB, 20 s ~500 MiB."""
CONSOLE_NOISE = ("Traceback", "Task exception was never retrieved", "never retrieved",
                 "control request failed", "socket.send() raised")


def config(tmp: Path) -> Path:
    crash = ("    restart: always\n    backoff: {initial: 50ms, factor: 1, max: 50ms, "
             "jitter: 0}\n    crash_loop: {max_failures: 10000, window: 60s}\n")
    return write_cfg(tmp, svc("chatty", "counter", "0") + svc("idle", "sleeper")
                     + svc("crashy", "crash", "1", "0.05", extra=crash))


class Engine:
    def __init__(self, e: Headless, client: Any) -> None:
        self.e, self.client = e, client
        self.proc = psutil.Process(e.proc.pid)
        self.sock = e.runtime / "control.sock"

    def rss(self) -> int:
        return int(self.proc.memory_info().rss)

    async def snap(self) -> dict[str, Any]:
        return await self.client.snapshot()  # type: ignore[no-any-return]

    async def restarts(self) -> int:
        snap = await self.snap()
        return next(s["restarts"] for s in snap["services"] if s["name"] == "crashy")

    async def respawning(self) -> None:
        """The crash-looping service is respawned again (supervision goes on)."""
        before = await self.restarts()
        await wait_for(lambda: self._more(before), 30, "crashy respawned again")

    async def _more(self, before: int) -> bool:
        return await self.restarts() >= before + 2

    async def connect(self, limit: int = 1 << 16) -> tuple[
            asyncio.StreamReader, asyncio.StreamWriter, dict[str, Any]]:
        """A raw connection and its first line; `limit`: lines up to it are read, and
        the socket is not read while 2 * limit is (a client that does not read)."""
        with p.bindable(self.sock) as name:  # (a tmp path may be too long for sun_path)
            reader, writer = await asyncio.open_unix_connection(name, limit=limit)
        first = json.loads(await asyncio.wait_for(reader.readline(), 10))
        return reader, writer, first


async def started(engines: Callable[..., Headless], tmp: Path) -> Engine:
    e = engines(config(tmp), quiet=True)
    eng = Engine(e, await e.ready())
    await wait_for(lambda: eng._more(0), 30, "crashy crash-looping")
    return eng


def console_clean(e: Headless) -> None:
    out = e.out
    noise = [n for n in CONSOLE_NOISE if n in out]
    assert not noise, f"{noise} on the engine's console:\n{out[-4000:]}"


async def test_unread_and_leaving_subscribers_cost_the_engine_nothing_lasting(
        engines: Callable[..., Headless], tmp_path: Path) -> None:
    """A subscriber that reads nothing while a service prints flat out is dropped long
    before the engine grows; rounds of (subscribe, read nothing, leave) leave nothing
    behind: no subscriber, no queued bytes, no growth, no noise on the console."""
    eng = await started(engines, tmp_path)
    base = eng.rss()
    try:
        for _ in range(3):
            reader, writer, _hello = await eng.connect()
            writer.write(b'{"id": 1, "cmd": "subscribe"}\n')
            await writer.drain()
            await asyncio.sleep(UNREAD)
            assert eng.rss() - base < GROWTH, (eng.rss() - base) >> 20
            writer.transport.abort()
        ctl = (await eng.snap())["engine"]["control"]
        await wait_for(lambda: _settled(eng), 10, "no subscriber left")
        assert eng.rss() - base < GROWTH, (eng.rss() - base) >> 20

        # one that reads after being dropped is told so, last thing before the end
        reader, writer, _hello = await eng.connect(limit=1 << 24)
        writer.write(b'{"id": 1, "cmd": "subscribe"}\n')
        await writer.drain()
        await wait_for(lambda: _queued(eng, 0), 10, "the subscriber dropped", interval=0.2)
        last: list[Any] = []
        with contextlib.suppress(ConnectionError):
            while line := await asyncio.wait_for(reader.readline(), 10):
                last = [*last[-1:], json.loads(line)]
                if "ok" in last[-1]:
                    break  # (the stream's end; the connection stays for requests)
        writer.transport.abort()
        assert last[0]["event"]["topic"] == "subscriber_dropped", last
        assert last[1]["result"] == {"end": "dropped: too slow"}, last
        await eng.respawning()
    finally:
        await eng.client.close()
    console_clean(eng.e)
    assert ctl["connections"] >= 1


async def _settled(eng: Engine) -> bool:
    ctl = (await eng.snap())["engine"]["control"]
    return ctl["subscribers"] == 0 and ctl["queued_bytes"] == 0


async def _queued(eng: Engine, subscribers: int) -> bool:
    """The bus has `subscribers` (the one that does not read has been dropped)."""
    return (await eng.snap())["engine"]["control"]["subscribers"] == subscribers


async def test_abuse_all_at_once_supervision_goes_on(
        engines: Callable[..., Headless], tmp_path: Path) -> None:
    """More idle connections than the cap, a 10 MB line, random bytes and a subscriber
    that never reads, at once: the oldest idle connections are closed with one line to
    make room, the others answered or closed, the engine stays small, quiet, and keeps
    respawning."""
    eng = await started(engines, tmp_path)
    base = eng.rss()
    held: list[asyncio.StreamWriter] = []
    try:
        readers = []
        for _ in range(MAX_CONNECTIONS + 40):
            reader, writer, first = await eng.connect()
            held.append(writer)
            assert first.get("ok") is not False, first  # each new one is served
            readers.append(reader)
        evicted = 0
        for reader in readers[:40]:  # the oldest made room for the newest
            line = json.loads(await asyncio.wait_for(reader.readline(), 10))
            assert line["error"]["code"] == "idle_timeout", line
            assert await asyncio.wait_for(reader.read(), 10) == b""  # then closed
            evicted += 1
        assert evicted == 40
        with contextlib.suppress(ControlError):  # (the client's own slot may be gone)
            await eng.respawning()

        async def flood() -> Any:
            reader, writer, _ = await eng.connect()
            held.append(writer)
            reply = asyncio.ensure_future(reader.readline())
            with contextlib.suppress(ConnectionError):
                writer.write(b'{"id": 1, "cmd": "' + b"x" * (10 << 20) + b'"}\n')
                await asyncio.wait_for(writer.drain(), 20)
            try:  # one error line, or (the race of our write and its close) a reset
                line = await asyncio.wait_for(reply, 20)
            except ConnectionError:
                return None
            return json.loads(line) if line else None

        async def junk() -> list[Any]:
            reader, writer, _ = await eng.connect()
            held.append(writer)
            out: list[Any] = []
            with contextlib.suppress(ConnectionError):
                writer.write(random.Random(7).randbytes(200_000))
                writer.write_eof()
                while line := await asyncio.wait_for(reader.readline(), 20):
                    out.append(json.loads(line))
            return out

        async def never_reads() -> None:
            _reader, writer, _ = await eng.connect()
            held.append(writer)
            writer.write(b'{"id": 1, "cmd": "subscribe"}\n')
            await writer.drain()

        for w in held[:60]:  # room for the abusers (the idle ones go on being idle)
            w.transport.abort()
        del held[:60]
        await wait_for(lambda: _conns_below(eng, MAX_CONNECTIONS - 10), 20, "slots free")
        big, garbage, _ = await asyncio.gather(flood(), junk(), never_reads())
        assert big is None or big["error"]["code"] == "line_too_long", big
        assert garbage and all(r["ok"] is False for r in garbage), garbage
        await eng.respawning()
        await asyncio.sleep(UNREAD)
        await eng.respawning()
        assert eng.rss() - base < GROWTH, (eng.rss() - base) >> 20
    finally:
        for w in held:
            w.transport.abort()
        await eng.client.close()
    console_clean(eng.e)


async def _conns_below(eng: Engine, n: int) -> bool:
    with contextlib.suppress(ControlError):
        return (await eng.snap())["engine"]["control"]["connections"] < n  # type: ignore[no-any-return]
    return False
