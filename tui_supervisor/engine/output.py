"""A service's output: its pipes, read without blocking, cut into lines, written to its
log file and ring, and published. Mixed into `Service`."""

from __future__ import annotations

import asyncio
import os
import time
from typing import TYPE_CHECKING, Any

from tui_supervisor.engine import proc
from tui_supervisor.engine.events import LogLines, Notice, Topic
from tui_supervisor.engine.logs import LineSplitter, LogFile, LogRing
from tui_supervisor.engine.repair import contained

if TYPE_CHECKING:
    from tui_supervisor.engine.service import EngineContext

READ_CHUNK = 256 * 1024
READS_PER_WAKEUP = 4
SMALL_READ = 16 * 1024
PIPE_PAUSE = 0.002
"""After a wakeup that found less than SMALL_READ bytes, leave the pipe alone this long:
a service printing line by line is then read in batches (4x less engine CPU for 100-byte
lines), at the cost of showing its lines up to 2 ms later. Only for pipes of at least
PAUSABLE_PIPE bytes: a 64 KiB pipe would fill and stall the writer meanwhile."""
PAUSABLE_PIPE = 512 * 1024
DRAIN_READS = 8
"""Reads per pipe when draining at an exit: 2 MiB, more than a full pipe (proc.PIPE_SIZE)."""


class ServiceOutput:
    ctx: EngineContext
    name: str
    pipes: dict[int, tuple[str, LineSplitter]]
    _paused: dict[int, asyncio.TimerHandle]
    _pausable: set[int]
    ring: LogRing
    log_file: LogFile
    _log_error_reported: bool
    log_lines_dropped: int = 0
    """Lines not written to the log file because the write failed (a full disk, a
    removed directory); they still reach the ring and subscribers."""

    def _add_pipe(self, fd: int, stream: str, partial: bytes = b"") -> None:
        self.pipes[fd] = (stream, LineSplitter(partial))
        if proc.pipe_size(fd) >= PAUSABLE_PIPE:
            self._pausable.add(fd)
        self.ctx.loop.add_reader(fd, self._on_pipe, fd)

    def _read_pipe(self, fd: int, reads: int, until_short: bool) -> int | None:
        """Up to `reads` reads of what the pipe holds (stopping at a short read if
        `until_short`), each ingested; the bytes read, or None once the pipe closed."""
        stream, splitter = self.pipes[fd]
        got = 0
        for _ in range(reads):
            try:
                data = os.read(fd, READ_CHUNK)
            except BlockingIOError:
                break
            except OSError:
                data = b""
            if not data:
                self._close_pipe(fd)
                return None
            got += len(data)
            self._ingest(stream, *splitter.feed(data))
            if until_short and len(data) < READ_CHUNK:
                break
        return got

    @contained("output reader")
    def _on_pipe(self, fd: int) -> None:
        got = self._read_pipe(fd, READS_PER_WAKEUP, until_short=True)
        if got is not None and got < SMALL_READ and fd in self._pausable:
            self.ctx.loop.remove_reader(fd)
            self._paused[fd] = self.ctx.loop.call_later(PIPE_PAUSE, self._resume_pipe, fd)

    def _drain_pipes(self) -> None:
        """Read what the pipes hold now, without waiting (a reader may be paused, or not
        yet woken): called when the main process exits, so the lines it wrote right
        before dying are in the ring, and published, before its exit is. Bounded: a
        surviving child that keeps writing cannot hold the engine here."""
        for fd in tuple(self.pipes):
            self._read_pipe(fd, DRAIN_READS, until_short=False)

    @contained("output reader")
    def _resume_pipe(self, fd: int) -> None:
        self._paused.pop(fd, None)
        if fd in self.pipes:
            self.ctx.loop.add_reader(fd, self._on_pipe, fd)

    def _close_pipe(self, fd: int) -> None:
        stream, splitter = self.pipes.pop(fd)
        self._pausable.discard(fd)
        paused = self._paused.pop(fd, None)
        if paused is not None:
            paused.cancel()
        self.ctx.loop.remove_reader(fd)
        os.close(fd)
        self._ingest(stream, *splitter.flush())

    def _ingest(self, stream: str, segments: list[bytes | memoryview], size: int) -> None:
        if not size:
            return
        try:
            self.log_file.write_segments(segments, size)
        except OSError as e:
            self.log_lines_dropped += sum(bytes(s).count(b"\n") for s in segments)
            if not self._log_error_reported:
                self._log_error_reported = True
                self._notice("error", f"cannot write {self.log_file.path}: {e.strerror}",
                             topic=Topic.LOG_WRITE, data={"path": str(self.log_file.path)})
        if self.log_file.rotate_error is not None:
            self._notice("warning", f"cannot rotate {self.log_file.path}: "
                         f"{self.log_file.rotate_error}; it keeps growing",
                         topic=Topic.LOG_ROTATION, data={"path": str(self.log_file.path)})
            self.log_file.rotate_error = None
        t = time.time()
        offset = self.ring.add(t, stream, segments, size)
        self.ctx.bus.emit(LogLines(t, self.name, stream, offset, segments, size))

    def _notice(self, level: str, message: str, *, topic: Topic = Topic.GENERAL,
                data: dict[str, Any] | None = None) -> None:
        self.ctx.bus.emit(Notice(time.time(), level, message, self.name, topic, data))
