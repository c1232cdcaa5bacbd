"""Service output: bytes -> lines, a rotating log file, and a ring of recent output.

The hot path (a pipe read) does no per-line and no per-byte Python work: it finds the
last newline, hands the complete lines on as zero-copy views of the bytes read, writes
them with one writev, and keeps them in the ring as they are. Lines are decoded only
when somebody asks for them. Positions in a service's output are byte offsets (stdout
and stderr together, in the order read), so clients can resume without gaps.

Files are written with os.write/os.writev on an O_APPEND fd: no Python-level buffer that
an exec could lose. A write that fails half-way (a full disk) is taken back off the file,
so a file never holds a piece of a line.
"""

from __future__ import annotations

import contextlib
import os
from collections import deque
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

Buffer = bytes | memoryview
Segments = Sequence[Buffer]

MAX_LINE = 64 * 1024
"""Longer lines are split into pieces of at most this many bytes."""
RING_BYTES = 4 << 20
"""A ring also stops growing past about this many bytes (lines can be 64 KiB each)."""


def _utf8_cut(data: bytes, limit: int) -> int:
    """Largest cut <= limit (and > limit-4) that does not split a UTF-8 sequence; `limit`
    itself when the bytes are not UTF-8 there. Needs len(data) > limit."""
    for cut in range(limit, max(limit - 4, 0), -1):
        if (data[cut] & 0xC0) != 0x80:
            return cut
    return limit


def _split_long(piece: bytes) -> list[bytes]:
    out = []
    while len(piece) > MAX_LINE:
        cut = _utf8_cut(piece, MAX_LINE)
        out.append(piece[:cut])
        piece = piece[cut:]
    out.append(piece)
    return out


def _has_long_line(data: bytes, start: int, end: int) -> bool:
    """Could data[start:end] hold a line over MAX_LINE bytes? Such a line contains a whole
    aligned window of MAX_LINE/2 bytes without a newline; a few memchr calls rule it out."""
    w = MAX_LINE // 2
    return any(data.find(b"\n", p, p + w) < 0 for p in range(start, end - w + 1, w))


def decode_lines(segments: Iterable[Buffer]) -> list[str]:
    """Newline-terminated bytes -> lines of text (invalid UTF-8 replaced)."""
    lines = b"".join(segments).decode("utf-8", "replace").split("\n")
    lines.pop()  # after the last newline
    return lines


class LineSplitter:
    """Cuts a byte stream at line ends. `feed` returns the complete lines as segments
    (the carried-over start of a line, then a view of the bytes just read) and their
    size. Holds at most MAX_LINE bytes of a partial line; a longer line is emitted in
    pieces of MAX_LINE bytes, cut on a UTF-8 boundary."""

    __slots__ = ("partial",)

    def __init__(self, partial: bytes = b"") -> None:
        self.partial = partial

    def feed(self, data: bytes) -> tuple[list[Buffer], int]:
        """(newline-terminated segments, their total size); ([], 0) if no line ended."""
        start = 0
        segments: list[Buffer] = []
        if self.partial:
            nl = data.find(b"\n")
            if nl < 0 or len(self.partial) + nl >= MAX_LINE:
                return self._slow(self.partial + data)
            segments.append(self.partial + data[: nl + 1])
            start = nl + 1
        cut = data.rfind(b"\n") + 1
        if cut <= start:  # no (further) newline
            if len(data) - start >= MAX_LINE:
                return self._slow(b"".join(segments) + data[start:])
            self.partial = data[start:]
            return segments, sum(map(len, segments))
        if len(data) - cut >= MAX_LINE or (
                cut - start > MAX_LINE and _has_long_line(data, start, cut)):
            return self._slow(b"".join(segments) + data[start:])
        self.partial = data[cut:]
        segments.append(data if start == 0 and cut == len(data)
                        else memoryview(data)[start:cut])
        return segments, sum(map(len, segments))

    def _slow(self, data: bytes) -> tuple[list[Buffer], int]:
        """Long lines (rare): split them into MAX_LINE pieces. `data` starts at the
        beginning of a line (it includes what was pending)."""
        cut = data.rfind(b"\n") + 1
        body, rest = data[:cut], data[cut:]
        pieces = [q for p in body[:-1].split(b"\n") for q in _split_long(p)] if cut else []
        if len(rest) >= MAX_LINE:
            more = _split_long(rest)
            rest = more.pop()
            pieces += more
        self.partial = rest
        if not pieces:
            return [], 0
        out = b"\n".join(pieces) + b"\n"
        return [out], len(out)

    def flush(self) -> tuple[list[Buffer], int]:
        """The pending partial line as a complete line (at EOF)."""
        if not self.partial:
            return [], 0
        data, self.partial = self.partial + b"\n", b""
        return [data], len(data)


class LogFile:
    """Append-only log file rotated at line boundaries: `name.log`, `name.log.1`, ...

    Another tool may rename or remove the file (logrotate, `rm`): `moved` tells, and
    `reopen` writes at the path again (a file written to under another name, or under no
    name, is lost to whoever reads `path`, and a removed one keeps its disk space)."""

    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = self._open()
        self.size = os.fstat(self._fd).st_size
        self.rotate_error: str | None = None
        """Why the last rotation failed (the engine says so and clears it; meanwhile the
        file keeps growing, and rotation is tried again max_bytes later)."""

    def _open(self) -> int:
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
        return os.open(self.path, flags, 0o644)

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def moved(self) -> bool:
        """Is the file written to no longer the one at `path` (renamed, removed or
        replaced from outside)? One stat and one fstat; False once closed."""
        if self._fd < 0:
            return False
        try:
            st = os.stat(self.path)
        except OSError:  # gone (or its directory)
            return True
        fst = os.fstat(self._fd)
        return (st.st_ino, st.st_dev) != (fst.st_ino, fst.st_dev)

    def reopen(self) -> None:
        """Write at `path` from now on: the file there, or a new one (made as at the
        start, its directory too). What was written before stays where it is (in the file
        logrotate renamed). OSError if `path` cannot be opened: the old file is kept.
        Nothing to do once closed."""
        if self._fd < 0:
            return
        try:
            fd = self._open()
        except FileNotFoundError:  # the directory was removed
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = self._open()
        os.close(self._fd)
        self._fd = fd
        self.size = os.fstat(fd).st_size

    def room(self) -> int:
        """Free bytes on the file's file system (root's reserve included: a write tells
        for sure); a large number if unknown."""
        try:
            st = os.fstatvfs(self._fd)
        except OSError:
            return 1 << 62
        return st.f_bfree * st.f_frsize

    def write_segments(self, segments: Segments, size: int) -> None:
        """Write newline-terminated segments: one writev when no rotation falls inside."""
        if self.max_bytes > 0 and self.size + size > self.max_bytes:
            self.write(b"".join(segments))
            return
        n = os.writev(self._fd, segments)
        if n < size:  # short write (a full disk, a signal): finish it byte-exact
            self._write_all(b"".join(segments), n)
        else:
            self.size += n

    def _write_all(self, data: bytes, done: int = 0) -> None:
        """Write data[done:] (the rest of `data`, whose first `done` bytes are written). On
        an error the part of `data` written is taken off the file again: lines are
        dropped whole, never cut (the next line would be glued to the piece)."""
        view = memoryview(data)
        try:
            while done < len(data):
                done += os.write(self._fd, view[done:])
        except OSError:
            if done:
                self._take_back(done)
            raise
        self.size += len(data)

    def _take_back(self, n: int) -> None:
        """Cut the last `n` bytes off the file (ours: the fd appends)."""
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, max(0, os.fstat(self._fd).st_size - n))

    def write(self, data: bytes) -> None:
        """Write complete lines, rotating between lines so a line is never split across
        files, lost, or written twice."""
        while data:
            room = self.max_bytes - self.size
            if self.max_bytes <= 0 or len(data) <= room:
                self._write_all(data)
                return
            cut = data.rfind(b"\n", 0, room) if room > 0 else -1
            if cut >= 0:
                self._write_all(data[: cut + 1])
                data = data[cut + 1 :]
            elif self.size == 0:  # one line larger than max_bytes: it gets a file of its own
                nl = data.find(b"\n")
                end = len(data) if nl < 0 else nl + 1
                self._write_all(data[:end])
                data = data[end:]
            if data or self.size >= self.max_bytes:
                self.rotate()

    def rotate(self) -> None:
        if self.moved():  # rotated from outside meanwhile: `path` is a new file, or none
            try:
                self.reopen()
            except OSError as e:  # go on with the file open: lose no line
                self.rotate_error, self.size = str(e.strerror or e), 0
                return
            if self.size < self.max_bytes:
                return
        os.close(self._fd)
        self._fd = -1  # never write to a closed fd's number: it may be reused (a pipe)
        base = str(self.path)
        try:
            if self.backups > 0:
                for i in range(self.backups - 1, 0, -1):
                    src = f"{base}.{i}"
                    if os.path.exists(src):
                        os.replace(src, f"{base}.{i + 1}")
                os.replace(base, f"{base}.1")
            else:
                os.unlink(base)
        except OSError as e:  # carry on appending to the file as it is: lose no line
            self.rotate_error = f"{e.strerror or e}{f' ({e.filename2})' if e.filename2 else ''}"
        finally:
            self._fd = self._open()
        self.size = 0  # (after a failed rename: try again once max_bytes more are written)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


Chunk = tuple[int, float, str, Segments, int]
"""(byte offset of its start, time read, stream, newline-terminated segments, size)."""
Line = tuple[int, float, str, str]
"""(byte offset of the line, time read, stream, text)."""


class LogRing:
    """Recent output of a service, kept as the chunks it was read in (O(1) per read,
    nothing decoded until asked): the last `maxlen` lines, at most about RING_BYTES."""

    def __init__(self, maxlen: int, lines: Iterable[Sequence[Any]] = (),
                 next_offset: int = 0) -> None:
        self.maxlen = maxlen
        self.chunks: deque[Chunk] = deque()
        self.size = 0
        self.next_offset = next_offset
        """Byte offset just after the last byte kept (or dropped)."""
        for offset, t, stream, text in lines:  # rebuild from tail() (after a handoff)
            raw = (text + "\n").encode()
            self.chunks.append((offset, t, stream, [raw], len(raw)))
            self.size += len(raw)
        self._trim()

    def add(self, t: float, stream: str, segments: Segments, size: int) -> int:
        """Keep newline-terminated output; returns the byte offset of its start."""
        offset = self.next_offset
        self.next_offset = offset + size
        self.chunks.append((offset, t, stream, segments, size))
        self.size += size
        self._trim()
        return offset

    def _trim(self) -> None:
        chunks = self.chunks
        # every chunk holds at least one line: more than maxlen chunks is too many lines
        while len(chunks) > 1 and (self.size > RING_BYTES or len(chunks) > self.maxlen):
            self.size -= chunks.popleft()[4]

    def tail(self, n: int | None = None) -> list[Line]:
        """The last `n` (at most `maxlen`) lines, oldest first."""
        n = self.maxlen if n is None else min(n, self.maxlen)
        if n <= 0:
            return []
        picked: list[tuple[Chunk, bytes]] = []
        have = 0
        for chunk in reversed(self.chunks):
            raw = b"".join(chunk[3])
            picked.append((chunk, raw))
            have += raw.count(b"\n")
            if have >= n:
                break
        out: list[Line] = []
        for (offset, t, stream, _, _), raw in reversed(picked):
            for line in raw.split(b"\n")[:-1]:
                out.append((offset, t, stream, line.decode("utf-8", "replace")))
                offset += len(line) + 1
        return out[-n:]

    def resize(self, maxlen: int) -> None:
        self.maxlen = maxlen
        self._trim()
