"""What the chaos scenarios (bench/chaos_scenarios.py) share: a real headless engine
started as a user starts it (`python -m tui_supervisor run --headless -c CFG`), a plain
socket client of it (requests and a subscription), `/proc` readings (marked processes,
zombies, fds, RSS), and the `Result` each scenario returns.

Stdlib, psutil-free and the package's `engine.proc` only, so the same code runs under
pytest (tests/test_chaos.py, the quick forms) and from bench/chaos.py (the full forms).
Everything a scenario starts is registered on its `Cleanup` and ended by PID (engines
SIGKILLed, their services found by marker and SIGKILLed, mounts unmounted), even when the
scenario fails.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui_supervisor.engine import proc

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable
CHILDREN = REPO / "tests" / "children"
PREFIX = "tst-chaos-"
"""Config file names (and so config ids and service markers) start with it: the test
suite's leftover guard (prefix `tst-`) covers the quick forms."""
RUN_VAR = "TUISUP_TEST_RUN"
os.environ.setdefault(RUN_VAR, uuid.uuid4().hex)
"""As tests/support/procs.py: every process of this run carries the run's id, so a test
run in another worktree (which kills the `tst-` processes of its own run only) leaves a
bench run's alone, and the other way round."""


# -- results -----------------------------------------------------------------------------
@dataclass
class Check:
    what: str
    ok: bool
    detail: str = ""


@dataclass
class Result:
    """One scenario's outcome: what was done, the figures measured, the checks."""

    name: str
    did: str = ""
    figures: dict[str, Any] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    skipped: str = ""
    seconds: float = 0.0

    def check(self, what: str, ok: bool, detail: Any = "") -> bool:
        self.checks.append(Check(what, bool(ok), str(detail)))
        return bool(ok)

    @property
    def passed(self) -> bool:
        return not self.skipped and all(c.ok for c in self.checks)

    def failures(self) -> list[str]:
        return [f"{c.what}: {c.detail}" for c in self.checks if not c.ok]

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "did": self.did, "figures": self.figures,
                "checks": [c.__dict__ for c in self.checks], "skipped": self.skipped,
                "passed": self.passed, "seconds": round(self.seconds, 1)}


class Skip(Exception):
    """The scenario cannot run here (say, mounting a tmpfs is refused)."""


# -- waiting -----------------------------------------------------------------------------
def wait_until(pred: Callable[[], Any], timeout: float, what: str,
               interval: float = 0.02) -> Any:
    """Poll `pred` until truthy and return it; TimeoutError(what) after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


# -- /proc -------------------------------------------------------------------------------
def alive(pid: int) -> bool:
    st = proc.stat(pid)
    return st is not None and st.state != "Z"


def marked(config_id: str) -> dict[int, str]:
    """Live processes of this config's services: pid -> service name."""
    prefix = f"{config_id}/"
    return {p: m[len(prefix):] for p, m in proc.pids_with_marker(prefix).items()}


def is_leader(pid: int) -> bool:
    """A session leader (every main process is one: the engine spawns each in its own
    session)."""
    try:
        return os.getsid(pid) == pid
    except OSError:
        return False


def zombies_of(pid: int) -> list[int]:
    out = []
    for c in proc.children_of(pid):
        st = proc.stat(c)
        if st is not None and st.state == "Z":
            out.append(c)
    return out


def fd_count(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def rss_bytes(pid: int) -> int:
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return -1


PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> None:
    """Orphans of a SIGKILLed engine come to this process (not to a pid 1 that may not
    reap them), and `reap_children` collects them."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def reap_children() -> None:
    """Collect this process's zombie children (adopted orphans)."""
    for c in proc.children_of(os.getpid()):
        st = proc.stat(c)
        if st is not None and st.state == "Z":
            with contextlib.suppress(ChildProcessError):
                os.waitpid(c, os.WNOHANG)


def kill_pids(pids: Iterator[int] | list[int] | set[int]) -> None:
    for p in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(p, signal.SIGKILL)


# -- the engine --------------------------------------------------------------------------
def service_yaml(name: str, argv: list[str], **keys: Any) -> str:
    """A service block; `keys` are YAML values written as JSON (a subset of YAML)."""
    lines = [f"  {name}:", f"    command: {json.dumps(argv)}", "    start_time: 0"]
    lines += [f"    {k}: {json.dumps(v)}" for k, v in keys.items()]
    return "\n".join(lines) + "\n"


def child(script: str, *args: str) -> list[str]:
    """argv running tests/children/<script>.py with this interpreter."""
    return [PY, str(CHILDREN / f"{script}.py"), *args]


FAST_LOOP = {"backoff": {"initial": 0, "max": 0, "jitter": 0},
             "crash_loop": {"max_failures": 10000, "window": "1ms"}}
"""Respawn at once, and never give up (10000 failures within 1 ms cannot happen)."""


class Engine:
    """A headless engine on `work/<PREFIX><name>.yaml`: state, runtime and log dirs under
    `work/<name>/`, its output in `work/<name>.out`."""

    def __init__(self, work: Path, name: str, services: str, settings: dict[str, Any]
                 | None = None) -> None:
        self.work, self.name = work, name
        self.dir = work / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.runtime = self.dir / "run"
        base = {"sample_interval": 1, "watch_config": False, "watch_code": False,
                "state_dir": str(self.dir / "state"), "runtime_dir": str(self.runtime),
                "log_dir": str(self.dir / "logs")}
        base.update(settings or {})
        self.cfg = work / f"{PREFIX}{name}.yaml"
        self.cfg.write_text(f"settings: {json.dumps(base)}\nservices:\n{services}")
        from tui_supervisor.config.loader import make_config_id

        self.config_id = make_config_id(self.cfg.resolve())
        self.out_path = work / f"{name}.out"
        self.env = {**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1",
                    "XDG_STATE_HOME": str(self.dir / "xdg-state"),
                    "XDG_RUNTIME_DIR": str(self.dir / "xdg-run")}
        self.procs: list[subprocess.Popen[bytes]] = []

    # processes
    def start(self) -> Engine:
        with open(self.out_path, "ab") as out:
            p = subprocess.Popen([PY, "-m", "tui_supervisor", "run", "--headless", "--quiet",
                                  "-c", str(self.cfg)], stdout=out, stderr=subprocess.STDOUT,
                                 env=self.env, cwd=self.work, start_new_session=True)
        self.procs.append(p)
        return self

    @property
    def proc(self) -> subprocess.Popen[bytes]:
        return self.procs[-1]

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def out(self) -> str:
        return self.out_path.read_text(errors="replace") if self.out_path.exists() else ""

    def stop(self, timeout: float = 60) -> int | None:
        """SIGTERM (stop every service, exit); its exit code, None if it had to be
        SIGKILLed after `timeout`."""
        p = self.proc
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
        try:
            return p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            return None

    def hard_kill(self) -> None:
        """SIGKILL the engine (its services live on) and collect its exit."""
        p = self.proc
        with contextlib.suppress(ProcessLookupError):
            p.kill()
        p.wait()

    def cleanup(self) -> None:
        """Whatever is left, by PID: engines SIGKILLed, this config's services too."""
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        kill_pids(marked(self.config_id))
        reap_children()

    # the socket
    def call(self, cmd: str, args: dict[str, Any] | None = None, timeout: float = 30) -> Any:
        """One request on a fresh connection; its result (RuntimeError on an error)."""
        with Connection(self.runtime / "control.sock", timeout) as c:
            return c.call(cmd, args)

    def snapshot(self, timeout: float = 30) -> dict[str, Any]:
        snap: dict[str, Any] = self.call("snapshot", timeout=timeout)
        return snap

    def services(self) -> dict[str, dict[str, Any]]:
        return {s["name"]: s for s in self.snapshot()["services"]}

    def wait_ready(self, timeout: float = 60, pred: Callable[[dict[str, Any]], bool]
                   | None = None) -> dict[str, Any]:
        """The snapshot once every service runs (and `pred` holds); on time-out the
        error says what the engine last answered."""
        last: list[str] = ["no answer"]

        def ready() -> dict[str, Any] | None:
            if self.proc.poll() is not None:
                raise RuntimeError(f"engine exited {self.proc.returncode}:\n{self.out[-3000:]}")
            try:
                snap = self.snapshot(timeout=10)
            except (OSError, RuntimeError, ValueError) as err:
                last[0] = f"no answer ({err})"
                return None
            last[0] = ", ".join(f"{s['name']} {s['state']} {s['pid']}"
                                for s in snap["services"])
            ok = all(s["state"] == "running" and s["pid"] for s in snap["services"])
            return snap if ok and (pred is None or pred(snap)) else None

        try:
            snap: dict[str, Any] = wait_until(ready, timeout, f"engine {self.name} ready")
        except TimeoutError as err:
            raise TimeoutError(f"{err}; last answer: {last[0]}; "
                               f"{len(marked(self.config_id))} processes marked; output: "
                               f"{self.out[-1500:]}") from None
        return snap

    def cli(self, *args: str, timeout: float = 60) -> tuple[subprocess.CompletedProcess[str],
                                                            float]:
        """`tui-supervisor ARGS -c CFG` from a new process; (result, seconds it took)."""
        t0 = time.monotonic()
        r = subprocess.run([PY, "-m", "tui_supervisor", *args, "-c", str(self.cfg)],
                           capture_output=True, text=True, env=self.env, cwd=self.work,
                           timeout=timeout)
        return r, time.monotonic() - t0


def connect(path: Path, timeout: float | None = 30, rcvbuf: int = 0) -> socket.socket:
    """A unix socket connected to `path` (a long path through /proc/self/fd, as the
    engine binds it: sun_path holds 108 bytes, a test's tmp dir can be longer)."""
    from tui_supervisor.control.protocol import bindable

    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        with bindable(path) as name:
            s.connect(name)  # blocking: a full backlog waits (with a timeout, EAGAIN)
        s.settimeout(timeout)
    except OSError:
        s.close()
        raise
    return s


class Connection:
    """A plain control-socket client: the hello read, then requests one at a time."""

    def __init__(self, path: Path, timeout: float | None = 30) -> None:
        self.sock = connect(path, timeout)
        self.file = self.sock.makefile("rb")
        self.hello = self.read()
        self.next_id = 0

    def read(self) -> dict[str, Any]:
        line = self.file.readline()
        if not line:
            raise ConnectionError("closed by the engine")
        msg: dict[str, Any] = json.loads(line)
        return msg

    def send(self, cmd: str, args: dict[str, Any] | None = None) -> int:
        self.next_id += 1
        self.sock.sendall(json.dumps({"id": self.next_id, "cmd": cmd, "args": args})
                          .encode() + b"\n")
        return self.next_id

    def call(self, cmd: str, args: dict[str, Any] | None = None) -> Any:
        rid = self.send(cmd, args)
        while True:
            msg = self.read()
            if msg.get("id") == rid:
                break
        if not msg.get("ok"):
            raise RuntimeError(f"{cmd}: {msg.get('error')}")
        return msg.get("result")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.file.close()
            self.sock.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class Subscriber:
    """A well-behaved subscriber (logs off) read by a thread: the engine's events in
    `events` as (time received, event)."""

    def __init__(self, path: Path, kinds: tuple[str, ...] = ("spawn", "notice")) -> None:
        self.conn = Connection(path, timeout=None)
        self.kinds = kinds
        self.events: list[tuple[float, dict[str, Any]]] = []
        self.conn.send("subscribe", {"logs": False})
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        with contextlib.suppress(OSError, ValueError, ConnectionError):
            while True:
                msg = self.conn.read()
                ev = msg.get("event")
                if ev is not None and ev.get("kind") in self.kinds:
                    self.events.append((time.monotonic(), ev))

    def respawn_latencies(self, service: str, since: float = 0.0,
                          until: float = float("inf")) -> list[float]:
        return sorted(ev["respawn_latency"] for t, ev in list(self.events)
                      if ev["kind"] == "spawn" and ev["service"] == service
                      and ev.get("respawn_latency") is not None and since <= t < until)

    def notices(self) -> list[dict[str, Any]]:
        return [ev for _, ev in list(self.events) if ev["kind"] == "notice"]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.sock.shutdown(socket.SHUT_RDWR)
        self.conn.close()
        self.thread.join(5)


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest rank (as metrics/latency.py)."""
    if not sorted_values:
        return None
    rank = max(1, -(-len(sorted_values) * q // 100))
    return sorted_values[int(rank) - 1]


def ms(v: float | None) -> str:
    return "-" if v is None else f"{v * 1000:.2f} ms"


def mib(v: int) -> str:
    return f"{v / (1 << 20):.1f} MiB"


class Cleanup(contextlib.ExitStack):
    """Registers what a scenario started; ends all of it on exit, failure or not."""

    def engine(self, e: Engine) -> Engine:
        self.callback(e.cleanup)
        return e
