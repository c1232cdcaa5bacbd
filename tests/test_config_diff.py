"""Reload planning: `diff(old, new)` on real fixture files.

A reload reads the same file again, so each fixture is copied to one fixed path
(`<tmp>/app/supervisor.yaml`) before loading: the config id and default dirs stay equal.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tui_supervisor.config import Config, ConfigDiff, diff, load_config

FIXTURES = Path(__file__).parent / "fixtures" / "configs"
ENVIRON = {"PATH": "/usr/bin:/bin", "HOME": "/home/test", "TUISUP_PYTHON": sys.executable}
ALL = ("web", "worker", "cron")


Loader = Callable[..., Config]


@pytest.fixture
def load(tmp_path: Path) -> Loader:
    """Load fixture `name` as `<tmp>/app/supervisor.yaml`."""
    app = tmp_path / "app"
    app.mkdir()
    shutil.copy(FIXTURES / "empty.env", app / "empty.env")

    def _load(name: str, environ: dict[str, str] = ENVIRON) -> Config:
        shutil.copy(FIXTURES / name, app / "supervisor.yaml")
        return load_config(app / "supervisor.yaml", environ=environ)

    return _load


@pytest.mark.parametrize(
    ("new", "expected"),
    [
        pytest.param("reload_base.yaml", ConfigDiff(unchanged=ALL), id="identical"),
        pytest.param("reload_same.yaml", ConfigDiff(unchanged=ALL), id="reformatted"),
        pytest.param(
            "reload_add.yaml",
            ConfigDiff(added=("mailer",), unchanged=ALL),
            id="add",
        ),
        pytest.param(
            "reload_remove.yaml",
            ConfigDiff(removed=("worker",), unchanged=("web", "cron")),
            id="remove",
        ),
        pytest.param(
            "reload_change_cmd.yaml",
            ConfigDiff(changed=("worker",), unchanged=("web", "cron")),
            id="change-command",
        ),
        pytest.param(
            "reload_change_env.yaml",
            ConfigDiff(changed=("web",), unchanged=("worker", "cron")),
            id="change-env",
        ),
        pytest.param(
            "reload_inplace_policy.yaml",
            ConfigDiff(in_place=("worker", "cron"), unchanged=("web",)),
            id="in-place-policy",
        ),
        pytest.param(
            "reload_rename.yaml",
            ConfigDiff(added=("jobs",), removed=("worker",), unchanged=("web", "cron")),
            id="rename",
        ),
        pytest.param(
            "reload_settings.yaml",
            ConfigDiff(unchanged=ALL, settings=("sample_interval", "metrics_listen")),
            id="settings",
        ),
        pytest.param(
            "reload_envfile.yaml",
            ConfigDiff(in_place=("cron",), unchanged=("web", "worker")),
            id="env-file-added-without-effect",
        ),
        pytest.param(
            "reload_mixed.yaml",
            ConfigDiff(added=("api",), removed=("worker",), changed=("web",), in_place=("cron",)),
            id="mixed",
        ),
    ],
)
def test_diff_against_base(load: Loader, new: str, expected: ConfigDiff) -> None:
    assert diff(load("reload_base.yaml"), load(new)) == expected


def test_removed_keeps_old_file_order(load: Loader) -> None:
    d = diff(load("reload_add.yaml"), load("reload_remove.yaml"))
    assert d == ConfigDiff(removed=("worker", "mailer"), unchanged=("web", "cron"))


def test_reverse_direction(load: Loader) -> None:
    d = diff(load("reload_rename.yaml"), load("reload_base.yaml"))
    assert d == ConfigDiff(added=("worker",), removed=("jobs",), unchanged=("web", "cron"))


def test_changed_env_from_supervisor_environment_means_restart(load: Loader) -> None:
    old = load("reload_base.yaml", {**ENVIRON, "LANG": "C"})
    new = load("reload_base.yaml", {**ENVIRON, "LANG": "C.UTF-8"})
    assert diff(old, new) == ConfigDiff(changed=ALL)


@pytest.mark.parametrize(
    ("d", "empty"),
    [
        (ConfigDiff(), True),
        (ConfigDiff(unchanged=("a",)), True),
        (ConfigDiff(added=("a",)), False),
        (ConfigDiff(removed=("a",)), False),
        (ConfigDiff(changed=("a",)), False),
        (ConfigDiff(in_place=("a",)), False),
        (ConfigDiff(settings=("metrics_listen",)), False),
    ],
)
def test_is_empty_and_bool(d: ConfigDiff, empty: bool) -> None:
    assert d.is_empty is empty
    assert bool(d) is (not empty)


def test_nothing_to_do_on_identical_and_reformatted_files(load: Loader) -> None:
    base = load("reload_base.yaml")
    assert not diff(base, load("reload_same.yaml"))
    assert diff(base, load("reload_change_env.yaml"))


def test_different_files_have_different_settings() -> None:
    # Different paths mean different config ids, hence different default dirs.
    old = load_config(FIXTURES / "reload_base.yaml", environ=ENVIRON)
    new = load_config(FIXTURES / "reload_same.yaml", environ=ENVIRON)
    assert diff(old, new) == ConfigDiff(unchanged=ALL,
                                        settings=("log_dir", "state_dir", "runtime_dir"))
