"""Headless output: a merged, name-prefixed stream of service output and state changes
(like honcho / foreman), written by a thread so a slow terminal or pipe never blocks the
engine. The log files hold every line; if the console falls more than `max_buffer` bytes
behind, lines are dropped here only, and the count is printed."""

from __future__ import annotations

import os
import threading
import time
from collections import deque

from tui_supervisor.engine.events import (
    AnyEvent,
    Exited,
    HealthChanged,
    LogLines,
    Notice,
    Spawned,
    StateChanged,
)
from tui_supervisor.formatting import ANSI, shown_state, state_colour, strip_ansi

COLORS = (36, 33, 32, 35, 34, 91, 92, 93, 94, 95, 96)


class Console:
    def __init__(self, names: list[str], fd: int = 1, color: bool | None = None,
                 max_buffer: int = 8 << 20) -> None:
        self.fd = fd
        self.color = os.isatty(fd) and not os.environ.get("NO_COLOR") if color is None \
            else color
        self.width = max([len(n) for n in names] + [len("supervisor")])
        self._prefix: dict[str, str] = {}
        for i, n in enumerate(names):
            self.prefix_for(n, i)
        self.max_buffer = max_buffer
        self._buf: deque[AnyEvent | str] = deque()
        self._size = 0
        self.dropped = 0
        self._writing = False
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="console", daemon=True)
        self._thread.start()

    def prefix_for(self, name: str, index: int | None = None) -> str:
        p = self._prefix.get(name)
        if p is None:
            label = name.ljust(self.width)
            if self.color:
                c = COLORS[(len(self._prefix) if index is None else index) % len(COLORS)]
                label = f"\x1b[{c}m{label}\x1b[0m"
            p = self._prefix[name] = label
        return p

    def _paint(self, text: str, code: int) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.color else text

    def __call__(self, ev: AnyEvent) -> None:
        """Queue an event (cheap: formatting happens on the console's thread)."""
        if isinstance(ev, Exited | Spawned) or (isinstance(ev, HealthChanged)
                                                  and ev.health is None):
            return  # (probes stopping with the process: its state change says it)
        size = 2 * ev.size if isinstance(ev, LogLines) else 200
        with self._cond:
            if self._size + size > self.max_buffer:
                self.dropped += ev.count if isinstance(ev, LogLines) else 1
                return
            self._buf.append(ev)
            self._size += size
            self._cond.notify()

    def write(self, text: str) -> None:
        """Queue a line of the supervisor's own."""
        with self._cond:
            self._buf.append(text)
            self._size += len(text)
            self._cond.notify()

    def format(self, ev: AnyEvent | str) -> str:
        if isinstance(ev, str):
            return ev
        stamp = time.strftime("%H:%M:%S", time.localtime(ev.t))
        if isinstance(ev, LogLines):
            head = f"{stamp} {self.prefix_for(ev.service)} | "
            if ev.stream == "stderr":
                head += self._paint("!", 31) + " "
            lines = ev.lines if self.color else map(strip_ansi, ev.lines)
            return "".join(f"{head}{line}\n" for line in lines)
        if isinstance(ev, StateChanged):
            shown = shown_state(ev.new, ev.crash_looping)
            state = self._paint(shown, ANSI.get(state_colour(shown), 0))
            pid = f" pid {ev.pid}" if ev.pid and ev.new in ("starting", "running") else ""
            why = f" ({ev.reason})" if ev.reason else ""
            return f"{stamp} {self.prefix_for(ev.service)} * {state}{pid}{why}\n"
        if isinstance(ev, HealthChanged):
            colour = {"ready": 32, "unready": 33}.get(str(ev.health), 0)
            said = f": {ev.output.splitlines()[0][:200]}" \
                if ev.health == "unready" and ev.output.strip() else ""
            return (f"{stamp} {self.prefix_for(ev.service)} * "
                    f"{self._paint(str(ev.health), colour)}{said}\n")
        if isinstance(ev, Notice):
            who = self.prefix_for(ev.service) if ev.service else \
                self._paint("supervisor".ljust(self.width), 1)
            level = self._paint(ev.level, 91 if ev.level == "error" else 33) \
                if ev.level != "info" else ev.level
            return f"{stamp} {who} * {level}: {ev.message}\n"
        return ""

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._buf and not self._closed:
                    self._cond.wait()
                if not self._buf and self._closed:
                    return
                items = list(self._buf)
                self._writing = True
                self._buf.clear()
                self._size = 0
                dropped, self.dropped = self.dropped, 0
            text = "".join(map(self.format, items))
            if dropped:
                text += (f"... {dropped} lines not shown here (the console fell behind); "
                         "the log files have them all\n")
            data = memoryview(text.encode("utf-8", "replace"))
            while data:
                try:
                    data = data[os.write(self.fd, data):]
                except BlockingIOError:
                    time.sleep(0.01)
                except OSError:
                    return  # stdout went away (closed pipe, lost terminal): keep supervising
            self._writing = False

    def flush(self, timeout: float = 2.0) -> None:
        """Wait until everything queued so far is written (up to `timeout`)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._thread.is_alive():
            with self._cond:
                if not self._buf and not self._writing:
                    return
            time.sleep(0.005)

    def close(self, timeout: float = 2.0) -> None:
        """Flush what is buffered (up to `timeout`) and stop the thread."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout)
