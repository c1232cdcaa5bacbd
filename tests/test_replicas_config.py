"""`replicas: N` expands at load into web-0 ... web-(N-1), with ${REPLICA}: table tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tui_supervisor.config import ConfigError, load_config
from tui_supervisor.config.replicas import MAX_REPLICAS

ENV = {"HOME": "/home/u", "PATH": "/usr/bin:/bin", "REPLICA": "supervisor's own"}


def load(tmp_path: Path, text: str, **kw: object):  # type: ignore[no-untyped-def]
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return load_config(path, environ=ENV, **kw)  # type: ignore[arg-type]


def errors(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as err:
        load(tmp_path, text)
    return [str(i).split(":", 1)[1] for i in err.value.issues]


def test_replicas_expand_in_place_with_replica_everywhere(tmp_path: Path) -> None:
    c = load(tmp_path, (
        "services:\n"
        "  a: {command: [a]}\n"
        "  web:\n"
        "    replicas: 2\n"
        "    command: [srv, --port, '80${REPLICA}', '${NAME}']\n"
        "    env: {NAME: 'w${REPLICA}'}\n"
        "  z: {command: [z]}\n"
    ))
    assert list(c.services) == ["a", "web-0", "web-1", "z"]
    w0, w1 = c.services["web-0"], c.services["web-1"]
    assert w0.argv == ("srv", "--port", "800", "w0") and w1.argv[2:] == ("801", "w1")
    assert (w0.group, w0.replica, w1.group, w1.replica) == ("web", 0, "web", 1)
    assert w0.env["REPLICA"] == "0" and w1.env["REPLICA"] == "1"
    assert (c.services["a"].group, c.services["a"].replica) == (None, None)
    assert "REPLICA" not in c.services["a"].env  # reserved: the supervisor's is not passed
    assert c.groups["web"].count == 2 and list(c.groups) == ["web"]


def test_replica_in_cwd_and_env_file_paths(tmp_path: Path) -> None:
    for i in range(3):
        (tmp_path / f"d{i}").mkdir()
        (tmp_path / f"e{i}.env").write_text(f"K=v{i}\n")
    c = load(tmp_path, "services:\n  w:\n    replicas: 3\n    command: [a]\n"
                       "    cwd: d${REPLICA}\n    env_file: e${REPLICA}.env\n",
             check_system=False)
    for i in range(3):
        spec = c.services[f"w-{i}"]
        assert spec.cwd == tmp_path / f"d{i}" and spec.env["K"] == f"v{i}"


def test_one_replica_is_still_named_with_its_number(tmp_path: Path) -> None:
    c = load(tmp_path, "services:\n  web:\n    replicas: 1\n    command: [a]\n")
    assert list(c.services) == ["web-0"]


def test_make_builds_a_later_copy_from_the_same_yaml(tmp_path: Path) -> None:
    c = load(tmp_path, "services:\n  web:\n    replicas: 2\n    command: [a, '${REPLICA}']\n")
    spec = c.groups["web"].make(7)
    assert (spec.name, spec.argv, spec.group, spec.replica) == ("web-7", ("a", "7"), "web", 7)


def test_make_raises_for_a_copy_whose_values_are_wrong(tmp_path: Path) -> None:
    (tmp_path / "d0").mkdir()
    c = load(tmp_path, "services:\n  web:\n    replicas: 1\n    command: [/bin/true]\n"
                       "    cwd: d${REPLICA}\n", check_system=True)
    with pytest.raises(ConfigError, match=r"services\.web\.cwd: directory .*d1' does not"):
        c.groups["web"].make(1)


BAD = {
    "zero": ("services:\n  web:\n    replicas: 0\n    command: [a]\n",
             ["3:15: services.web.replicas: must be between 1 and 256, got 0"]),
    "too-many": (f"services:\n  web:\n    replicas: {MAX_REPLICAS + 1}\n    command: [a]\n",
                 ["3:15: services.web.replicas: must be between 1 and 256, got 257"]),
    "not-a-number": ("services:\n  web:\n    replicas: two\n    command: [a]\n",
                     ["3:15: services.web.replicas: expected an integer, got 'two'"]),
    "replica-var-without-replicas": (
        "services:\n  web:\n    command: [a, '${REPLICA}']\n",
        ["3:18: services.web.command[1]: undefined variable ${REPLICA} (defined only in a"
         " service with replicas:)"]),
    "clash-service-after": (
        "services:\n  web:\n    replicas: 2\n    command: [a]\n  web-1:\n    command: [b]\n",
        ["5:3: services.web-1: 'web-1' is both a replica of 'web' (line 2) and a service:"
         " rename one"]),
    "clash-service-before": (
        "services:\n  web-1:\n    command: [b]\n  web:\n    replicas: 2\n    command: [a]\n",
        ["4:3: services.web.replicas: 'web-1' is both a service (line 2) and a replica of"
         " 'web': rename one"]),
    "same-mistake-said-once": (
        "services:\n  web:\n    replicas: 3\n    command: [a]\n    restart: sometimes\n",
        ["5:14: services.web.restart: must be one of always, on-failure, never, got"
         " 'sometimes'"]),
    "name-too-long": (
        f"services:\n  {'w' * 63}:\n    replicas: 10\n    command: [a]\n",
        [f"2:3: services.{'w' * 63}: replica name '{'w' * 63}-9' is longer than 64"
         " characters"]),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_replicas_are_one_line_errors(tmp_path: Path, case: str) -> None:
    text, expected = BAD[case]
    assert errors(tmp_path, text) == expected
