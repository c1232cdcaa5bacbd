"""Real daemons from Debian under the engine, as users run them: redis-server that
daemonizes and rewrites its process title over its environment (so the engine's marker
is gone from /proc/PID/environ), nginx with a master and workers (daemonized or not)
whose master is SIGKILLed. Skipped with the reason where the program is not installed
(`.ci/run` installs both).

The processes are found by their command line and parentage (psutil), never by the
engine's marker, and every one a test saw is SIGKILLed at its end, by PID."""

from __future__ import annotations

import contextlib
import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from support import Headless, free_port, wait_until

REDIS = shutil.which("redis-server")
NGINX = shutil.which("nginx") or (
    "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)

needs_redis = pytest.mark.skipif(REDIS is None, reason="redis-server is not installed "
                                 "(Debian: apt-get install redis-server)")
needs_nginx = pytest.mark.skipif(NGINX is None, reason="nginx is not installed "
                                 "(Debian: apt-get install nginx-light)")


class Seen:
    """Processes a test saw (pid + create time), SIGKILLed at its end if still there."""

    def __init__(self) -> None:
        self.procs: dict[int, float] = {}
        self.words: list[str] = []
        """Command-line words that name the test's processes (a port, its tmp dir)."""

    def add(self, pids: set[int]) -> set[int]:
        for p in pids:
            with contextlib.suppress(psutil.Error):
                self.procs.setdefault(p, psutil.Process(p).create_time())
        return pids

    def alive(self) -> set[int]:
        out = set()
        for p, t in self.procs.items():
            try:
                pr = psutil.Process(p)
                if pr.create_time() == t and pr.status() != psutil.STATUS_ZOMBIE:
                    out.add(p)
            except psutil.Error:
                pass
        return out

    def kill(self) -> None:
        for p in self.alive():
            with contextlib.suppress(psutil.Error):
                psutil.Process(p).kill()


@pytest.fixture
def seen(tmp_path: Path) -> Iterator[Seen]:
    """What the test saw, and whatever names its tmp dir (with its children: nginx's
    workers), SIGKILLed at its end: a failed test leaks nothing either."""
    s = Seen()
    try:
        yield s
    finally:
        for p in {q for w in (str(tmp_path), *s.words) for q in matching(w)}:
            s.add({p})
            with contextlib.suppress(psutil.Error):
                s.add({c.pid for c in psutil.Process(p).children(recursive=True)})
        s.kill()


def matching(word: str) -> set[int]:
    """Live processes with `word` in their command line (their title, once rewritten)."""
    out = set()
    for p in psutil.process_iter(["cmdline", "status"]):
        if p.info["status"] != psutil.STATUS_ZOMBIE and word in " ".join(p.info["cmdline"] or []):
            out.add(p.pid)
    return out


def environ_has_marker(pid: int) -> bool:
    try:
        return b"TUISUP_OWNER=" in Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False


def engine(tmp: Path, services: str, cgroups: str = "off") -> Headless:
    cfg = tmp / "tst-daemons.yaml"
    cfg.write_text(f"settings:\n  cgroups: {cgroups}\nservices:\n{services}")
    return Headless(tmp, cfg)


def redis_service(tmp: Path, port: int) -> str:
    return (f"  redis:\n    command: [{REDIS}, --port, '{port}', --bind, 127.0.0.1,"
            f" --daemonize, 'yes', --save, '', --appendonly, 'no', --dir, {tmp},"
            f" --pidfile, {tmp / 'redis.pid'}, --logfile, {tmp / 'redis.log'}]\n"
            "    start_time: 0\n")


def redis_ping(port: int) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@needs_redis
@pytest.mark.parametrize("cgroups", ["off", "auto"])
def test_daemonizing_redis_is_recognised_stopped_and_never_leaked(
        tmp_path: Path, seen: Seen, cgroups: str) -> None:
    port = free_port()
    seen.words.append(f":{port}")
    e = engine(tmp_path, redis_service(tmp_path, port), cgroups)
    try:
        snap = e.snapshot(lambda s: s["services"][0]["state"] == "daemonized", 30,
                          "redis daemonized")
        mode = snap["engine"]["processes"]
        assert mode.startswith("marker and ancestry (") if cgroups == "off" else mode, mode
        (daemon,) = seen.add(matching(f":{port}"))
        assert not environ_has_marker(daemon)  # what defeats a marker-only engine
        assert redis_ping(port)
        v = snap["services"][0]
        assert v["failures"] == 0 and v["spawns"] == 1, v
        # it died: the service respawns it (a new daemon binds the freed port)
        psutil.Process(daemon).kill()
        e.snapshot(lambda s: s["services"][0]["state"] == "daemonized"
                   and s["services"][0]["spawns"] == 2, 30, "redis daemonized again")
        wait_until(lambda: redis_ping(port), 20, "the new redis answers")
        (second,) = seen.add(matching(f":{port}"))
        assert second != daemon
        # the supervisor's SIGTERM stops it: nothing of it is left
        assert e.stop() == 0
        wait_until(lambda: not seen.alive(), 10, lambda: f"redis gone: {seen.alive()}")
        assert not matching(f":{port}")
        if mode.startswith("cgroup v2 at "):  # the engine removed the cgroups it made
            assert not Path(mode.removeprefix("cgroup v2 at ")).exists()
    finally:
        e.stop()


def nginx_conf(tmp: Path, port: int, daemon: bool) -> Path:
    conf = tmp / "nginx.conf"
    conf.write_text(f"""
daemon {'on' if daemon else 'off'};
user root;
worker_processes 2;
pid {tmp}/nginx.pid;
error_log stderr;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fcgi; uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;
  server {{ listen 127.0.0.1:{port}; location / {{ return 200 "ok $pid"; }} }}
}}
""")
    return conf


def nginx_answer(port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
            return r.read().decode()  # type: ignore[no-any-return]
    except OSError:
        return None


def nginx_tree(master: int) -> set[int]:
    try:
        return {master, *(c.pid for c in psutil.Process(master).children())}
    except psutil.Error:
        return set()


@needs_nginx
@pytest.mark.parametrize("cgroups", ["off", "auto"])
@pytest.mark.parametrize("daemon", [True, False], ids=["daemon-on", "daemon-off"])
def test_nginx_master_killed_its_workers_go_before_the_replacement(
        tmp_path: Path, seen: Seen, daemon: bool, cgroups: str) -> None:
    port = free_port()
    conf = nginx_conf(tmp_path, port, daemon)
    e = engine(tmp_path, f"  web:\n    command: [{NGINX}, -e, stderr, -p, {tmp_path},"
               f" -c, {conf}]\n    start_time: 0\n", cgroups)
    want = "daemonized" if daemon else "running"
    try:
        e.snapshot(lambda s: s["services"][0]["state"] == want, 30, f"nginx {want}")
        wait_until(lambda: nginx_answer(port), 20, "nginx answers")
        master = int((tmp_path / "nginx.pid").read_text())
        first = seen.add(wait_until(lambda: nginx_tree(master) if len(nginx_tree(master)) == 3
                                    else None, 20, "a master and two workers"))
        assert not any(environ_has_marker(p) for p in first - {master})
        psutil.Process(master).kill()
        # the old workers are stopped, a new master binds the port and answers
        e.snapshot(lambda s: s["services"][0]["spawns"] == 2
                   and s["services"][0]["state"] == want, 30, f"nginx {want} again")
        answer = wait_until(lambda: nginx_answer(port), 20, "the new nginx answers")
        assert str(master) not in answer
        assert not (first & seen.alive()), "a worker of the killed master is still alive"
        snap = e.snapshot()
        assert snap["services"][0]["failures"] == 1
        new_master = int((tmp_path / "nginx.pid").read_text())
        seen.add(nginx_tree(new_master))
        assert e.stop() == 0
        wait_until(lambda: not seen.alive(), 10, lambda: f"nginx gone: {seen.alive()}")
    finally:
        e.stop()
