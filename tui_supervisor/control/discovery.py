"""Finding a config's engine from outside it: where it listens, and whether it is alive."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from tui_supervisor.engine import proc
from tui_supervisor.engine.runtime import read_lock_pid


def engine_alive(runtime_dir: Path) -> int | None:
    """The pid the config's engine lock names, if that process is alive (not a zombie).
    Read from the file, without taking the lock (that could make an engine starting at
    this moment think another one runs)."""
    pid = read_lock_pid(runtime_dir / "engine.lock")
    st = proc.stat(pid) if pid else None
    return pid if st is not None and st.state != "Z" else None


def runtime_dir_for(config_path: str | os.PathLike[str]) -> Path:
    """Where the engine of a config listens. Found from the config even when it no longer
    validates (an edit with a typo must not cut the user off from the running engine):
    then from its path, and its `settings.runtime_dir` if that can still be read.
    A missing or unreadable file raises ConfigError."""
    import yaml

    from tui_supervisor.config import ConfigError, load_config
    from tui_supervisor.config.loader import default_dirs, make_config_id
    from tui_supervisor.config.reader import expand_path
    from tui_supervisor.config.units import interpolate

    try:
        return load_config(config_path).settings.runtime_dir
    except ConfigError as e:
        error = e
    path = Path(os.path.abspath(os.path.expanduser(config_path)))
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError):
        raise error from None
    path = path.resolve()
    _state, run = default_dirs(make_config_id(path), os.environ)
    with contextlib.suppress(Exception):
        value = yaml.safe_load(text)["settings"]["runtime_dir"]
        if isinstance(value, str):
            run = expand_path(interpolate(value, os.environ), path.parent, os.environ)
    return run
