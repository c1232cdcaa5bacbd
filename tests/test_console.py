"""Headless console: merged name-prefixed output that never blocks the engine."""

from __future__ import annotations

import os
import threading
import time

from tui_supervisor.console import Console
from tui_supervisor.engine.events import LogLines, Notice, StateChanged


def read_all(fd: int) -> str:
    chunks = []
    while True:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks).decode()


def test_prefixed_lines_and_state_changes() -> None:
    r, w = os.pipe()
    c = Console(["web", "worker"], fd=w, color=False)
    t = time.mktime((2026, 1, 2, 3, 4, 5, 0, 0, -1))
    c(LogLines(t, "web", "stdout", 0, [b"hello\nworld\n"], 12))
    c(LogLines(t, "worker", "stderr", 0, [b"oops\n"], 5))
    c(StateChanged(t, "web", "starting", "running", 42, "up for 1s"))
    c(Notice(t, "warning", "something odd", None))
    c.close()
    os.close(w)
    os.set_blocking(r, False)
    out = read_all(r).splitlines()
    os.close(r)
    assert out == [
        "03:04:05 web        | hello",
        "03:04:05 web        | world",
        "03:04:05 worker     | ! oops",
        "03:04:05 web        * running pid 42 (up for 1s)",
        "03:04:05 supervisor * warning: something odd",
    ]


def test_unread_stdout_never_blocks_the_caller() -> None:
    r, w = os.pipe()  # nobody reads: the writer thread blocks, the caller must not
    c = Console(["s"], fd=w, color=False, max_buffer=1 << 20)
    chunk = (b"x" * 100 + b"\n") * 10
    t0 = time.monotonic()
    for i in range(20_000):
        c(LogLines(time.time(), "s", "stdout", i, [chunk], len(chunk)))
    elapsed = time.monotonic() - t0
    assert c.dropped > 0
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.extend(iter(lambda: os.read(r, 65536), b"")))
    reader.start()  # now drain: the console thread catches up and reports the drop
    c.close(timeout=30)
    os.close(w)
    reader.join(30)
    os.close(r)
    out = b"".join(got).decode()
    assert "lines not shown here (the console fell behind); the log files have them all" in out
    assert elapsed < 30  # generous: it returned at all, the pipe was never read meanwhile
