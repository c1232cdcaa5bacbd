"""A program on its own pty (its controlling terminal), the screen read raw: how the
dashboard is tested as a user runs it."""

from __future__ import annotations

import contextlib
import os
import pty
import select
import signal
import threading
from pathlib import Path

from .waiting import wait_until


class Term:
    """A program on its own pty (its controlling terminal); the screen is read raw."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        env = {**env, "TERM": "xterm-256color", "COLUMNS": "140", "LINES": "45"}
        pid, fd = pty.fork()
        if pid == 0:  # the child: exec at once
            os.chdir(cwd)
            os.execve(argv[0], argv, env)
        self.pid, self.fd = pid, fd
        self.out = b""
        self.status: int | None = None
        import fcntl
        import struct
        import termios

        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 45, 140, 0, 0))
        self.eof = False
        # a terminal always reads what the program writes: drain it all the time
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        while self.fd >= 0:
            try:
                if select.select([self.fd], [], [], 0.1)[0]:
                    data = os.read(self.fd, 65536)
                    if not data:
                        break
                    self.out += data
            except (OSError, ValueError):  # EIO: the program closed the terminal
                break
        self.eof = True

    def read_until(self, text: str, timeout: float = 30, after: str | None = None) -> str:
        """Wait for `text` on screen (only after `after`, e.g. a new UI's entering the
        alternate screen, ESC[?1049h, if given)."""
        def seen() -> bool:
            out = self.out
            if after is not None:
                out = out.split(after.encode(), 1)[1] if after.encode() in out else b""
            if text.encode() in out:
                return True
            if self.eof:
                raise AssertionError(f"{text!r} never shown: {self.out[-2000:]!r}")
            return False

        wait_until(seen, timeout, lambda: f"{text!r} on screen: {self.out[-2000:]!r}",
                   interval=0.02)
        return self.out.decode(errors="replace")

    def send(self, keys: str) -> None:
        os.write(self.fd, keys.encode())

    def poll(self) -> int | None:
        if self.status is None:
            done, st = os.waitpid(self.pid, os.WNOHANG)
            if done:
                self.status = os.waitstatus_to_exitcode(st)
        return self.status

    def wait(self, timeout: float = 30) -> int:
        wait_until(lambda: self.poll() is not None, timeout, "the program to exit",
                   interval=0.02)
        assert self.status is not None
        return self.status

    def close(self) -> None:
        """Hang up: the terminal is gone (as when an SSH connection drops)."""
        fd, self.fd = self.fd, -1
        self._reader.join(1)
        with contextlib.suppress(OSError):
            os.close(fd)

    def kill(self) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, 0)
        if self.fd >= 0:
            self.close()
