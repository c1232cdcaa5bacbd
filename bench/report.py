"""BENCHMARKS.md from a results dict (bench/results/latest.json)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Side = dict[str, Any]


@dataclass(frozen=True)
class Row:
    case: str
    label: str
    """Format string over the case's parameters (e.g. {services})."""
    key: str
    fmt: Callable[[Any], str]
    target: str = "—"
    check: Callable[[Any, Any], bool] | None = None
    """(ours, supervisord) -> target met."""
    ratio: bool = True


def _ms(v: float) -> str:
    return f"{v:.1f} ms" if v < 100 else f"{v:.0f} ms"


def _s(v: float) -> str:
    return f"{v:.3f} s"


def _pct(v: float) -> str:
    return f"{v:.3f} %" if v < 1 else f"{v:.1f} %"


def _mib(v: float) -> str:
    return f"{v:.1f} MiB"


def _mbs(v: float) -> str:
    return f"{v:.0f} MB/s"


def _per_s(v: float) -> str:
    return f"{v:.1f} /s"


def _cpu_s(v: float) -> str:
    return f"{v:.2f} s"


def _int(v: Any) -> str:
    return str(v)


def _yes_no(v: Any) -> str:
    return "yes" if v else "**NO**"


ROWS = [
    Row("respawn", "Respawn latency p50 (SIGKILL → replacement's first write; {kills} kills)",
        "p50_ms", _ms, "≤ 3 ms", lambda o, s: o <= 3),
    Row("respawn", "Respawn latency p99", "p99_ms", _ms, "≤ 10 ms", lambda o, s: o <= 10),
    Row("respawn", "Respawn latency max", "max_ms", _ms),
    Row("respawn_busy", "Respawn latency p50, one of {services} services ({kills} kills)",
        "p50_ms", _ms),
    Row("respawn_busy", "Respawn latency p99, one of {services} services", "p99_ms", _ms),
    Row("idle", "Idle CPU, {services} sleeping services (% of one core)", "cpu_pct", _pct,
        "≤ 0.1 %", lambda o, s: o <= 0.1),
    Row("idle", "Idle RSS of the supervisor, {services} services", "rss_mib", _mib,
        "≤ 40 MiB", lambda o, s: o <= 40),
    Row("idle", "Idle USS of the supervisor, {services} services", "uss_mib", _mib),
    Row("start_stop", "Start-all {services} services (launch → all started; median of "
        "{repeats})", "start_s", _s, "≤ 0.5 s", lambda o, s: o <= 0.5),
    Row("start_stop", "Stop-all {services} services (SIGTERM → supervisor exited, no service "
        "left; median of {repeats})", "stop_s", _s, "≤ 0.2 s", lambda o, s: o <= 0.2),
    Row("logs_big", "Log throughput, {expected_bytes_mib} MiB in 64 KiB writes (best of "
        "{repeats})", "mb_s_best", _mbs,
        "≥ 0.9x supervisord", lambda o, s: o >= 0.9 * s),
    Row("logs_big", "  median of {repeats} (this VM's page cache makes runs bimodal)", "mb_s",
        _mbs),
    Row("logs_big", "  supervisor CPU time for it (least of {repeats})", "cpu_s_min", _cpu_s),
    Row("logs_big", "  log file intact (bytes, lines)", "intact", _yes_no, "yes",
        lambda o, s: bool(o), ratio=False),
    Row("logs_lines", "Log throughput, {expected_lines} lines of 100 B, one write each "
        "(best of {repeats})",
        "mb_s_best", _mbs, "≥ 1x supervisord", lambda o, s: o >= s),
    Row("logs_lines", "  median of {repeats}", "mb_s", _mbs),
    Row("logs_lines", "  supervisor CPU time for it (least of {repeats})", "cpu_s_min",
        _cpu_s),
    Row("logs_lines", "  lines lost", "lines_lost", _int, "0", lambda o, s: o == 0,
        ratio=False),
    Row("logs_lines", "  log file intact (bytes, every line in order)", "intact", _yes_no,
        "yes", lambda o, s: bool(o), ratio=False),
    Row("crash_loop", "Crash loop (exit 1 at once): restarts per second", "restarts_per_s",
        _per_s),
    Row("crash_loop", "Crash loop: supervisor CPU (% of one core)", "cpu_pct", _pct),
    Row("status", "`status` with {services} services (new client process; p50 of {calls})",
        "p50_ms", _ms),
    Row("status", "  p95", "p95_ms", _ms),
    Row("stream", "Subscriber over the control socket, service printing {rate} lines/s: "
        "lines/s received", "lines_per_s", _per_s, ratio=False),
    Row("stream", "  events/s received (lines arrive in batches)", "events_per_s", _per_s,
        ratio=False),
    Row("stream", "  lines missing", "lines_missing", _int, "0", lambda o, s: o == 0,
        ratio=False),
]


def _label(row: Row, case: dict[str, Side]) -> str:
    params = dict(case.get("ours") or case.get("supervisord") or {})
    if "expected_bytes" in params:
        params["expected_bytes_mib"] = f"{params['expected_bytes'] / 2**20:.0f}"
    try:
        return row.label.format(**params)
    except (KeyError, ValueError, IndexError):
        return row.label.split(" (")[0]


def _cell(side: Side | None, row: Row) -> tuple[str, Any]:
    if side is None:
        return "not run", None
    if "error" in side:
        return "error", None
    value = side.get(row.key)
    return (row.fmt(value), value) if value is not None else ("—", None)


def table(results: dict[str, Any]) -> list[str]:
    out = ["| Benchmark | ours | supervisord | ours / supervisord | target (ours) | result |",
           "|---|--:|--:|--:|---|---|"]
    for row in ROWS:
        case = results["cases"].get(row.case)
        if case is None:
            continue
        ours_txt, ours = _cell(case.get("ours"), row)
        sd_txt, sd = _cell(case.get("supervisord"), row)
        ratio = "—"
        if row.ratio and isinstance(ours, int | float) and isinstance(sd, int | float) and sd:
            ratio = f"{ours / sd:.3g}x"
        verdict = "—"
        if row.check is not None:
            if ours is None or (sd is None and "supervisord" in row.target):
                verdict = "n/a"
            else:
                verdict = "pass" if row.check(ours, sd) else "**FAIL**"
        out.append(f"| {_label(row, case)} | {ours_txt} | {sd_txt} | {ratio} | {row.target} "
                   f"| {verdict} |")
    return out


def _errors(results: dict[str, Any]) -> list[str]:
    out = []
    for name, case in results["cases"].items():
        for side, r in case.items():
            if "error" in r:
                out.append(f"- {name} / {side}: error: {r['error']}")
            if r.get("left_behind"):
                out.append(f"- {name} / {side}: processes left running after the supervisor "
                           f"exited on SIGTERM (killed by the bench): {r['left_behind']}")
            if r.get("exit_code") not in (None, 0) or any(r.get("exit_codes") or ()):
                out.append(f"- {name} / {side}: non-zero exit on SIGTERM")
            if r.get("sigterm_timeout"):
                out.append(f"- {name} / {side}: after the measurement, did not exit within "
                           "20 s of SIGTERM (killed by the bench; not part of any number)")
    return out


SAMPLER_TARGET_PCT = 5.0
"""The resource sampler's share of one core at 1 Hz (docs/ARCHITECTURE.md §7, issue 4)."""


def sampler_section(results: dict[str, Any]) -> list[str]:
    """Its own section: the sampler's cost is ours alone, nothing to compare with."""
    r = (results["cases"].get("sampler") or {}).get("ours")
    if r is None:
        return []
    head = ["## Resource sampler cost", ""]
    if "error" in r:
        return [*head, f"error: {r['error']}", ""]
    share = r["sampler_cpu_pct"]
    verdict = "pass" if share < SAMPLER_TARGET_PCT else "**FAIL**"
    n, k = r["services"], r["procs_per_service"]
    return [
        *head,
        f"{n} services of {k} processes each ({n * k} processes; the sampler saw "
        f"{r.get('procs_sampled', '?')}), the engine's CPU over {r['measure_s']:.0f} s, "
        "launched twice in the same run: `sample_interval: 0`, then `1s`. The sampler's "
        "cost is the difference.",
        "",
        "| Measure | value | target | result |",
        "|---|--:|---|---|",
        f"| Engine CPU, sampling off (% of one core) | {_pct(r['cpu_pct_off'])} | — | — |",
        f"| Engine CPU, sampling every 1 s | {_pct(r['cpu_pct_on'])} | — | — |",
        f"| **Sampler's share** | {_pct(share)} | < {SAMPLER_TARGET_PCT:g} % | {verdict} |",
        f"| Wall time of one sample (last tick, worker thread) | {_ms(r['sample_ms'])} "
        "| — | — |",
        f"| Event-loop lag p99 over the last minute, sampling on | "
        f"{_ms(r['loop_lag_p99_ms'])} | — | — |",
        f"| Event-loop lag max over the last minute (the services' start included) | "
        f"{_ms(r['loop_lag_max_ms'])} | — | — |",
        f"| Event-loop lag max during the {r['measure_s']:.0f} s window | "
        f"{_ms(r['loop_lag_max_window_ms'])} | — | — |",
        f"| Engine RSS, sampling off / on | {_mib(r['rss_mib_off'])} / "
        f"{_mib(r['rss_mib_on'])} | — | — |",
        f"| One pass over the same {n * k} processes, in the bench process: the "
        f"engine's /proc reader / cached psutil.Process objects (median of 10) | "
        f"{_ms(r['scan_direct_ms'])} / {_ms(r['scan_psutil_ms'])} | — | — |",
        "",
        "Each service is `sh -c 'echo $$ > FIFO; sleep 100000 & sleep 100000 & wait'`. "
        "Once all reported, 3 s settle, then CPU time of the engine process (all threads, "
        "from schedstat) over the window. Lag is how late a 100 ms loop timer fires, as "
        "the engine's sampler reports it in its snapshot. The last row is why the sampler "
        "reads `/proc/PID/stat` itself: the tree walk needs every process's stat anyway, "
        "and one read gives ppid, start time, CPU ticks, threads and RSS; psutil reads it "
        "again, plus `status` and `statm`, through more Python per call.",
        "",
    ]


KEY_TARGET_MS = 100.0
TMUX_TARGET_PCT = 5.0
PM2_MONIT = "32 % of a core and 119 MB"
"""`pm2 monit` with the same 50 idle services, as measured for issue 5 (not re-run here)."""


def _stat_row(label: str, st: dict[str, Any], target: str = "—",
              ok: Callable[[float], bool] | None = None) -> str:
    if not st or not st.get("n"):
        return f"| {label} | — | — | — | 0 | {target} | — |"
    verdict = "—" if ok is None else ", ".join(
        f"{q} {'pass' if ok(st[f'{q}_ms']) else '**FAIL**'}" for q in ("median", "p95"))
    return (f"| {label} | {_ms(st['median_ms'])} | {_ms(st['p95_ms'])} | {_ms(st['max_ms'])} "
            f"| {st['n']} | {target} | {verdict} |")


def tui_section(results: dict[str, Any]) -> list[str]:
    """The dashboard: key → repaint under a flood, and its CPU in a real terminal."""
    keys = (results["cases"].get("tui_keys") or {}).get("ours")
    tmux = (results["cases"].get("tui_tmux") or {}).get("ours")
    if keys is None and tmux is None:
        return []
    out = ["## The dashboard", ""]
    if keys is not None and "error" in keys:
        out += [f"Key → repaint: error: {keys['error']}", ""]
    elif keys is not None:
        lost = keys["lines_lost"]
        out += [
            f"Engine and dashboard in one process (`bench/tui_app.py keys`: Supervisor with "
            f"the metrics layers, sampling every 1 s, and `SupervisorApp` headless through "
            f"Textual's `run_test` at {keys['size']}); {keys['services']} services: "
            f"{keys['services'] - 1} sleep, one prints {keys['rate']:,} numbered lines/s of "
            f"100 B. Over {keys['seconds']:.0f} s:",
            "",
            "| Measure | median | p95 | max | n | target | result |",
            "|---|--:|--:|--:|--:|---|---|",
            _stat_row("**Key → repaint, all keys**", keys["key"], f"≤ {KEY_TARGET_MS:g} ms",
                      lambda v: v <= KEY_TARGET_MS),
            _stat_row("  `j`: cursor down; the detail and log panes switch", keys["key_j"]),
            _stat_row("  `k`: cursor up; the same", keys["key_k"]),
            _stat_row("  `a`: merged logs on / off", keys["key_a"]),
            _stat_row(f"  `o`: sort ({keys['services']} rows re-ordered)", keys["key_o"]),
            _stat_row("  `j` / `k` → the new service's CPU/MEM graphs drawn (2 queries)",
                      keys["graphs"]),
            _stat_row("UI tick (`app.tick_seconds`: new lines and changed rows to the widgets)",
                      keys["tick"]),
            _stat_row("Repaint (one compositor update)", keys["repaint"]),
            "",
            f"- Frames composed: {keys['frames_per_s']:.1f} /s; CPU of the process (engine + "
            f"UI, all threads): {_pct(keys['cpu_pct'])} of one core; RSS "
            f"{_mib(keys['rss_mib'])}.",
            f"- Lines: the engine emitted {keys['engine_lines']:,} after the app subscribed, "
            f"the UI's store received {keys['store_lines']:,}: "
            + ("**none lost**" if lost == 0 and not keys["stream_dropped"] else
               f"**{lost:,} LOST**" + (" (the subscription was dropped: too slow)"
                                       if keys["stream_dropped"] else "")) + ".",
            "",
            "Key → repaint runs from just before the key event is posted to the app (as the "
            "terminal driver posts it) until the first frame composed (`App._display` called "
            "with the compositor's update) that painted the change: the app's state shows it "
            "(the log pane's title and the detail pane name the new service for j/k, the log "
            "pane's title for a, the table re-sorted on the new key for o) and the widgets "
            "that show it were rendered since (the log pane and the detail's header; the log "
            "pane; the table). Until issue 15 the frame only had to follow the state change, "
            "and for j/k that was a frame that moved the cursor and painted neither pane "
            "(the panes came a layout pass later, 20-50 ms on): those figures were too "
            "good. Keys are 100-250 ms apart (a random spread over the 10 Hz tick); `a` is "
            "pressed in pairs.",
            "",
        ]
    if tmux is not None and "error" in tmux:
        out += [f"CPU in tmux: error: {tmux['error']}", ""]
    elif tmux is not None and "skipped" in tmux:
        out += [f"CPU in tmux: skipped ({tmux['skipped']}).", ""]
    elif tmux is not None:
        t, h = tmux["tui"], tmux["headless"]
        verdict = "pass" if t["cpu_pct"] <= TMUX_TARGET_PCT else "**FAIL**"
        clean = t["stopped_cleanly"] and h["stopped_cleanly"]
        out += [
            f"`tui-supervisor -c CFG` with {tmux['services']} idle services (`sleep`, sampling "
            f"every 1 s) in a detached {tmux['size']} tmux pane; once the dashboard shows, "
            f"3 s settle, then {tmux['seconds']:.0f} s:",
            "",
            "| Measure | value | target | result |",
            "|---|--:|---|---|",
            f"| **CPU of the engine + UI process** (% of one core) | {_pct(t['cpu_pct'])} "
            f"| ≤ {TMUX_TARGET_PCT:g} % | {verdict} |",
            f"| RSS / USS of that process | {_mib(t['rss_mib'])} / {_mib(t['uss_mib'])} "
            "| — | — |",
            f"| The same config headless (`run --headless --quiet`): CPU | "
            f"{_pct(h['cpu_pct'])} | — | — |",
            f"| The same, RSS | {_mib(h['rss_mib'])} | — | — |",
            f"| `pm2 monit`, same 50 services (issue 5's measurement, not re-run) | "
            f"{PM2_MONIT} | — | — |",
            "",
            "The services here are seconds old, so every row's UPTIME changes every second "
            "and the table repaints its visible rows once a second (past an hour of uptime, "
            "once a minute). The engine's pid comes from `status --json`; the UI runs in "
            "that process. "
            "SIGTERM stops it (and its services) "
            + ("cleanly, nothing left running." if clean else
               "**not cleanly: the bench had to kill what was left**."),
            "",
        ]
    return out


FRAME_TARGET_S = 1.0
UNREAD_TARGET_MS = 300.0


def _sec(v: float) -> str:
    return f"{v:.2f} s"


def _row(label: str, r: dict[str, Any], key: str, fmt: Callable[[float], str],
         target: str = "—", limit: float | None = None, max_too: bool = True) -> str:
    """A p50 / max / n row of reload.py's `KEY_p50`, `KEY_max`, `KEY_all`; judged against
    `limit` on the p50 (and the max if `max_too`)."""
    if f"{key}_p50" not in r:
        return f"| {label} | — | — | 0 | {target} | — |"
    p50, top = r[f"{key}_p50"], r[f"{key}_max"]
    verdict = "—" if limit is None else f"p50 {'pass' if p50 <= limit else '**FAIL**'}" + (
        f", max {'pass' if top <= limit else '**FAIL**'}" if max_too else "")
    return (f"| {label} | {fmt(p50)} | {fmt(top)} | {len(r[f'{key}_all'])} | {target} "
            f"| {verdict} |")


def reload_section(results: dict[str, Any]) -> list[str]:
    """Code reload (issue 6): save -> new UI, pipes unread, nothing lost or restarted."""
    case = results["cases"].get("reload") or {}
    ours, sd = case.get("ours"), case.get("supervisord")
    if ours is None:
        return []
    out = ["## Code reload", ""]
    if (m := (results.get("merged") or {}).get("reload")) is not None:
        out += [f"Measured separately from the table above: `{m['command']}` at "
                f"{m['started']}, git {m['ours_commit']}; merged into `latest.json` by "
                "`--merge`.", ""]
    if "error" in ours:
        return [*out, f"error: {ours['error']}", ""]
    dash, head = ours.get("dashboard") or {}, ours.get("headless") or {}
    for name, r in (("dashboard", dash), ("headless", head)):
        if "error" in r:
            out += [f"{name}: error: {r['error']}", ""]
    ms = _ms
    out += [
        f"{dash.get('reloads', '?')} reloads under the dashboard, then "
        f"{head.get('reloads', '?')} headless; {dash.get('services', 3)} services, one "
        f"printing {dash.get('writer_rate', 1000)} numbered lines a second. Load average (1 / "
        f"5 / 15 min) "
        f"{' / '.join(f'{x:.2f}' for x in ours.get('loadavg_before', []))} before, "
        f"{' / '.join(f'{x:.2f}' for x in ours.get('loadavg_after', []))} after.",
        "",
        "| Measure | p50 | max | n | target | result |",
        "|---|--:|--:|--:|---|---|",
        _row("**Save → the new UI's first full frame** (dashboard, "
             f"{dash.get('size', '140x45')} pty)", dash, "save_to_frame_s", _sec,
             f"≤ {FRAME_TARGET_S:.1f} s p50", FRAME_TARGET_S, max_too=False),
        _row("  save → the old UI leaves the alternate screen (watch debounce 0.1 s, "
             "pre-flight: compile, and import + config load in a child forked by the warm "
             "helper, or in a fresh interpreter while that is not up yet; the UI's shutdown)",
             dash,
             "save_to_leave_s", _sec),
        *([f"|   for scale: the pre-flight's import in a fresh interpreter, timed apart (median "
           f"of 3) | {_sec(dash['preflight_import_s'])} | | | — | — |"]
          if "preflight_import_s" in dash else []),
        _row("  → the new image enters it again (exec, imports)", dash,
             "leave_to_enter_s", _sec),
        _row("  → first paint with every service's row", dash, "enter_to_rows_s", _sec),
        _row("  → the footer's key bindings painted (a full frame)", dash,
             "rows_to_frame_s", _sec),
        _row("**Pipes unread, dashboard** (the writer's log not growing)", dash,
             "pipes_unread_ms", ms, f"≤ {UNREAD_TARGET_MS:g} ms", UNREAD_TARGET_MS),
        _row("SIGUSR2 → \"code reloaded\", headless (pre-flight included)", head,
             "signal_to_reloaded_s", _sec),
        _row("**Pipes unread, headless** (the writer's log not growing)", head,
             "pipes_unread_ms", ms, f"≤ {UNREAD_TARGET_MS:g} ms", UNREAD_TARGET_MS),
        _row("  as the new image reports it (detach → adopt)", head,
             "pipes_unread_said_ms", ms),
    ]
    runs = [r for r in (dash, head) if "lines" in r]
    lost = sum(r["lines_lost"] + r["lines_duplicated"] for r in runs)
    intact = all(r["in_order"] for r in runs) and len(runs) == 2
    restarts = sum(r.get("restarts") or 0 for r in runs)
    same = all(r.get("pids_unchanged") for r in runs) and len(runs) == 2
    clean = all(r.get("stopped_cleanly") for r in runs)
    out += [
        f"| Writer's lines lost or doubled (both runs: "
        f"{' + '.join(format(r['lines'], ',') for r in runs)} lines) | {lost} | | | 0 "
        f"| {'pass' if lost == 0 and intact else '**FAIL**'} |",
        f"| Service restarts (both runs); engine and service PIDs unchanged | {restarts}; "
        f"{_yes_no(same)} | | | 0; yes | {'pass' if restarts == 0 and same else '**FAIL**'} |",
    ]
    if sd is not None and "restarted" in sd:
        out.append(f"| supervisord: `supervisorctl reload` (no code reload; it re-reads "
                   f"its config) | restarts {sd['restarted']} of {sd['services']} services "
                   f"(in {_sec(sd['reload_s'])}) | | | — | — |")
    elif sd is not None and "error" in sd:
        out.append(f"| supervisord: `supervisorctl reload` | error: {sd['error']} | | | — "
                   "| — |")
    out += [
        "",
        "Dashboard: `python -m tui_supervisor -c CFG` (the launcher forks; the engine and "
        "the UI share a process) on a pty, from a copy of the package on PYTHONPATH "
        "(`watch_code: true`; byte-compiled once, as a working checkout is). Each reload is "
        "a save: a comment appended to `tui/rows.py` of the copy, timed "
        "(`CLOCK_MONOTONIC`) right after the write. The bench reads the pty all the time "
        "and stamps every read: the old UI's `ESC[?1049l`, the new one's `ESC[?1049h`, "
        "then the first read carrying every service's name and the first carrying the "
        "footer's `Quit` (Textual paints the footer's bindings one frame after the "
        "rest). Headless: `run --headless --quiet`, SIGUSR2, until its output says "
        "`code reloaded`. Pipes unread, both: the writer prints every 1 ms and the engine "
        "writes each read straight to the log file; the bench polls that file's size "
        "every ~1 ms and takes the longest stretch without growth from the save (signal) "
        "to 0.5 s after the frame (the message). Then the engine is stopped (SIGTERM) and "
        "its log checked: every number exactly once, in order. "
        + ("Everything stopped cleanly." if clean else
           "**Not everything stopped cleanly on SIGTERM.**"),
        "",
    ]
    return out


MANUAL = Path(__file__).resolve().parent / "manual"
"""Hand-measured sections (their own scripts, not run by bench/run.py): one Markdown file
each, appended in name order, so a re-render keeps them."""


def manual_sections(folder: Path = MANUAL) -> list[str]:
    return [f.read_text().rstrip("\n") + "\n" for f in sorted(folder.glob("*.md"))]


METHOD = """\
## How each number is measured

Both supervisors run the same services in the same run, one after the other, each with a
fresh config in its own temporary directory (ours: `tui-supervisor run --headless --quiet
-c cfg.yaml` with `start_time: 0`, `restart: always`, backoff `initial: 0ms`, crash loop
limit 1,000,000, no log rotation, `sample_interval: 0`; supervisord 4.3: `supervisord -n`
with `autorestart=true`, `startsecs=0`, `startretries=1000000`, `stopasgroup=true`,
`killasgroup=true`, `redirect_stderr=true`, `stdout_logfile_maxbytes=0`). Times are
`CLOCK_MONOTONIC`, shared by all processes. CPU is the time the supervisor process (all
its threads) spent on a CPU, from `/proc/PID/task/*/schedstat` (ns), or psutil's 10 ms
user + system ticks when a thread came or went during the window. 1 MB = 10^6 bytes,
1 MiB = 2^20 bytes.

- **Respawn latency**: one service `sh -c 'echo $$ > FIFO; exec sleep 100000'`. The
  bench SIGKILLs the current pid and times until the replacement's pid arrives on the FIFO
  (what a user feels: detection + spawn + the new process's first write). Before each
  kill the bench waits until the supervisor itself calls the service running (ours: at
  once, `start_time: 0`, 50 ms pause; supervisord: 1.1 s, because it moves STARTING →
  RUNNING only on its next 1 s tick and a kill while STARTING puts it in a growing
  backoff), plus 0-50 ms of random jitter. Fewer kills for supervisord keep the run short.
  The second pair of rows repeats this with 199 more services sleeping under the same
  supervisor (the cost of an exit that grows with the number of services).
- **Idle**: N services `sleep 100000` (same starter as above); once all reported, 2 s
  settle, then CPU time over 10 s, and RSS/USS (`memory_full_info`) at the end.
- **Start-all**: from launching the supervisor process (interpreter start-up and config
  load included) until all N services have written their pid to the FIFO. **Stop-all**:
  from SIGTERM to the supervisor until it has exited *and* none of the N service pids is
  alive (checked in /proc; a zombie counts as gone). Five fresh launches; the median
  (every sample is in the JSON).
- **Log throughput**: writer services (`bench/writer.py`) wait on a FIFO until the bench
  releases them one at a time (supervisor already up and idle), stamp their start time,
  and write to stdout: (a) 200 MiB in 64 KiB writes (64 lines of 1 KiB each), (b) 50 MB
  as 500,000 lines of 100 bytes, one `write(2)` each. Throughput = bytes / (writer's
  first byte -> the bench sees the full size in the supervisor's log file, polled every
  2 ms); supervisor start-up is not included. Each file is then checked: exact byte
  count, exact line count and, for (b), every sequence number in order. The supervisor
  (all threads) is pinned to CPU 0 and the writer to CPU 1, the same for both sides;
  seven writers per side, `sync` before each. Single runs are bimodal on this VM (the
  same side moves between ~300 and ~1200 MB/s for (a), the kernel time per byte of
  both the pipe read and the file write tripling in the slow mode, for either
  supervisor), so the target is judged on the best of the seven (the intrinsic cost)
  and the median is shown beside it; every run is in the JSON.
- **Crash loop**: a service `sh -c 'echo x >> FILE; exit 1'`; restarts counted from the
  file over 10 s, with the supervisor's CPU over the same 10 s. No target: supervisord's
  retry delay is not configurable (it grows by 1 s per failed start), ours runs here with
  backoff 0 to show the cost of the tightest loop.

Every process a benchmark starts carries a tag in its environment; after each case the
bench stops the supervisor with SIGTERM, then kills anything still tagged (and reports
it), so nothing is left running even after an error or Ctrl-C.
"""


def render(results: dict[str, Any]) -> str:
    m = results["machine"]
    quick = " — QUICK smoke run, not comparable" if results["quick"] else ""
    lines = [
        "# Benchmarks: tui-supervisor vs supervisord",
        "",
        "Generated by `bench/run.py` — do not edit by hand; re-run to update. Raw numbers "
        "and every sample: `bench/results/latest.json` (not committed).",
        "",
        f"- Command: `{results['command']}` (run from the repo root with the dev venv's "
        f"python; total {results['total_s']:.0f} s){quick}",
        f"- When: {results['started']}",
        f"- Machine: {m['nproc']} CPUs (nproc), {m['cpu_model']}, {m['memory_gib']} GiB RAM, "
        f"{m['os']} kernel {m['kernel']}",
        f"- Python {m['python']} (ours), {m['python_supervisord'] or '?'} (supervisord)",
        f"- tui-supervisor {m['ours_version']} (git {m['ours_commit']}); supervisor "
        f"{m['supervisord_version']} from PyPI in `bench/.venv-supervisord` "
        "(created by `bench/setup.sh` or automatically by `bench/run.py`)",
        f"- The engine's `settings.cgroups`: {m.get('cgroups', 'auto')} "
        "(`TUISUP_BENCH_CGROUPS`). In cgroup mode a spawn moves the engine into the "
        "service's cgroup and back; after the hierarchy was idle for a few ms the kernel "
        "makes that move wait for an RCU grace period (~6 ms on this machine), which is "
        "most of the respawn latency below; `TUISUP_BENCH_CGROUPS=off` measures the "
        "marker-and-ancestry mode.",
        "",
        *table(results),
        "",
    ]
    end = results.get("ours_commit_at_end")
    if end and end != m["ours_commit"]:
        lines += [f"**The engine's code changed during this run** ({m['ours_commit']} → "
                  f"{end}): re-run on a quiet tree before trusting the numbers.", ""]
    if errors := _errors(results):
        lines += ["Problems seen in this run:", "", *errors, ""]
    lines += sampler_section(results)
    lines += tui_section(results)
    lines += reload_section(results)
    lines.append(METHOD)
    lines += manual_sections()
    return "\n".join(lines)
