"""Lock, SIGCHLD fallback, fd hygiene, users."""

from __future__ import annotations

import os
import pwd
import signal
from pathlib import Path

import pytest
from conftest import alive, child, make_config, spec, wait_for

from tui_supervisor.engine import proc
from tui_supervisor.engine.reaper import get_watcher
from tui_supervisor.engine.runtime import AlreadyRunning, engine_running
from tui_supervisor.engine.supervisor import Supervisor


async def test_one_engine_per_config(engine_factory, tmp_path: Path) -> None:
    cfg = make_config(tmp_path, spec("s", child("sleeper"), tmp_path))
    await engine_factory(config=cfg)
    assert engine_running(cfg.settings.runtime_dir) == os.getpid()
    with pytest.raises(AlreadyRunning) as err:
        await Supervisor(cfg).open()
    assert str(err.value) == f"already running (pid {os.getpid()}) — use attach"
    assert oct(cfg.settings.runtime_dir.stat().st_mode & 0o777) == "0o700"


async def test_sigchld_fallback_without_pidfd(engine_factory, tmp_path: Path) -> None:
    get_watcher().pidfd = False  # as on kernels without pidfd_open
    sup = await engine_factory(spec("s", child("sleeper"), tmp_path))
    svc = sup.services["s"]
    pid = await wait_for(lambda: svc.ring.next_offset > 0 and svc.pid)
    os.kill(pid, signal.SIGKILL)
    new = await wait_for(lambda: svc.pid not in (None, pid) and svc.pid)
    assert svc.last_exit["signal"] == signal.SIGKILL
    assert proc.stat(pid) is None  # reaped
    await sup.stop(["s"])
    assert not alive(new)


async def test_no_fd_leak_over_many_respawns(engine_factory, tmp_path: Path) -> None:
    from tui_supervisor.config.schema import BackoffSpec

    sup = await engine_factory(spec("c", child("crash", "1"), tmp_path,
                                    backoff=BackoffSpec(0.0, 1, 0.0, 0, 30)))
    svc = sup.services["c"]
    await wait_for(lambda: svc.spawns >= 5)
    base = len(os.listdir("/proc/self/fd"))
    await wait_for(lambda: svc.spawns >= 60, timeout=30)
    await sup.stop(["c"])
    # (the loop closes the last transports on its next turns: a leak never gets there)
    await wait_for(lambda: len(os.listdir("/proc/self/fd")) <= base, timeout=2,
                   what=lambda: f"fds back to {base}: {os.listdir('/proc/self/fd')}")


@pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")
async def test_user_is_honoured_when_root(engine_factory, tmp_path: Path) -> None:
    nobody = pwd.getpwnam("nobody")
    tmp_path.chmod(0o755)
    sup = await engine_factory(spec("u", ("/bin/sleep", "1000"), tmp_path, user="nobody"))
    svc = sup.services["u"]
    pid = await wait_for(lambda: svc.pid)
    status = Path(f"/proc/{pid}/status").read_text()
    uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
    assert uid_line.split()[1:] == [str(nobody.pw_uid)] * 4


async def test_apply_config_keeps_unchanged_pids(engine_factory, tmp_path: Path) -> None:
    from dataclasses import replace
    from types import MappingProxyType

    from tui_supervisor.config.schema import RestartPolicy

    keep = spec("keep", child("sleeper"), tmp_path)
    change = spec("change", child("sleeper"), tmp_path)
    policy = spec("policy", child("sleeper"), tmp_path)
    gone = spec("gone", child("sleeper"), tmp_path)
    cfg = make_config(tmp_path, keep, change, policy, gone)
    sup = await engine_factory(config=cfg)
    pids = {n: await wait_for(lambda n=n: sup.services[n].pid) for n in cfg.services}
    new_services = {
        "keep": keep,
        "change": replace(change, argv=(*change.argv, "extra")),
        "policy": replace(policy, restart=RestartPolicy.NEVER),
        "new": spec("new", child("sleeper"), tmp_path),
    }
    result = await sup.apply_config(replace(cfg, services=MappingProxyType(new_services)))
    assert result == {"ok": True, "added": ["new"], "removed": ["gone"],
                      "restarted": ["change"], "in_place": ["policy"], "settings": []}
    assert list(sup.services) == ["keep", "change", "policy", "new"]
    assert sup.services["keep"].pid == pids["keep"]
    assert sup.services["policy"].pid == pids["policy"]
    assert sup.services["policy"].spec.restart is RestartPolicy.NEVER
    assert sup.services["change"].pid not in (None, pids["change"])
    assert not alive(pids["gone"]) and not alive(pids["change"])
    assert sup.services["new"].pid is not None
    eng = (await sup.snapshot())["engine"]
    assert eng["reloads"] == 1 and eng["reload_failures"] == 0
    assert 0 < eng["last_reload_seconds"] < 30  # it stopped two services
    # a settings change alone is named, not "nothing changed"
    again = replace(cfg, services=sup.config.services,
                    settings=replace(cfg.settings, sample_interval=5.0))
    result = await sup.apply_config(again)
    assert result["settings"] == ["sample_interval"] and not result["restarted"]
    assert sup.services["keep"].pid == pids["keep"]


async def test_unknown_user_is_fatal_with_reason(engine_factory, tmp_path: Path) -> None:
    sup = await engine_factory(spec("u", ("/bin/sleep", "1"), tmp_path, user="no-such-user-x"))
    svc = sup.services["u"]
    assert svc.state.value == "fatal" and svc.reason == "unknown user 'no-such-user-x'"


def test_runtime_dir_refuses_a_parent_made_by_someone_else(tmp_path: Path) -> None:
    from tui_supervisor.engine.runtime import RuntimeDirError, ensure_private_dir

    ok = tmp_path / "mine" / "cfg-1"
    ensure_private_dir(ok)
    assert oct(ok.stat().st_mode & 0o777) == oct(ok.parent.stat().st_mode & 0o777) == "0o700"
    (tmp_path / "elsewhere").mkdir(mode=0o700)
    (tmp_path / "trap").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(RuntimeDirError, match="not a directory"):
        ensure_private_dir(tmp_path / "trap")  # the runtime dir itself: no symlink
    if os.geteuid() == 0:
        theirs = tmp_path / "theirs"
        theirs.mkdir()
        os.chown(theirs, 65534, 65534)
        with pytest.raises(RuntimeDirError, match="owned by uid 65534"):
            ensure_private_dir(theirs / "cfg-1")
        os.lchown(tmp_path / "trap", 65534, 65534)  # their symlink (in /tmp) to our dir
        with pytest.raises(RuntimeDirError, match="trap: owned by uid 65534"):
            ensure_private_dir(tmp_path / "trap" / "cfg-1")


async def test_reload_respects_what_the_operator_stopped(engine_factory, tmp_path: Path) -> None:
    from dataclasses import replace
    from types import MappingProxyType

    a = spec("a", child("sleeper"), tmp_path)
    cfg = make_config(tmp_path, a)
    sup = await engine_factory(config=cfg)
    await wait_for(lambda: sup.services["a"].pid)
    await sup.stop(["a"])
    new = {"a": replace(a, argv=(*a.argv, "changed")),
           "b": spec("b", child("sleeper"), tmp_path, autostart=False)}
    result = await sup.apply_config(replace(cfg, services=MappingProxyType(new)))
    assert result["restarted"] == ["a"] and result["added"] == ["b"]
    assert sup.services["a"].state.value == "stopped"  # stopped by hand: stays stopped
    assert sup.services["b"].state.value == "stopped"  # autostart: false
    assert sup.services["a"].spec.argv[-1] == "changed"


async def test_stop_racing_an_exit_is_not_an_error(engine_factory, tmp_path: Path) -> None:
    """The stop was asked while running, the process exited on its own before the stop
    task ran (seen in a crash loop under SIGTERM): the stop completes, no exception."""
    sup = await engine_factory(spec("c", child("crash", "1"), tmp_path, restart="never"))
    svc = sup.services["c"]
    await wait_for(lambda: svc.state.value == "exited")
    svc.wanted = False
    await svc._do_stop("supervisor shutting down")  # the stop task of that race
    assert svc.state.value == "exited"


async def test_a_reload_that_changes_nothing_says_so(engine_factory, tmp_path: Path) -> None:
    from tui_supervisor.engine.events import Notice

    sup = await engine_factory(spec("s", child("sleeper"), tmp_path))
    seen: list[str] = []
    sup.bus.add_listener(lambda ev: seen.append(ev.message) if isinstance(ev, Notice) else None)
    r = await sup.apply_config(sup.config)
    assert r["ok"] and seen == ["config reloaded: nothing changed"]


async def test_the_snapshot_names_the_engines_host(make_api, tmp_path: Path) -> None:
    """The dashboard's header says which machine it supervises (issue 15): in process
    and over the socket."""
    import socket

    _, api = await make_api(spec("s", child("sleeper"), tmp_path))
    snap = await api.snapshot()
    assert snap["engine"]["host"] == socket.gethostname() != ""
