"""Code reload, measured from outside (issue 6). Run by the `reload` case of bench/run.py
(as the tagged "supervisor" process), or by hand with the dev venv's python:

    python bench/reload.py [all|dashboard|headless] [--reloads 8] [--json OUT]

`dashboard`: `python -m tui_supervisor -c CFG` (the launcher forks; engine + UI in one
process) on a real 140x45 pty (TERM=xterm-256color), from a COPY of the package on
PYTHONPATH with `watch_code: true`, three services, one printing 1000 numbered lines a
second. Each reload is a save: a comment appended to a .py file of the copy. From the
save until the NEW UI has painted its first full frame, read from the pty: the old UI
leaves the alternate screen (ESC[?1049l), the new one enters it again (ESC[?1049h), and
then the service names and the footer arrive (only a full frame has all of them).

`headless`: `run --headless --quiet`, SIGUSR2 -> the new image prints "code reloaded"
(and how long the pipes went unread, as it measured them itself).

Both: how long the pipes went unread, seen from outside: the longest stretch around each
reload in which the writer's log file did not grow (its size polled every ~1 ms; the
writer prints every 1 ms and the engine writes each read straight to the file). After
the last reload: the engine and service PIDs unchanged, no restart, and (once stopped)
every line of the writer in its log exactly once, in order.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import fcntl
import itertools
import json
import os
import pty
import re
import select
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness import alive

REPO = Path(__file__).resolve().parent.parent
ROWS, COLS = 45, 140
WRITER_RATE = 1000
LEAVE, ENTER = b"\x1b[?1049l", b"\x1b[?1049h"
FOOTER = b"Quit"
"""A key binding's text in the footer (the screen's last row). Textual's first paint has
the footer's bar but fills in the bindings a frame later: a full frame has them."""
SAVED_FILE = Path("tui_supervisor") / "tui" / "rows.py"
"""The file of the package copy each reload appends a comment to."""
RATE_WRITER = (  # numbered lines, RATE per second, written every ~1 ms
    "import os, sys, time\n"
    "rate, n, t0 = int(sys.argv[1]), 0, time.monotonic()\n"
    "while True:\n"
    "    due = int((time.monotonic() - t0) * rate)\n"
    "    if due > n:\n"
    "        os.write(1, b''.join(b'%09d\\n' % i for i in range(n, due)))\n"
    "        n = due\n"
    "    time.sleep(0.001)\n"
)
Chunk = tuple[float, bytes]


# -- pure logic ----------------------------------------------------------------------
def find_frame(chunks: Sequence[Chunk], since: float, needles: Sequence[bytes]
               ) -> tuple[float, float, list[float]] | None:
    """In terminal output read at the given monotonic times: after `since`, the first
    ESC[?1049l, the first ESC[?1049h after it, and when each needle first arrived after
    that (each: the read that completed it): (leave, enter, [time per needle]), or None
    if not all there (yet)."""
    data = bytearray()
    ends: list[tuple[int, float]] = []
    for t, d in chunks:
        if t >= since:
            data += d
            ends.append((len(data), t))

    def when(offset: int) -> float:  # the read that delivered byte `offset`
        return next(t for end, t in ends if end > offset)

    leave = data.find(LEAVE)
    enter = data.find(ENTER, leave + len(LEAVE)) if leave >= 0 else -1
    if enter < 0:
        return None
    found = []
    for needle in needles:
        at = data.find(needle, enter)
        if at < 0:
            return None
        found.append(when(at + len(needle) - 1))
    return when(leave + len(LEAVE) - 1), when(enter + len(ENTER) - 1), found


def longest_pause(changes: Sequence[float], t0: float, t1: float) -> float:
    """The longest interval between consecutive `changes` (sorted times at which a file
    grew) that overlaps [t0, t1]; 0 if there is none."""
    return max((b - a for a, b in itertools.pairwise(changes)
                if b >= t0 and a <= t1), default=0.0)


def check_lines(numbers: Sequence[int]) -> dict[str, Any]:
    """Numbered lines as found in a log: lost, duplicated, in order."""
    expected = max(numbers) + 1 if numbers else 0
    unique = len(set(numbers))
    return {"lines": len(numbers), "lines_lost": expected - unique,
            "lines_duplicated": len(numbers) - unique,
            "in_order": list(numbers) == list(range(len(numbers)))}


def summary(xs: Sequence[float]) -> dict[str, float]:
    return {"p50": statistics.median(xs), "max": max(xs), "min": min(xs)} if xs else {}


# -- processes ----------------------------------------------------------------------
class Growth:
    """Polls a file's size every ~1 ms in a thread; `changes`: when it was seen to grow."""

    def __init__(self, path: Path, step: float = 0.001) -> None:
        self.path, self.step = path, step
        self.changes: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        last = -1
        while not self._stop.is_set():
            try:
                size = os.stat(self.path).st_size
            except OSError:
                size = -1
            if size != last:
                self.changes.append(time.monotonic())
                last = size
            time.sleep(self.step)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)


class Term:
    """A program on its own pty (its controlling terminal, 140x45), read all the time in
    a thread as a terminal would; every read kept with its monotonic time."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        env = {**env, "TERM": "xterm-256color", "COLUMNS": str(COLS), "LINES": str(ROWS)}
        pid, fd = pty.fork()
        if pid == 0:  # the child: size the terminal, exec
            try:
                os.chdir(cwd)
                fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
                os.execve(argv[0], argv, env)
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd
        self.chunks: list[Chunk] = []
        self.status: int | None = None
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while True:
            try:
                if select.select([self.fd], [], [], 0.1)[0]:
                    data = os.read(self.fd, 65536)
                    if not data:
                        return
                    self.chunks.append((time.monotonic(), data))
            except (OSError, ValueError):  # EIO: nobody has the terminal open any more
                return

    def seen(self, needle: bytes) -> bool:
        return any(needle in d for _, d in self.chunks[-200:])

    def poll(self) -> int | None:
        if self.status is None:
            with contextlib.suppress(ChildProcessError):
                done, st = os.waitpid(self.pid, os.WNOHANG)
                if done:
                    self.status = os.waitstatus_to_exitcode(st)
        return self.status

    def close(self) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, 0)
        self._thread.join(1)
        with contextlib.suppress(OSError):
            os.close(self.fd)


def write_config(root: Path, watch_code: bool) -> Path:
    lines = [
        "version: 1",
        f"settings: {{log_dir: '{root / 'logs'}', state_dir: '{root / 'state'}', "
        f"runtime_dir: '{root / 'run'}', sample_interval: 1s, "
        f"watch_code: {str(watch_code).lower()}}}",
        "services:",
        f"  writer:\n    command: [{json.dumps(sys.executable)}, '-c', "
        f"{json.dumps(RATE_WRITER)}, '{WRITER_RATE}']\n    start_time: 0",
        "  idle-one:\n    command: [sleep, '100000']",
        "  idle-two:\n    command: [sleep, '100000']",
    ]
    path = root / "reload.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


SERVICES = ("writer", "idle-one", "idle-two")


def status(cfg: Path, env: dict[str, str]) -> dict[str, Any] | None:
    r = subprocess.run([sys.executable, "-m", "tui_supervisor", "status", "--json", "-c",
                        str(cfg)], capture_output=True, text=True, env=env, timeout=60,
                       check=False)
    with contextlib.suppress(ValueError):
        return json.loads(r.stdout) if r.returncode in (0, 3) else None  # 3: not all up
    return None


def wait_up(cfg: Path, env: dict[str, str], timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        snap = status(cfg, env)
        if snap and all(s["state"] == "running" and s["pid"] for s in snap["services"]):
            return snap
        if time.monotonic() > deadline:
            raise RuntimeError(f"services not running after {timeout} s: {snap}")
        time.sleep(0.2)


def _pids(snap: dict[str, Any]) -> dict[str, int]:
    return {s["name"]: s["pid"] for s in snap["services"]}


def _gone(pids: Sequence[int], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while any(alive(p) for p in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _kill_all(pids: Sequence[int], cfg: Path, env: dict[str, str]) -> None:
    """SIGKILL what is left: `pids` and whatever the engine (if it still answers) runs."""
    if not any(alive(p) for p in pids):
        return
    with contextlib.suppress(subprocess.SubprocessError):
        if snap := status(cfg, env):
            pids = [*pids, snap["engine"]["pid"], *filter(None, _pids(snap).values())]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _after(first: dict[str, Any], last: dict[str, Any] | None) -> dict[str, Any]:
    """What the last snapshot says against the first: same PIDs, restarts."""
    if last is None:
        return {"pids_unchanged": False, "restarts": None, "engine_reloads": None}
    return {"pids_unchanged": (last["engine"]["pid"] == first["engine"]["pid"]
                               and _pids(last) == _pids(first)),
            "restarts": sum(s["restarts"] for s in last["services"]),
            "failures": sum(s["failures"] for s in last["services"])}


def _writer_lines(log: Path) -> dict[str, Any]:
    numbers = [int(x) for x in log.read_bytes().split()]
    return check_lines(numbers)


def _stats(prefix: str, xs: Sequence[float], scale: float = 1.0) -> dict[str, Any]:
    return {f"{prefix}_{k}": v * scale for k, v in summary(xs).items()} | {
        f"{prefix}_all": [round(x * scale, 4) for x in xs]}


def preflight_cost(env: dict[str, str], cwd: Path, repeats: int = 3) -> float:
    """Median wall time of the import a code reload's pre-flight runs in a fresh
    interpreter (part of save -> the old UI leaving)."""
    try:
        from tui_supervisor.reload.safe import PREFLIGHT_IMPORT as code
    except ImportError:
        code = "import tui_supervisor.cli, tui_supervisor.tui.app, tui_supervisor.metrics"
    times = []
    for _ in range(repeats):
        t0 = time.monotonic()
        subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, check=True,
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
        times.append(time.monotonic() - t0)
    return statistics.median(times)


# -- the two runs ---------------------------------------------------------------------
def run_dashboard(n: int, root: Path, settle: float = 1.0) -> dict[str, Any]:
    root.mkdir(parents=True, exist_ok=True)
    pkg = root / "pkg"
    shutil.copytree(REPO / "tui_supervisor", pkg / "tui_supervisor",
                    ignore=shutil.ignore_patterns("__pycache__"))
    compileall.compile_dir(pkg, quiet=1)  # as a checkout someone works in has
    cfg = write_config(root, watch_code=True)
    env = {**os.environ, "PYTHONPATH": str(pkg)}  # and cwd=root: `-m` puts cwd first
    term = Term([sys.executable, "-m", "tui_supervisor", "-c", str(cfg)], env, root)
    needles = [s.encode() for s in SERVICES] + [FOOTER]
    known: list[int] = []
    growth = None
    out: dict[str, Any] = {"reloads": n, "services": len(SERVICES), "size": f"{COLS}x{ROWS}",
                           "writer_rate": WRITER_RATE}
    try:
        first = wait_up(cfg, env)
        known = [first["engine"]["pid"], *_pids(first).values()]
        growth = Growth(Path(next(s["log_file"] for s in first["services"]
                                  if s["name"] == "writer")))
        deadline = time.monotonic() + 30
        while not (term.seen(FOOTER) and term.seen(b"idle-two")):
            if time.monotonic() > deadline:
                raise RuntimeError("the dashboard never showed")
            time.sleep(0.05)
        time.sleep(2 * settle)
        out["preflight_import_s"] = preflight_cost(env, root)
        saved = pkg / SAVED_FILE
        frames: list[tuple[float, float, float, float, float]] = []
        for i in range(1, n + 1):
            with open(saved, "a") as f:
                f.write(f"# bench save {i}\n")
            t_save = time.monotonic()
            deadline = t_save + 30
            while (got := find_frame(term.chunks, t_save, needles)) is None:
                if time.monotonic() > deadline or term.poll() is not None:
                    raise RuntimeError(f"save {i}: no new frame within 30 s")
                time.sleep(0.005)
            leave, enter, at = got
            frames.append((t_save, leave, enter, max(at[:-1]), at[-1]))
            time.sleep(settle)
        last = status(cfg, env)
        growth.stop()
        gaps = [longest_pause(growth.changes, s, f + 0.5) for s, _, _, _, f in frames]
        out |= _stats("save_to_frame_s", [f - s for s, _, _, _, f in frames])
        out |= _stats("save_to_rows_s", [r - s for s, _, _, r, _ in frames])
        out |= _stats("save_to_leave_s", [lv - s for s, lv, _, _, _ in frames])
        out |= _stats("leave_to_enter_s", [e - lv for _, lv, e, _, _ in frames])
        out |= _stats("enter_to_rows_s", [r - e for _, _, e, r, _ in frames])
        out |= _stats("rows_to_frame_s", [f - r for _, _, _, r, f in frames])
        out |= _stats("pipes_unread_ms", gaps, 1e3)
        out |= _after(first, last)
        log = growth.path
        os.kill(term.pid, signal.SIGTERM)  # the launcher forwards it: stop everything
        out["stopped_cleanly"] = _gone([term.pid, *known], 30)
        term.poll()
        out["exit_code"] = term.status
        out |= _writer_lines(log)
    finally:
        if growth is not None:
            growth.stop()
        _kill_all([*known, term.pid], cfg, env)
        with contextlib.suppress(ProcessLookupError):  # the engine, if never seen
            os.killpg(term.pid, signal.SIGKILL)
        term.close()
    return out


def run_headless(n: int, root: Path, settle: float = 0.5) -> dict[str, Any]:
    root.mkdir(parents=True, exist_ok=True)
    cfg = write_config(root, watch_code=False)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out_path = root / "engine.out"
    with open(out_path, "wb") as f:
        eng = subprocess.Popen([sys.executable, "-m", "tui_supervisor", "run", "--headless",
                                "--quiet", "-c", str(cfg)], stdout=f, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, env=env, cwd=root,
                               start_new_session=True)
    known = [eng.pid]
    growth = None
    out: dict[str, Any] = {"reloads": n, "services": len(SERVICES), "writer_rate": WRITER_RATE}
    try:
        first = wait_up(cfg, env)
        known += _pids(first).values()
        growth = Growth(Path(next(s["log_file"] for s in first["services"]
                                  if s["name"] == "writer")))
        time.sleep(1.0)
        took, marks, said = [], [], []
        for i in range(1, n + 1):
            t0 = time.monotonic()
            os.kill(eng.pid, signal.SIGUSR2)
            while (text := out_path.read_text()).count("code reloaded:") < i:
                if time.monotonic() - t0 > 30 or eng.poll() is not None:
                    raise RuntimeError(f"reload {i} did not happen: {text[-500:]}")
                time.sleep(0.002)
            t1 = time.monotonic()
            took.append(t1 - t0)
            marks.append((t0, t1))
            said.append(float(re.findall(r"pipes unread for (\d+) ms", text)[-1]))
            time.sleep(settle)
        last = status(cfg, env)
        growth.stop()
        out |= _stats("signal_to_reloaded_s", took)
        out |= _stats("pipes_unread_ms", [longest_pause(growth.changes, a, b + 0.5)
                                          for a, b in marks], 1e3)
        out |= _stats("pipes_unread_said_ms", said)
        out |= _after(first, last)
        eng.send_signal(signal.SIGTERM)
        out["stopped_cleanly"] = _gone(known, 30)
        out["exit_code"] = eng.wait(10)
        out |= _writer_lines(growth.path)
    finally:
        if growth is not None:
            growth.stop()
        _kill_all(known, cfg, env)
        if eng.poll() is None:
            eng.kill()
        eng.wait(10)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", nargs="?", choices=("all", "dashboard", "headless"), default="all")
    ap.add_argument("--reloads", type=int, default=8)
    ap.add_argument("--json", type=Path, help="write the result here (else stdout)")
    args = ap.parse_args()
    if args.reloads < 1:
        ap.error("--reloads must be at least 1")
    root = Path(tempfile.mkdtemp(prefix="tuisup-reload-"))
    r: dict[str, Any] = {"loadavg_before": list(os.getloadavg())}
    try:
        for mode, run in (("dashboard", run_dashboard), ("headless", run_headless)):
            if args.mode in ("all", mode):
                try:
                    r[mode] = run(args.reloads, root / mode)
                except (RuntimeError, OSError, subprocess.SubprocessError) as e:
                    r[mode] = {"error": str(e)}
    finally:
        shutil.rmtree(root, ignore_errors=True)
    r["loadavg_after"] = list(os.getloadavg())
    text = json.dumps(r, indent=1)
    if args.json:
        args.json.write_text(text + "\n")
    else:
        print(text)


if __name__ == "__main__":
    main()
