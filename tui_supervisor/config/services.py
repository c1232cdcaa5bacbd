"""Service entries of a config: command, environment, policies, system checks."""

from __future__ import annotations

import os
import pwd
import re
import shlex
import sys
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from types import MappingProxyType
from typing import Any

from yaml.nodes import Node, SequenceNode

from tui_supervisor.config.depends import check_depends, load_depends
from tui_supervisor.config.health import load_health
from tui_supervisor.config.parse import TooBig, read_capped
from tui_supervisor.config.peers import peer_advice, restart_value
from tui_supervisor.config.reader import Items, Reader, expand_path, join
from tui_supervisor.config.replicas import expand
from tui_supervisor.config.schema import (
    BackoffSpec,
    CrashLoopSpec,
    LimitsSpec,
    LogSpec,
    ReplicaGroup,
    RestartPolicy,
    ServiceSpec,
    StopSpec,
)
from tui_supervisor.config.units import (
    Undefined,
    in_range,
    interpolate,
    parse_duration,
    parse_env_lines,
    parse_signal,
    parse_size,
    show,
    show_duration,
    show_size,
    to_bool,
    to_choice,
    to_int,
    to_number,
    to_str,
)

# --- services -----------------------------------------------------------------------------

SERVICE_NAME = re.compile(r"[A-Za-z0-9_.-]+")
MAX_NAME = 64
"""A service name is at most this long: its log files are `<name>.log.<N>` in log_dir, a
name that must fit NAME_MAX (255 bytes) with room to spare, and names are columns of the
dashboard and words of the CLI."""
ENV_NAME = re.compile(r"[^=\x00]+")
SERVICE_KEYS = {
    "command", "shell", "cwd", "env", "env_file", "user", "autostart", "start_time",
    "restart", "success_codes", "backoff", "crash_loop", "stop", "log", "limits", "rlimits",
    "health", "depends_on", "replicas",
}  # fmt: skip
UNSUPPORTED_KEYS: frozenset[str] = frozenset()

# --- bounds: every count, size and duration has a range (README, "Config") --------------

MAX_DURATION = 24 * 3600.0
"""No timer of a service is longer than a day (start rule, backoff, stop, windows)."""
MAX_FAILURES_CAP = 10_000
"""The failures inside the window are kept to decide a crash loop (and copied at each
failure): a bound keeps that cheap; past it the rule would not be a loop detector."""
MAX_BACKUPS = 100
"""Each rotation renames every backup: the bound keeps a rotation a few milliseconds."""
MIN_LOG_BYTES, MAX_LOG_BYTES = 16 * 1024, 1024**4
"""A log file rotates at a size in this range (or never, 0): smaller would rotate at
nearly every line of a busy service."""
MAX_RING_LINES = 100_000
"""Lines kept in memory per service (also capped at 4 MiB, `engine.logs.RING_BYTES`)."""


def duration(lo: float = 0.0, hi: float = MAX_DURATION) -> Callable[[Any], float]:
    return in_range(parse_duration, lo, hi, show_duration)


def positive_duration(value: Any) -> float:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f"must be greater than 0, got {show(value)}")
    if seconds > MAX_DURATION:
        raise ValueError(f"must be at most {show_duration(MAX_DURATION)}, got {show(value)}")
    return seconds


BACKOFF = {
    "initial": duration(),
    "factor": to_number(1, 100),
    "max": duration(),
    "jitter": to_number(0, 1),
    "reset_after": duration(),
}


def max_failures(value: Any) -> int:
    n = to_int(1)(value)
    if n > MAX_FAILURES_CAP:
        raise ValueError(f"must be at most {MAX_FAILURES_CAP}, got {show(n)}")
    return n


CRASH_LOOP = {"max_failures": max_failures, "window": positive_duration, "give_up": to_bool}
STOP = {"signal": parse_signal, "timeout": duration()}
LOG = {"max_bytes": in_range(parse_size, MIN_LOG_BYTES, MAX_LOG_BYTES, show_size, off=True),
       "backups": to_int(0, MAX_BACKUPS), "ring_lines": to_int(1, MAX_RING_LINES)}


def memory_limit(value: Any) -> int:
    size = parse_size(value)
    if size < 1 << 20:
        raise ValueError(f"must be at least 1MB, got {show(value)}")
    return size


LIMITS = {"memory": memory_limit}
RLIMITS = ("as", "core", "cpu", "data", "fsize", "memlock", "msgqueue", "nice",
           "nofile", "nproc", "rss", "rtprio", "rttime", "sigpending", "stack")
"""setrlimit(2)'s resources, by the names ulimit and systemd (Limit*=) use."""


def rlimit_value(value: Any) -> tuple[int, int]:
    """(soft, hard) from `65536` (both), `unlimited`, or `"1024:4096"`."""
    def one(v: Any) -> int:
        if isinstance(v, str) and v.strip().lower() in ("unlimited", "infinity"):
            return -1
        if isinstance(v, str) and v.strip().isdigit():
            v = int(v.strip())
        if isinstance(v, bool) or not isinstance(v, int) or v < 0 or v >= 1 << 63:
            raise ValueError(f"expected a number, 'unlimited' or 'SOFT:HARD', got {show(value)}")
        return v
    if isinstance(value, str) and ":" in value:
        soft, _, hard = value.partition(":")
        s, h = one(soft), one(hard)
    else:
        s = h = one(value)
    if h != -1 and (s == -1 or s > h):
        raise ValueError(f"soft limit above the hard one in {show(value)}")
    return s, h


def load_rlimits(r: Reader, items: Items, path: str) -> tuple[tuple[str, int, int], ...]:
    if "rlimits" not in items:
        return ()
    sub = join(path, "rlimits")
    found = r.mapping(items["rlimits"][1], sub)
    if not found:
        return ()
    r.check_keys(found, set(RLIMITS), sub)
    out = []
    for name in RLIMITS:
        if name in found:
            pair = r.get(found, name, sub, rlimit_value, None)
            if pair is not None:
                out.append((name, *pair))
    return tuple(out)


def load_services(
    r: Reader, top: Items, root: Node, config_dir: Path, environ: Mapping[str, str], check: bool,
    groups: dict[str, ReplicaGroup] | None = None,
) -> Mapping[str, ServiceSpec]:
    """All services in file order (a `replicas:` entry's copies where it is, `groups`
    gets it); the base env is `environ` plus TUISUP_PYTHON."""
    out: dict[str, ServiceSpec] = {}
    if "services" not in top:
        r.add(root, "", "missing required key 'services'")
        return MappingProxyType(out)
    node = top["services"][1]
    items = r.mapping(node, "services", null_ok=False)
    if items is None:
        return MappingProxyType(out)
    if not items:
        r.add(node, "services", "must define at least one service")
    base = dict(environ)
    base.setdefault("TUISUP_PYTHON", sys.executable)
    for name, (key_node, value_node) in items.items():
        if not SERVICE_NAME.fullmatch(name) or name in {".", ".."}:
            msg = f"invalid service name {show(name)}: use only letters, digits, '_', '.' " \
                  "and '-'"
            r.add(key_node, "services", msg)
            continue
        if len(name) > MAX_NAME:
            msg = f"service name {show(name)} is longer than {MAX_NAME} characters"
            r.add(key_node, "services", msg)
            continue
        expand(r, out, {} if groups is None else groups, name, key_node, value_node, base,
               partial(load_service, name=name, key_node=key_node, node=value_node,
                       config_dir=config_dir, check=check), MAX_NAME)
    check_depends(r, out)
    return MappingProxyType(out)


def load_service(
    r: Reader, base: Mapping[str, str], *, name: str, key_node: Node, node: Node,
    config_dir: Path, check: bool,
) -> ServiceSpec | None:  # fmt: skip
    path = f"services.{name}"
    items = r.mapping(node, path, null_ok=False)
    if items is None:
        return None
    r.check_keys(items, SERVICE_KEYS, path, UNSUPPORTED_KEYS, peer_advice)
    if "command" not in items:
        r.add(key_node, path, "missing required key 'command'")
    env = dict(base)
    env_files = load_env_files(r, items, path, config_dir, env)
    if "env" in items:
        lower = dict(env)
        env_path = join(path, "env")
        for key, (kn, vn) in (r.mapping(items["env"][1], env_path) or {}).items():
            if not ENV_NAME.fullmatch(key):
                r.add(kn, env_path, f"invalid environment variable name {key!r}")
                continue
            try:
                env[key] = interpolate(env_value(r, vn), lower)
            except ValueError as e:
                r.add(vn, join(env_path, key), str(e))
    argv = load_command(r, items, path, env)
    cwd = r.text(items, "cwd", path, env)
    backoff = r.section(items, "backoff", path, BackoffSpec(), BACKOFF)
    if backoff.max < backoff.initial:
        msg = f"max ({backoff.max:g}s) must be at least initial ({backoff.initial:g}s)"
        r.add(items["backoff"][1], join(path, "backoff"), msg)
    spec = ServiceSpec(
        name=name,
        argv=argv,
        cwd=config_dir if cwd is None else expand_path(cwd, config_dir, env),
        env=MappingProxyType(env),
        env_files=env_files,
        user=r.text(items, "user", path, env),
        autostart=r.get(items, "autostart", path, to_bool, True),
        start_time=r.get(items, "start_time", path, duration(), 1.0),
        restart=RestartPolicy(r.get(items, "restart", path, restart_policy, "always")),
        success_codes=load_codes(r, items, path),
        backoff=backoff,
        crash_loop=r.section(items, "crash_loop", path, CrashLoopSpec(), CRASH_LOOP),
        stop=r.section(items, "stop", path, StopSpec(), STOP),
        log=r.section(items, "log", path, LogSpec(), LOG),
        limits=r.section(items, "limits", path, LimitsSpec(), LIMITS),
        health=load_health(r, items, path, env),
        rlimits=load_rlimits(r, items, path),
        depends_on=load_depends(r, items, path),
        line=key_node.start_mark.line + 1,
    )
    if check:
        check_service(r, spec, items, path, key_node)
    return spec


def restart_policy(value: Any) -> str:
    """`restart`: one of ours; compose's values (`unless-stopped`, `no`) say what to write."""
    advice = restart_value(value)
    if advice:
        raise ValueError(advice)
    return to_choice(tuple(p.value for p in RestartPolicy))(value)


def env_value(r: Reader, node: Node) -> str:
    """An env value as text: strings as parsed, numbers and booleans as written."""
    value = r.plain(node)
    if isinstance(value, str):
        return value
    if value is None or not isinstance(value, int | float | bool):
        raise ValueError(f"expected a string, number or boolean, got {show(value)}")
    return str(node.value)


def load_env_files(
    r: Reader, items: Items, path: str, config_dir: Path, env: dict[str, str]
) -> tuple[Path, ...]:
    """Read `env_file` (one path or a list) into `env`; returns the absolute paths."""
    if "env_file" not in items:
        return ()
    node = items["env_file"][1]
    is_list = isinstance(node, SequenceNode)
    files: list[Path] = []
    for i, item in enumerate(node.value if is_list else [node]):
        item_path = f"{path}.env_file[{i}]" if is_list else f"{path}.env_file"
        try:
            file = expand_path(interpolate(to_str(r.plain(item)), env), config_dir, env)
        except ValueError as e:
            r.add(item, item_path, str(e))
            continue
        files.append(file)
        try:
            env.update(parse_env_lines(read_capped(file).decode("utf-8")))
        except OSError as e:
            r.add(item, item_path, f"cannot read env file {file}: {e.strerror or e}")
        except TooBig as e:
            r.add(item, item_path, f"env file {file} is {e}")
        except UnicodeDecodeError:
            r.add(item, item_path, f"env file {file} is not valid UTF-8")
        except ValueError as e:
            r.add(item, item_path, f"env file {file}: {e}")
    return tuple(files)


def load_command(r: Reader, items: Items, path: str, env: Mapping[str, str]) -> tuple[str, ...]:
    """argv from a list (exec), a string (shlex split) or a shell string; () on errors."""
    if "command" not in items:
        return ()
    node, cmd_path = items["command"][1], join(path, "command")
    shell = r.get(items, "shell", path, to_bool, False)
    argv: list[str] = []
    if isinstance(node, SequenceNode):
        if shell:
            r.add(node, cmd_path, "with shell: true, command must be a string, got a list")
            return ()
        for i, item in enumerate(node.value):
            try:
                value = r.plain(item)
                if isinstance(value, bool) or not isinstance(value, str | int | float):
                    raise ValueError(f"expected a string, got {show(value)}")
                argv.append(interpolate(value if isinstance(value, str) else item.value, env))
            except ValueError as e:
                r.add(item, f"{cmd_path}[{i}]", str(e))
        if len(argv) != len(node.value):
            return ()
    else:
        try:
            value = r.plain(node)
            if not isinstance(value, str):
                raise ValueError(f"expected a list of strings or a string, got {show(value)}")
            if shell:
                argv = ["/bin/sh", "-c", shell_text(value, env)] if value.strip() else []
            else:
                try:
                    words = shlex.split(value)
                except ValueError as e:
                    raise ValueError(f"cannot split the command: {str(e).lower()}") from None
                argv = [interpolate(word, env) for word in words]
        except ValueError as e:
            r.add(node, cmd_path, str(e))
            return ()
    if not argv or not argv[0]:
        r.add(node, cmd_path, "command is empty")
        return ()
    return tuple(argv)


def shell_text(value: str, env: Mapping[str, str]) -> str:
    """A `shell: true` command interpolated; an undefined `${f}` there is most likely the
    shell's own variable, so the message says how to pass it through."""
    try:
        return interpolate(value, env)
    except Undefined as e:
        raise ValueError(f"{e} (write $${{{e.name}}} for a shell variable, or define "
                         f"{e.name} in env)") from None


def load_codes(r: Reader, items: Items, path: str) -> frozenset[int]:
    """success_codes: one int or a list of ints in 0..255."""
    if "success_codes" not in items:
        return frozenset({0})
    node, codes_path = items["success_codes"][1], join(path, "success_codes")
    nodes = node.value if isinstance(node, SequenceNode) else [node]
    codes: set[int] = set()
    for i, item in enumerate(nodes):
        try:
            codes.add(to_int(0, 255)(r.plain(item)))
        except ValueError as e:
            r.add(item, f"{codes_path}[{i}]" if item is not node else codes_path, str(e))
    return frozenset(codes) or frozenset({0})


def check_service(r: Reader, spec: ServiceSpec, items: Items, path: str, key_node: Node) -> None:
    """System checks: executable, working directory, user."""
    if spec.argv:
        problem = find_executable(spec.argv[0], spec.cwd, spec.env.get("PATH", os.defpath))
        if problem:
            r.add(items["command"][1], join(path, "command"), problem)
    cwd_node = items["cwd"][1] if "cwd" in items else key_node
    if not spec.cwd.exists():
        r.add(cwd_node, join(path, "cwd"), f"directory {str(spec.cwd)!r} does not exist")
    elif not spec.cwd.is_dir():
        r.add(cwd_node, join(path, "cwd"), f"{str(spec.cwd)!r} is not a directory")
    if spec.rlimits and os.geteuid() != 0:
        import resource

        for name, _soft, hard in spec.rlimits:
            cur = resource.getrlimit(getattr(resource, f"RLIMIT_{name.upper()}"))[1]
            if cur != resource.RLIM_INFINITY and (hard == -1 or hard > cur):
                r.add(items["rlimits"][1], join(join(path, "rlimits"), name),
                      f"needs root to raise the hard limit above {cur}")
    if spec.user:
        user_node, user_path = items["user"][1], join(path, "user")
        try:
            pwd.getpwnam(spec.user)
        except KeyError:
            r.add(user_node, user_path, f"unknown user {spec.user!r}")
            return
        if os.geteuid() != 0 and spec.user != current_user():
            r.add(user_node, user_path, f"needs root to switch to {spec.user!r}")


def current_user() -> str | None:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return None


def find_executable(program: str, cwd: Path, search_path: str) -> str | None:
    """None if `program` can be executed, else a message saying why not."""
    if "/" in program:
        target = Path(os.path.normpath(cwd / program))
        if not target.exists():
            return f"executable {program!r} not found (looked for {target})"
        if not target.is_file() or not os.access(target, os.X_OK):
            return f"{program!r} is not an executable file ({target})"
        return None
    for folder in search_path.split(os.pathsep):
        candidate = cwd / (folder or ".") / program
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return None
    return f"executable {program!r} not found in PATH"
