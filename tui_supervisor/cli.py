"""The command line (docs/ARCHITECTURE.md §8): argument parsing and dispatch, and the
client verbs' glue. The engine's host is runner/; nothing imports this module."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from tui_supervisor import __version__

if TYPE_CHECKING:
    from tui_supervisor.config import Config

DEFAULT_CONFIG = "tui-supervisor.yaml"
PROG = "tui-supervisor"


def _err(msg: str) -> None:
    print(f"{PROG}: {msg}", file=sys.stderr)


def _no_default_config(path: Path) -> bool:
    """True (and said how to name one) when no -c was given and ./tui-supervisor.yaml
    does not exist: a newcomer's first `status` in the wrong folder."""
    if path != Path(DEFAULT_CONFIG) or os.path.lexists(path):
        return False
    _err(f"no config: ./{DEFAULT_CONFIG} is not in {os.getcwd()} — name one with "
         f"`-c FILE`, or write ./{DEFAULT_CONFIG} (`{PROG} demo` shows an example)")
    return True


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
    add("attach", "open the dashboard on the running engine of the config (`q` "
        "leaves it running, or stops it)")
    st = add("status", "show the services of the running engine (all, or those named); "
             "exit 3 when one that should be up is not")
    st.add_argument("names", nargs="*", metavar="NAME")
    st.add_argument("--json", action="store_true", help="the full snapshot as JSON")
    for verb in ("start", "stop", "restart"):
        sp = add(verb, f"{verb} services, and say what happened to each")
        sp.add_argument("names", nargs="*", metavar="NAME", help="service names, or all")
        sp.add_argument("--all", action="store_true", help="every service")
        if verb != "restart":
            sp.add_argument("--no-deps", action="store_true", help=(
                "NAME alone: not the services it depends on" if verb == "start" else
                "NAME alone: not the services that depend on it first"))
        if verb == "restart":
            sp.add_argument("--rolling", action="store_true",
                            help="one at a time, each up (ready) before the next; stops "
                            "at the first that does not come up, the rest untouched")
    sc = add("scale", "run N copies of a service with replicas: (new ones started, the "
             "highest-numbered stopped first, the others untouched)")
    sc.add_argument("name", metavar="NAME")
    sc.add_argument("n", type=_count, metavar="N")
    sig = add("signal", "send a signal to a service (NAME SIG, or SIG NAME as "
              "supervisorctl has it)")
    sig.add_argument("name", metavar="NAME")
    sig.add_argument("sig", metavar="SIG", help="TERM, SIGHUP, 9, ...")
    add("shutdown", "stop every service, then the engine; returns once it is gone")
    lg = add("logs", "print the last lines of services (all by default), merged")
    lg.add_argument("names", nargs="*", metavar="NAME")
    lg.add_argument("-f", "--follow", action="store_true",
                    help="then print new lines as they come, across restarts")
    lg.add_argument("-n", type=_count, default=50, metavar="N",
                    help="lines of history (default 50)")
    lg.add_argument("-t", "--timestamps", action="store_true",
                    help="lead each line with the time the engine read it (HH:MM:SS)")
    rl = add("reload", "re-read the config and apply the difference")
    rl.add_argument("--code", action="store_true",
                    help="reload the supervisor's own code instead (services kept)")
    add("reopen-logs", "open every log file again (the services' and the engine's own): "
        "after logrotate renamed them (SIGUSR1 does the same)")
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
                "incidents", "reopen-logs", "shutdown", "scale")
USAGE = 2
"""Exit codes: 0 ok, 1 an error, 2 a usage error, 3 (`status`) not all running."""


def signal_order(first: str, second: str) -> tuple[str, str]:
    """(service, signal) of `signal A B`: `web HUP`, or supervisorctl's `HUP web`. The
    one that parses as a signal is the signal; when both or neither do, A is the
    service."""
    from tui_supervisor.config.units import parse_signal

    def is_signal(text: str) -> bool:
        try:
            parse_signal(text)
        except ValueError:
            return False
        return True

    if is_signal(first) and not is_signal(second):
        return second, first
    return first, second


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    cfg_path = Path(args.config or DEFAULT_CONFIG)
    if args.cmd in ("start", "stop", "restart") and bool(args.names) == bool(args.all):
        _err(f"{args.cmd}: give service names, or all" if not args.names else
             f"{args.cmd}: give service names or --all, not both")
        return USAGE
    if args.cmd == "signal":
        args.name, args.sig = signal_order(args.name, args.sig)
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
    """Engine + dashboard in one process (docs/ARCHITECTURE.md §2)."""
    cfg = _load(path, demo=demo, environ=_engine_environ())
    if cfg is None:
        return 1
    from tui_supervisor.runner.dashboard import run_dashboard

    return run_dashboard(cfg)


def _runtime_dir(path: Path) -> Path | None:
    """Where the engine of the config at `path` listens (None: said why on stderr)."""
    from tui_supervisor.config import ConfigError
    from tui_supervisor.control.discovery import runtime_dir_for

    if _no_default_config(path):
        return None
    try:
        return runtime_dir_for(path)
    except ConfigError as e:
        for issue in e.issues:
            print(issue, file=sys.stderr)
        return None


def _not_running(cfg_path: Path) -> None:
    """The one line every verb says when no engine runs the config."""
    _err(f"no engine running for {cfg_path} — start it with "
         f"`{PROG} run --headless -c {cfg_path}`")


def cmd_attach(path: Path) -> int:
    from tui_supervisor.control.discovery import engine_alive

    runtime_dir = _runtime_dir(path)
    if runtime_dir is None:
        return 1
    if engine_alive(runtime_dir) is None:  # (said as every other verb says it)
        _not_running(path)
        return 1
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        _err("the dashboard needs a terminal")
        return 2
    from tui_supervisor.runner.attach import attach

    return attach(runtime_dir)


def _engine_environ() -> dict[str, str]:
    """What an engine bases its services' env on (its first launch's: reload/code.py)."""
    from tui_supervisor.reload.code import engine_environ

    return engine_environ()


def _load(path: Path, *, check_system: bool = False, demo: bool = False,
          environ: dict[str, str] | None = None) -> Config | None:
    from tui_supervisor.config import ConfigError, load_config

    if not demo and _no_default_config(path):
        return None
    try:
        cfg = load_config(path, check_system=check_system, environ=environ)
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
    from tui_supervisor.control.client import RemoteSupervisor
    from tui_supervisor.control.errors import AccessDenied, ControlError, NotRunning
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
                return await verbs.status(api, as_json=args.json, names=args.names)
            if args.cmd == "shutdown":
                return await verbs.shutdown(api)
            if args.cmd in ("start", "stop", "restart"):
                return await verbs.control(api, args.cmd, None if args.all else args.names,
                                           no_deps=getattr(args, "no_deps", False),
                                           rolling=getattr(args, "rolling", False))
            if args.cmd == "scale":
                return await verbs.scale(api, args.name, args.n)
            if args.cmd == "signal":
                return await verbs.send_signal(api, args.name, args.sig)
            if args.cmd == "logs":
                return await verbs.logs(api, args.names, args.n, args.follow,
                                        timestamps=args.timestamps)
            if args.cmd == "incidents":
                return await verbs.incidents(api, args.name, args.n, as_json=args.json)
            if args.cmd == "reopen-logs":
                return await verbs.reopen_logs(api)
            return await verbs.reload(api, code=args.code)

    try:
        return asyncio.run(go())
    except NotRunning:
        if args.cmd == "incidents":
            return _incidents_offline(args, cfg_path)
        _not_running(cfg_path)
    except UnknownService as e:
        _err(str(e))
    except AccessDenied as e:
        _err(str(e))
    except PermissionError as e:
        _err(f"permission denied: {e}")
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
    # in the background, nobody would see a service that cannot start: `check`'s
    # system checks (commands found, cwd and user exist) refuse it here, as `check` does
    cfg = _load(path, demo=demo, environ=_engine_environ(), check_system=detach)
    if cfg is None:
        return 1
    from tui_supervisor.runner.headless import run_headless

    return run_headless(cfg, quiet=quiet, detached=detach)
