"""Config: YAML file -> frozen specs (`load_config`), and reload planning (`diff`)."""

from __future__ import annotations

from tui_supervisor.config.diff import ConfigDiff, diff
from tui_supervisor.config.loader import ConfigError, ConfigIssue, load_config
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

__all__ = [
    "BackoffSpec",
    "Config",
    "ConfigDiff",
    "ConfigError",
    "ConfigIssue",
    "CrashLoopSpec",
    "LogSpec",
    "RestartPolicy",
    "ServiceSpec",
    "Settings",
    "StopSpec",
    "diff",
    "load_config",
]
