"""The sd_notify protocol's receiving end: one AF_UNIX datagram socket per service.

The service finds it in `NOTIFY_SOCKET` (as under systemd's Type=notify) and sends
`READY=1`, `STATUS=...`, `WATCHDOG=1`, `STOPPING=1`, `MAINPID=N` lines. Each datagram
carries its sender's credentials (SO_PASSCRED): one from a process outside the
service is ignored, as systemd does with NotifyAccess=all for the unit's processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct
from collections.abc import Callable
from pathlib import Path

MAX_PATH = 107
"""sun_path holds 108 bytes with its NUL: a longer path is an abstract socket."""
DATAGRAM_MAX = 4096


def parse(data: bytes) -> dict[str, str]:
    """`KEY=value` lines (a line without `=` is ignored, as systemd does)."""
    out: dict[str, str] = {}
    for line in data.decode("utf-8", "replace").splitlines():
        key, sep, value = line.partition("=")
        if sep and key:
            out[key] = value
    return out


class NotifySocket:
    """A bound, non-blocking datagram socket read by the loop; `on_message(pid, fields)`
    for each datagram (pid: the sender's, from its credentials; None if not sent)."""

    def __init__(self, path: Path, abstract: str, loop: asyncio.AbstractEventLoop,
                 on_message: Callable[[int | None, dict[str, str]], None],
                 owner: tuple[int, int] | None = None,
                 handed: dict[str, object] | None = None) -> None:
        """Bind a new socket, or take over the one an earlier image `handed` over
        (`handoff()`: its fd crossed the exec, so no datagram is lost meanwhile)."""
        self.loop = loop
        self.on_message = on_message
        self.path: Path | None = None
        if handed is not None:
            fd = int(handed["fd"])  # type: ignore[call-overload]
            os.set_inheritable(fd, False)
            self.sock = socket.socket(fileno=fd)
            self.address = str(handed["address"])
            self.path = Path(str(handed["path"])) if handed.get("path") else None
            self.sock.setblocking(False)
            loop.add_reader(self.sock.fileno(), self._readable)
            return
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        try:
            self.sock.setblocking(False)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
            if len(os.fsencode(path)) <= MAX_PATH:
                path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()  # our own, from an engine that died
                old = os.umask(0o177)
                try:
                    self.sock.bind(str(path))
                finally:
                    os.umask(old)
                self.path = path
                if owner is not None:  # the service runs as another user: it must write
                    os.chown(path, *owner)
                self.address = str(path)
            else:
                self.sock.bind("\0" + abstract)
                self.address = "@" + abstract
        except BaseException:
            self.sock.close()
            raise
        loop.add_reader(self.sock.fileno(), self._readable)

    def _readable(self) -> None:
        for _ in range(64):  # bounded: a flood cannot hold the loop
            try:
                data, anc, _flags, _addr = self.sock.recvmsg(
                    DATAGRAM_MAX, socket.CMSG_SPACE(struct.calcsize("3i")))
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            pid = None
            for level, kind, cdata in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS and \
                        len(cdata) >= struct.calcsize("3i"):
                    pid = struct.unpack("3i", cdata[:struct.calcsize("3i")])[0]
            self.on_message(pid, parse(data))

    def handoff(self) -> dict[str, object]:
        """Stop reading and give up the socket (bound, its file kept) for the next image:
        {"fd", "address", "path"}."""
        with contextlib.suppress(Exception):
            self.loop.remove_reader(self.sock.fileno())
        fd = self.sock.detach()
        return {"fd": fd, "address": self.address,
                "path": str(self.path) if self.path is not None else None}

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.loop.remove_reader(self.sock.fileno())
        self.sock.close()
        if self.path is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()
