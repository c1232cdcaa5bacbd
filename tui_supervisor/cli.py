"""The command line (DESIGN.md §6): the composition root. Nothing imports this module."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

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
    add("check", "validate the config; exit 0 if valid, 1 with the errors on stderr")
    demo = add("demo", "run the packaged demo config")
    demo.add_argument("--headless", action="store_true", help="no UI (the only mode for now)")
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
    add("reload", "re-read the config and apply the difference")
    return p


def _count(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = -1
    if n < 0:
        raise argparse.ArgumentTypeError(f"expected a count >= 0, got {text!r}")
    return n


CLIENT_VERBS = ("status", "start", "stop", "restart", "signal", "logs", "reload")


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

        return cmd_run(demo_config_path(), quiet=False, demo=True)
    if args.cmd == "run":
        if not args.headless:
            _err("the terminal UI is not built yet: use `run --headless`")
            return 2
        return cmd_run(cfg_path, quiet=args.quiet)
    _err("the terminal UI is not built yet: use `tui-supervisor run --headless "
         f"-c {cfg_path}` (see --help)")
    return 2


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
    from tui_supervisor.config import ConfigError
    from tui_supervisor.control import verbs
    from tui_supervisor.control.client import (
        ControlError,
        NotRunning,
        RemoteSupervisor,
        runtime_dir_for,
    )
    from tui_supervisor.engine.api import UnknownService

    try:
        runtime_dir = runtime_dir_for(cfg_path)
    except ConfigError as e:
        for issue in e.issues:
            print(issue, file=sys.stderr)
        return 1

    async def go() -> int:
        async with RemoteSupervisor(runtime_dir) as api:
            if args.cmd == "status":
                return await verbs.status(api, as_json=args.json)
            if args.cmd in ("start", "stop", "restart"):
                return await verbs.control(api, args.cmd, None if args.all else args.names)
            if args.cmd == "signal":
                return await verbs.send_signal(api, args.name, args.sig)
            if args.cmd == "logs":
                return await verbs.logs(api, args.names, args.n, args.follow)
            return await verbs.reload(api)

    try:
        return asyncio.run(go())
    except NotRunning:
        _err(f"no engine running for {cfg_path} — start it with "
             f"`{PROG} run --headless -c {cfg_path}`")
    except UnknownService as e:
        _err(str(e))
    except PermissionError as e:
        _err(str(e) if str(e).startswith("permission denied") else f"permission denied: {e}")
    except ValueError as e:
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


def cmd_run(path: Path, *, quiet: bool, demo: bool = False) -> int:
    cfg = _load(path, demo=demo)
    if cfg is None:
        return 1
    try:
        return asyncio.run(run_headless(cfg, quiet=quiet))
    except KeyboardInterrupt:
        return 130


async def run_headless(cfg, *, quiet: bool = False) -> int:  # type: ignore[no-untyped-def]
    """Run the engine until SIGTERM/SIGINT; SIGHUP reloads the config (DESIGN.md §7)."""
    from tui_supervisor.console import Console
    from tui_supervisor.control.server import ControlServer
    from tui_supervisor.engine.events import LogLines
    from tui_supervisor.engine.runtime import AlreadyRunning, RuntimeDirError
    from tui_supervisor.engine.supervisor import Supervisor

    loop = asyncio.get_running_loop()
    sup = Supervisor(cfg)
    console = Console(list(cfg.services))
    sup.bus.add_listener(
        console if not quiet else (lambda ev: None if isinstance(ev, LogLines) else console(ev)))
    stop = asyncio.Event()
    server = ControlServer(sup, cfg.settings.runtime_dir)

    def on_stop_signal() -> None:
        if stop.is_set():  # asked twice: do not wait for stop timeouts
            console.write("stopping now: SIGKILL to every service\n")
            sup.kill_all()
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_stop_signal)
    loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(sup.reload()))
    loop.add_signal_handler(signal.SIGUSR2, lambda: console.write(
        "code reload (SIGUSR2) is not built yet; ignored\n"))
    try:
        try:
            await sup.open(autostart=False)
        except AlreadyRunning as e:
            _err(str(e))
            return 1
        except (RuntimeDirError, OSError) as e:
            _err(f"cannot start: {e}")
            return 1
        try:
            await server.start()
        except OSError as e:
            _err(f"cannot start: control socket {server.path}: {e.strerror or e}")
            return 1
        console.write(f"tui-supervisor {__version__} (pid {os.getpid()}) supervising "
                      f"{len(cfg.services)} services from {cfg.path}; logs in "
                      f"{cfg.settings.log_dir}\n")
        sup.autostart()
        await stop.wait()
        console.write("stopping all services...\n")
        await server.close()
        await sup.close()
        console.write("all stopped\n")
        return 0
    finally:
        await server.close()
        if not sup._closed and sup.ctx is not None:
            await sup.close()
        console.close()
