"""The dashboard on a real terminal (a pty, and tmux when installed): leaving it running,
losing the terminal, stopping everything, attaching again. The services must never
notice the UI coming and going."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import select
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import alive, kill_marked
from test_cli import PY, cli, cli_env, svc, write_cfg

pytestmark = pytest.mark.timeout(120)


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
        deadline = time.monotonic() + timeout

        def seen() -> bool:
            out = self.out
            if after is not None:
                out = out.split(after.encode(), 1)[1] if after.encode() in out else b""
            return text.encode() in out

        while not seen():
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not on screen: {self.out[-2000:]!r}")
            if self.eof:
                raise AssertionError(f"{text!r} never shown: {self.out[-2000:]!r}")
            time.sleep(0.02)
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
        deadline = time.monotonic() + timeout
        while self.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError("the program did not exit")
            time.sleep(0.02)
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


def snapshot(tmp: Path, cfg: Path) -> dict:
    r = cli(tmp, "status", "--json", "-c", str(cfg))
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def wait_snapshot(tmp: Path, cfg: Path, pred, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        r = cli(tmp, "status", "--json", "-c", str(cfg))
        if r.returncode == 0:
            snap = json.loads(r.stdout)
            if pred(snap):
                return snap
        if time.monotonic() > deadline:
            raise AssertionError(f"engine never got there: {r.stdout or r.stderr}")
        time.sleep(0.1)


def pids(snap: dict) -> dict[str, int]:
    return {s["name"]: s["pid"] for s in snap["services"]}


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[Path, Path, dict[str, str], list[Term]]]:
    cfg = write_cfg(tmp_path, svc("alpha", "sleeper") + svc("beta", "counter", "0", "0.2"))
    terms: list[Term] = []
    env = cli_env(tmp_path)
    yield tmp_path, cfg, env, terms
    for t in terms:
        t.kill()
    r = cli(tmp_path, "status", "--json", "-c", str(cfg), timeout=20)
    if r.returncode == 0:
        with contextlib.suppress(ProcessLookupError):
            os.kill(json.loads(r.stdout)["engine"]["pid"], signal.SIGTERM)
        time.sleep(1)
    kill_engines(cfg)
    kill_marked()


def kill_engines(cfg: Path) -> None:
    """Whatever still runs this config (an engine that did not answer): SIGKILL."""
    import psutil

    for p in psutil.process_iter(["cmdline"]):
        if str(cfg) in (p.info["cmdline"] or []) and p.pid != os.getpid():
            with contextlib.suppress(psutil.Error):
                p.kill()


def dashboard(tmp: Path, cfg: Path, env: dict[str, str], terms: list[Term],
              *args: str) -> Term:
    t = Term([PY, "-m", "tui_supervisor", *args, "-c", str(cfg)], env, tmp)
    terms.append(t)
    t.read_until("alpha")
    return t


def test_leave_running_then_attach_then_stop(setup) -> None:
    tmp, cfg, env, terms = setup
    t = dashboard(tmp, cfg, env, terms)
    before = pids(wait_snapshot(tmp, cfg, lambda s: all(pids(s).values())))
    engine = snapshot(tmp, cfg)["engine"]["pid"]
    t.send("q")
    t.read_until("Leave running")
    t.send("l")
    assert t.wait() == 0  # the shell gets its prompt back ...
    assert "goes on headless" in t.read_until("attach")
    snap = snapshot(tmp, cfg)  # ... and nothing else changed
    assert snap["engine"]["pid"] == engine and pids(snap) == before
    a = dashboard(tmp, cfg, env, terms, "attach")
    a.read_until("(attached)")
    a.send("q")  # an attached dashboard just goes
    assert a.wait() == 0
    assert pids(snapshot(tmp, cfg)) == before
    os.kill(engine, signal.SIGTERM)
    deadline = time.monotonic() + 20
    while alive(engine) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(engine) and not any(alive(p) for p in before.values())


def test_terminal_lost_services_untouched(setup) -> None:
    tmp, cfg, env, terms = setup
    t = dashboard(tmp, cfg, env, terms)
    before = pids(wait_snapshot(tmp, cfg, lambda s: all(pids(s).values())))
    engine = snapshot(tmp, cfg)["engine"]["pid"]
    t.close()  # hang up
    time.sleep(1)
    snap = wait_snapshot(tmp, cfg, lambda s: True)
    assert snap["engine"]["pid"] == engine and pids(snap) == before
    log = Path(snap["services"][0]["log_file"]).parent.parent / "engine.log"
    deadline = time.monotonic() + 10
    while "goes on headless" not in (log.read_text() if log.exists() else ""):
        assert time.monotonic() < deadline, "engine.log never said it went headless"
        time.sleep(0.1)
    a = dashboard(tmp, cfg, env, terms, "attach")  # and the view comes back
    a.read_until("(attached)")
    a.send("q")
    assert a.wait() == 0


def test_quit_and_stop_everything(setup) -> None:
    tmp, cfg, env, terms = setup
    t = dashboard(tmp, cfg, env, terms)
    before = pids(wait_snapshot(tmp, cfg, lambda s: all(pids(s).values())))
    t.send("q")
    t.read_until("Stop all")
    t.send("s")
    assert t.wait() == 0
    assert not any(alive(p) for p in before.values())
    assert cli(tmp, "status", "-c", str(cfg)).returncode == 1  # no engine any more


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_tmux_kill_session(setup) -> None:
    """The hosting terminal is a tmux pane and the session is killed."""
    tmp, cfg, env, terms = setup
    sock = str(tmp / "tmux.sock")
    cmd = f"{PY} -m tui_supervisor -c {cfg}"
    subprocess.run(["tmux", "-S", sock, "new", "-d", "-x", "140", "-y", "45", cmd],
                   env=env, cwd=tmp, check=True)
    try:
        before = pids(wait_snapshot(tmp, cfg, lambda s: all(pids(s).values())))
        engine = snapshot(tmp, cfg)["engine"]["pid"]
        deadline = time.monotonic() + 20
        while "alpha" not in subprocess.run(["tmux", "-S", sock, "capture-pane", "-p"],
                                            capture_output=True, text=True).stdout:
            assert time.monotonic() < deadline, "the dashboard never showed"
            time.sleep(0.1)
    finally:
        subprocess.run(["tmux", "-S", sock, "kill-server"], check=False)
    time.sleep(1)
    snap = wait_snapshot(tmp, cfg, lambda s: True)
    assert snap["engine"]["pid"] == engine and pids(snap) == before
    a = dashboard(tmp, cfg, env, terms, "attach")
    a.read_until("(attached)")
    a.send("q")
    assert a.wait() == 0


def test_a_failing_ui_leaves_the_engine_headless(setup) -> None:
    tmp, cfg, env, terms = setup
    env = {**env, "TUISUP_FAULT": "ui-crash"}  # the app raises a second after it starts
    t = dashboard(tmp, cfg, env, terms)
    before = pids(wait_snapshot(tmp, cfg, lambda s: all(pids(s).values())))
    engine = snapshot(tmp, cfg)["engine"]["pid"]
    assert t.wait() == 0  # the terminal is handed back ...
    snap = snapshot(tmp, cfg)  # ... and the services never noticed
    assert snap["engine"]["pid"] == engine and pids(snap) == before
    log = Path(snap["services"][0]["log_file"]).parent.parent / "engine.log"
    text = log.read_text()
    assert "injected UI failure" in text and "goes on headless" in text
    env.pop("TUISUP_FAULT")
    a = dashboard(tmp, cfg, env, terms, "attach")
    a.read_until("(attached)")
    a.send("q")
    assert a.wait() == 0
