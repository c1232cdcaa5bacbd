"""Shared fixtures: configs built in tmp dirs, engines that always stop their processes,
and a guard that fails a test which leaves a process behind."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from tui_supervisor.config.schema import (
    BackoffSpec,
    Config,
    CrashLoopSpec,
    LogSpec,
    RestartPolicy,
    ServiceSpec,
    Settings,
    StopSpec,
)
from tui_supervisor.engine import proc
from tui_supervisor.engine.supervisor import Supervisor

CHILDREN = Path(__file__).parent / "children"
PY = sys.executable
TEST_PREFIX = "tst-"
RUN_VAR = "TUISUP_TEST_RUN"
RUN_ID = os.environ.setdefault(RUN_VAR, uuid.uuid4().hex)
"""Every process this run spawns inherits it: concurrent test runs (two worktrees) leave
each other's processes alone."""


def child(name: str, *args: str) -> tuple[str, ...]:
    """argv running tests/children/<name>.py with the test interpreter."""
    return (PY, str(CHILDREN / f"{name}.py"), *args)


def spec(name: str, argv: tuple[str, ...], cwd: Path, **kw: Any) -> ServiceSpec:
    env = dict(os.environ)
    env.update(kw.pop("env", {}))
    defaults: dict[str, Any] = dict(
        start_time=0.0,
        restart=RestartPolicy.ALWAYS,
        backoff=BackoffSpec(initial=0.05, factor=2, max=0.2, jitter=0.0, reset_after=30),
        crash_loop=CrashLoopSpec(max_failures=1000, window=60),
        stop=StopSpec(signal=signal.SIGTERM, timeout=2.0),
        log=LogSpec(max_bytes=10 << 20, backups=3, ring_lines=1000),
    )
    defaults.update(kw)
    if isinstance(defaults["restart"], str):
        defaults["restart"] = RestartPolicy(defaults["restart"])
    return ServiceSpec(name=name, argv=argv, cwd=cwd, env=MappingProxyType(env), **defaults)


def make_config(tmp: Path, *specs: ServiceSpec, config_id: str | None = None) -> Config:
    cid = config_id or f"{TEST_PREFIX}{uuid.uuid4().hex[:10]}"
    settings = Settings(log_dir=tmp / "logs", state_dir=tmp / "state",
                        runtime_dir=tmp / "run", sample_interval=0)
    return Config(path=tmp / "cfg.yaml", config_id=cid, settings=settings,
                  services=MappingProxyType({s.name: s for s in specs}))


def _other_run(pid: int) -> bool:
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False
    key = f"{RUN_VAR}=".encode()
    for item in env.split(b"\0"):
        if item.startswith(key):
            return item[len(key):].decode() != RUN_ID
    return False  # no run id at all: assume it is ours


def marked_pids(prefix: str = TEST_PREFIX) -> dict[int, str]:
    """Marked processes of this test run (not those of a concurrent run)."""
    return {p: m for p, m in proc.pids_with_marker(prefix).items() if not _other_run(p)}


def kill_marked(prefix: str = TEST_PREFIX) -> list[int]:
    pids = marked_pids(prefix)
    for pid in pids:
        proc.signal_pid(pid, signal.SIGKILL)
    reap_zombie_children()
    return sorted(pids)


def reap_zombie_children() -> None:
    for pid in proc.children_of(os.getpid()):
        st = proc.stat(pid)
        if st is not None and st.state == "Z":
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)


@pytest.fixture(autouse=True)
def nothing_left_running() -> Iterator[None]:
    """Every test must leave no service process behind (checked by marker, killed anyway)."""
    before = set(marked_pids())
    yield
    deadline = time.monotonic() + 3
    left: dict[int, str] = {}
    while time.monotonic() < deadline:
        reap_zombie_children()
        left = {p: m for p, m in marked_pids().items() if p not in before}
        if not left:
            break
        time.sleep(0.05)
    if left:
        kill_marked()
        pytest.fail(f"test left processes running: {left}")


@pytest.fixture
async def engine_factory(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """make(*specs, **open_kw) -> an opened Supervisor; all are closed at the end."""
    engines: list[Supervisor] = []

    async def make(*specs: ServiceSpec, config: Config | None = None,
                   extensions: Sequence[Any] = (), **kw: Any) -> Supervisor:
        cfg = config or make_config(tmp_path, *specs)
        sup = Supervisor(cfg)
        sup.extensions.extend(extensions)
        engines.append(sup)
        await sup.open(**kw)
        return sup

    try:
        yield make
    finally:
        for sup in engines:
            if not sup._closed:
                await asyncio.wait_for(sup.close(), 30)


async def wait_for(pred: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
    """Poll `pred` until truthy (generous timeout: behaviour, not speed)."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or pred}")
        await asyncio.sleep(0.01)


def terminate(proc: subprocess.Popen[Any], timeout: float = 30) -> None:
    """SIGTERM a process a test started, SIGKILL if it is not gone within `timeout`."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def alive(pid: int) -> bool:
    st = proc.stat(pid)
    return st is not None and st.state != "Z"
