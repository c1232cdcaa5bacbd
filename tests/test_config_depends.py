"""`depends_on:`: both forms, and one file:line:col error for each bad case."""

from __future__ import annotations

from pathlib import Path

import pytest

from tui_supervisor.config import ConfigError, load_config
from tui_supervisor.config.depends import find_cycle
from tui_supervisor.config.schema import DependencySpec

ENV = {"PATH": "/usr/bin:/bin", "HOME": "/home/test"}


def load(tmp_path: Path, body: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "s.yaml"
    path.write_text("services:\n" + body)
    return load_config(path, environ=ENV)


def errors(tmp_path: Path, body: str) -> list[str]:
    with pytest.raises(ConfigError) as err:
        load(tmp_path, body)
    prefix = str(tmp_path / "s.yaml") + ":"
    return [str(i).removeprefix(prefix) for i in err.value.issues]


def test_list_form_means_started_restart_forever(tmp_path: Path) -> None:
    cfg = load(tmp_path, "  db: {command: [a]}\n  web: {command: [a], depends_on: [db]}\n")
    assert cfg.services["web"].depends_on == (DependencySpec("db", "started", True, None),)
    assert cfg.services["db"].depends_on == ()


def test_mapping_form(tmp_path: Path) -> None:
    cfg = load(tmp_path, "  db: {command: [a]}\n  m: {command: [a], restart: never}\n"
                         "  web:\n    command: [a]\n    depends_on:\n"
                         "      db: {restart: false, timeout: 30s}\n"
                         "      m: {condition: completed_successfully}\n")
    assert cfg.services["web"].depends_on == (
        DependencySpec("db", "started", False, 30.0),
        DependencySpec("m", "completed_successfully", True, None))


BAD = {
    "unknown": ("  web: {command: [a], depends_on: [db]}\n",
                ["2:36: services.web.depends_on.db: unknown service 'db'"]),
    "self": ("  web: {command: [a], depends_on: [web]}\n",
             ["2:36: services.web.depends_on.web: a service cannot depend on itself"]),
    "cycle": ("  a: {command: [a], depends_on: [b]}\n  b: {command: [a], depends_on: [c]}\n"
              "  c: {command: [a], depends_on: [a]}\n",
              ["2:34: services.a.depends_on.b: dependency cycle: a -> b -> c -> a"]),
    "condition": ("  db: {command: [a]}\n  web:\n    command: [a]\n"
                  "    depends_on: {db: {condition: healthy}}\n",
                  ["5:34: services.web.depends_on.db.condition: must be one of started,"
                   " ready, completed_successfully, log_ready, got 'healthy'"]),
    "restart": ("  db: {command: [a]}\n  web:\n    command: [a]\n"
                "    depends_on: {db: {restart: maybe}}\n",
                ["5:32: services.web.depends_on.db.restart: expected a boolean, got 'maybe'"]),
    "timeout": ("  db: {command: [a]}\n  web:\n    command: [a]\n"
                "    depends_on: {db: {timeout: 0s}}\n",
                ["5:32: services.web.depends_on.db.timeout: must be greater than 0, got '0s'"]),
    "key": ("  db: {command: [a]}\n  web:\n    command: [a]\n"
            "    depends_on: {db: {conditon: ready}}\n",
            ["5:23: services.web.depends_on.db: unknown key 'conditon' (did you mean"
             " 'condition'?)"]),
    "twice": ("  db: {command: [a]}\n  web: {command: [a], depends_on: [db, db]}\n",
              ["3:40: services.web.depends_on[1]: 'db' is listed twice"]),
    "not-a-name": ("  db: {command: [a]}\n  web: {command: [a], depends_on: [[db]]}\n",
                   ["3:36: services.web.depends_on[0]: expected a service name, got a list"]),
    "scalar": ("  db: {command: [a]}\n  web: {command: [a], depends_on: db}\n",
               ["3:35: services.web.depends_on: expected a list of names or a mapping,"
               " got 'db'"]),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad(tmp_path: Path, case: str) -> None:
    body, want = BAD[case]
    assert errors(tmp_path, body) == want


@pytest.mark.parametrize(("edges", "cycle"), [
    ({"a": ["b"], "b": []}, None),
    ({"a": ["b"], "b": ["a"]}, ["a", "b", "a"]),
    ({"a": ["b", "c"], "b": ["c"], "c": []}, None),  # a diamond is no cycle
    ({"x": ["a"], "a": ["b"], "b": ["a"]}, ["a", "b", "a"]),
    ({f"s{i}": [f"s{i + 1}"] for i in range(3000)}, None),  # deep: no recursion limit
])
def test_find_cycle(edges: dict[str, list[str]], cycle: list[str] | None) -> None:
    assert find_cycle(edges) == cycle


def test_condition_needs_a_probe_when_probes_exist(tmp_path: Path) -> None:
    """`ready`/`log_ready` need a probe on the dependency: checked once ServiceSpec has
    `health` (part A); until then a no-op (the condition just never holds)."""
    body = ("  db: {command: [a]}\n  web:\n    command: [a]\n"
            "    depends_on: {db: {condition: ready}}\n")
    from tui_supervisor.config.schema import ServiceSpec
    if "health" not in ServiceSpec.__dataclass_fields__:
        assert load(tmp_path, body).services["web"].depends_on[0].condition == "ready"
    else:
        assert errors(tmp_path, body) == [
            "5:18: services.web.depends_on.db: condition ready, but 'db' has no readiness"
            " probe (health.readiness)"]
