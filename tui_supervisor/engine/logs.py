"""Service output: bytes -> lines, a rotating log file, and a ring of recent lines.

Nothing here blocks on a pipe; files are written with os.write on an O_APPEND fd (no
Python-level buffer that an exec could lose).
"""

from __future__ import annotations

import os
from collections import deque
from pathlib import Path
from typing import Any

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


def decode_lines(raw: bytes) -> list[str]:
    """Newline-terminated bytes -> lines of text (invalid UTF-8 replaced)."""
    lines = raw.decode("utf-8", "replace").split("\n")
    lines.pop()  # after the last newline
    return lines


def _has_long_line(data: bytes, end: int) -> bool:
    """Could data[:end] hold a line over MAX_LINE bytes? Such a line contains a whole
    aligned window of MAX_LINE/2 bytes without a newline; a few memchr calls rule it out."""
    w = MAX_LINE // 2
    return any(data.find(b"\n", p, p + w) < 0 for p in range(0, end - w + 1, w))


class LineSplitter:
    """Cuts a byte stream at line ends. Works on bytes only (no per-line Python work on
    the hot path): `feed` returns the complete lines as one newline-terminated chunk and
    their count. Holds at most MAX_LINE bytes of a partial line; a longer line is
    emitted in pieces of MAX_LINE bytes (cut on a UTF-8 boundary)."""

    __slots__ = ("partial",)

    def __init__(self, partial: bytes = b"") -> None:
        self.partial = partial

    def feed(self, data: bytes) -> tuple[bytes, int]:
        """(complete lines, newline-terminated; how many) - (b"", 0) if none yet."""
        if self.partial:
            data = self.partial + data
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            if len(data) < MAX_LINE:
                self.partial = data
                return b"", 0
            pieces = _split_long(data)
            self.partial = pieces.pop()
            return b"\n".join(pieces) + b"\n", len(pieces)
        complete = data if cut == len(data) else data[:cut]
        rest = data[cut:]
        if len(rest) >= MAX_LINE:
            more = _split_long(rest)
            rest = more.pop()
            complete += b"\n".join(more) + b"\n"
        self.partial = rest
        if len(complete) > MAX_LINE and _has_long_line(complete, len(complete)):
            pieces = [q for p in complete[:-1].split(b"\n") for q in _split_long(p)]
            complete = b"\n".join(pieces) + b"\n"
        return complete, complete.count(b"\n")

    def flush(self) -> tuple[bytes, int]:
        """The pending partial line as a complete line (at EOF)."""
        if not self.partial:
            return b"", 0
        data, self.partial = self.partial, b""
        return data + b"\n", 1


class LogFile:
    """Append-only log file rotated at line boundaries: `name.log`, `name.log.1`, ..."""

    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = self._open()
        self.size = os.fstat(self._fd).st_size

    def _open(self) -> int:
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
        return os.open(self.path, flags, 0o644)

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
        self.size += len(data)

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
        os.close(self._fd)
        base = str(self.path)
        if self.backups > 0:
            for i in range(self.backups - 1, 0, -1):
                src = f"{base}.{i}"
                if os.path.exists(src):
                    os.replace(src, f"{base}.{i + 1}")
            os.replace(base, f"{base}.1")
        else:
            os.unlink(base)
        self._fd = self._open()
        self.size = 0

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


Chunk = tuple[int, float, str, bytes, int]
"""(seq of the first line, time read, stream, newline-terminated bytes, line count)."""


class LogRing:
    """The last `maxlen` lines of a service, kept as the raw chunks they were read in
    (O(1) per read, nothing decoded until somebody asks)."""

    def __init__(self, maxlen: int, items: list[Any] | None = None, next_seq: int = 1) -> None:
        self.maxlen = maxlen
        self.chunks: deque[Chunk] = deque()
        self.count = 0
        self.size = 0
        self.next_seq = next_seq
        groups: list[tuple[int, float, str, list[str]]] = []
        for seq, t, stream, text in items or ():
            last = groups[-1] if groups else None
            if last and (last[1], last[2], last[0] + len(last[3])) == (t, stream, seq):
                last[3].append(text)
            else:
                groups.append((seq, t, stream, [text]))
        for seq, t, stream, texts in groups:
            self.next_seq = seq
            self.extend(t, stream, "".join(f"{x}\n" for x in texts).encode(), len(texts))
        self.next_seq = next_seq

    def extend(self, t: float, stream: str, raw: bytes, n: int) -> int:
        """Append `n` newline-terminated lines; returns the seq of the first."""
        first = self.next_seq
        self.next_seq = first + n
        self.chunks.append((first, t, stream, raw, n))
        self.count += n
        self.size += len(raw)
        self._trim()
        return first

    def _trim(self) -> None:
        chunks = self.chunks
        while chunks and (self.count - chunks[0][4] >= self.maxlen
                          or (len(chunks) > 1 and self.size > RING_BYTES)):
            _, _, _, raw, n = chunks.popleft()
            self.count -= n
            self.size -= len(raw)

    def tail(self, n: int | None = None) -> list[tuple[int, float, str, str]]:
        """The last `n` (at most `maxlen`) lines as (seq, t, stream, text), oldest first."""
        n = self.maxlen if n is None else min(n, self.maxlen)
        if n <= 0:
            return []
        picked: list[Chunk] = []
        have = 0
        for chunk in reversed(self.chunks):
            picked.append(chunk)
            have += chunk[4]
            if have >= n:
                break
        out = [(seq, t, st, text) for first, t, st, raw, _ in reversed(picked)
               for seq, text in enumerate(decode_lines(raw), first)]
        return out[-n:]

    def __len__(self) -> int:
        return min(self.count, self.maxlen)


    def resize(self, maxlen: int) -> None:
        self.maxlen = maxlen
        self._trim()
