"""The runtime and state dirs: made 0700 when the engine makes them; an existing folder
(the config's own, a parent, a dir the user made) never has its mode changed; a runtime
dir open to other users is refused with one line that says how to fix it."""

from __future__ import annotations

import contextlib
import dataclasses
import grp
import os
import pwd
import shutil
import signal
import stat
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import child, make_config, spec
from support import PY, cli, free_port, one_error_line, running, svc, wait_until

from tui_supervisor.engine.runtime import RuntimeDirError, ensure_private_dir, make_dirs


def mode(p: Path) -> int:
    return stat.S_IMODE(os.lstat(p).st_mode)


def with_dirs(tmp: Path, run: Path, state: Path) -> object:
    cfg = make_config(tmp, spec("s", child("sleeper"), tmp))
    return dataclasses.replace(cfg, settings=dataclasses.replace(
        cfg.settings, runtime_dir=run, state_dir=state, log_dir=state / "logs"))


async def test_the_config_folder_keeps_its_mode(engine_factory, tmp_path: Path) -> None:
    """`runtime_dir: run` next to the config: the config's folder (a project, a web root)
    is not made 0700; the dirs the engine makes are."""
    project = tmp_path / "project"
    project.mkdir()
    project.chmod(0o755)
    sup = await engine_factory(config=with_dirs(tmp_path, project / "run",
                                                project / "state"))
    assert sup.lock is not None
    assert mode(project) == 0o755
    assert mode(project / "run") == mode(project / "state") == 0o700


@pytest.mark.parametrize(("bits", "what"), [(0o755, "reach"), (0o750, "reach"),
                                            (0o770, "replace"), (0o777, "replace")])
def test_a_runtime_dir_open_to_others_is_refused(tmp_path: Path, bits: int,
                                                 what: str) -> None:
    run = tmp_path / "run"
    run.mkdir()
    run.chmod(bits)
    with pytest.raises(RuntimeDirError) as err:
        ensure_private_dir(run)
    assert str(err.value) == (f"{run}: mode {bits:04o} lets other users {what} the control "
                              f"socket; chmod 700 {run} or choose another runtime_dir")
    assert mode(run) == bits  # told, not changed
    run.chmod(0o700)
    ensure_private_dir(run)  # the fix the message names


def test_a_parent_others_can_write_is_refused_not_changed(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(RuntimeDirError, match=r"shared is writable by other users: they "
                       "could replace the runtime dir run; choose another runtime_dir"):
        ensure_private_dir(shared / "run")
    assert mode(shared) == 0o777
    shared.chmod(0o1777)  # sticky, as /tmp: others cannot rename our dir away
    ensure_private_dir(shared / "run")
    assert mode(shared) == 0o1777 and mode(shared / "run") == 0o700


def test_missing_dirs_are_made_private_existing_ones_left(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    assert make_dirs(tmp_path / "a" / "b" / "c")
    assert [mode(tmp_path / p) for p in ("a", "a/b", "a/b/c")] == [0o700] * 3
    assert not make_dirs(tmp_path / "a" / "b")
    (tmp_path / "open").mkdir()
    (tmp_path / "open").chmod(0o755)
    make_dirs(tmp_path / "open" / "state")
    assert mode(tmp_path) == mode(tmp_path / "open") == 0o755


def test_cli_says_why_in_one_line(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    run.chmod(0o755)
    cfg = tmp_path / "tst-dirs.yaml"
    cfg.write_text(f"settings:\n  runtime_dir: run\nservices:\n{svc('a', 'sleeper')}")
    r = cli(tmp_path, "run", "--headless", "-c", str(cfg))
    assert one_error_line(r) == (
        f"tui-supervisor: cannot start: {run}: mode 0755 lets other users reach the "
        f"control socket; chmod 700 {run} or choose another runtime_dir")
    assert mode(run) == 0o755


NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx")
                                  else None)


@pytest.mark.timeout(120)
@pytest.mark.skipif(os.geteuid() != 0, reason="nginx's `user nobody;` needs root")
@pytest.mark.skipif(NGINX is None, reason="nginx is not installed (apt-get install nginx-light)")
def test_nginx_workers_as_nobody_serve_the_config_folder(engines) -> None:
    """A real nginx whose workers run as nobody, serving a file from the config's folder
    with `runtime_dir: run` beside it: 200, not 403 (the folder keeps its 0755)."""
    folder = Path(tempfile.mkdtemp(prefix="tst-nginx-"))  # under /tmp: nobody can reach
    master = None
    e = None
    try:
        folder.chmod(0o755)
        (folder / "www").mkdir(mode=0o755)
        (folder / "www" / "index.html").write_text("hello from the config folder\n")
        (folder / "www" / "index.html").chmod(0o644)
        (folder / "nginx-tmp").mkdir()
        port = free_port()
        conf = folder / "nginx.conf"
        tmp = folder / "nginx-tmp"
        nobody = pwd.getpwnam("nobody")
        group = grp.getgrgid(nobody.pw_gid).gr_name  # (Debian has no group "nobody")
        conf.write_text(
            f"daemon off;\nmaster_process on;\nuser nobody {group};\nworker_processes 1;\n"
            f"pid {tmp}/nginx.pid;\nerror_log {tmp}/error.log;\n"
            "events { worker_connections 16; }\n"
            "http {\n  access_log off;\n"
            f"  client_body_temp_path {tmp}/body;\n  proxy_temp_path {tmp}/proxy;\n"
            f"  fastcgi_temp_path {tmp}/fastcgi;\n  uwsgi_temp_path {tmp}/uwsgi;\n"
            f"  scgi_temp_path {tmp}/scgi;\n"
            f"  server {{ listen 127.0.0.1:{port}; root {folder}/www; }}\n}}\n")
        cfg = folder / "tst-nginx.yaml"
        cfg.write_text(
            "settings:\n  runtime_dir: run\n  state_dir: state\n  sample_interval: 0\n"
            "services:\n"
            f"  web:\n    command: [{NGINX}, -c, {conf}, -p, {tmp}]\n    start_time: 0\n"
            f"  idle:\n    command: [{PY}, {Path(__file__).parent / 'children' / 'sleeper.py'}]"
            "\n    start_time: 0\n")
        e = engines(cfg, quiet=True)
        snap = running(e)
        master = next(s["pid"] for s in snap["services"] if s["name"] == "web")

        def get() -> int | None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html",
                                            timeout=5) as r:
                    return int(r.status)
            except urllib.error.HTTPError as err:
                return err.code
            except OSError:
                return None  # not listening yet

        status = wait_until(get, 30, "nginx to answer")
        assert status == 200, (status, (tmp / "error.log").read_text())
        assert mode(folder) == 0o755
        assert mode(folder / "run") == 0o700
    finally:
        if e is not None:
            e.stop()
        if master is not None:  # (the engine stops it; by pid, in case it did not)
            with contextlib.suppress(OSError):
                if "nginx" in Path(f"/proc/{master}/cmdline").read_text():
                    os.kill(master, signal.SIGKILL)
        shutil.rmtree(folder, ignore_errors=True)
