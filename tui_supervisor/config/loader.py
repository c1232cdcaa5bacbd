"""Load a YAML config file into the frozen specs of `schema.py`.

The YAML is composed (not constructed) so that every value keeps its position; every user
mistake becomes a `ConfigIssue` with file:line:col and a key path, and all issues of a
file are reported together in one `ConfigError`.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import re
import shlex
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from tui_supervisor.config.schema import (
    BackoffSpec,
    Config,
    CrashLoopSpec,
    LogSpec,
    RestartPolicy,
    ServiceSpec,
    Settings,
    StopSpec,
)
from tui_supervisor.config.units import (
    interpolate,
    parse_duration,
    parse_env_lines,
    parse_signal,
    parse_size,
    show,
    suggest,
    to_bool,
    to_choice,
    to_int,
    to_listen,
    to_number,
    to_str,
)

_NULL_TAG = "tag:yaml.org,2002:null"
_MERGE_TAG = "tag:yaml.org,2002:merge"

Items = dict[str, tuple[Node, Node]]
"""Keys of a YAML mapping -> (key node, value node), in file order."""


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem in a config file. `line`/`col` are 1-based (0 = the whole file)."""

    file: str
    line: int
    col: int
    key_path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.col}" if self.line else self.file
        path = f" {self.key_path}:" if self.key_path else ""
        return f"{where}:{path} {self.message}"


class ConfigError(Exception):
    """The config could not be loaded; `issues` lists every problem found, by line."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = sorted(issues, key=lambda i: (i.line, i.col))
        super().__init__("\n".join(str(i) for i in self.issues))


def join(path: str, key: str) -> str:
    """Key path of `key` under `path` (`services.web` + `cwd`)."""
    return f"{path}.{key}" if path else key


class Reader:
    """Walks composed YAML nodes, converting values and collecting issues."""

    def __init__(self, file: str, loader: yaml.SafeLoader) -> None:
        self.file = file
        self.loader = loader
        self.issues: list[ConfigIssue] = []

    def add(self, node: Node | None, path: str, message: str) -> None:
        line, col = (node.start_mark.line + 1, node.start_mark.column + 1) if node else (1, 1)
        self.issues.append(ConfigIssue(self.file, line, col, path, message))

    def plain(self, node: Node) -> Any:
        """The Python value of a scalar node; `[]`/`{}` stand in for lists/mappings."""
        if isinstance(node, SequenceNode):
            return []
        if isinstance(node, MappingNode):
            return {}
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.YAMLError:
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")
            raise ValueError(f"cannot use the YAML tag {tag} here") from None

    def is_null(self, node: Node) -> bool:
        return isinstance(node, ScalarNode) and node.tag == _NULL_TAG

    def mapping(
        self, node: Node, path: str, *, null_ok: bool = True, _seen: frozenset[int] = frozenset()
    ) -> Items | None:
        """Items of a mapping node (merge keys applied, duplicates reported), else None."""
        if null_ok and self.is_null(node):
            return {}
        if not isinstance(node, MappingNode):
            self.add(node, path, f"expected a mapping, got {self.describe(node)}")
            return None
        items: Items = {}
        seen = _seen | {id(node)}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
                for src in sources:
                    if id(src) in seen:
                        self.add(src, path, "a mapping cannot merge itself ('<<')")
                        continue
                    merged = self.mapping(src, path, null_ok=False, _seen=seen) or {}
                    for key, pair in merged.items():
                        items.setdefault(key, pair)
        merged = set(items)
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            if not isinstance(key_node, ScalarNode):
                self.add(key_node, path, "keys must be plain strings")
                continue
            key = key_node.value
            if key in items and key not in merged:
                first = items[key][0].start_mark.line + 1
                self.add(key_node, path, f"duplicate key {key!r} (first defined on line {first})")
                continue
            merged.discard(key)
            items[key] = (key_node, value_node)
        return items

    def describe(self, node: Node) -> str:
        try:
            return show(self.plain(node))
        except ValueError:
            return f"a value tagged {node.tag!r}"

    def check_keys(
        self,
        items: Items,
        allowed: Mapping[str, object] | set[str],
        path: str,
        unsupported: frozenset[str] = frozenset(),
    ) -> None:
        for key, (key_node, _) in items.items():
            if key in unsupported:
                self.add(key_node, join(path, key), "not supported yet")
            elif key not in allowed:
                hint = suggest(key, [*allowed, *unsupported])
                self.add(key_node, path, f"unknown key {key!r}{hint}")

    def get(
        self, items: Items, key: str, path: str, conv: Callable[[Any], Any], default: Any
    ) -> Any:
        """Convert `items[key]` with `conv` (which raises ValueError); default if absent/bad."""
        if key not in items:
            return default
        node = items[key][1]
        try:
            return conv(self.plain(node))
        except ValueError as e:
            self.add(node, join(path, key), str(e))
            return default

    def section(
        self, items: Items, key: str, path: str, default: Any, convs: dict[str, Any]
    ) -> Any:
        """A nested spec (backoff, stop, ...): `default` with the given fields replaced."""
        if key not in items:
            return default
        sub = join(path, key)
        found = self.mapping(items[key][1], sub)
        if found is None:
            return default
        self.check_keys(found, convs, sub)
        values = {k: self.get(found, k, sub, convs[k], getattr(default, k)) for k in convs}
        return replace(default, **values)

    def text(self, items: Items, key: str, path: str, env: Mapping[str, str]) -> str | None:
        """An interpolated string value, or None when absent, null or bad."""
        if key not in items or self.is_null(items[key][1]):
            return None
        raw = self.get(items, key, path, to_str, None)
        if raw is None:
            return None
        try:
            return interpolate(raw, env)
        except ValueError as e:
            self.add(items[key][1], join(path, key), str(e))
            return None


# --- files, paths and the top level ------------------------------------------------------


def _fail(file: str, line: int, col: int, message: str) -> ConfigError:
    return ConfigError([ConfigIssue(file, line, col, "", message)])


def read_text(path: Path, file: str) -> str:
    """The file as text, or ConfigError for unreadable, missing, directory, non-UTF-8."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise _fail(file, 0, 0, "file not found") from None
    except IsADirectoryError:
        raise _fail(file, 0, 0, "is a directory, expected a YAML file") from None
    except PermissionError:
        raise _fail(file, 0, 0, "cannot read the file: permission denied") from None
    except (OSError, ValueError) as e:  # ValueError: NUL in the path
        raise _fail(
            file, 0, 0, f"cannot read the file: {getattr(e, 'strerror', None) or e}"
        ) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        col = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        bad = f"0x{data[e.start]:02x}"
        raise _fail(file, line, col, f"not valid UTF-8 (byte {bad}); save it as UTF-8") from None


def compose(loader: yaml.SafeLoader, text: str, file: str) -> Node | None:
    """The root node, or ConfigError with a clean message for tabs and syntax errors."""
    try:
        return loader.get_single_node()
    except yaml.MarkedYAMLError as e:
        tabs = [
            ConfigIssue(file, n, len(m.group(0)), "", "tab in indentation; YAML needs spaces")
            for n, line in enumerate(text.splitlines(), start=1)
            if (m := re.match(r"[ ]*\t", line)) and line.strip()
        ]
        if tabs:
            raise ConfigError(tabs) from None
        mark = e.problem_mark or e.context_mark
        message = f"invalid YAML: {(e.problem or e.context or '').removeprefix('but ')}"
        ctx = e.context_mark
        if (
            e.context
            and e.problem
            and ctx
            and mark
            and (ctx.line, ctx.column) != (mark.line, mark.column)
        ):
            message += f" ({e.context} at {ctx.line + 1}:{ctx.column + 1})"
        if "<block" in message:
            message += "; check the indentation"
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise _fail(file, line, col, message) from None
    except yaml.reader.ReaderError as e:
        line = text.count("\n", 0, e.position) + 1
        col = e.position - (text.rfind("\n", 0, e.position) + 1) + 1
        raise _fail(
            file, line, col, f"invalid YAML: character {ord(e.character):#x} not allowed"
        ) from None
    except yaml.YAMLError as e:
        raise _fail(file, 1, 1, f"invalid YAML: {e}") from None


def expand_path(value: str, base: Path, environ: Mapping[str, str]) -> Path:
    """`~` expanded (HOME from `environ`), relative to `base`, normalized; no FS access."""
    if value == "~" or value.startswith("~/"):
        home = environ.get("HOME") or os.path.expanduser("~")
        value = home + value[1:]
    else:
        value = os.path.expanduser(value)
    return Path(os.path.normpath(base / value))


def make_config_id(path: Path) -> str:
    """`<stem>-<8 hex of sha1(absolute path)>`."""
    return f"{path.stem}-{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"


def default_dirs(config_id: str, environ: Mapping[str, str]) -> tuple[Path, Path]:
    """(state_dir, runtime_dir) defaults from XDG_STATE_HOME / XDG_RUNTIME_DIR."""
    state_home = environ.get("XDG_STATE_HOME", "")
    if not os.path.isabs(state_home):
        home = environ.get("HOME") or os.path.expanduser("~")
        state_home = os.path.join(home, ".local", "state")
    runtime = environ.get("XDG_RUNTIME_DIR", "")
    run_base = (
        Path(runtime, "tui-supervisor")
        if os.path.isabs(runtime)
        else Path(f"/tmp/tui-supervisor-{os.getuid()}")
    )
    return Path(state_home, "tui-supervisor", config_id), run_base / config_id


def load_settings(
    r: Reader, items: Items, config_dir: Path, config_id: str, env: Mapping[str, str]
) -> Settings:
    path = "settings"
    r.check_keys(items, SETTINGS_KEYS, path)
    state_dir, runtime_dir = default_dirs(config_id, env)
    dirs: dict[str, Path] = {}
    for key in ("state_dir", "runtime_dir", "log_dir"):
        value = r.text(items, key, path, env)
        if value is not None:
            dirs[key] = expand_path(value, config_dir, env)
    state_dir = dirs.get("state_dir", state_dir)
    return Settings(
        log_dir=dirs.get("log_dir", state_dir / "logs"),
        state_dir=state_dir,
        runtime_dir=dirs.get("runtime_dir", runtime_dir),
        sample_interval=r.get(items, "sample_interval", path, parse_duration, 1.0),
        metrics_listen=r.get(items, "metrics_listen", path, to_listen, None),
    )


SETTINGS_KEYS = {"log_dir", "state_dir", "runtime_dir", "sample_interval", "metrics_listen"}
TOP_KEYS = {"version", "settings", "services"}


def load_config(
    path: str | os.PathLike[str],
    *,
    environ: Mapping[str, str] | None = None,
    check_system: bool = False,
) -> Config:
    """Read, validate and resolve a config file. Raises ConfigError listing every problem.

    `environ` is the supervisor's environment (default `os.environ`): the base of every
    service environment and the source of XDG_* and HOME. `check_system` also checks
    executables, working directories and users. Never creates directories.
    """
    file = str(path)
    abs_path = Path(os.path.abspath(os.path.expanduser(file)))
    text = read_text(abs_path, file)
    abs_path = abs_path.resolve()
    env = dict(os.environ if environ is None else environ)
    loader = yaml.SafeLoader(text)
    try:
        root = compose(loader, text, file)
        r = Reader(file, loader)
        if root is None:
            raise _fail(file, 1, 1, "config is empty; expected a mapping with a 'services' key")
        if not isinstance(root, MappingNode):
            got = r.describe(root)
            r.add(root, "", f"top level must be a mapping with a 'services' key, got {got}")
            raise ConfigError(r.issues)
        top = r.mapping(root, "") or {}
        r.check_keys(top, TOP_KEYS, "")
        if "version" in top and r.describe(node := top["version"][1]) != "1":
            r.add(node, "version", f"must be 1, got {r.describe(node)}")
        config_id = make_config_id(abs_path)
        settings_items = r.mapping(top["settings"][1], "settings") if "settings" in top else {}
        settings = load_settings(r, settings_items or {}, abs_path.parent, config_id, env)
        services = load_services(r, top, root, abs_path.parent, env, check_system)
    finally:
        loader.dispose()
    if r.issues:
        raise ConfigError(r.issues)
    return Config(path=abs_path, config_id=config_id, settings=settings, services=services)


# --- services -----------------------------------------------------------------------------

SERVICE_NAME = re.compile(r"[A-Za-z0-9_.-]+")
ENV_NAME = re.compile(r"[^=\x00]+")
SERVICE_KEYS = {
    "command", "shell", "cwd", "env", "env_file", "user", "autostart", "start_time",
    "restart", "success_codes", "backoff", "crash_loop", "stop", "log",
}  # fmt: skip
UNSUPPORTED_KEYS = frozenset({"health", "depends_on", "replicas"})


def positive_duration(value: Any) -> float:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f"must be greater than 0, got {show(value)}")
    return seconds


BACKOFF = {
    "initial": parse_duration,
    "factor": to_number(1),
    "max": parse_duration,
    "jitter": to_number(0, 1),
    "reset_after": parse_duration,
}
CRASH_LOOP = {"max_failures": to_int(1), "window": positive_duration}
STOP = {"signal": parse_signal, "timeout": parse_duration}
LOG = {"max_bytes": parse_size, "backups": to_int(0), "ring_lines": to_int(1)}


def load_services(
    r: Reader, top: Items, root: Node, config_dir: Path, environ: Mapping[str, str], check: bool
) -> Mapping[str, ServiceSpec]:
    """All services in file order; the base env is `environ` plus TUISUP_PYTHON."""
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
            msg = f"invalid service name {name!r}: use only letters, digits, '_', '.' and '-'"
            r.add(key_node, "services", msg)
            continue
        spec = load_service(r, name, key_node, value_node, config_dir, base, check)
        if spec is not None:
            out[name] = spec
    return MappingProxyType(out)


def load_service(
    r: Reader, name: str, key_node: Node, node: Node, config_dir: Path,
    base: Mapping[str, str], check: bool,
) -> ServiceSpec | None:  # fmt: skip
    path = f"services.{name}"
    items = r.mapping(node, path, null_ok=False)
    if items is None:
        return None
    r.check_keys(items, SERVICE_KEYS, path, UNSUPPORTED_KEYS)
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
        start_time=r.get(items, "start_time", path, parse_duration, 1.0),
        restart=RestartPolicy(
            r.get(
                items, "restart", path, to_choice(tuple(p.value for p in RestartPolicy)), "always"
            )
        ),
        success_codes=load_codes(r, items, path),
        backoff=backoff,
        crash_loop=r.section(items, "crash_loop", path, CrashLoopSpec(), CRASH_LOOP),
        stop=r.section(items, "stop", path, StopSpec(), STOP),
        log=r.section(items, "log", path, LogSpec(), LOG),
        line=key_node.start_mark.line + 1,
    )
    if check:
        check_service(r, spec, items, path, key_node)
    return spec


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
            env.update(parse_env_lines(file.read_text(encoding="utf-8")))
        except OSError as e:
            r.add(item, item_path, f"cannot read env file {file}: {e.strerror or e}")
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
                argv = ["/bin/sh", "-c", interpolate(value, env)] if value.strip() else []
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
