"""Load a YAML config file into the frozen specs of `schema.py`.

The YAML is composed (not constructed; bounded: `parse.py`) so that every value keeps its
position; every user mistake becomes a `ConfigIssue` with file:line:col and a key path,
and all issues of a file are reported together in one `ConfigError`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from yaml.nodes import MappingNode

from tui_supervisor.config.parse import TooBig, compose, decode, fail, read_capped
from tui_supervisor.config.reader import (
    ConfigError,
    ConfigIssue,
    Items,
    Reader,
    expand_path,
)
from tui_supervisor.config.schema import (
    Config,
    ReplicaGroup,
    Settings,
)
from tui_supervisor.config.services import load_services
from tui_supervisor.config.units import (
    in_range,
    parse_duration,
    show_duration,
    to_bool,
    to_listen,
)

__all__ = ["ConfigError", "ConfigIssue", "load_config"]


# --- files, paths and the top level ------------------------------------------------------


def read_text(path: Path, file: str) -> str:
    """The file as checked text, or ConfigError: unreadable, missing, a directory, over
    MAX_FILE_BYTES, not UTF-8, or holding characters YAML does not allow."""
    try:
        data = read_capped(path)
    except FileNotFoundError:
        raise fail(file, 0, 0, "file not found") from None
    except IsADirectoryError:
        raise fail(file, 0, 0, "is a directory, expected a YAML file") from None
    except PermissionError:
        raise fail(file, 0, 0, "cannot read the file: permission denied") from None
    except (OSError, ValueError) as e:  # ValueError: NUL in the path
        raise fail(
            file, 0, 0, f"cannot read the file: {getattr(e, 'strerror', None) or e}"
        ) from None
    except TooBig as e:
        raise fail(file, 0, 0, f"the file is {e}") from None
    return decode(data, file)


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
        sample_interval=r.get(items, "sample_interval", path, SAMPLE_INTERVAL, 1.0),
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


SAMPLE_INTERVAL = in_range(parse_duration, 0.1, 3600.0, show_duration, off=True)
"""Sampling every service's processes more often than 10 times a second costs the engine
more than it tells; less often than hourly is not sampling."""
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
    loader, root = compose(text, file)
    try:
        r = Reader(file, loader)
        if root is None:
            raise fail(file, 1, 1, "config is empty; expected a mapping with a 'services' key")
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
        groups: dict[str, ReplicaGroup] = {}
        services = load_services(r, top, root, abs_path.parent, env, check_system, groups)
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
                  environ=MappingProxyType(env), groups=MappingProxyType(groups))
