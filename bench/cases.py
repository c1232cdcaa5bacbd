"""The benchmarks. Each takes a fresh (not yet started) driver and returns plain numbers;
the caller cleans up every process (the driver's context manager) whatever happens."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import (
    BenchError,
    CpuMeter,
    Driver,
    LineFifo,
    Program,
    release_fifo,
    wait_gone,
)

WRITER = Path(__file__).resolve().parent / "writer.py"
MIB = 1 << 20


@dataclass(frozen=True)
class Params:
    kills_ours: int = 200
    kills_supervisord: int = 60
    busy_services: int = 200
    busy_kills_ours: int = 100
    busy_kills_supervisord: int = 20
    idle_services: int = 100
    idle_settle_s: float = 2.0
    idle_measure_s: float = 10.0
    startstop_services: int = 200
    startstop_repeats: int = 5
    big_bytes: int = 200 * MIB
    lines_bytes: int = 50_000_000
    log_repeats: int = 7
    log_pin: str = "split"
    crash_measure_s: float = 10.0
    status_services: int = 200
    status_calls: int = 20
    stream_rate: int = 50_000
    stream_s: float = 5.0
    sampler_services: int = 200
    sampler_settle_s: float = 3.0
    sampler_measure_s: float = 20.0
    tui_services: int = 300
    tui_rate: int = 50_000
    tui_s: float = 15.0
    tui_presses: int = 60
    tui_tmux_services: int = 50
    tui_tmux_s: float = 20.0
    reloads: int = 8
    reload_services: int = 5


FULL = Params()
QUICK = Params(kills_ours=10, kills_supervisord=2, busy_services=10, busy_kills_ours=5,
               busy_kills_supervisord=2, idle_services=5, idle_settle_s=0.5,
               idle_measure_s=1.0, startstop_services=10, startstop_repeats=1,
               big_bytes=16 * MIB, lines_bytes=2_000_000, log_repeats=1, crash_measure_s=1.0,
               status_services=10, status_calls=3, stream_s=1.0, sampler_services=10,
               sampler_settle_s=1.5, sampler_measure_s=2.0, tui_services=20, tui_s=2.0,
               tui_presses=10, tui_tmux_services=5, tui_tmux_s=2.0,
               reloads=2, reload_services=2)


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    s = sorted(values)
    pos = (len(s) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def _starter(fifo: Path) -> tuple[str, ...]:
    """A service that reports its pid on `fifo`, then becomes a long sleep (same pid)."""
    return ("/bin/sh", "-c", f"echo $$ > {fifo}; exec sleep 100000")


def _start_services(d: Driver, n: int, timeout: float = 60.0) -> tuple[LineFifo, list[int]]:
    fifo = d.fifo("starts.fifo")
    d.start([Program(f"s{i}", _starter(fifo.path)) for i in range(n)])
    pids = [int(x) for x in fifo.read_lines(n, timeout)]
    d.check_running()
    return fifo, pids


# -- 1. respawn latency -----------------------------------------------------------------
def _respawn(d: Driver, kills: int, others: int) -> dict[str, Any]:
    """SIGKILL the service, time until its replacement writes its pid (kill -> first
    write); the next kill waits until the supervisor considers the replacement running.
    `others` more services sleep meanwhile."""
    fifo = d.fifo("starts.fifo")
    d.start([Program("s0", _starter(fifo.path)),
             *(Program(f"x{i}", ("sleep", "100000")) for i in range(others))])
    pid = int(fifo.read_line(timeout=60))
    time.sleep(0.5 if others else 0)
    d.check_running()
    samples = []
    for _ in range(kills):
        time.sleep(d.settle_s + random.uniform(0, 0.05))  # spread over timer phases
        t0 = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        line = fifo.read_line(timeout=30)
        samples.append(time.monotonic() - t0)
        new = int(line)
        if new == pid:
            raise BenchError("the same pid reported twice")
        pid = new
    d.check_running()
    return {
        "kills": kills,
        "services": others + 1,
        "p50_ms": percentile(samples, 50) * 1e3,
        "p99_ms": percentile(samples, 99) * 1e3,
        "max_ms": max(samples) * 1e3,
        "min_ms": min(samples) * 1e3,
        "samples_ms": [round(s * 1e3, 3) for s in samples],
    }


def respawn(d: Driver, p: Params) -> dict[str, Any]:
    return _respawn(d, p.kills_ours if d.side == "ours" else p.kills_supervisord, 0)


def respawn_busy(d: Driver, p: Params) -> dict[str, Any]:
    kills = p.busy_kills_ours if d.side == "ours" else p.busy_kills_supervisord
    return _respawn(d, kills, p.busy_services - 1)


# -- 2. idle cost -------------------------------------------------------------------------
def idle(d: Driver, p: Params) -> dict[str, Any]:
    """CPU and memory of the supervisor process with N sleeping services."""
    _start_services(d, p.idle_services)
    time.sleep(p.idle_settle_s)
    meter = CpuMeter(d.pid)
    time.sleep(p.idle_measure_s)
    u = meter.stop()
    d.check_running()
    return {"services": p.idle_services, "cpu_pct": u.cpu_pct, "cpu_s": u.cpu_s,
            "cpu_precise": u.precise, "wall_s": u.wall_s, "rss_mib": u.rss / MIB,
            "uss_mib": u.uss / MIB}


# -- 3. start-all / stop-all -----------------------------------------------------------
def _start_stop_once(d: Driver, n: int) -> tuple[float, float, int | None]:
    fifo = d.fifo("starts.fifo")
    argv = d.prepare([Program(f"s{i}", _starter(fifo.path)) for i in range(n)])
    t0 = time.monotonic()
    d.launch(argv)
    pids = [int(x) for x in fifo.read_lines(n, timeout=120)]
    t_started = time.monotonic() - t0
    if len(set(pids)) != n:
        raise BenchError(f"{n - len(set(pids))} services started twice")
    time.sleep(d.settle_s + 0.5)  # let every service be `running` before stopping
    d.check_running()
    t1 = time.monotonic()
    d.terminate()
    code = d.wait(timeout=60)
    t_gone = wait_gone(pids, timeout=30)  # after the exit: >= the exit time
    return t_started, t_gone - t1, code


def start_stop(d: Driver, p: Params) -> dict[str, Any]:
    """Start = supervisor launched -> all N services wrote their pid. Stop = SIGTERM to
    the supervisor -> it has exited and none of the N service pids is alive."""
    starts, stops, codes = [], [], []
    for i in range(p.startstop_repeats):
        if i:
            d.cleanup()
            for sub in ("state", "run", "logs"):  # a fresh start every time
                shutil.rmtree(d.workdir / sub, ignore_errors=True)
        t_start, t_stop, code = _start_stop_once(d, p.startstop_services)
        starts.append(t_start)
        stops.append(t_stop)
        codes.append(code)
    return {"services": p.startstop_services, "repeats": p.startstop_repeats,
            "start_s": percentile(starts, 50), "stop_s": percentile(stops, 50),
            "start_all_s": starts, "stop_all_s": stops, "exit_codes": codes}


# -- 4. log throughput ------------------------------------------------------------------
def _writer(d: Driver, i: int, mode: str, total: int, cpu: int | None
            ) -> tuple[Program, Path, Path]:
    go, times = d.workdir / f"go{i}.fifo", d.workdir / f"writer{i}.times"
    os.mkfifo(go, 0o600)
    argv = (sys.executable, str(WRITER), mode, str(total), str(go), str(times),
            *(() if cpu is None else (str(cpu),)))
    return Program(f"writer{i}", argv, autorestart=False), go, times


def _wait_size(d: Driver, log: Path, total: int, timeout: float = 300) -> float:
    """Poll the log's size every 2 ms until it holds `total` bytes; returns that time."""
    deadline = time.monotonic() + timeout
    size = 0
    while True:
        try:
            size = log.stat().st_size
        except FileNotFoundError:
            size = 0
        if size >= total:
            return time.monotonic()
        if time.monotonic() > deadline:
            raise BenchError(f"{log.name} has {size} of {total} bytes after {timeout} s")
        time.sleep(0.002)
        d.check_running()


def _verify(log: Path, mode: str, total: int) -> dict[str, Any]:
    time.sleep(0.1)  # anything more than expected would show now
    data = log.read_bytes()
    lines = data.count(b"\n")
    expect_lines = total // (1024 if mode == "chunks" else 100)
    ok = len(data) == total and lines == expect_lines
    if ok and mode == "lines":
        seqs = [line[:9] for line in data.split(b"\n")[:-1]]
        ok = all(s == b"%09d" % i for i, s in enumerate(seqs))
    log.unlink()  # the logs are large: do not keep them around
    return {"bytes": len(data), "lines": lines, "lines_lost": max(0, expect_lines - lines),
            "expected_lines": expect_lines, "intact": ok}


def _throughput(d: Driver, mode: str, total: int, repeats: int, pin: str) -> dict[str, Any]:
    """`repeats` writers under one supervisor, released one after the other. pin="split":
    the supervisor on CPU 0, the writer on CPU 1; "same": both on CPU 0; "none"."""
    cpu = {"split": 1, "same": 0}.get(pin)
    writers = [_writer(d, i, mode, total, cpu) for i in range(repeats)]
    d.start([w[0] for w in writers])
    if cpu is not None:
        d.pin({0})
    time.sleep(d.settle_s + 0.5)  # supervisor started and idle before the first byte
    d.check_running()
    runs = []
    for prog, go, times in writers:
        os.sync()  # start each run with no dirty pages from the last (writeback skews it)
        meter = CpuMeter(d.pid)
        release_fifo(go)
        t_done = _wait_size(d, d.log_path(prog.name), total)
        usage = meter.stop()
        stamps = dict(line.split() for line in times.read_text().splitlines())
        elapsed = t_done - float(stamps["start"])
        runs.append({"elapsed_s": elapsed, "mb_s": total / elapsed / 1e6,
                     "supervisor_cpu_s": usage.cpu_s,
                     **_verify(d.log_path(prog.name), mode, total)})
    mid = sorted(runs, key=lambda r: r["mb_s"])[len(runs) // 2]
    return {
        "expected_bytes": total, "repeats": repeats, "mb_s": mid["mb_s"],
        "mb_s_best": max(r["mb_s"] for r in runs),
        "cpu_s_min": min(r["supervisor_cpu_s"] for r in runs),
        "supervisor_cpu_s": mid["supervisor_cpu_s"], "expected_lines": mid["expected_lines"],
        "lines_lost": max(r["lines_lost"] for r in runs),
        "intact": all(r["intact"] for r in runs), "pin": pin, "runs": runs,
    }


def logs_big(d: Driver, p: Params) -> dict[str, Any]:
    return _throughput(d, "chunks", p.big_bytes, p.log_repeats, p.log_pin)


def logs_lines(d: Driver, p: Params) -> dict[str, Any]:
    return _throughput(d, "lines", p.lines_bytes, p.log_repeats, p.log_pin)


# -- 5. crash loop ----------------------------------------------------------------------
def crash_loop(d: Driver, p: Params) -> dict[str, Any]:
    """A service that exits 1 at once: restarts/s and supervisor CPU over the window."""
    starts = d.workdir / "crash.starts"
    starts.touch()
    d.start([Program("crash", ("/bin/sh", "-c", f"echo x >> {starts}; exit 1"))])
    deadline = time.monotonic() + 30
    while starts.stat().st_size == 0:
        if time.monotonic() > deadline:
            raise BenchError("the crashing service never started")
        time.sleep(0.01)
    d.check_running()
    n0 = starts.stat().st_size // 2
    meter = CpuMeter(d.pid)
    time.sleep(p.crash_measure_s)
    n1 = starts.stat().st_size // 2
    u = meter.stop()
    d.check_running()
    return {"restarts": n1 - n0, "restarts_per_s": (n1 - n0) / u.wall_s,
            "cpu_pct": u.cpu_pct, "wall_s": u.wall_s}


# -- 6. control: status round trip, event stream --------------------------------------
def status(d: Driver, p: Params) -> dict[str, Any]:
    """`status` as a user runs it (a new client process each time) with N services up:
    wall time per call, and every service must be in the answer."""
    _start_services(d, p.status_services)
    time.sleep(d.settle_s + 0.5)
    times = []
    for _ in range(p.status_calls):
        t0 = time.monotonic()
        out = subprocess.run(d.status_command(), capture_output=True, text=True, timeout=60,
                             check=False)
        times.append(time.monotonic() - t0)
        listed = out.stdout.count('"name": "s') if d.side == "ours" else \
            sum(1 for line in out.stdout.splitlines() if line.startswith("s"))
        if listed != p.status_services:
            raise BenchError(f"status listed {listed} of {p.status_services} services: "
                             f"{out.stderr.strip()[:200]}")
    d.check_running()
    return {"services": p.status_services, "calls": p.status_calls,
            "p50_ms": percentile(times, 50) * 1000, "p95_ms": percentile(times, 95) * 1000}


_RATE_WRITER = (
    "import os, sys, time\n"
    "rate, n, t0 = int(sys.argv[1]), 0, time.monotonic()\n"
    "while True:\n"
    "    due = int((time.monotonic() - t0) * rate)\n"
    "    if due > n:\n"
    "        os.write(1, b''.join(b'%012d ----------------------------------------\\n' % i\n"
    "                             for i in range(n, due)))\n"
    "        n = due\n"
    "    time.sleep(0.001)\n"
)


def stream(d: Driver, p: Params) -> dict[str, Any]:
    """A service prints `stream_rate` numbered lines/s; a client subscribed over the
    control socket counts the lines and events it receives and checks none is missing.
    supervisord has no event stream with the output (only `tail -f` of a file)."""
    if d.side != "ours":
        return {"note": "no subscription API"}
    import asyncio

    from tui_supervisor.control.client import RemoteSupervisor

    d.start([Program("chatty", (sys.executable, "-c", _RATE_WRITER, str(p.stream_rate)))])
    time.sleep(1.0)
    d.check_running()

    async def measure() -> dict[str, Any]:
        remote = RemoteSupervisor(d.workdir / "run")
        events = lines = 0
        first = last = None
        gaps = 0
        async with remote:
            it = await remote.subscribe(logs=True)
            t_end = None
            async for ev in it:
                if ev.get("kind") != "log":
                    continue
                now = time.monotonic()
                if t_end is None:
                    t_end = now + p.stream_s
                if now > t_end:
                    break
                events += 1
                for text in ev["lines"]:
                    seq = int(text[:12])
                    if last is not None and seq != last + 1:
                        gaps += 1
                    first = seq if first is None else first
                    last = seq
                    lines += 1
            await it.aclose()
        return {"events": events, "lines": lines, "gaps": gaps,
                "lines_expected": (last - first + 1) if first is not None else 0}

    r = asyncio.run(measure())
    d.check_running()
    return {"rate": p.stream_rate, "seconds": p.stream_s,
            "lines_per_s": r["lines"] / p.stream_s, "events_per_s": r["events"] / p.stream_s,
            "lines_missing": r["lines_expected"] - r["lines"], "gaps": r["gaps"]}


# -- 7. resource sampler cost (ours only) ----------------------------------------------
def _tree_starter(fifo: Path) -> tuple[str, ...]:
    """A service of 3 processes: the shell (reports its pid) and two sleeps it waits for."""
    return ("/bin/sh", "-c", f"echo $$ > {fifo}; sleep 100000 & sleep 100000 & wait")


def _engine_snapshot(d: Driver) -> tuple[dict[str, Any], list[float | None]]:
    """The engine's snapshot and its loop-lag history (worst lag per sampling tick)."""
    import asyncio

    from tui_supervisor.control.client import RemoteSupervisor

    async def get() -> tuple[dict[str, Any], list[float | None]]:
        async with RemoteSupervisor(d.workdir / "run") as remote:
            h = await remote.query("resources", "history",
                                   {"service": None, "series": ["loop_lag"]})
            return await remote.snapshot(), h["series"]["loop_lag"]

    return asyncio.run(get())


def _scan_costs(roots: list[int], repeats: int = 10) -> dict[str, float]:
    """Median wall time of one sampling pass over the trees of `roots`, run here in the
    bench: the engine's Scanner (one /proc/PID/stat read per process) against the same
    figures from cached, primed psutil.Process objects (ppid map from process_iter)."""
    import psutil

    from tui_supervisor.metrics.sampler import Job, Scanner

    job = Job(tuple((f"s{i}", (pid,)) for i, pid in enumerate(roots)), {})
    scanner = Scanner()
    cache: dict[int, psutil.Process] = {}

    def with_psutil() -> int:
        kids: dict[int, list[int]] = {}
        for proc in psutil.process_iter(["ppid"]):
            kids.setdefault(proc.info["ppid"], []).append(proc.pid)
        n = 0
        for root in roots:
            todo = [root]
            while todo:
                pid = todo.pop()
                todo.extend(kids.get(pid, ()))
                try:
                    proc = cache.get(pid)
                    if proc is None:
                        proc = cache[pid] = psutil.Process(pid)
                        proc.cpu_percent()
                    with proc.oneshot():
                        proc.cpu_percent()
                        proc.cpu_times()
                        proc.memory_info()
                        proc.num_fds()
                        proc.num_threads()
                    n += 1
                except psutil.Error:
                    pass
        return n

    out = {}
    for name, fn in (("direct", lambda: scanner.scan(job)), ("psutil", with_psutil)):
        fn()  # primes the caches
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        out[f"scan_{name}_ms"] = percentile(times, 50) * 1e3
    return out


def sampler(d: Driver, p: Params) -> dict[str, Any]:
    """N services of 3 processes each: the engine's CPU over the same window with
    `sample_interval: 0` and then `1s` (two launches in the same run); the difference is
    the sampler's cost. The loop lag and the sampler's own wall time per tick come from
    the engine's snapshot at the end of the sampled window."""
    if d.side != "ours":
        return {"note": "tui-supervisor's own sampler"}
    out: dict[str, Any] = {"services": p.sampler_services, "procs_per_service": 3,
                           "measure_s": p.sampler_measure_s}
    for interval in (0.0, 1.0):
        if interval:
            d.terminate()
            d.wait(timeout=60)
            d.cleanup()
            for sub in ("state", "run", "logs"):
                shutil.rmtree(d.workdir / sub, ignore_errors=True)
        d.sample_interval = interval  # type: ignore[attr-defined]
        fifo = d.fifo(f"starts{interval:g}.fifo")
        d.start([Program(f"s{i}", _tree_starter(fifo.path)) for i in range(p.sampler_services)])
        fifo.read_lines(p.sampler_services, 120)
        time.sleep(p.sampler_settle_s)  # every tree complete, the sampler primed
        d.check_running()
        meter = CpuMeter(d.pid)
        time.sleep(p.sampler_measure_s)
        u = meter.stop()
        d.check_running()
        key = "on" if interval else "off"
        out[f"cpu_pct_{key}"] = u.cpu_pct
        out[f"cpu_precise_{key}"] = u.precise
        out[f"rss_mib_{key}"] = u.rss / MIB
        if interval:
            snap, lags = _engine_snapshot(d)
            window = [v for v in lags[-int(p.sampler_measure_s):] if v is not None]
            out["loop_lag_max_window_ms"] = max(window) * 1e3 if window else None
            res = snap["engine"]["resources"]
            out["procs_sampled"] = sum(s["resources"].get("procs", 0)
                                       for s in snap["services"])
            out["loop_lag_p99_ms"] = res["loop_lag_p99"] * 1e3
            out["loop_lag_max_ms"] = res["loop_lag_max"] * 1e3
            out["sample_ms"] = res["sample_seconds"] * 1e3
            out["engine_cpu_pct_self_reported"] = res["cpu_percent"]
            out.update(_scan_costs([s["pid"] for s in snap["services"] if s["pid"]]))
    out["sampler_cpu_pct"] = out["cpu_pct_on"] - out["cpu_pct_off"]
    return out


# -- 8. the dashboard (ours only) ------------------------------------------------------
TUI_APP = Path(__file__).resolve().parent / "tui_app.py"


def _tui_app(d: Driver, args: list[str], timeout: float) -> dict[str, Any]:
    """bench/tui_app.py as the tagged "supervisor" process (every engine and service it
    starts carries the tag); its JSON result."""
    out = d.workdir / "tui.json"
    d.launch([sys.executable, str(TUI_APP), *args, "--json", str(out)])
    code = d.wait(timeout=timeout)
    if code != 0 or not out.exists():
        raise BenchError(f"tui_app.py {args[0]} exited with {code}: {d.output_tail()}")
    import json

    return json.loads(out.read_text())


def tui_keys(d: Driver, p: Params) -> dict[str, Any]:
    """Engine + dashboard in one process, headless (Pilot) at 140x45: tick cost, repaint
    cost and key → repaint with N services, one printing `tui_rate` lines/s."""
    if d.side != "ours":
        return {"note": "no dashboard"}
    return _tui_app(d, ["keys", "--services", str(p.tui_services), "--rate", str(p.tui_rate),
                        "--seconds", str(p.tui_s), "--presses", str(p.tui_presses)],
                    timeout=p.tui_s + 240)


def tui_tmux(d: Driver, p: Params) -> dict[str, Any]:
    """`tui-supervisor -c CFG` in a 140x45 tmux pane, N idle services: CPU and RSS of the
    engine+UI process, then the same config headless."""
    if d.side != "ours":
        return {"note": "no dashboard"}
    return _tui_app(d, ["tmux", "--services", str(p.tui_tmux_services),
                        "--seconds", str(p.tui_tmux_s)], timeout=2 * p.tui_tmux_s + 240)


# -- 9. code reload ------------------------------------------------------------------
RELOAD_APP = Path(__file__).resolve().parent / "reload.py"


def reload(d: Driver, p: Params) -> dict[str, Any]:
    """Ours: bench/reload.py (a save under the dashboard on a pty -> the new UI's first full
    frame; SIGUSR2 to a headless engine -> reloaded; pipes unread; every line once; no
    restart). supervisord has no code reload: what `supervisorctl reload` (re-read
    the config, the nearest thing it has) does to N running services."""
    if d.side == "ours":
        out = d.workdir / "reload.json"
        d.launch([sys.executable, str(RELOAD_APP), "all", "--reloads", str(p.reloads),
                  "--json", str(out)])
        code = d.wait(timeout=60 + 20 * p.reloads)
        if code != 0 or not out.exists():
            raise BenchError(f"reload.py exited with {code}: {d.output_tail()}")
        import json

        return json.loads(out.read_text())
    fifo, pids = _start_services(d, p.reload_services)
    time.sleep(d.settle_s + 0.5)
    d.check_running()
    ctl = d.status_command()[:-1]  # supervisorctl -c CONF
    t0 = time.monotonic()
    r = subprocess.run([*ctl, "reload"], capture_output=True, text=True, timeout=60,
                       check=False)
    if r.returncode != 0:
        raise BenchError(f"supervisorctl reload: {r.stdout.strip()} {r.stderr.strip()}")
    new = [int(x) for x in fifo.read_lines(p.reload_services, timeout=60)]
    took = time.monotonic() - t0
    wait_gone(pids, timeout=30)
    d.check_running()
    return {"services": p.reload_services, "restarted": len(set(new) - set(pids)),
            "supervisor_pid_unchanged": d.popen is not None and d.popen.poll() is None,
            "reload_s": took}


CASES: dict[str, Callable[[Driver, Params], dict[str, Any]]] = {
    "respawn": respawn,
    "respawn_busy": respawn_busy,
    "idle": idle,
    "start_stop": start_stop,
    "logs_big": logs_big,
    "logs_lines": logs_lines,
    "crash_loop": crash_loop,
    "status": status,
    "stream": stream,
    "sampler": sampler,
    "tui_keys": tui_keys,
    "tui_tmux": tui_tmux,
    "reload": reload,
}
