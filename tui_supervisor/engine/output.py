"""A service's output: its pipes, read without blocking, cut into lines, written to its
log file and ring, and published. Mixed into `Service`."""

from __future__ import annotations

import asyncio
import errno
import os
import time
from typing import TYPE_CHECKING, Any

from tui_supervisor.engine import proc
from tui_supervisor.engine.events import LogLines, Notice, Topic
from tui_supervisor.engine.logs import LineSplitter, LogFile, LogRing
from tui_supervisor.engine.repair import contained

if TYPE_CHECKING:
    from tui_supervisor.engine.probing import ServiceProbes
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
RESUME_ROOM = 256 * 1024
"""Free bytes on a full disk's file system before writing its log file is tried again."""
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
    log_lines_dropped: int = 0
    """Lines not written to the log file because the write failed (a full disk, a
    removed directory); they still reach the ring and subscribers."""
    _log_down: int | None = None
    """`log_lines_dropped` when writing the log file began to fail; None while it works.
    A failure is said once, when it begins, and its end once (a full disk freed)."""
    _disk_full = False
    _reopen_failing: bool = False
    probes: ServiceProbes | None = None
    """The current spawn's probes (told of each output: log and silence probes)."""

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
        if self._log_down is None or self._log_may_work():
            try:
                self.log_file.write_segments(segments, size)
            except OSError as e:
                self._log_failed(e, sum(bytes(s).count(b"\n") for s in segments))
            else:
                if self._log_down is not None:
                    self._log_back()
        else:
            self.log_lines_dropped += sum(bytes(s).count(b"\n") for s in segments)
        if self.log_file.rotate_error is not None:
            self._notice("warning", f"cannot rotate {self.log_file.path}: "
                         f"{self.log_file.rotate_error}; it keeps growing",
                         topic=Topic.LOG_ROTATION, data={"path": str(self.log_file.path)})
            self.log_file.rotate_error = None
        t = time.time()
        offset = self.ring.add(t, stream, segments, size)
        if self.probes is not None:
            self.probes.on_output(segments)
        self.ctx.bus.emit(LogLines(t, self.name, stream, offset, segments, size))

    def _log_may_work(self) -> bool:
        """While the disk is full, is there room again? Writes are not even tried before
        (a piece of a line taken back leaves a few bytes free: a line would fit, and the
        disk would be "full" again at the next read)."""
        return not self._disk_full or self.log_file.room() >= RESUME_ROOM

    def _log_failed(self, e: OSError, lines: int) -> None:
        self._disk_full = e.errno == errno.ENOSPC
        if self._log_down is None:
            self._log_down = self.log_lines_dropped
            path = str(self.log_file.path)
            if e.errno in (errno.ENOSPC, errno.EDQUOT):
                self._notice("error", f"disk full: cannot write {path}; its lines are "
                             "dropped (the latest stay in memory) until there is room",
                             topic=Topic.DISK_FULL, data={"path": path})
            else:
                self._notice("error", f"cannot write {path}: {e.strerror or e}",
                             topic=Topic.LOG_WRITE, data={"path": path})
        self.log_lines_dropped += lines

    def _log_back(self) -> None:
        assert self._log_down is not None
        dropped, self._log_down = self.log_lines_dropped - self._log_down, None
        self._disk_full = False
        path = str(self.log_file.path)
        self._notice("info", f"writing {path} again ({dropped} lines were not written)",
                     topic=Topic.LOG_RESUMED, data={"path": path, "dropped": dropped})

    def reopen_log(self, *, if_moved: bool = False) -> str | None:
        """Open the log file's path again (if_moved: only if the file was renamed or
        removed from outside). Returns why it failed (said once until it works), or None.
        """
        lf = self.log_file
        try:
            if if_moved and not lf.moved():
                return None
            lf.reopen()
        except OSError as e:
            why = f"cannot reopen {lf.path}: {e.strerror or e}"
            if not self._reopen_failing:
                self._reopen_failing = True
                self._notice("error", why + "; writing on to the file as it was",
                             topic=Topic.LOG_WRITE, data={"path": str(lf.path)})
            return why
        self._reopen_failing = False
        return None

    def _notice(self, level: str, message: str, *, topic: Topic = Topic.GENERAL,
                data: dict[str, Any] | None = None) -> None:
        self.ctx.bus.emit(Notice(time.time(), level, message, self.name, topic, data))
