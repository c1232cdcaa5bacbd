"""The command line as a user runs it: `python -m tui_supervisor ...` in a test's own
XDG dirs, config files written as a user writes them, and the state file they leave."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

from tui_supervisor.engine.runtime import read_state

from .paths import CHILDREN, PY, ROOT
from .waiting import wait_until


def cli_env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(XDG_STATE_HOME=str(tmp / "xdg-state"), XDG_RUNTIME_DIR=str(tmp / "xdg-run"),
               PYTHONPATH=str(ROOT), NO_COLOR="1", TUISUP_DEMO_PORT=str(free_port()))
    return env


def free_port() -> int:
    """A port nobody listens on now (the demo's web service binds it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli(tmp: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PY, "-m", "tui_supervisor", *args], capture_output=True, text=True,
                          env=cli_env(tmp), timeout=timeout, cwd=tmp)


def write_cfg(tmp: Path, services: str, name: str = "tst-cli.yaml") -> Path:
    p = tmp / name
    p.write_text(f"services:\n{services}")
    return p


def svc(name: str, script: str, *args: str, extra: str = "") -> str:
    argv = ", ".join(f'"{a}"' for a in (PY, str(CHILDREN / f"{script}.py"), *args))
    return f"  {name}:\n    command: [{argv}]\n    start_time: 0\n{extra}"


def state_pids(tmp: Path, cfg: Path) -> dict[str, int]:
    from tui_supervisor.config import load_config

    c = load_config(cfg, environ=cli_env(tmp))
    st = read_state(c.settings.state_dir / "state.json") or {}
    return {n: v["pid"] for n, v in (st.get("services") or {}).items()}


def wait_pids(tmp: Path, cfg: Path, pred: Callable[[dict[str, int]], bool],
              timeout: float = 20) -> dict[str, int]:
    def matched() -> tuple[dict[str, int]] | None:  # (a match may be empty)
        pids = state_pids(tmp, cfg)
        return (pids,) if pred(pids) else None

    return wait_until(matched, timeout,
                      lambda: f"the state file to match: {state_pids(tmp, cfg)}")[0]


def one_error_line(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    return lines[0]
