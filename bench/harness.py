"""Drivers that run one supervisor (ours or supervisord) on a generated config, plus the
process bookkeeping every benchmark needs: tagged processes, sweeps, FIFOs, CPU/memory.

Every process a benchmark starts carries TAG_VAR=<run id>/<case>/<side> in its
environment (set on the supervisor, inherited by its services), so a sweep of /proc finds
and kills all of them, whatever happened to the supervisor.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import shlex
import shutil
import signal
import subprocess
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import psutil
import yaml
from setup_env import VENV as SUPERVISORD_VENV
from setup_env import installed_version, supervisord_bin

TAG_VAR = "TUISUP_BENCH_TAG"
REPO = Path(__file__).resolve().parent.parent


class BenchError(Exception):
    """A benchmark could not complete (timeout, wrong output, process left behind)."""


@dataclass(frozen=True)
class Program:
    """One supervised service, in terms both supervisors understand."""

    name: str
    argv: tuple[str, ...]
    autorestart: bool = True


# -- processes ------------------------------------------------------------------------
def _environ(pid: int) -> list[bytes]:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


def tagged_pids(tag_prefix: str) -> set[int]:
    """Live (non-zombie) processes whose TAG_VAR starts with `tag_prefix`."""
    needle = f"{TAG_VAR}={tag_prefix}".encode()
    me = os.getpid()
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        if any(v.startswith(needle) for v in _environ(int(entry))):
            found.add(int(entry))
    return found


def alive(pid: int) -> bool:
    """True if `pid` runs and is not a zombie (cheap: one read of /proc/PID/stat)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2 :][:1] != b"Z"


def sweep(tag_prefix: str, timeout: float = 5.0) -> list[int]:
    """SIGKILL every tagged process until none is left; returns the pids that were found."""
    killed: set[int] = set()
    deadline = time.monotonic() + timeout
    while pids := tagged_pids(tag_prefix):
        killed |= pids
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if time.monotonic() > deadline:
            raise BenchError(f"could not kill tagged processes: {sorted(pids)}")
        time.sleep(0.02)
    return sorted(killed)


def wait_gone(pids: Sequence[int], timeout: float, step: float = 0.002) -> float:
    """Wait until none of `pids` is alive; returns the monotonic time it happened."""
    left = list(pids)
    deadline = time.monotonic() + timeout
    while True:
        left = [p for p in left if alive(p)]
        now = time.monotonic()
        if not left:
            return now
        if now > deadline:
            raise BenchError(f"{len(left)} service processes still alive: {left[:10]}")
        time.sleep(step)


@dataclass(frozen=True)
class Usage:
    cpu_s: float
    wall_s: float
    rss: int
    uss: int
    precise: bool
    """cpu_s is from schedstat (ns) rather than clock ticks (10 ms)."""

    @property
    def cpu_pct(self) -> float:
        return 100.0 * self.cpu_s / self.wall_s if self.wall_s > 0 else 0.0


def _schedstat(pid: int) -> dict[int, int]:
    """ns on CPU per live thread of `pid` (/proc/PID/task/TID/schedstat)."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{tid}/schedstat") as f:
            out[int(tid)] = int(f.read().split()[0])
    return out


class CpuMeter:
    """CPU time (user + system, all threads) a process used between start and stop. Uses
    the scheduler's ns counters when no thread came or went meanwhile, else psutil's
    10 ms clock ticks (which also count threads that exited)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.proc = psutil.Process(pid)
        self.t0 = time.monotonic()
        self.ticks0 = self._ticks()
        self.sched0 = _schedstat(pid)

    def _ticks(self) -> float:
        t = self.proc.cpu_times()
        return t.user + t.system

    def stop(self) -> Usage:
        sched, ticks, now = _schedstat(self.pid), self._ticks(), time.monotonic()
        mem = self.proc.memory_full_info()
        precise = sched.keys() == self.sched0.keys()
        cpu = (sum(sched.values()) - sum(self.sched0.values())) / 1e9 if precise \
            else ticks - self.ticks0
        return Usage(cpu, now - self.t0, mem.rss, mem.uss, precise)


# -- FIFOs ------------------------------------------------------------------------------
class LineFifo:
    """A FIFO services write short lines to (`echo $$ > FIFO`). Held open read-write so it
    never sees EOF and writers never block on open."""

    def __init__(self, path: Path) -> None:
        self.path = path
        os.mkfifo(path, 0o600)
        self.fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        self._poll = select.poll()
        self._poll.register(self.fd, select.POLLIN)
        self._buf = b""
        self._lines: list[bytes] = []

    def read_lines(self, n: int, timeout: float) -> list[bytes]:
        """The next `n` lines (waiting up to `timeout` s in all)."""
        deadline = time.monotonic() + timeout
        while len(self._lines) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BenchError(f"timeout: {len(self._lines)} of {n} lines on {self.path.name}")
            if not self._poll.poll(left * 1000):
                continue
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                continue
            *complete, self._buf = (self._buf + data).split(b"\n")
            self._lines.extend(complete)
        out, self._lines = self._lines[:n], self._lines[n:]
        return out

    def read_line(self, timeout: float) -> bytes:
        return self.read_lines(1, timeout)[0]

    def close(self) -> None:
        os.close(self.fd)


def release_fifo(path: Path, timeout: float = 30.0) -> None:
    """Open `path` for writing once a reader has it open, then close it: the reader's
    read() returns EOF (a start signal for a waiting writer)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as e:
            if e.errno != errno.ENXIO or time.monotonic() > deadline:
                raise BenchError(f"nobody opened {path.name} for reading") from e
            time.sleep(0.001)
            continue
        os.close(fd)
        return


# -- drivers ----------------------------------------------------------------------------
class Driver(ABC):
    """One supervisor process on a generated config, in its own work dir."""

    side: str = ""
    settle_s: float = 0.0
    """How long after a spawn the supervisor itself takes to call the service running."""

    def __init__(self, workdir: Path, tag: str) -> None:
        self.workdir = workdir
        self.tag = tag
        self.popen: subprocess.Popen[bytes] | None = None
        self._fifos: list[LineFifo] = []
        self.output = workdir / f"{self.side}.out"
        workdir.mkdir(parents=True, exist_ok=True)

    @abstractmethod
    def write_config(self, programs: Sequence[Program]) -> Path: ...

    @abstractmethod
    def command(self, config: Path) -> list[str]: ...

    @abstractmethod
    def log_path(self, program: str) -> Path: ...

    @staticmethod
    @abstractmethod
    def version() -> str: ...

    @abstractmethod
    def status_command(self) -> list[str]:
        """The client command that lists every service's state (a fresh process)."""

    def fifo(self, name: str) -> LineFifo:
        """A new LineFifo in the work dir, closed by `cleanup`."""
        path = self.workdir / name
        path.unlink(missing_ok=True)
        fifo = LineFifo(path)
        self._fifos.append(fifo)
        return fifo

    @property
    def pid(self) -> int:
        assert self.popen is not None, "not launched"
        return self.popen.pid

    def prepare(self, programs: Sequence[Program]) -> list[str]:
        """Write the config; returns the command line that `launch` runs."""
        return self.command(self.write_config(programs))

    def launch(self, argv: list[str]) -> None:
        env = {**os.environ, TAG_VAR: self.tag}
        with open(self.output, "ab") as out:
            self.popen = subprocess.Popen(argv, cwd=self.workdir, env=env,
                                          stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                          start_new_session=True)

    def start(self, programs: Sequence[Program]) -> None:
        self.launch(self.prepare(programs))

    def pin(self, cpus: set[int]) -> None:
        """Restrict every thread of the supervisor to `cpus` (its later children too)."""
        for tid in os.listdir(f"/proc/{self.pid}/task"):
            with contextlib.suppress(ProcessLookupError):
                os.sched_setaffinity(int(tid), cpus)

    def check_running(self) -> None:
        if self.popen is not None and self.popen.poll() is not None:
            raise BenchError(f"{self.side} exited with {self.popen.returncode}: "
                             f"{self.output_tail()}")

    def terminate(self) -> None:
        """SIGTERM: both supervisors stop every service, then exit."""
        assert self.popen is not None
        self.popen.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> int:
        """Wait for the supervisor to exit, woken by its pidfd (Popen.wait(timeout) polls
        with sleeps of up to 50 ms, too coarse here)."""
        assert self.popen is not None
        if self.popen.returncode is None:
            fd = os.pidfd_open(self.popen.pid)
            try:
                if not select.select([fd], [], [], timeout)[0]:
                    raise BenchError(f"{self.side} did not exit within {timeout}s")
            finally:
                os.close(fd)
        return self.popen.wait()

    def output_tail(self, n: int = 5) -> str:
        with contextlib.suppress(OSError):
            lines = self.output.read_text(errors="replace").splitlines()
            return " | ".join(lines[-n:])
        return ""

    def cleanup(self) -> list[int]:
        """Kill the supervisor and every process it started; returns the pids killed
        (none when the benchmark had already stopped everything)."""
        killed: list[int] = []
        if self.popen is not None and self.popen.poll() is None:
            killed.append(self.popen.pid)
            self.popen.kill()
        if self.popen is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(5)
        killed += sweep(self.tag)
        for fifo in self._fifos:
            fifo.close()
        self._fifos.clear()
        return killed

    def __enter__(self) -> Driver:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.cleanup()


def _ours_command() -> list[str]:
    script = Path(sys.executable).parent / "tui-supervisor"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "tui_supervisor"]


class Ours(Driver):
    """tui-supervisor run --headless --quiet, from the venv running the bench."""

    side = "ours"
    settle_s = 0.05  # start_time 0: running as soon as spawned
    sample_interval = 0.0
    """settings.sample_interval of the next config written (0: no resource sampling)."""

    def write_config(self, programs: Sequence[Program]) -> Path:
        services = {}
        for p in programs:
            services[p.name] = {
                "command": [a.replace("$", "$$") for a in p.argv],  # `$$` is a literal `$`
                "start_time": 0,
                "restart": "always" if p.autorestart else "never",
                "backoff": {"initial": "0ms", "factor": 1, "max": "0ms", "jitter": 0,
                            "reset_after": "1s"},
                "crash_loop": {"max_failures": 10_000, "window": "1s"},  # the most allowed
                "stop": {"signal": "TERM", "timeout": "10s"},
                "log": {"max_bytes": 0, "backups": 0},
            }
        cfg = {
            "version": 1,
            "settings": {"log_dir": str(self.workdir / "logs"),
                         "state_dir": str(self.workdir / "state"),
                         "runtime_dir": str(self.workdir / "run"),
                         "sample_interval": self.sample_interval,
                         # auto: a cgroup per service where the engine may (the default);
                         # TUISUP_BENCH_CGROUPS=off measures marker-and-ancestry mode
                         "cgroups": os.environ.get("TUISUP_BENCH_CGROUPS", "auto")},
            "services": services,
        }
        path = self.workdir / "tui-supervisor.yaml"
        path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        return path

    def command(self, config: Path) -> list[str]:
        return [*_ours_command(), "run", "--headless", "--quiet", "-c", str(config)]

    def status_command(self) -> list[str]:
        return [*_ours_command(), "status", "--json", "-c",
                str(self.workdir / "tui-supervisor.yaml")]

    def log_path(self, program: str) -> Path:
        return self.workdir / "logs" / f"{program}.log"

    @staticmethod
    def version() -> str:
        out = subprocess.run([*_ours_command(), "--version"], capture_output=True, text=True,
                             check=False)
        return out.stdout.strip().split()[-1] if out.returncode == 0 else "unknown"


class Supervisord(Driver):
    """supervisord -n from its own venv (bench/.venv-supervisord)."""

    side = "supervisord"
    settle_s = 1.1  # STARTING -> RUNNING happens on its next loop tick (1 s poll timeout)

    def write_config(self, programs: Sequence[Program]) -> Path:
        w = self.workdir
        (w / "logs").mkdir(exist_ok=True)
        lines = [
            "[unix_http_server]", f"file={w / 'supervisor.sock'}", "chmod=0700", "",
            "[supervisord]", "nodaemon=true", f"logfile={w / 'supervisord.log'}",
            "logfile_maxbytes=0", f"pidfile={w / 'supervisord.pid'}", f"childlogdir={w}",
            "minfds=4096", "loglevel=info", "",
            "[rpcinterface:supervisor]",
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
            "",
            "[supervisorctl]", f"serverurl=unix://{w / 'supervisor.sock'}", "",
        ]
        for p in programs:
            lines += [
                f"[program:{p.name}]",
                f"command={shlex.join(p.argv).replace('%', '%%')}",
                f"autorestart={'true' if p.autorestart else 'false'}",
                "startsecs=0", "startretries=1000000", "stopsignal=TERM", "stopwaitsecs=10",
                "stopasgroup=true", "killasgroup=true", "redirect_stderr=true",
                f"stdout_logfile={self.log_path(p.name)}",
                "stdout_logfile_maxbytes=0", "stdout_logfile_backups=0", "",
            ]
        path = w / "supervisord.conf"
        path.write_text("\n".join(lines))
        return path

    def command(self, config: Path) -> list[str]:
        return [str(supervisord_bin()), "-c", str(config), "-n"]

    def status_command(self) -> list[str]:
        ctl = supervisord_bin().parent / "supervisorctl"
        return [str(ctl), "-c", str(self.workdir / "supervisord.conf"), "status"]

    def log_path(self, program: str) -> Path:
        return self.workdir / "logs" / f"{program}.log"

    @staticmethod
    def version() -> str:
        return installed_version() or "missing"


DRIVERS: dict[str, type[Driver]] = {"ours": Ours, "supervisord": Supervisord}


def check_available() -> None:
    if installed_version() is None:
        raise BenchError(f"no supervisord in {SUPERVISORD_VENV}: run bench/setup.sh "
                         "or python bench/run.py --setup")
    if Ours.version() == "unknown":
        raise BenchError("cannot run tui-supervisor from this venv: pip install -e .")


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
