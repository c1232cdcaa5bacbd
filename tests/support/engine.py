"""Engine processes a test starts as a user would (`python -m tui_supervisor ...`), and
the client side of them.

- `Client`: an engine on a config, wherever it runs: client verbs (`cli`), the snapshot
  (`snapshot`, waiting until it answers), dashboards on a pty (`open_term`); it records
  every engine PID it sees.
- `Headless`: `run --headless`, its output in a file (`out`, `wait_out`), `ready()` for a
  socket client.
- `Dashboard`: `tui-supervisor -c CFG` (the engine and its UI in one process) on a pty.

`stop()` ends what the object owns by PID, whatever state a failed test left it in: its
terminals, then every engine it saw (SIGTERM, then SIGKILL). Services are the engine's to
stop; fixtures still call `kill_marked()` after, for a test that left some behind."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .command_line import cli_env
from .paths import PY, ROOT
from .procs import alive, kill_engines, runs_config
from .term import Term
from .waiting import wait_for, wait_until

if TYPE_CHECKING:
    from tui_supervisor.control.client import RemoteSupervisor


def pids(snap: dict[str, Any]) -> dict[str, int]:
    """service -> pid in a snapshot."""
    return {s["name"]: s["pid"] for s in snap["services"]}


def running(c: Client, timeout: float = 30) -> dict[str, Any]:
    """The engine's snapshot once every service has a pid."""
    return c.snapshot(lambda s: all(pids(s).values()), timeout, "every service running")


class Client:
    """The client side of the engine on `cfg` (started by this object or not)."""

    def __init__(self, tmp: Path, cfg: Path, env: dict[str, str]) -> None:
        self.tmp, self.cfg, self.env = tmp, cfg, env
        self.pids: set[int] = set()
        """Engine processes seen (started, or named by a snapshot): `stop()` ends them."""
        self.terms: list[Term] = []

    @cached_property
    def runtime(self) -> Path:
        """The engine's runtime dir (its control socket), as the config says."""
        from tui_supervisor.config import load_config

        return load_config(self.cfg, environ=self.env).settings.runtime_dir

    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """`tui-supervisor ARGS -c CFG`."""
        return subprocess.run([PY, "-m", "tui_supervisor", *args, "-c", str(self.cfg)],
                              capture_output=True, text=True, env=self.env, cwd=self.tmp,
                              timeout=timeout)

    def details(self) -> str:
        """What to show when a wait on this engine fails."""
        return ""

    def snapshot(self, until: Callable[[dict[str, Any]], Any] | None = None,
                 timeout: float = 30, what: str = "") -> dict[str, Any]:
        """`status --json` once the engine answers (and `until(snapshot)` holds);
        `timeout=0`: it answers now, or the test fails."""
        last: list[subprocess.CompletedProcess[str]] = []

        def answer() -> dict[str, Any] | None:
            r = self.cli("status", "--json")
            last[:] = [r]
            if r.returncode not in (0, 3):  # (3: it answered; not every service is up)
                return None
            snap: dict[str, Any] = json.loads(r.stdout)
            self.pids.add(snap["engine"]["pid"])
            return snap if until is None or until(snap) else None

        return wait_until(answer, timeout, lambda: (
            f"{what or 'an answer'} from the engine: "
            f"{last[-1].stdout or last[-1].stderr}{self.details()}"), interval=0.1)

    def open_term(self, *args: str, env: dict[str, str] | None = None) -> Term:
        """`tui-supervisor ARGS -c CFG` on a pty of its own (killed by `stop()`)."""
        t = Term([PY, "-m", "tui_supervisor", *args, "-c", str(self.cfg)],
                 self.env if env is None else env, self.tmp)
        self.terms.append(t)
        return t

    def stop(self, timeout: float = 10) -> None:
        """Kill the terminals; SIGTERM every engine seen, SIGKILL what is left after
        `timeout`. A terminal's program may have left an engine this object never saw:
        asked for by status, and last any process still running this config is killed."""
        for t in self.terms:
            t.kill()
        if self.terms:
            with contextlib.suppress(subprocess.TimeoutExpired, ValueError, KeyError):
                r = self.cli("status", "--json", timeout=20)
                if r.returncode in (0, 3):
                    self.pids.add(json.loads(r.stdout)["engine"]["pid"])
        ours = [p for p in self.pids if runs_config(p, self.cfg)]
        for pid in ours:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        with contextlib.suppress(AssertionError):  # then SIGKILL
            wait_until(lambda: not any(alive(p) for p in ours), timeout, "engines to stop")
        for pid in ours:
            if alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        if self.terms:
            kill_engines(self.cfg)


class Headless(Client):
    """`tui-supervisor run --headless [--quiet] -c CFG`, stdout and stderr to
    `tmp/NAME.out`, with the package from `pythonpath` (a copy a test edits, or ROOT) and
    extra environment `env`."""

    def __init__(self, tmp: Path, cfg: Path, pythonpath: Path = ROOT, *,
                 name: str = "engine", quiet: bool = False, **env: str) -> None:
        super().__init__(tmp, cfg, {**cli_env(tmp), "PYTHONPATH": str(pythonpath), **env})
        self.out_path = tmp / f"{name}.out"
        argv = [PY, "-m", "tui_supervisor", "run", "--headless",
                *(["--quiet"] if quiet else []), "-c", str(cfg)]
        with open(self.out_path, "wb") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                         env=self.env, cwd=tmp, start_new_session=True)
        self.pids.add(self.proc.pid)

    @property
    def out(self) -> str:
        return self.out_path.read_text()

    def details(self) -> str:
        return f"\nengine output:\n{self.out}"

    def wait_out(self, text: str, count: int = 1, timeout: float = 30) -> str:
        """The output once `text` is in it `count` times; fails at once if the engine
        exits first."""
        def seen() -> str | None:
            out = self.out
            if out.count(text) >= count:
                return out
            assert self.proc.poll() is None, \
                f"engine exited {self.proc.returncode} before {text!r} x{count}:\n{out}"
            return None

        return wait_until(seen, timeout, lambda: f"{text!r} x{count} in the output"
                          f"{self.details()}")

    async def ready(self) -> RemoteSupervisor:
        """A plain socket client, once the engine answers and every service runs."""
        from tui_supervisor.control.client import RemoteSupervisor
        from tui_supervisor.control.errors import NotRunning

        client = RemoteSupervisor(self.runtime)

        async def up() -> bool:
            assert self.proc.poll() is None, f"engine exited:\n{self.out}"
            with contextlib.suppress(NotRunning):
                return all(s["pid"] for s in (await client.snapshot())["services"])
            return False

        await wait_for(up, 30, lambda: f"the engine ready{self.details()}", interval=0.1)
        return client

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int | None:
        """Send `sig` and wait (SIGKILL after `timeout`), then what `Client.stop` ends;
        the engine's exit code, None if it had to be killed."""
        rc: int | None = None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)  # once: a second SIGTERM means "kill everything"
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        super().stop()
        return rc


class Dashboard(Client):
    """`tui-supervisor -c CFG` (the engine with its dashboard) on a pty: `term`."""

    def __init__(self, tmp: Path, cfg: Path, pythonpath: Path = ROOT) -> None:
        super().__init__(tmp, cfg, {**cli_env(tmp), "PYTHONPATH": str(pythonpath)})
        self.term = self.open_term()
