"""Shared fixtures: configs built in tmp dirs, engines (in-process and real processes) that
always stop their processes, the API and dashboard over both, and a guard that fails a
test which leaves a process behind. Helpers live in `support` (re-exported here for the
modules that import them from conftest)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from support import (
    CHILDREN,
    PY,
    RUN_ID,
    TEST_PREFIX,
    Headless,
    alive,
    kill_marked,
    marked_pids,
    reap_zombie_children,
    reconnect_config,
    terminate,
    wait_for,
    wait_until,
)

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
from tui_supervisor.engine.supervisor import Supervisor

__all__ = ["CHILDREN", "PY", "RUN_ID", "TEST_PREFIX", "alive", "child", "kill_marked",
           "make_config", "marked_pids", "spec", "terminate", "wait_for"]


@pytest.fixture(autouse=True)
def _own_ui_prefs(tmp_path_factory: pytest.TempPathFactory,
                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test its own dashboard preferences file (tui/prefs.py): never the user's, and
    a theme or pane size one test chose does not leak into another's snapshot."""
    monkeypatch.setenv("TUISUP_UI_PREFS",
                       str(tmp_path_factory.mktemp("prefs", numbered=True) / "ui.json"))


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


@pytest.fixture(autouse=True, scope="session")
def no_cgroups_left() -> Iterator[None]:
    """Engines a test SIGKILLs leave their (empty) cgroups, as a real engine killed so
    does until the next start of its config: remove the empty ones this run made."""
    from tui_supervisor.engine.cgroups import PREFIX, _own_cgroup, _v2_mount

    mount, own = _v2_mount(), _own_cgroup()
    base = mount / own.lstrip("/") if mount and own else None

    def ours() -> set[Path]:
        return set(base.glob(f"{PREFIX}{TEST_PREFIX}*")) if base else set()

    before = ours()
    yield
    for group in ours() - before:
        for d in [*group.glob("svc-*"), group]:
            with contextlib.suppress(OSError):
                d.rmdir()


@pytest.fixture(autouse=True)
def nothing_left_running() -> Iterator[None]:
    """Every test must leave no service process behind (checked by marker, killed anyway)."""
    before = set(marked_pids())
    yield

    def left() -> dict[int, str]:
        reap_zombie_children()
        return {p: m for p, m in marked_pids().items() if p not in before}

    try:
        wait_until(lambda: not left(), 3, "the test's processes to be gone")
    except AssertionError:
        still = left()
        kill_marked()
        pytest.fail(f"test left processes running: {still}")


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


@pytest.fixture(params=["local", "remote"])
async def make_api(request: pytest.FixtureRequest, engine_factory: Callable[..., Any]
                   ) -> AsyncIterator[Callable[..., Any]]:
    """make(*specs) -> (engine, api): api is the engine itself or a socket client of it."""
    from tui_supervisor.control.client import RemoteSupervisor
    from tui_supervisor.control.server import ControlServer

    servers: list[ControlServer] = []
    clients: list[RemoteSupervisor] = []

    async def make(*specs: Any, **kw: Any) -> tuple[Supervisor, Any]:
        sup = await engine_factory(*specs, **kw)
        if request.param == "local":
            return sup, sup
        srv = ControlServer(sup, sup.config.settings.runtime_dir)
        await srv.start()
        servers.append(srv)
        client = RemoteSupervisor(sup.config.settings.runtime_dir)
        clients.append(client)
        return sup, client

    try:
        yield make
    finally:
        for c in clients:
            await c.close()
        for s in servers:
            await s.close()


@pytest.fixture(params=["hosted", "attached"])
async def make_app(request: pytest.FixtureRequest, engine_factory: Callable[..., Any]
                   ) -> AsyncIterator[Callable[..., Any]]:
    """make(*specs) -> (engine, app): the app uses the engine itself, or a socket client."""
    from tui_supervisor.control.client import RemoteSupervisor
    from tui_supervisor.control.server import ControlServer
    from tui_supervisor.tui.app import SupervisorApp

    closers: list[Any] = []

    async def make(*specs: Any, **kw: Any) -> tuple[Supervisor, SupervisorApp]:
        sup = await engine_factory(*specs, **kw)
        if request.param == "hosted":
            return sup, SupervisorApp(sup, mode="hosted")
        srv = ControlServer(sup, sup.config.settings.runtime_dir)
        await srv.start()
        client = RemoteSupervisor(sup.config.settings.runtime_dir)
        closers.extend([client, srv])
        return sup, SupervisorApp(client, mode="attached")

    try:
        yield make
    finally:
        for c in closers:
            await c.close()


@pytest.fixture
def engines(tmp_path: Path) -> Iterator[Callable[..., Headless]]:
    """make(cfg, name="engine", **kw) -> a `Headless` engine process (kw: see Headless);
    all are stopped at the end, and any service left behind killed."""
    made: list[Headless] = []

    def make(cfg: Path, name: str = "engine", **kw: Any) -> Headless:
        e = Headless(tmp_path, cfg, name=name, **kw)
        made.append(e)
        return e

    try:
        yield make
    finally:
        for e in made:
            e.stop()
        kill_marked()


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Headless]:
    """A real headless engine (--quiet) on `reconnect_config`: `tick` writes a numbered
    line every 5 ms, `idle` sleeps; runtime dir tmp/run."""
    e = Headless(tmp_path, reconnect_config(tmp_path), quiet=True)
    try:
        yield e
    finally:
        e.stop()
        kill_marked()
