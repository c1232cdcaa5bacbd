"""Log files that another tool rotates or removes (logrotate's `create` mode, `rm`), the
`reopen_logs` verb, and a full disk (a real small tmpfs as the log dir)."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import child, spec, wait_for
from support import alive, cli, wait_text, wait_until, write_cfg
from support import svc as svc_yaml

from tui_supervisor.config.schema import LogSpec
from tui_supervisor.engine import supervisor as supervisor_mod
from tui_supervisor.engine.events import Notice, Topic
from tui_supervisor.engine.logs import LogFile


def numbers(*files: Path) -> list[int]:
    """The line numbers of counter.py's lines in `files`, in order (every line whole)."""
    out = []
    for f in files:
        for line in f.read_text().splitlines():
            word, n, xs = line.split(" ")
            assert word == "line" and xs == "x" * 40, f"a broken line in {f}: {line!r}"
            out.append(int(n))
    return out


def holds_removed(path: Path) -> bool:
    """Does this process hold open a file that was at `path` and is removed now?"""
    links = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            links.append(os.readlink(f"/proc/self/fd/{fd}"))
    return f"{path} (deleted)" in links


@pytest.mark.parametrize("create", [True, False], ids=["logrotate-create", "rename-only"])
async def test_a_log_renamed_from_outside_is_followed(engine_factory, tmp_path: Path,
                                                      create: bool) -> None:
    """logrotate renames s.log to s.log.1 (and, in `create` mode, makes a new empty s.log):
    the lines before the engine notices go on into s.log.1, the later ones into s.log;
    none lost, none twice, all in order."""
    sup = await engine_factory(spec("s", child("counter", "0", "0.002"), tmp_path))
    svc = sup.services["s"]
    path = svc.log_file.path
    await wait_for(lambda: svc.ring.next_offset > 100 * 55)
    os.rename(path, path.with_name("s.log.1"))
    if create:
        path.touch(mode=0o640)
    await wait_for(lambda: path.exists() and path.stat().st_size > 100 * 55, timeout=20)
    await sup.stop(["s"])
    got = numbers(path.with_name("s.log.1"), path)
    assert got == list(range(len(got))) and len(got) == svc.ring.next_offset // 55
    if create:  # the file logrotate made is written to, as it is
        assert path.stat().st_mode & 0o777 == 0o640


async def test_a_removed_log_is_made_again_and_its_space_freed(engine_factory,
                                                              tmp_path: Path) -> None:
    """`rm s.log` (on a full disk): the engine lets go of the deleted file (its space comes
    back) and writes a new s.log, with the mode it gives its log files; a quiet service's
    file too."""
    sup = await engine_factory(spec("s", child("counter", "0", "0.002"), tmp_path),
                               spec("quiet", child("sleeper"), tmp_path))
    busy, quiet = sup.services["s"], sup.services["quiet"]
    await wait_for(lambda: busy.ring.next_offset > 100 * 55 and quiet.ring.next_offset)
    for svc in (busy, quiet):
        svc.log_file.path.unlink()
    await wait_for(lambda: all(s.log_file.path.exists() for s in (busy, quiet)), timeout=20)
    await wait_for(lambda: not holds_removed(busy.log_file.path)
                   and not holds_removed(quiet.log_file.path), timeout=20)
    await wait_for(lambda: busy.log_file.path.stat().st_size > 55)
    assert busy.log_file.path.stat().st_mode & 0o777 == 0o644 & ~_umask()
    got = numbers(busy.log_file.path)
    assert got == list(range(got[0], got[0] + len(got)))  # contiguous after the removal
    assert quiet.log_file.path.read_text() == ""
    assert quiet.state.value == busy.state.value == "running"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


async def test_reopen_logs_reopens_every_file_at_once(engine_factory, tmp_path: Path,
                                                      monkeypatch) -> None:
    """The verb (what SIGUSR1 runs) reopens at once, without waiting for the engine to
    notice (its own look is pushed out of the way here)."""
    monkeypatch.setattr(supervisor_mod, "LOG_CHECK_INTERVAL", 3600.0)
    sup = await engine_factory(spec("a", child("counter", "0", "0.002"), tmp_path),
                               spec("b", child("sleeper"), tmp_path))
    a, b = sup.services["a"], sup.services["b"]
    await wait_for(lambda: a.ring.next_offset > 10 * 55 and b.ring.next_offset)
    for svc in (a, b):
        os.rename(svc.log_file.path, f"{svc.log_file.path}.1")
    r = await sup.reopen_logs()
    assert r == {"ok": True, "reopened": [str(a.log_file.path), str(b.log_file.path)],
                 "errors": []}
    await wait_for(lambda: a.log_file.path.exists() and a.log_file.path.stat().st_size > 55)
    assert b.log_file.path.exists() and b.log_file.path.read_text() == ""
    await sup.stop(["a"])
    got = numbers(a.log_file.path.with_name("a.log.1"), a.log_file.path)
    assert got == list(range(len(got)))


def test_own_rotation_after_a_rename_from_outside(tmp_path: Path) -> None:
    """The engine's rotation falls due right after logrotate renamed the file: the file at
    the path is the new one (no rename of a missing file, no failed rotation), and no line
    is lost or written twice."""
    path = tmp_path / "x.log"
    lf = LogFile(path, max_bytes=200, backups=5)
    lines = [f"line {i:04d}\n".encode() for i in range(100)]
    for line in lines[:15]:
        lf.write(line)
    os.rename(path, tmp_path / "x.log.rotated")
    for line in lines[15:]:
        lf.write(line)
        assert lf.rotate_error is None
    lf.close()
    files = [tmp_path / "x.log.rotated",
             *sorted(tmp_path.glob("x.log.[0-9]"), key=lambda p: -int(p.suffix[1:])), path]
    assert b"".join(f.read_bytes() for f in files) == b"".join(lines)


# -- a full disk ----------------------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs at tmp/logs (unmounted at the end, whatever happened)."""
    where = tmp_path / "logs"
    where.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(where)],
                       capture_output=True, text=True, check=False)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {r.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(where: Path) -> Path:
    """Fill the file system at `where` to the last byte; returns the filler."""
    filler = where / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as e:
        assert e.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler


async def test_a_full_disk_is_said_once_per_episode(engine_factory, tmp_path: Path,
                                                    small_disk: Path) -> None:
    """The log dir fills up: one `disk_full` notice, the service runs on and its latest
    lines stay in memory; room again: one `log_resumed`, and the file goes on with whole
    lines. The second time the disk fills is said again."""
    sup = await engine_factory(spec("s", child("counter", "0", "0.001"), tmp_path,
                                    log=LogSpec(max_bytes=0, backups=0, ring_lines=100)))
    svc = sup.services["s"]
    notes: list[Notice] = []
    sup.bus.add_listener(lambda ev: notes.append(ev) if isinstance(ev, Notice) else None)

    def topics() -> list[str]:
        return [str(n.topic) for n in notes
                if n.topic in (Topic.DISK_FULL, Topic.LOG_RESUMED, Topic.LOG_WRITE)]

    await wait_for(lambda: svc.ring.next_offset > 20 * 55)
    pid = svc.pid
    for episode in (1, 2):
        filler = fill(small_disk)
        await wait_for(lambda e=episode: topics().count("disk_full") == e, timeout=20)
        dropped = svc.log_lines_dropped
        await wait_for(lambda d=dropped: svc.log_lines_dropped > d + 50, timeout=20)
        assert topics() == ["disk_full", "log_resumed"] * (episode - 1) + ["disk_full"]
        assert svc.state.value == "running" and svc.pid == pid
        last = int(svc.ring.tail(1)[0][3].split()[1])  # the latest line, in memory
        assert last >= int(svc.log_file.path.read_text().splitlines()[-1].split()[1]) + 50
        filler.unlink()
        await wait_for(lambda e=episode: topics().count("log_resumed") == e, timeout=20)
        resumed = [n for n in notes if n.topic == Topic.LOG_RESUMED][-1]
        assert resumed.service == "s" and resumed.data is not None
        assert resumed.data["dropped"] > 50
    assert topics() == ["disk_full", "log_resumed"] * 2
    size = svc.log_file.path.stat().st_size
    await wait_for(lambda: svc.log_file.path.stat().st_size > size + 20 * 55)
    await sup.stop(["s"])
    got = numbers(svc.log_file.path)  # whole lines only: a piece of one was taken back
    assert got == sorted(got) and len(got) + svc.log_lines_dropped == svc.ring.next_offset // 55


# -- the verb and the signal, on a real engine process ---------------------------------
def test_reopen_logs_verb_and_sigusr1_on_a_detached_engine(tmp_path: Path) -> None:
    """`run --detach` (its output in the state dir's engine.log): logrotate renames the
    service's log and engine.log, then runs `tui-supervisor reopen-logs`, or sends
    SIGUSR1 (as to nginx). The engine lives on, writes new files, and loses no line."""
    cfg = write_cfg(tmp_path, svc_yaml("tick", "counter", "0", "0.005"))
    r = cli(tmp_path, "run", "--headless", "--detach", "-c", str(cfg))
    assert r.returncode == 0, r.stderr
    pid = int(r.stdout.split("(pid ")[1].split(")")[0])
    engine_log = Path(r.stdout.strip().split("output in ")[1])
    try:
        snap = cli(tmp_path, "status", "--json", "-c", str(cfg))
        log = Path(json.loads(snap.stdout)["services"][0]["log_file"])
        wait_text(engine_log, "| line 0")
        for n, how in ((1, "verb"), (2, "SIGUSR1")):
            os.rename(log, f"{log}.{n}")
            os.rename(engine_log, f"{engine_log}.{n}")
            if how == "verb":
                r = cli(tmp_path, "reopen-logs", "-c", str(cfg))
                assert (r.returncode, r.stdout, r.stderr) == (0, "reopened 2 log files\n", "")
            else:
                os.kill(pid, signal.SIGUSR1)
            wait_text(engine_log, "| line 0")  # a new engine.log, written to
            wait_until(lambda: log.exists() and log.stat().st_size > 20 * 55, 20,
                       f"a new {log}, written to")
            assert alive(pid)
        os.kill(pid, signal.SIGTERM)
        wait_until(lambda: not alive(pid), 20, "the engine to stop")
        wait_text(engine_log, "all stopped")
        got = numbers(Path(f"{log}.1"), Path(f"{log}.2"), log)
        assert got == list(range(len(got)))
        assert engine_log.stat().st_mode & 0o777 == 0o600
    finally:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_sigusr1_through_a_code_reload(engine) -> None:
    """logrotate may send SIGUSR1 while the engine re-executes itself (a code reload):
    from the exec until the new image handles it again, the signal must not end it."""
    import threading

    running_snap = engine.snapshot(lambda s: all(x["pid"] for x in s["services"]))
    done = threading.Event()

    def storm() -> None:
        while not done.wait(0.01):
            with contextlib.suppress(ProcessLookupError):
                os.kill(engine.proc.pid, signal.SIGUSR1)

    t = threading.Thread(target=storm)
    t.start()
    try:
        r = engine.cli("reload", "--code")
        assert r.returncode == 0, r.stderr
        engine.wait_out("code reloaded:")
        engine.cli("status")  # answers: the new image handles signals again
    finally:
        done.set()
        t.join()
    assert engine.proc.poll() is None, engine.out
    snap = engine.snapshot()
    assert [x["pid"] for x in snap["services"]] == [x["pid"] for x in running_snap["services"]]
