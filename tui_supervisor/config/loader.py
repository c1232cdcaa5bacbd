"""Load a YAML config file into the frozen specs of `schema.py`.

The YAML is composed (not constructed) so that every value keeps its position; every user
mistake becomes a `ConfigIssue` with file:line:col and a key path, and all issues of a
file are reported together in one `ConfigError`.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node

from tui_supervisor.config.reader import (
    ConfigError,
    ConfigIssue,
    Items,
    Reader,
    expand_path,
)
from tui_supervisor.config.schema import (
    Config,
    Settings,
)
from tui_supervisor.config.services import load_services
from tui_supervisor.config.units import (
    parse_duration,
    to_bool,
    to_listen,
)

__all__ = ["ConfigError", "ConfigIssue", "load_config"]


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


def fast_compose(text: str) -> tuple[Any, Node | None]:
    """(loader, root) parsed by libyaml (10x faster on big files), or (None, None) when
    libyaml is missing, the document is empty, or it has an error."""
    fast = getattr(yaml, "CSafeLoader", None)
    if fast is None:
        return None, None
    loader = fast(text)
    try:
        root = loader.get_single_node()
    except yaml.YAMLError:
        root = None
    if root is None:
        loader.dispose()
        return None, None
    return loader, root


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
        watch_config=r.get(items, "watch_config", path, to_bool, True),
        watch_code=r.get(items, "watch_code", path, to_bool, None),
        cgroups=r.get(items, "cgroups", path, to_cgroups_mode, "auto"),
    )


def to_cgroups_mode(value: object) -> str:
    if value is True:
        return "on"
    if value is False:
        return "off"
    if value in ("auto", "on", "off"):
        return str(value)
    raise ValueError(f"expected auto, on or off, got {value!r}")


SETTINGS_KEYS = {"log_dir", "state_dir", "runtime_dir", "sample_interval", "metrics_listen",
                 "watch_config", "watch_code", "cgroups"}
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
    loader, root = fast_compose(text)
    if loader is None:  # no libyaml, or an error: the pure parser words it best
        loader = yaml.SafeLoader(text)
    try:
        if root is None:
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
        if not settings.sample_interval:
            for name, spec in services.items():
                if spec.limits.memory is not None:  # checked at each sample
                    node = top["services"][1]
                    r.add(node, f"services.{name}.limits.memory",
                          "needs resource sampling: settings.sample_interval is 0")
    finally:
        loader.dispose()
    if r.issues:
        raise ConfigError(r.issues)
    return Config(path=abs_path, config_id=config_id, settings=settings, services=services,
                  environ=MappingProxyType(env))
