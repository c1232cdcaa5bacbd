"""The command line (DESIGN.md §6): the composition root. Nothing imports this module."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from tui_supervisor import __version__

DEFAULT_CONFIG = "tui-supervisor.yaml"
PROG = "tui-supervisor"


def _err(msg: str) -> None:
    print(f"{PROG}: {msg}", file=sys.stderr)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="A process supervisor that lives in "
                                "your terminal.")
    p.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    p.add_argument("-c", "--config", default=None, help=f"config file (default ./{DEFAULT_CONFIG})")
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND")

    def add(name: str, help: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help, description=help)
        sp.add_argument("-c", "--config", default=argparse.SUPPRESS,
                        help=f"config file (default ./{DEFAULT_CONFIG})")
        return sp

    run = add("run", "run the engine (foreground)")
    run.add_argument("--headless", action="store_true", help="no UI: print a merged log stream")
    run.add_argument("--quiet", action="store_true",
                     help="with --headless: print state changes only, not service output")
    run.add_argument("--detach", action="store_true",
                     help="with --headless: run in the background (output to the state "
                     "dir's engine.log); returns once the engine is up")
    add("check", "validate the config; exit 0 if valid, 1 with the errors on stderr")
    demo = add("demo", "run the packaged demo config (with the dashboard)")
    demo.add_argument("--headless", action="store_true", help="no UI: a merged log stream")
    add("attach", "open the dashboard on the running engine of the config (quitting "
        "leaves it running)")
    st = add("status", "show the services of the running engine")
    st.add_argument("--json", action="store_true", help="the full snapshot as JSON")
    for verb in ("start", "stop", "restart"):
        sp = add(verb, f"{verb} services")
        sp.add_argument("names", nargs="*", metavar="NAME")
        sp.add_argument("--all", action="store_true", help="every service")
    sig = add("signal", "send a signal to a service")
    sig.add_argument("name", metavar="NAME")
    sig.add_argument("sig", metavar="SIG", help="TERM, SIGHUP, 9, ...")
    lg = add("logs", "print the last lines of services (all by default), merged")
    lg.add_argument("names", nargs="*", metavar="NAME")
    lg.add_argument("-f", "--follow", action="store_true",
                    help="then print new lines as they come, across restarts")
    lg.add_argument("-n", type=_count, default=50, metavar="N",
                    help="lines of history (default 50)")
    rl = add("reload", "re-read the config and apply the difference")
    rl.add_argument("--code", action="store_true",
                    help="reload the supervisor's own code instead (services kept)")
    inc = add("incidents", "list recent failures (crashes, failed starts): time, exit, "
              "uptime before it and the last output lines; newest last. Asks the running "
              "engine, or, when none runs, reads incidents.jsonl in the config's state dir "
              "(forensics survive a crash of the supervisor itself)")
    inc.add_argument("name", nargs="?", metavar="NAME", help="only this service")
    inc.add_argument("-n", type=_count, default=10, metavar="N",
                     help="how many incidents (default 10)")
    inc.add_argument("--json", action="store_true", help="one JSON object a line")
    return p


def _count(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = -1
    if n < 0:
        raise argparse.ArgumentTypeError(f"expected a count >= 0, got {text!r}")
    return n


CLIENT_VERBS = ("status", "start", "stop", "restart", "signal", "logs", "reload",
                "incidents")


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    cfg_path = Path(args.config or DEFAULT_CONFIG)
    if args.cmd in ("start", "stop", "restart") and bool(args.names) == bool(args.all):
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        sub.choices[args.cmd].error("give service names or --all (not both)")
    if args.cmd in CLIENT_VERBS:
        return cmd_client(args, cfg_path)
    if args.cmd == "check":
        return cmd_check(cfg_path)
    if args.cmd == "demo":
        from tui_supervisor.demo import demo_config_path

        if args.headless:
            return cmd_run(demo_config_path(), quiet=False, demo=True)
        return cmd_tui(demo_config_path(), demo=True)
    if args.cmd == "attach":
        return cmd_attach(cfg_path)
    if args.cmd == "run" and (args.headless or args.detach):
        return cmd_run(cfg_path, quiet=args.quiet, detach=args.detach)
    return cmd_tui(cfg_path)


def cmd_tui(path: Path, *, demo: bool = False) -> int:
    """Engine + dashboard in one process (DESIGN.md §1)."""
    cfg = _load(path, demo=demo)
    if cfg is None:
        return 1
    from tui_supervisor.reload.code import handoff_mode, take_handoff

    mode = handoff_mode()  # this process may be a code reload's new image
    if mode == "hosted":
        from tui_supervisor.tui.host import run_hosted

        record = take_handoff()
        assert record is not None
        host = record.pop("host")
        fd = host.get("parent_fd")
        if fd is not None:
            os.set_inheritable(fd, False)
        return asyncio.run(run_hosted(cfg, fd, Path(host["log"]), adopt=record))
    if mode == "headless":  # the dashboard had gone: stay headless (stdio is the log)
        return asyncio.run(run_headless(cfg, quiet=True))
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        _err("the dashboard needs a terminal; use `run --headless` (or `--detach`)")
        return 2
    from tui_supervisor.engine.runtime import AlreadyRunning, engine_running

    running = engine_running(cfg.settings.runtime_dir)
    if running is not None:
        _err(str(AlreadyRunning(running if running > 0 else None)))
        return 1
    from tui_supervisor.tui.host import launch

    return launch(cfg)


def _runtime_dir(path: Path) -> Path | None:
    """Where the engine of the config at `path` listens (None: said why on stderr)."""
    from tui_supervisor.config import ConfigError
    from tui_supervisor.control.client import runtime_dir_for

    try:
        return runtime_dir_for(path)
    except ConfigError as e:
        for issue in e.issues:
            print(issue, file=sys.stderr)
        return None


def cmd_attach(path: Path) -> int:
    runtime_dir = _runtime_dir(path)
    if runtime_dir is None:
        return 1
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        _err("the dashboard needs a terminal")
        return 2
    from tui_supervisor.tui.host import run_attached

    return asyncio.run(run_attached(runtime_dir))


def _load(path: Path, *, check_system: bool = False, demo: bool = False):  # type: ignore[no-untyped-def]
    from tui_supervisor.config import ConfigError, load_config

    try:
        cfg = load_config(path, check_system=check_system)
    except ConfigError as e:
        for issue in e.issues:
            print(issue, file=sys.stderr)
        return None
    if demo:
        from dataclasses import replace

        # never write into site-packages: the demo's logs go to its state dir
        cfg = replace(cfg, settings=replace(cfg.settings,
                                            log_dir=cfg.settings.state_dir / "logs"))
    return cfg


def cmd_check(path: Path) -> int:
    cfg = _load(path, check_system=True)
    if cfg is None:
        return 1
    print(f"{path}: ok ({len(cfg.services)} services)")
    return 0


def cmd_client(args: argparse.Namespace, cfg_path: Path) -> int:
    """A verb run against the engine of `cfg_path`, over its control socket."""
    from tui_supervisor.control import verbs
    from tui_supervisor.control.client import ControlError, NotRunning, RemoteSupervisor
    from tui_supervisor.engine.api import UnknownService

    runtime_dir = _runtime_dir(cfg_path)
    if runtime_dir is None:
        return 1

    from tui_supervisor.control.resume import Reconnect

    follow = args.cmd == "logs" and args.follow  # a stream: rides out code reloads

    async def go() -> int:
        async with RemoteSupervisor(runtime_dir,
                                    reconnect=Reconnect() if follow else None) as api:
            if args.cmd == "status":
                return await verbs.status(api, as_json=args.json)
            if args.cmd in ("start", "stop", "restart"):
                return await verbs.control(api, args.cmd, None if args.all else args.names)
            if args.cmd == "signal":
                return await verbs.send_signal(api, args.name, args.sig)
            if args.cmd == "logs":
                return await verbs.logs(api, args.names, args.n, args.follow)
            if args.cmd == "incidents":
                return await verbs.incidents(api, args.name, args.n, as_json=args.json)
            return await verbs.reload(api, code=args.code)

    try:
        return asyncio.run(go())
    except NotRunning:
        if args.cmd == "incidents":
            return _incidents_offline(args, cfg_path)
        _err(f"no engine running for {cfg_path} — start it with "
             f"`{PROG} run --headless -c {cfg_path}`")
    except UnknownService as e:
        _err(str(e))
    except PermissionError as e:
        _err(str(e) if str(e).startswith("permission denied") else f"permission denied: {e}")
    except ValueError as e:
        if args.cmd == "incidents":  # an engine without the incidents layer
            _err(f"the engine cannot list incidents: {e}")
            return 1
        if args.cmd != "signal":
            raise
        _err(f"bad signal: {e}")
    except ControlError as e:
        _err(f"the engine refused: {e}")
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return 1


def _incidents_offline(args: argparse.Namespace, cfg_path: Path) -> int:
    """`incidents` with no engine running: read the state dir's file directly. A config
    that no longer validates still names its default state dir."""
    from tui_supervisor.config import ConfigError, load_config
    from tui_supervisor.config.loader import default_dirs, make_config_id
    from tui_supervisor.control import verbs
    from tui_supervisor.engine.api import UnknownService

    try:
        cfg = load_config(cfg_path)
        state_dir, known = cfg.settings.state_dir, list(cfg.services)
    except ConfigError:
        path = Path(os.path.abspath(os.path.expanduser(cfg_path))).resolve()
        state_dir, known = default_dirs(make_config_id(path), os.environ)[0], []
    try:
        return verbs.incidents_from_file(state_dir, known, args.name, args.n,
                                         as_json=args.json)
    except UnknownService as e:
        _err(str(e))
        return 1
    except BrokenPipeError:
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def cmd_run(path: Path, *, quiet: bool, demo: bool = False, detach: bool = False) -> int:
    cfg = _load(path, demo=demo)
    if cfg is None:
        return 1
    ready_fd = None
    if detach:
        from tui_supervisor.engine.runtime import AlreadyRunning, engine_running

        running = engine_running(cfg.settings.runtime_dir)
        if running is not None:
            _err(str(AlreadyRunning(running if running > 0 else None)))
            return 1
        parent_rc, ready_fd = _detach(cfg.settings.state_dir / "engine.log")
        if parent_rc is not None:
            return parent_rc
    try:
        return asyncio.run(run_headless(cfg, quiet=quiet, ready_fd=ready_fd))
    except KeyboardInterrupt:
        return 130


DETACH_TIMEOUT = 60.0


def _detach(log: Path) -> tuple[int | None, int | None]:
    """Fork the engine into its own session, stdio to `log`. In the parent: (exit code,
    None) once the child listens on its socket (or failed); in the child: (None, fd) where
    the child reports "ok" or its error."""
    try:
        log.parent.mkdir(parents=True, exist_ok=True)
        log_fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    except OSError as e:
        _err(f"cannot start: {log}: {e.strerror}")
        return 1, None
    sys.stdout.flush()
    sys.stderr.flush()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.setsid()
        from tui_supervisor.engine.runtime import stdio_to

        stdio_to(log_fd)
        os.close(log_fd)
        return None, w
    os.close(w)
    os.close(log_fd)
    import select

    got = b""
    deadline = time.monotonic() + DETACH_TIMEOUT
    while not got.endswith(b"\n") and time.monotonic() < deadline:
        if select.select([r], [], [], max(0.0, deadline - time.monotonic()))[0]:
            chunk = os.read(r, 4096)
            if not chunk:
                break
            got += chunk
    os.close(r)
    if got == b"ok\n":
        print(f"started (pid {pid}); output in {log}")
        return 0, None
    if got:
        _err(got.decode(errors="replace").strip())
    else:
        _err(f"the engine (pid {pid}) did not start; see {log}")
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    return 1, None


async def run_headless(cfg, *, quiet: bool = False,  # type: ignore[no-untyped-def]
                       ready_fd: int | None = None) -> int:
    """Run the engine until SIGTERM/SIGINT; SIGHUP reloads the config, SIGUSR2 (or
    `reload --code`) the code (DESIGN.md §2, §7). `ready_fd` (--detach): told "ok" once
    the socket listens, or the startup error."""
    from tui_supervisor.console import Console
    from tui_supervisor.control.server import ControlServer
    from tui_supervisor.engine.events import LogLines, Notice
    from tui_supervisor.engine.runtime import AlreadyRunning, RuntimeDirError
    from tui_supervisor.engine.supervisor import Supervisor
    from tui_supervisor.metrics import attach_metrics
    from tui_supervisor.reload.code import (
        adopted,
        checked_reload,
        hand_over,
        reloaded_notice,
        stop_warm,
        take_handoff,
        watch_own_code,
    )
    from tui_supervisor.reload.config import ConfigWatcher

    loop = asyncio.get_running_loop()
    handoff = take_handoff()
    console = Console(list(cfg.services))
    stop = asyncio.Event()
    code_reload = asyncio.Event()

    def on_stop_signal() -> None:
        if stop.is_set():  # asked twice: do not wait for stop timeouts
            console.write("stopping now: SIGKILL to every service\n")
            sup.kill_all()
        stop.set()

    async def reload_code() -> dict[str, Any]:
        return await checked_reload(cfg.path, code_reload.set)

    def make_engine() -> tuple[Any, Any]:
        sup = Supervisor(cfg)
        attach_metrics(sup)
        sup.bus.add_listener(console if not quiet else (
            lambda ev: None if isinstance(ev, LogLines) else console(ev)))
        sup.code_reloader = reload_code
        return sup, ControlServer(sup, cfg.settings.runtime_dir)

    sup, server = make_engine()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_stop_signal)
    loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(sup.reload()))
    loop.add_signal_handler(signal.SIGUSR2, lambda: asyncio.ensure_future(sup.reload_code()))

    def report(msg: str | None) -> int:
        nonlocal ready_fd
        if msg is not None:
            _err(msg)
        if ready_fd is not None:
            with contextlib.suppress(OSError):
                os.write(ready_fd, b"ok\n" if msg is None else f"{msg}\n".encode())
            os.close(ready_fd)
            ready_fd = None
        return 0 if msg is None else 1

    watcher = None
    carried = handoff is None  # False until a new image has adopted its services
    try:
        try:
            await sup.open(autostart=False, adopt=handoff)
        except AlreadyRunning as e:
            return report(str(e))
        except RuntimeDirError as e:
            return report(f"cannot start: {e}")
        except OSError as e:  # e.g. a log_dir or state_dir that cannot be created
            where = f"{e.filename}: " if e.filename else ""
            return report(f"cannot start: {where}{e.strerror or e}")
        metrics = sup.extension("prometheus")
        if metrics is not None and getattr(metrics, "error", None):
            return report(f"cannot start: {metrics.error}")  # type: ignore[attr-defined]
        try:
            await server.start()
        except OSError as e:
            return report(f"cannot start: control socket {server.path}: {e.strerror or e}")
        report(None)
        if handoff is not None:
            adopted()
            carried = True
            sup.bus.emit(Notice(time.time(), "info",  # console and subscribers
                                reloaded_notice(handoff, len(sup.services))))
        else:
            console.write(f"tui-supervisor {__version__} (pid {os.getpid()}) supervising "
                          f"{len(cfg.services)} services from {cfg.path}; logs in "
                          f"{cfg.settings.log_dir}\n")
            sup.autostart()
        watcher = ConfigWatcher(sup)
        watcher.start()

        def follow_code() -> Any:
            return watch_own_code(cfg.settings, loop, lambda: sup.reload_code(),
                                  lambda msg: console.write(msg + "\n"))

        code_watch = follow_code()
        while True:
            waits = [asyncio.ensure_future(stop.wait()),
                     asyncio.ensure_future(code_reload.wait())]
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for w in waits:
                w.cancel()
            if stop.is_set():
                break
            code_reload.clear()
            # hand over: nothing reads the pipes from here until the new image adopts them
            console.write("code reload: handing over to a new image of this process\n")
            console.flush()
            record, error = await hand_over(sup, server, (watcher, code_watch),
                                            cfg.settings.runtime_dir)
            console.write(f"code reload failed ({error}); carrying on with the old code\n")
            sup, server = make_engine()
            await sup.open(autostart=False, adopt=record)
            await server.start()
            watcher = ConfigWatcher(sup)
            watcher.start()
            code_watch = follow_code()
        watcher.stop()
        if code_watch is not None:
            code_watch.stop()
        console.write("stopping all services...\n")
        await server.close()
        await sup.close()
        console.write("all stopped\n")
        return 0
    finally:
        if watcher is not None:
            watcher.stop()
        if ready_fd is not None:
            report("the engine failed while starting")
        await server.close()
        await stop_warm()
        if not sup._closed and sup.ctx is not None and carried:
            await sup.close()  # (a new image that failed to adopt leaves them to safe mode)
        console.close()
