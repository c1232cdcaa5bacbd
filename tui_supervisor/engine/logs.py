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


class LineSplitter:
    """Turns a byte stream into complete lines. Holds at most MAX_LINE bytes of a partial
    line; a line longer than that is emitted in pieces."""

    __slots__ = ("partial",)

    def __init__(self, partial: bytes = b"") -> None:
        self.partial = partial

    def feed(self, data: bytes) -> tuple[bytes, list[str]]:
        """Returns (raw bytes of the complete lines, newline-terminated; decoded lines)."""
        if self.partial:
            data = self.partial + data
        cut = data.rfind(b"\n")
        if cut < 0:
            if len(data) < MAX_LINE:
                self.partial = data
                return b"", []
            pieces = _split_long(data)
            self.partial = pieces.pop()
            raw = b"\n".join(pieces) + b"\n"
            return raw, [p.decode("utf-8", "replace") for p in pieces]
        complete, rest = data[: cut + 1], data[cut + 1 :]
        if len(rest) >= MAX_LINE:
            more = _split_long(rest)
            rest = more.pop()
            complete += b"\n".join(more) + b"\n"
        self.partial = rest
        if len(complete) > MAX_LINE and max(map(len, complete.split(b"\n"))) > MAX_LINE:
            pieces = [q for p in complete[:-1].split(b"\n") for q in _split_long(p)]
            complete = b"\n".join(pieces) + b"\n"
        return complete, complete[:-1].decode("utf-8", "replace").split("\n")

    def flush(self) -> tuple[bytes, list[str]]:
        """The pending partial line as a complete line (at EOF)."""
        if not self.partial:
            return b"", []
        data, self.partial = self.partial, b""
        return data + b"\n", [data.decode("utf-8", "replace")]


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


class LogRing:
    """The last `maxlen` lines of a service: (seq, t, stream, text) tuples."""

    def __init__(self, maxlen: int, items: list[Any] | None = None, next_seq: int = 1) -> None:
        self.lines: deque[tuple[int, float, str, str]] = deque(
            (tuple(i) for i in items or ()), maxlen=maxlen)  # type: ignore[misc]
        self.next_seq = next_seq

    def extend(self, t: float, stream: str, texts: list[str]) -> int:
        """Append lines; returns the seq of the first one."""
        first = self.next_seq
        self.lines.extend((seq, t, stream, s) for seq, s in enumerate(texts, first))
        self.next_seq = first + len(texts)
        return first

    def tail(self, n: int | None = None) -> list[tuple[int, float, str, str]]:
        items = list(self.lines)
        return items if n is None else items[-n:] if n > 0 else []

    def resize(self, maxlen: int) -> None:
        if maxlen != self.lines.maxlen:
            self.lines = deque(self.lines, maxlen=maxlen)
