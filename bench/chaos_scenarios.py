"""The chaos scenarios of issue 12, each `run(work, full) -> Result` against a real
headless engine (`python -m tui_supervisor run --headless`): a quick form (tests/
test_chaos.py runs it in CI) and a full form (`python bench/chaos.py --full`).

Each scenario measures, then checks; a check never bounds a time (only generous
time-outs do): the figures say how fast.
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chaos_kit import (
    FAST_LOOP,
    Cleanup,
    Connection,
    Engine,
    Result,
    Skip,
    Subscriber,
    alive,
    become_subreaper,
    child,
    connect,
    fd_count,
    is_leader,
    kill_pids,
    marked,
    mib,
    ms,
    percentile,
    reap_children,
    rss_bytes,
    service_yaml,
    wait_until,
    zombies_of,
)

from tui_supervisor.engine import proc

ANSWERED = (0, 3)
"""`status` answered: all up (0), or not all (3: a crash loop is)."""

def _growth(result: Result, engine_pid: int, start: tuple[int, int]) -> None:
    """Figures and checks for the engine's fds and RSS against `start` (fds, rss)."""
    fds, rss = fd_count(engine_pid), rss_bytes(engine_pid)
    result.figures["engine fds start/end"] = f"{start[0]} / {fds}"
    result.figures["engine RSS start/end"] = f"{mib(start[1])} / {mib(rss)}"
    result.check("engine fds flat (end <= start + 8)", fds <= start[0] + 8, f"{start[0]} -> {fds}")
    bound = start[1] + max(32 << 20, start[1] // 2)
    result.check("engine RSS flat (end <= start + max(32 MiB, 50 %))", rss <= bound,
                 f"{mib(start[1])} -> {mib(rss)}")


def _stopped_clean(result: Result, e: Engine, seen: set[int]) -> None:
    """Stop the engine (SIGTERM); nothing of the run may be left."""
    rc = e.stop()
    reap_children()
    left = {p: s for p, s in marked(e.config_id).items()}
    seen_alive = sorted(p for p in seen if alive(p))
    result.figures["left after stop"] = len(left) + len(set(seen_alive) - set(left))
    result.check("engine exits 0 on SIGTERM", rc == 0, f"exit {rc}")
    result.check("nothing left after stop (marker or seen pid)", not left and not seen_alive,
                 f"marked {left}, seen alive {seen_alive}")


# -- 1 ------------------------------------------------------------------------------------
def kill_storm(work: Path, full: bool) -> Result:
    """Random SIGKILLs to main processes and to their descendants."""
    n, target, batch = (50, 3000, 15) if full else (10, 300, 6)
    r = Result("kill-storm", did=f"{target} random SIGKILLs over {n} services, each a tree "
               "main -> child -> grandchild (tests/children/tree.py 3), to any of their "
               "processes, half to main processes, in batches every 20 ms")
    services = "".join(service_yaml(f"s{i:02d}", child("tree", "3"), **FAST_LOOP)
                       for i in range(n))
    with Cleanup() as c:
        become_subreaper()
        e = c.engine(Engine(work, "storm", services)).start()
        e.wait_ready(pred=lambda s: len(marked(e.config_id)) >= 3 * n)
        time.sleep(1.0)  # the sampler's first pass, the loop at rest
        start = fd_count(e.pid), rss_bytes(e.pid)
        rng = random.Random(12)
        seen: set[int] = set()
        killed: set[int] = set()
        main_kills: Counter[str] = Counter()
        t0 = time.monotonic()
        while len(killed) < target:
            live = marked(e.config_id)
            seen |= live.keys()
            # half the kills to main processes, half to their descendants (a respawned
            # tree needs a moment to grow: uniform picks would hit mostly mains)
            leaders = {p for p in live if p not in killed and is_leader(p)}
            others = sorted(p for p in live if p not in killed and p not in leaders)
            picks = set(rng.sample(sorted(leaders),
                                   min(len(leaders), batch // 2, len(others) + 1)))
            picks |= set(rng.sample(others, min(len(others), batch - len(picks))))
            for pid in sorted(picks)[: target - len(killed)]:
                main = pid in leaders  # known before the kill: a dead pid has no session
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    continue
                killed.add(pid)
                if main:
                    main_kills[live[pid]] += 1
            time.sleep(0.02)
        storm = time.monotonic() - t0
        mains = sum(main_kills.values())

        def settled(snap: dict[str, Any]) -> bool:
            return all(s["spawns"] == 1 + main_kills[s["name"]] for s in snap["services"])

        try:
            snap = e.wait_ready(120, settled)
        except TimeoutError:
            snap = e.snapshot()
        spawns = {s["name"]: s["spawns"] - 1 for s in snap["services"]}
        restarts = sum(s["restarts"] for s in snap["services"])
        r.figures.update({
            "kills": len(killed), "of main pids": mains, "of descendants": len(killed) - mains,
            "respawns (spawns - 1)": sum(spawns.values()), "restarts counter": restarts,
            "storm seconds": f"{storm:.1f}"})
        wrong = {k: (v, main_kills[k]) for k, v in spawns.items() if v != main_kills[k]}
        r.check("respawns == kills of main pids, per service", not wrong,
                f"service: (respawns, main kills) {wrong}")
        r.check("restarts counter == kills of main pids", restarts == mains, f"{restarts}")
        r.check("every service running", all(s["state"] == "running"
                                              for s in snap["services"]))
        with contextlib.suppress(TimeoutError):
            wait_until(lambda: not zombies_of(e.pid), 10, "no zombies")
        z = zombies_of(e.pid)
        r.figures["zombies"] = len(z)
        r.check("0 zombies among the engine's children", not z, z)
        time.sleep(1.0)
        _growth(r, e.pid, start)
        seen |= marked(e.config_id).keys()
        _stopped_clean(r, e, seen)
    return r


# -- 2 ------------------------------------------------------------------------------------
def crash_loop(work: Path, full: bool) -> Result:
    """A service that fails at once, for ever: still respawned after N failures."""
    target = 100_000 if full else 2000
    r = Result("crash-loop", did=f"`/bin/false` with backoff 0 and crash_loop "
               f"{{max_failures: 10000, window: 1ms}} (never gives up) until {target} "
               "failures; a sleeping bystander SIGKILLed at the end")
    services = (service_yaml("loop", ["/bin/false"], **FAST_LOOP)
                + service_yaml("bystander", child("sleeper")))
    with Cleanup() as c:
        e = c.engine(Engine(work, "crashloop", services)).start()
        e.wait_ready()
        start = fd_count(e.pid), rss_bytes(e.pid)
        t0 = time.monotonic()

        def reached() -> dict[str, Any] | None:
            loop = e.services()["loop"]
            if loop["state"] == "fatal":
                raise RuntimeError(f"gave up: {loop['reason']}")
            return loop if loop["failures"] >= target else None

        try:
            loop = wait_until(reached, 60 + target / 20, f"{target} failures", interval=0.5)
        except (TimeoutError, RuntimeError) as err:
            r.check(f"{target} failures, never fatal", False, err)
            loop = e.services()["loop"]
        took = time.monotonic() - t0
        time.sleep(0.5)
        later = e.services()
        r.figures.update({"failures": loop["failures"], "seconds": f"{took:.1f}",
                          "failures/s": f"{loop['failures'] / took:.0f}",
                          "state at the end": later["loop"]["state"]})
        r.check("not fatal", later["loop"]["state"] != "fatal", later["loop"]["reason"])
        r.check("still respawning (spawns grow)", later["loop"]["spawns"] > loop["spawns"],
                f"{loop['spawns']} -> {later['loop']['spawns']}")
        old = later["bystander"]["pid"]
        os.kill(old, signal.SIGKILL)
        try:
            e.wait_ready(30, lambda s: next(x for x in s["services"]
                                            if x["name"] == "bystander")["pid"] != old)
            r.check("a SIGKILLed bystander is respawned", True)
        except TimeoutError as err:
            r.check("a SIGKILLed bystander is respawned", False, err)
        _growth(r, e.pid, start)
        inc = sum(p.stat().st_size for p in (e.dir / "state").glob("incidents.jsonl*"))
        r.figures["incidents file(s)"] = mib(inc)
        _stopped_clean(r, e, set())
    return r


# -- 3 ------------------------------------------------------------------------------------
def _drain(c: Connection) -> None:
    with contextlib.suppress(OSError, ValueError):
        c.file.read()


class Abuse:
    """Bad clients of one socket, each in a thread: idle connections, a 10 MB line,
    random bytes, a subscriber that never reads. `stop()` closes them all."""

    def __init__(self, path: Path, idle: int, until: float) -> None:
        self.path, self.until = path, until
        self.socks: list[socket.socket] = []
        self.idle_open = self.idle_refused = 0
        self.long_line_answer = ""
        self.random_bytes = self.random_refused = 0
        self.deaf_dropped = self.stopped = False
        for _ in range(idle):
            try:
                self.socks.append(connect(path))
            except OSError:
                self.idle_refused += 1
        for sock in self.socks:  # the first line: the hello, or a refusal (`busy`)
            sock.settimeout(10)
            with contextlib.suppress(OSError):
                first = sock.recv(4096)
                if b'"hello"' in first:
                    self.idle_open += 1
                else:
                    self.idle_refused += 1
        self.deaf = connect(path, rcvbuf=4096)
        self.deaf.sendall(b'{"id": 1, "cmd": "subscribe", "args": {"logs": true}}\n')
        self.threads = [threading.Thread(target=f, daemon=True)
                        for f in (self._long_line, self._random)]
        for t in self.threads:
            t.start()

    def _long_line(self) -> None:
        """Sent from a thread while this one reads: the engine answers after the first
        MiB and closes, so the rest of the send may fail."""
        with contextlib.suppress(OSError, ValueError), Connection(self.path, 30) as c:
            def send() -> None:
                with contextlib.suppress(OSError):
                    c.sock.sendall(b'{"id": 1, "cmd": "' + b"x" * (10 << 20) + b'"}\n')

            sender = threading.Thread(target=send, daemon=True)
            sender.start()
            self.long_line_answer = str(c.read().get("error", {}).get("code"))
            sender.join(30)

    def _random(self) -> None:
        rng = random.Random(3)
        while time.monotonic() < self.until:
            with contextlib.suppress(OSError, ValueError), Connection(self.path, 10) as c:
                if "error" in c.hello:  # refused (busy): try again in a moment
                    self.random_refused += 1
                    time.sleep(0.05)
                    continue
                drain = threading.Thread(target=_drain, args=(c,), daemon=True)
                drain.start()
                for _ in range(16):
                    c.sock.sendall(rng.randbytes(16 << 10))
                    self.random_bytes += 16 << 10
                c.sock.shutdown(socket.SHUT_WR)
                drain.join(10)

    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        for t in self.threads:
            t.join(30)
        # the never-reading subscriber: cut off by the engine? (EOF once what it was sent
        # is read; a live stream never ends, so read for a bounded time)
        self.deaf_dropped = False
        deadline = time.monotonic() + 3
        self.deaf.settimeout(0.5)
        with contextlib.suppress(OSError):
            while time.monotonic() < deadline:
                if not self.deaf.recv(1 << 20):
                    self.deaf_dropped = True
                    break
        self.deaf.close()
        for s in self.socks:
            s.close()


def socket_abuse(work: Path, full: bool) -> Result:
    """Respawns and `status` go on while bad clients hammer the control socket."""
    phase, idle, wait = (20.0, 500, 120.0) if full else (3.0, 100, 30.0)
    r = Result("socket-abuse", did=f"a crash loop (`/bin/false`, 10 ms backoff) for {phase:g} s "
               f"quiet, then {phase:g} s with {idle} idle connections, a 10 MB line, random "
               "bytes (16 KiB writes, connection after connection) and a subscriber that "
               "never reads; `status` from a new process in each phase (retried until it "
               f"answers, up to {wait:g} s)")
    loop = {"backoff": {"initial": "10ms", "max": "10ms", "jitter": 0},
            "crash_loop": FAST_LOOP["crash_loop"]}
    services = (service_yaml("loop", ["/bin/false"], **loop)
                + service_yaml("calm", child("sleeper")))
    with Cleanup() as c:
        e = c.engine(Engine(work, "abuse", services)).start()
        e.wait_ready()
        sub = Subscriber(e.runtime / "control.sock")
        c.callback(sub.close)
        t0 = time.monotonic()
        time.sleep(phase / 2)
        quiet_status, quiet_s = e.cli("status")
        time.sleep(phase / 2)
        t1 = time.monotonic()
        fds_quiet = fd_count(e.pid)
        abuse = Abuse(e.runtime / "control.sock", idle, t1 + phase)
        c.callback(abuse.stop)
        time.sleep(phase / 2)
        fds_abused = fd_count(e.pid)
        # a connection cap refuses new clients while idle ones hold it: ask until answered
        tries, asked = 0, time.monotonic()
        while True:
            tries += 1
            status, _ = e.cli("status", timeout=wait)
            if status.returncode in ANSWERED or time.monotonic() - asked > wait:
                break
            time.sleep(0.5)
        status_s = time.monotonic() - asked
        time.sleep(max(0.0, t1 + phase - time.monotonic()))
        t2 = time.monotonic()
        abuse.stop()
        with contextlib.suppress(TimeoutError):
            wait_until(lambda: fd_count(e.pid) <= fds_quiet + 8, 20, "connections closed")
        fds_after = fd_count(e.pid)
        quiet = sub.respawn_latencies("loop", t0, t1)
        loud = sub.respawn_latencies("loop", t1, t2)
        r.figures.update({
            "respawn p50/p99 quiet": f"{ms(percentile(quiet, 50))} / {ms(percentile(quiet, 99))}"
                                     f" (n={len(quiet)})",
            "respawn p50/p99 abused": f"{ms(percentile(loud, 50))} / {ms(percentile(loud, 99))}"
                                      f" (n={len(loud)})",
            "`status` quiet": f"{quiet_s:.2f} s",
            "`status` abused: answered after": f"{status_s:.2f} s ({tries} tries)",
            "idle connections held / refused": f"{abuse.idle_open} / {abuse.idle_refused}",
            "engine fds quiet / abused / after": f"{fds_quiet} / {fds_abused} / "
                                                 f"{fds_after}",
            "10 MB line answered": abuse.long_line_answer or "(connection closed)",
            "random bytes sent (connections refused)": f"{mib(abuse.random_bytes)} "
                                                       f"({abuse.random_refused})",
            "never-reading subscriber cut off": "yes" if abuse.deaf_dropped else "no"})
        r.check("respawns go on during the abuse", len(loud) > 0, len(loud))
        r.check("`status` from a new process answers during the abuse",
                status.returncode in ANSWERED and "loop" in status.stdout,
                (status.stdout + status.stderr).strip()[-300:])
        r.check("`status` answers when quiet", quiet_status.returncode in ANSWERED)
        r.check("the engine's fds back to quiet once the clients are gone",
                fds_after <= fds_quiet + 8, f"{fds_quiet} -> {fds_after}")
        r.check("engine alive", e.proc.poll() is None, e.out[-2000:])
        _stopped_clean(r, e, set())
    return r


# -- 4 ------------------------------------------------------------------------------------
def engine_restarts(work: Path, full: bool) -> Result:
    """The engine SIGKILLed, started again: its predecessor's services are cleared, never
    duplicated."""
    times, sleepers = (5, 10) if full else (5, 3)
    r = Result("engine-kill-restart", did=f"the engine SIGKILLed and started again {times} "
               f"times, on {sleepers} sleepers, 2 process trees (3 deep) and a service whose "
               "child is in its own session (forker.py setsid)")
    pidfile = work / "restarts-forker.pid"
    services = "".join(service_yaml(f"sleep{i}", child("sleeper")) for i in range(sleepers))
    services += "".join(service_yaml(f"tree{i}", child("tree", "3")) for i in range(2))
    services += service_yaml("escapee", child("forker", str(pidfile), "setsid"))
    nproc = sleepers + 2 * 3 + 2
    with Cleanup() as c:
        become_subreaper()
        e = c.engine(Engine(work, "restarts", services))
        seen: set[int] = set()
        old: dict[int, int | None] = {}
        cleared: list[int] = []
        dup: list[str] = []
        for k in range(times + 1):
            e.start()
            snap = e.wait_ready(60, lambda s: len(marked(e.config_id)) >= nproc)
            reap_children()
            left = [p for p, t in old.items() if alive(p) and proc.create_time(p) == t]
            r.check(f"start {k}: none of the killed engine's processes left", not left, left)
            now = marked(e.config_id)
            seen |= now.keys()
            for s in snap["services"]:
                mains = sorted(p for p, n in now.items() if n == s["name"] and is_leader(p)
                               and getattr(proc.stat(p), "ppid", None) == e.pid)
                if mains != [s["pid"]]:
                    dup.append(f"start {k}: {s['name']} mains {mains}, snapshot {s['pid']}")
            cleared.append(len(old))
            if k == times:
                break
            old = {p: proc.create_time(p) for p in now}
            e.hard_kill()
        r.check("each service has exactly one main process, its snapshot's", not dup, dup)
        notices = e.out.count("leftover processes")
        r.figures.update({"restarts": times, "processes per generation": nproc,
                          "killed engine's processes cleared per start": cleared[1:],
                          "leftover notices": notices})
        _stopped_clean(r, e, seen)
    return r


# -- 5 ------------------------------------------------------------------------------------
def code_reloads(work: Path, full: bool) -> Result:
    """`reload --code` under services printing 1000 numbered lines a second each."""
    n, reloads = (20, 5) if full else (5, 2)
    r = Result("code-reload", did=f"{reloads} times `tui-supervisor reload --code` while {n} "
               "services each print a numbered line every ms (tests/children/counter.py)")
    services = "".join(service_yaml(f"tick{i:02d}", child("counter", "0", "0.001"))
                       for i in range(n))
    with Cleanup() as c:
        e = c.engine(Engine(work, "reload", services, {"sample_interval": 0})).start()
        first = e.wait_ready()
        took = []
        time.sleep(0.5)
        for i in range(1, reloads + 1):
            res, s = e.cli("reload", "--code", timeout=120)
            took.append(s)
            if not r.check(f"reload {i} accepted", res.returncode == 0,
                           (res.stdout + res.stderr).strip()[-500:]):
                break
            with contextlib.suppress(TimeoutError):
                wait_until(lambda i=i: e.out.count("code reloaded") >= i, 60, "code reloaded")
            time.sleep(0.3)
        last = e.wait_ready()
        same = (last["engine"]["pid"] == first["engine"]["pid"]
                and {s["name"]: s["pid"] for s in last["services"]}
                == {s["name"]: s["pid"] for s in first["services"]})
        r.check("same engine and service pids", same)
        restarts = sum(s["restarts"] for s in last["services"])
        r.check("no service restarted", restarts == 0, restarts)
        logs = {s["name"]: Path(s["log_file"]) for s in last["services"]}
        rc = e.stop()
        r.check("engine exits 0", rc == 0, rc)
        total = lost = twice = 0
        bad: list[str] = []
        for name, log in logs.items():
            nums = []
            for path in sorted(log.parent.glob(log.name + "*"), reverse=True):
                for line in path.read_bytes().splitlines():
                    parts = line.split()
                    if len(parts) >= 2 and parts[0] == b"line":
                        nums.append(int(parts[1]))
            total += len(nums)
            twice += len(nums) - len(set(nums))
            lost += (max(nums) + 1 - len(set(nums))) if nums else 0
            if nums != list(range(len(nums))):
                bad.append(name)
        r.figures.update({"reloads": reloads, "services": n, "lines": total, "lost": lost,
                          "duplicated": twice,
                          "`reload --code` seconds (max)": f"{max(took, default=0):.2f}",
                          "code reloaded": e.out.count("code reloaded")})
        r.check("every line exactly once, in order, in every log", not bad and total > 0,
                f"out of order or missing in {bad}")
        seen = set(marked(e.config_id))
        _stopped_clean(r, e, seen)
    return r


# -- 6 ------------------------------------------------------------------------------------
def _mount_tmpfs(path: Path, size: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    if shutil.which("mount") is None:
        raise Skip("no mount command")
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise Skip(f"mounting a tmpfs refused: {p.stderr.strip() or p.returncode}")


def _umount(path: Path) -> None:
    if subprocess.run(["umount", str(path)], capture_output=True).returncode != 0:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def _fill(path: Path) -> int:
    """Write `path` until the disk is full; bytes written."""
    n = 0
    chunk = b"\0" * (16 << 10)
    with open(path, "wb", buffering=0) as f:
        while True:
            try:
                n += f.write(chunk) or 0
            except OSError as err:
                if err.errno != errno.ENOSPC:
                    raise
                if len(chunk) == 1:
                    return n
                chunk = chunk[: len(chunk) // 2]


def disk_full(work: Path, full: bool) -> Result:
    """log_dir on a 2 MB tmpfs, filled: supervision goes on; logging resumes after."""
    hold = 5.0 if full else 1.5
    r = Result("disk-full", did=f"log_dir on a 2 MB tmpfs, filled to the last byte by a file "
               f"for {hold:g} s while a service prints 1000 lines/s; a sleeper SIGKILLed "
               "meanwhile; then the file removed")
    services = (service_yaml("writer", child("counter", "0", "0.001"))
                + service_yaml("victim", child("sleeper")))
    with Cleanup() as c:
        e = Engine(work, "diskfull", services)
        logs = e.dir / "logs"
        _mount_tmpfs(logs, "2m")
        c.callback(_umount, logs)
        c.engine(e).start()
        e.wait_ready()
        sub = Subscriber(e.runtime / "control.sock", kinds=("notice",))
        c.callback(sub.close)
        writer_log = logs / "writer.log"
        wait_until(lambda: writer_log.exists() and writer_log.stat().st_size > 0, 10,
                   "the writer's log")
        ballast = logs / "ballast"
        _fill(ballast)
        size_full = writer_log.stat().st_size
        time.sleep(hold / 2)
        victim = e.services()["victim"]["pid"]
        os.kill(victim, signal.SIGKILL)
        respawned = True
        try:
            e.wait_ready(30, lambda s: next(x for x in s["services"]
                                            if x["name"] == "victim")["pid"] != victim)
        except TimeoutError:
            respawned = False
        time.sleep(hold / 2)
        grew_while_full = writer_log.stat().st_size - size_full
        status, _ = e.cli("status")
        ballast.unlink()
        try:
            wait_until(lambda: writer_log.stat().st_size > size_full + grew_while_full + 4096,
                       30, "the writer's log to grow again")
            resumed = True
        except TimeoutError:
            resumed = False
        tail = writer_log.read_bytes()[-200:].splitlines()[-1:]

        def about_writer(topic: str) -> list[dict[str, Any]]:
            return [n for n in sub.notices() if n.get("topic") == topic
                    and str((n.get("data") or {}).get("path", "")).endswith("writer.log")]

        # the disk_full / log_resumed topics (once per episode) exist on newer engines:
        # checked where the engine has them, else only reported
        from tui_supervisor.engine.events import Topic

        episodes = "disk_full" in {t.value for t in Topic}
        if episodes:
            with contextlib.suppress(TimeoutError):
                wait_until(lambda: about_writer("log_resumed"), 10, "log_resumed")
        full_n, resumed = about_writer("disk_full"), about_writer("log_resumed")
        r.figures.update({"victim respawned while full": "yes" if respawned else "no",
                          "writer log grew while full": f"{grew_while_full} B",
                          "writer's disk_full / log_resumed / log_write notices":
                              f"{len(full_n)} / {len(resumed)} / "
                              f"{len(about_writer('log_write'))}",
                          "lines dropped (log_resumed)": ", ".join(
                              str((n.get("data") or {}).get("dropped")) for n in resumed)
                          or "-"})
        if episodes:
            r.check("the full disk said once for the writer (disk_full), then log_resumed",
                    len(full_n) == 1 and len(resumed) == 1,
                    f"{len(full_n)} disk_full, {len(resumed)} log_resumed")
        r.check("a SIGKILLed service is respawned while the disk is full", respawned)
        r.check("`status` answers while the disk is full", status.returncode in ANSWERED,
                status.stderr[-300:])
        r.check("the writer's log grows again once space returns", resumed)
        r.check("the log ends in a whole line", bool(tail) and tail[0].startswith(b"line "),
                tail)
        r.check("engine alive", e.proc.poll() is None, e.out[-2000:])
        sub.close()
        _stopped_clean(r, e, set())
    return r


# -- 7 ------------------------------------------------------------------------------------
def hostile(work: Path, full: bool) -> Result:
    """Services that fight back: each is still stopped, with nothing left."""
    huge = 20 << 20
    pidfile = work / "hostile-escapee.pid"
    r = Result("hostile-services", did="services that ignore SIGTERM, close stdout and "
               "stderr, print a 20 MB line, are SIGSTOPped, or fork a child into its own "
               "session; each stopped with `tui-supervisor stop NAME`")
    stop = {"stop": {"signal": "TERM", "timeout": "1s"}}
    services = (service_yaml("deaf", child("sleeper", "ignore-term"), **stop)
                + service_yaml("mute", child("hostile", "close-output"), **stop)
                + service_yaml("shout", child("hostile", f"huge-line={huge}"), **stop)
                + service_yaml("frozen", child("sleeper"), **stop)
                + service_yaml("escapee", child("forker", str(pidfile), "setsid"), **stop))
    with Cleanup() as c:
        e = c.engine(Engine(work, "hostile", services)).start()
        snap = e.wait_ready(60, lambda s: pidfile.exists())
        pids = {s["name"]: s["pid"] for s in snap["services"]}
        shout_log = Path(next(s["log_file"] for s in snap["services"] if s["name"] == "shout"))

        def shouted() -> int:  # rotated at 10 MB: the line is in several files
            return sum(p.stat().st_size for p in shout_log.parent.glob("shout.log*"))

        try:
            wait_until(lambda: shouted() > huge, 60, "the 20 MB line logged")
            logged = True
        except TimeoutError:
            logged = False
        r.check("the 20 MB line is in the log", logged, shouted())
        os.kill(pids["frozen"], signal.SIGSTOP)
        escapee = int(pidfile.read_text())
        time.sleep(0.5)
        now = e.services()
        r.check("the mute service is still running, same pid",
                now["mute"]["state"] == "running" and now["mute"]["pid"] == pids["mute"],
                now["mute"]["state"])
        seen = set(marked(e.config_id))
        took: dict[str, str] = {}
        for name in ("deaf", "mute", "shout", "frozen", "escapee"):
            mine = {p for p, n in marked(e.config_id).items() if n == name}
            res, s = e.cli("stop", name, timeout=120)
            took[name] = f"{s:.1f} s"
            left = sorted(p for p in mine | ({escapee} if name == "escapee" else set())
                          if alive(p))
            st = e.services()[name]
            r.check(f"{name}: stopped, nothing left", res.returncode == 0 and not left
                    and st["state"] == "stopped",
                    f"rc {res.returncode} {res.stderr.strip()[-200:]}, state {st['state']}, "
                    f"left {left}")
        r.figures.update({"stop took": ", ".join(f"{k} {v}" for k, v in took.items()),
                          "shout logs": mib(shouted()),
                          "engine RSS after": mib(rss_bytes(e.pid))})
        _stopped_clean(r, e, seen | {escapee})
    return r


def ghost(work: Path, full: bool) -> Result:
    """A service's grandchild that leaves every trace of it: its own session, its parent
    gone (so it is the engine's, a subreaper), its environment (the marker) wiped."""
    pidfile = work / "ghost.pid"
    r = Result("ghost-child", did="a service double-forks a grandchild into its own session "
               "that wipes its environment block (no marker), then the service is stopped "
               "with `tui-supervisor stop NAME`, and the engine stopped")
    services = service_yaml("haunted", child("hostile", f"ghost={pidfile}"),
                            stop={"signal": "TERM", "timeout": "1s"})
    with Cleanup() as c:
        become_subreaper()
        e = c.engine(Engine(work, "ghost", services)).start()
        e.wait_ready(60, lambda s: pidfile.exists())
        ghost_pid = int(pidfile.read_text())
        c.callback(kill_pids, [ghost_pid])  # it has no marker: cleanup would miss it
        res, _ = e.cli("stop", "haunted", timeout=120)
        with contextlib.suppress(TimeoutError):
            wait_until(lambda: not alive(ghost_pid), 3, "the ghost gone")
        r.check("`stop` stops the grandchild that hid", res.returncode == 0
                and not alive(ghost_pid), f"rc {res.returncode}, pid {ghost_pid} "
                f"{'alive' if alive(ghost_pid) else 'gone'}")
        r.figures["ghost alive after stop"] = "yes" if alive(ghost_pid) else "no"
        _stopped_clean(r, e, {ghost_pid})
    return r


SCENARIOS: dict[str, Callable[[Path, bool], Result]] = {
    "kill-storm": kill_storm,
    "crash-loop": crash_loop,
    "socket-abuse": socket_abuse,
    "engine-kill-restart": engine_restarts,
    "code-reload": code_reloads,
    "disk-full": disk_full,
    "hostile-services": hostile,
    "ghost-child": ghost,
}


def run(name: str, work: Path, full: bool) -> Result:
    """One scenario in `work` (created), timed; a Skip becomes a skipped result, any
    other exception a failed check."""
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    try:
        r = SCENARIOS[name](work, full)
    except Skip as why:
        r = Result(name, skipped=str(why))
    except Exception as err:  # a scenario that broke is a failed one, said where and why
        import traceback

        r = Result(name)
        where = traceback.extract_tb(err.__traceback__)[-1]
        r.check("ran to the end", False,
                f"{type(err).__name__}: {err} (line {where.lineno}: {where.line})")
    r.seconds = time.monotonic() - t0
    return r
