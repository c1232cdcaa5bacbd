"""Benchmarks of the dashboard (issue 5). Run by the `tui_keys` and `tui_tmux` cases of
bench/run.py (as the tagged "supervisor" process), or by hand:

    PYTHONPATH=$PWD /work/venv/bin/python bench/tui_app.py keys [--services 300]
        [--rate 50000] [--seconds 15] [--json OUT]
    PYTHONPATH=$PWD /work/venv/bin/python bench/tui_app.py tmux [--services 50]
        [--seconds 20] [--json OUT]

`keys`: the engine (Supervisor + metrics, sampling every 1 s) and the SupervisorApp in this
process, headless (Pilot, 140x45); N-1 services sleep, one prints RATE lines/s of 100 B.
Over SECONDS: every tick's `app.tick_seconds`, the wall time of each compositor update
(a repaint), and key → repaint for j / k (cursor: detail and log panes switch), `a`
(merged logs on/off) and `o` (sort): from just before the key is posted until the first
frame composed (`App._display`, called with the compositor's update) that painted the
change: the state shows it — the log pane's title and the detail pane name the new service
(j/k), the log pane's title (a), the table's sort key with the rows re-synced (o) — and
the widgets that show it were rendered since (the log pane and the detail pane's header
for j/k, the log pane for a, the table for o: a frame that moved only the cursor is not
the answer to the key). `graphs`: j/k until a frame painted the detail's charts with the
new service's history. Also the CPU
of this process (engine + UI) over the window and whether the UI's store lost any line
(its `lines_total` against the lines the engine emitted after the app subscribed).

`tmux`: `tui-supervisor -c CFG` with N idle services in a detached 140x45 tmux pane (own
socket); once the dashboard shows, the CPU and RSS of the engine+UI process (pid from
`status --json`) over SECONDS, then the same config headless (`run --headless --quiet`)
over the same window for comparison. SIGTERM stops each; nothing is left running.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import CpuMeter, alive  # noqa: E402

MIB = 1 << 20
RATE_WRITER = (  # numbered lines of 100 B, RATE per second, batched every ~1 ms
    "import os, sys, time\n"
    "rate, n, t0 = int(sys.argv[1]), 0, time.monotonic()\n"
    "pad = b'-' * 86 + b'\\n'\n"
    "while True:\n"
    "    due = int((time.monotonic() - t0) * rate)\n"
    "    if due > n:\n"
    "        os.write(1, b''.join(b'%012d ' % i + pad for i in range(n, due)))\n"
    "        n = due\n"
    "    time.sleep(0.001)\n"
)


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    pos = (len(s) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def stats_ms(xs: list[float]) -> dict[str, float]:
    if not xs:
        return {"n": 0}
    return {"n": len(xs), "median_ms": statistics.median(xs) * 1e3,
            "p95_ms": pct(xs, 95) * 1e3, "max_ms": max(xs) * 1e3}


def write_config(root: Path, services: int, rate: int, sample_interval: float) -> Path:
    import yaml

    svcs: dict[str, Any] = {}
    if rate:
        svcs["svc-0"] = {"command": [sys.executable, "-c", RATE_WRITER, str(rate)],
                         "restart": "never", "log": {"max_bytes": 50 * MIB, "backups": 0}}
    for i in range(1 if rate else 0, services):
        svcs[f"svc-{i}"] = {"command": ["sleep", "100000"]}
    cfg = {"version": 1,
           "settings": {"log_dir": str(root / "logs"), "state_dir": str(root / "state"),
                        "runtime_dir": str(root / "run"), "sample_interval": sample_interval},
           "services": svcs}
    path = root / "tui-supervisor.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


# -- keys: engine + app in this process, headless -----------------------------------
async def run_keys(services: int, rate: int, seconds: float, root: Path,
                   min_presses: int = 60) -> dict[str, Any]:
    from textual import events

    from tui_supervisor.config.loader import load_config
    from tui_supervisor.engine.events import LogLines
    from tui_supervisor.engine.supervisor import Supervisor
    from tui_supervisor.metrics import attach_metrics
    from tui_supervisor.tui.app import SupervisorApp
    from tui_supervisor.tui.rows import SORT_KEYS

    sup = Supervisor(load_config(write_config(root, services, rate, 1.0)))
    attach_metrics(sup)
    await sup.open()
    engine_lines = 0
    dropped = []

    def count(ev: Any) -> None:
        nonlocal engine_lines
        if isinstance(ev, LogLines):
            engine_lines += ev.count
        elif getattr(ev, "message", "").startswith("subscriber too slow"):
            dropped.append(ev.message)

    orig_subscribe = sup.subscribe

    async def subscribe(**kw: Any) -> Any:  # count from the very moment the app subscribes
        sup.bus.add_listener(count)
        return await orig_subscribe(**kw)

    sup.subscribe = subscribe  # type: ignore[method-assign]
    app = SupervisorApp(sup, mode="hosted")
    ticks: list[float] = []
    frames: list[float] = []
    frame_times: list[float] = []
    pending: dict[str, Any] = {}

    orig_tick = app._tick

    def tick() -> None:
        orig_tick()
        if pending.get("measuring"):
            ticks.append(app.tick_seconds)

    app._tick = tick  # type: ignore[method-assign]
    orig_display = app._display

    def display(screen: Any, renderable: Any) -> None:
        now = time.perf_counter()
        orig_display(screen, renderable)
        if renderable is None:
            return
        frame_times.append(now)
        cond = pending.get("cond")
        if cond is not None and "done" not in pending and cond():
            pending["done"] = now
        if pending.get("graphs") is not None and "graphs_done" not in pending \
                and pending["graphs"]():
            pending["graphs_done"] = now

    app._display = display  # type: ignore[method-assign]
    from textual.widget import Widget
    orig_render_lines = Widget.render_lines
    painted: dict[str, float] = {}
    """widget id -> when it was last rendered while showing the change (`shows`)"""
    shows: dict[str, Any] = {}

    def render_lines(self: Any, crop: Any) -> Any:
        shown = shows.get(self.id)
        if shown is not None and shown():
            painted[self.id] = time.perf_counter()
        return orig_render_lines(self, crop)

    Widget.render_lines = render_lines  # type: ignore[method-assign]
    presses: dict[str, list[float]] = {"j": [], "k": [], "a": [], "o": []}
    graphs: list[float] = []
    timeouts = 0
    sort_cycle: list[str | None] = [None, *SORT_KEYS]

    def post_key(key: str) -> None:
        """What the terminal driver does when a key arrives (Pilot.press also waits for
        the app to be idle, which a flood of lines never is)."""
        ev = events.Key(key, key)
        ev.set_sender(app)
        app._driver.send_message(ev)  # type: ignore[union-attr]
    try:
        async with app.run_test(size=(140, 45)) as pilot:
            t_up = time.monotonic() + 60
            while app.table.row_count < services or app.store.counts_by_state().get(
                    "running", 0) < services:
                if time.monotonic() > t_up:
                    raise RuntimeError(f"only {app.table.row_count} rows, "
                                       f"{app.store.counts_by_state()}")
                await asyncio.sleep(0.1)
            await asyncio.sleep(3.0)  # settle: sampler primed, backfill done
            comp = app.screen._compositor
            orig_render = comp.render_update

            def render_update(*a: Any, **kw: Any) -> Any:
                t0 = time.perf_counter()
                try:
                    return orig_render(*a, **kw)
                finally:
                    if pending.get("measuring"):
                        frames.append(time.perf_counter() - t0)

            comp.render_update = render_update
            n_frames0 = len(frame_times)
            pending["measuring"] = True
            meter = CpuMeter(os.getpid())
            t_end = time.monotonic() + seconds
            plan = ["j", "a", "a", "j", "o", "k", "j", "a", "a", "k"]
            i = 0
            while time.monotonic() < t_end or i < min_presses:
                await asyncio.sleep(random.uniform(0.1, 0.25))  # spread over tick phases
                key = plan[i % len(plan)]
                i += 1
                table = app.table
                order = [str(r.key.value) for r in table.ordered_rows]
                row = table.cursor_row
                graph_cond = None
                if key in "jk":
                    nxt = min(row + 1, len(order) - 1) if key == "j" else max(row - 1, 0)
                    if nxt == row:
                        key, nxt = ("k", row - 1) if key == "j" else ("j", row + 1)
                    name = order[nxt]
                    title = f"logs · {name}"

                    def logs_shown(title: str = title) -> bool:
                        return str(app.logs.border_title) == title

                    def detail_shown(name: str = name) -> bool:
                        return app.detail.service == name

                    def charts_shown(name: str = name) -> bool:
                        return app.detail.service == name and app.detail.history is not None

                    shows.update({"logs": logs_shown, "detail-header": detail_shown,
                                  "detail-graphs": charts_shown})

                    def cond() -> bool:
                        return "logs" in painted and "detail-header" in painted

                    def graph_cond() -> bool:
                        return "detail-graphs" in painted
                elif key == "a":
                    title = ("logs · all services" if not app.merged_logs
                             else f"logs · {table.selected}")

                    def logs_titled(title: str = title) -> bool:
                        return str(app.logs.border_title) == title

                    shows.update({"logs": logs_titled})

                    def cond() -> bool:
                        return "logs" in painted
                else:
                    want = sort_cycle[(sort_cycle.index(table.sort_key) + 1) % len(sort_cycle)]

                    def sorted_(want: str | None = want) -> bool:
                        return app.table.sort_key == want and app.table._order == [
                            str(r.key.value) for r in app.table.ordered_rows]

                    shows.update({"services": sorted_})

                    def cond() -> bool:
                        return "services" in painted
                pending.clear()
                painted.clear()
                pending.update(measuring=True, cond=cond, graphs=graph_cond)
                t0 = time.perf_counter()
                post_key(key)
                deadline = time.monotonic() + 5
                while "done" not in pending or (graph_cond and "graphs_done" not in pending):
                    if time.monotonic() > deadline:
                        break
                    await asyncio.sleep(0.002)
                shows.clear()
                if "done" not in pending:
                    timeouts += 1
                    continue
                presses[key].append(pending["done"] - t0)
                if "graphs_done" in pending:
                    graphs.append(pending["graphs_done"] - t0)
            pending["measuring"] = False
            usage = meter.stop()
            n_frames = len(frame_times) - n_frames0
            # drain: stop the writer, wait for the store to have everything
            await sup.stop(["svc-0"]) if rate else None
            for _ in range(100):
                await asyncio.sleep(0.1)
                if app.store.lines_total == engine_lines:
                    break
            store_lines = app.store.lines_total
            await pilot.pause()
    finally:
        Widget.render_lines = orig_render_lines  # type: ignore[method-assign]
        await sup.close()
    every = [x for xs in presses.values() for x in xs]
    return {
        "services": services, "rate": rate, "seconds": usage.wall_s, "size": "140x45",
        "tick": stats_ms(ticks), "ticks": len(ticks),
        "repaint": stats_ms(frames), "frames_per_s": n_frames / usage.wall_s,
        "key": stats_ms(every), "timeouts": timeouts,
        **{f"key_{k}": stats_ms(v) for k, v in presses.items()},
        "graphs": stats_ms(graphs),
        "cpu_pct": usage.cpu_pct, "cpu_precise": usage.precise, "rss_mib": usage.rss / MIB,
        "engine_lines": engine_lines, "store_lines": store_lines,
        "lines_lost": engine_lines - store_lines, "stream_dropped": bool(dropped),
        "samples": {k: [round(x * 1e3, 2) for x in v] for k, v in presses.items()},
    }


# -- tmux: the real dashboard in a terminal ------------------------------------------
def _ours() -> list[str]:
    return [sys.executable, "-m", "tui_supervisor"]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}


def _status(cfg: Path) -> dict[str, Any] | None:
    out = subprocess.run([*_ours(), "status", "--json", "-c", str(cfg)], capture_output=True,
                         text=True, env=_env(), timeout=30, check=False)
    if out.returncode not in (0, 3):  # (3: it answered; not every service is up)
        return None
    with contextlib.suppress(ValueError):
        return json.loads(out.stdout)
    return None


def _wait_up(cfg: Path, n: int, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        snap = _status(cfg)
        if snap and sum(s["state"] == "running" for s in snap["services"]) == n:
            return snap
        if time.monotonic() > deadline:
            raise RuntimeError(f"{n} services not running after {timeout} s")
        time.sleep(0.3)


def _stop(pid: int, others: list[int], timeout: float = 30) -> bool:
    """SIGTERM the engine; True when it and every service pid is gone in time."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(alive(p) for p in (pid, *others)):
        if time.monotonic() > deadline:
            for p in (pid, *others):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p, signal.SIGKILL)
            return False
        time.sleep(0.05)
    return True


def _measure(pid: int, seconds: float) -> dict[str, Any]:
    meter = CpuMeter(pid)
    time.sleep(seconds)
    u = meter.stop()
    return {"cpu_pct": u.cpu_pct, "cpu_precise": u.precise, "rss_mib": u.rss / MIB,
            "uss_mib": u.uss / MIB}


def run_tmux(services: int, seconds: float, settle: float, root: Path) -> dict[str, Any]:
    if shutil.which("tmux") is None:
        return {"skipped": "tmux is not installed"}
    out: dict[str, Any] = {"services": services, "seconds": seconds, "size": "140x45"}
    cfg = write_config(root, services, 0, 1.0)
    sock = root / "tmux.sock"
    tmux = ["tmux", "-S", str(sock)]
    cmd = " ".join([*_ours(), "-c", str(cfg)])
    env = {**_env(), "TERM": "xterm-256color"}
    subprocess.run([*tmux, "-f", "/dev/null", "new-session", "-d", "-x", "140", "-y", "45",
                    cmd], env=env, check=True, timeout=30)
    server = int(subprocess.run([*tmux, "display", "-p", "#{pid}"], capture_output=True,
                                text=True, check=True).stdout)
    try:
        snap = _wait_up(cfg, services)
        pid = snap["engine"]["pid"]
        deadline = time.monotonic() + 30
        while "svc-0" not in subprocess.run([*tmux, "capture-pane", "-p"], capture_output=True,
                                            text=True, check=False).stdout:
            if time.monotonic() > deadline:
                raise RuntimeError("the dashboard never showed in the tmux pane")
            time.sleep(0.2)
        time.sleep(settle)
        out["tui"] = _measure(pid, seconds)
        out["tui"]["pane_shows"] = True
        kids = [s["pid"] for s in _status(cfg)["services"] if s["pid"]]  # type: ignore[index]
        out["tui"]["stopped_cleanly"] = _stop(pid, kids)
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True, check=False)
        deadline = time.monotonic() + 10
        while alive(server) and time.monotonic() < deadline:
            time.sleep(0.05)
    # the same config headless, same window: what the UI adds
    for sub in ("state", "run", "logs"):
        shutil.rmtree(root / sub, ignore_errors=True)
    p = subprocess.Popen([*_ours(), "run", "--headless", "--quiet", "-c", str(cfg)],
                         env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    try:
        snap = _wait_up(cfg, services)
        time.sleep(settle)
        out["headless"] = _measure(p.pid, seconds)
        kids = [s["pid"] for s in snap["services"] if s["pid"]]
        out["headless"]["stopped_cleanly"] = _stop(p.pid, kids)
    finally:
        if p.poll() is None:
            p.kill()
        p.wait(10)
    out["ui_cpu_pct"] = out["tui"]["cpu_pct"] - out["headless"]["cpu_pct"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=("keys", "tmux"))
    ap.add_argument("--services", type=int)
    ap.add_argument("--rate", type=int, default=50_000)
    ap.add_argument("--seconds", type=float)
    ap.add_argument("--settle", type=float, default=3.0)
    ap.add_argument("--presses", type=int, default=60, help="keys: at least this many")
    ap.add_argument("--json", type=Path, help="write the result here (else stdout)")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="tuisup-tuibench-"))
    try:
        if args.mode == "keys":
            r = asyncio.run(run_keys(args.services or 300, args.rate, args.seconds or 15.0,
                                     root, args.presses))
        else:
            r = run_tmux(args.services or 50, args.seconds or 20.0, args.settle, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    text = json.dumps(r, indent=1)
    if args.json:
        args.json.write_text(text + "\n")
    else:
        print(text)


if __name__ == "__main__":
    main()
