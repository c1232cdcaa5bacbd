"""`load_config`: exact messages for bad configs, resolved values for good ones."""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from pathlib import Path
from types import MappingProxyType

import pytest

from tui_supervisor.config import (
    BackoffSpec,
    ConfigError,
    CrashLoopSpec,
    LogSpec,
    RestartPolicy,
    ServiceSpec,
    StopSpec,
    load_config,
)
from tui_supervisor.config.units import (
    interpolate,
    parse_duration,
    parse_env_lines,
    parse_signal,
    parse_size,
)

ENV = {"PATH": "/usr/bin:/bin", "HOME": "/home/test", "TUISUP_PYTHON": "/opt/py"}


def write(tmp_path: Path, text: str, files: dict[str, str] | None = None) -> Path:
    for name, content in (files or {}).items():
        (tmp_path / name).write_text(content)
    path = tmp_path / "supervisor.yaml"
    path.write_text(text)
    return path


def errors(path: Path, **kwargs: object) -> list[str]:
    with pytest.raises(ConfigError) as err:
        load_config(path, environ=ENV, **kwargs)  # type: ignore[arg-type]
    assert str(err.value) == "\n".join(str(i) for i in err.value.issues)
    return [str(i) for i in err.value.issues]


def svc(*lines: str) -> str:
    """A config with one service `web` whose body is `lines` (indented by 4)."""
    return "services:\n  web:\n" + "".join(f"    {line}\n" for line in lines)


# (yaml text, extra files, expected issues without the "<path>:" prefix; {dir} = tmp_path)
BAD: dict[str, tuple[str, dict[str, str], list[str]]] = {
    "tabs": (
        "services:\n\tweb:\n\t\tcommand: x\n",
        {},
        [
            "2:1: tab in indentation; YAML needs spaces",
            "3:1: tab in indentation; YAML needs spaces",
        ],
    ),
    "yaml-unterminated-string": (
        svc('command: "echo'),
        {},
        [
            "4:1: invalid YAML: found unexpected end of stream"
            " (while scanning a quoted scalar at 3:14)"
        ],
    ),
    "yaml-bad-indent": (
        "services:\n  web:\n    command: x\n   user: y\n",
        {},
        [
            "4:4: invalid YAML: expected <block end>, but found '<block mapping start>'"
            " (while parsing a block mapping at 2:3); check the indentation"
        ],
    ),
    "yaml-two-documents": (
        "services: {}\n---\nservices: {}\n",
        {},
        [
            "2:1: invalid YAML: found another document"
            " (expected a single document in the stream at 1:1)"
        ],
    ),
    "yaml-python-tag": (
        svc("command: !!python/name:os.system x"),
        {},
        ["3:14: services.web.command: the YAML tag !!python/name:os.system is not allowed "
         "(only !!str, !!int, !!float, !!bool, !!null, !!seq, !!map)"],
    ),
    "empty-file": ("", {}, ["1:1: config is empty; expected a mapping with a 'services' key"]),
    "only-comments": (
        "# nothing\n\n",
        {},
        ["1:1: config is empty; expected a mapping with a 'services' key"],
    ),
    "top-level-list": (
        "- web\n- db\n",
        {},
        ["1:1: top level must be a mapping with a 'services' key, got a list"],
    ),
    "top-level-scalar": (
        "hello\n",
        {},
        ["1:1: top level must be a mapping with a 'services' key, got 'hello'"],
    ),
    "duplicate-service": (
        "services:\n  web:\n    command: [a]\n  web:\n    command: [b]\n",
        {},
        ["4:3: services: duplicate key 'web' (first defined on line 2)"],
    ),
    "duplicate-key-in-service": (
        svc("command: [a]", "command: [b]"),
        {},
        ["4:5: services.web: duplicate key 'command' (first defined on line 3)"],
    ),
    "unknown-service-key": (
        svc("command: [a]", "restat: always"),
        {},
        ["4:5: services.web: unknown key 'restat' (did you mean 'restart'?)"],
    ),
    "unknown-top-key-and-missing-services": (
        "version: 1\nservice:\n  web: {command: [a]}\n",
        {},
        [
            "1:1: missing required key 'services'",
            "2:1: unknown key 'service' (did you mean 'services'?)",
        ],
    ),
    "unknown-settings-key-no-suggestion": (
        "settings:\n  colour: red\n" + svc("command: [a]"),
        {},
        ["2:3: settings: unknown key 'colour'"],
    ),
    "unknown-nested-key": (
        svc("command: [a]", "backoff: {intial: 1s}"),
        {},
        ["4:15: services.web.backoff: unknown key 'intial' (did you mean 'initial'?)"],
    ),
    "merge-itself": (
        "services:\n  a: &x {command: [a], <<: *x}\n",
        {},
        ["2:28: services.a.<<: *x refers to a node that contains it (&x on line 2)"],
    ),
    "depends-on-unknown": (
        svc("command: [a]", "depends_on: [db]"),
        {},
        ["4:18: services.web.depends_on.db: unknown service 'db'"],
    ),
    "replicas-out-of-range": (
        svc("command: [a]", "replicas: 0"),
        {},
        ["4:15: services.web.replicas: must be between 1 and 256, got 0"],
    ),
    "bool-expected": (
        svc("command: [a]", "autostart: maybe"),
        {},
        ["4:16: services.web.autostart: expected a boolean, got 'maybe'"],
    ),
    "mapping-expected": (
        svc("command: [a]", "env: [A=1]"),
        {},
        ["4:10: services.web.env: expected a mapping, got a list"],
    ),
    "command-wrong-type": (
        svc("command: 5"),
        {},
        ["3:14: services.web.command: expected a list of strings or a string, got 5"],
    ),
    "command-item-wrong-type": (
        svc("command: [a, [b]]"),
        {},
        ["3:18: services.web.command[1]: expected a string, got a list"],
    ),
    "service-is-null": (
        "services:\n  web:\n",
        {},
        ["2:7: services.web: expected a mapping, got null"],
    ),
    "string-expected": (
        svc("command: [a]", "user: 5"),
        {},
        ["4:11: services.web.user: expected a string, got 5"],
    ),
    "restart-typo": (
        svc("command: [a]", "restart: alwys"),
        {},
        [
            "4:14: services.web.restart: must be one of always, on-failure, never,"
            " got 'alwys' (did you mean 'always'?)"
        ],
    ),
    "restart-wrong-type": (
        svc("command: [a]", "restart: 1"),
        {},
        ["4:14: services.web.restart: must be one of always, on-failure, never, got 1"],
    ),
    "env-value-null": (
        svc("command: [a]", "env: {A: ~}"),
        {},
        ["4:14: services.web.env.A: expected a string, number or boolean, got null"],
    ),
    "env-bad-name": (
        svc("command: [a]", 'env: {"A=B": x}'),
        {},
        ["4:11: services.web.env: invalid environment variable name 'A=B'"],
    ),
    "bad-duration": (
        svc("command: [a]", "start_time: abc"),
        {},
        ["4:17: services.web.start_time: expected a duration like 250ms, 2s or 1m, got 'abc'"],
    ),
    "bad-duration-words": (
        svc("command: [a]", "start_time: 5 minutes"),
        {},
        [
            "4:17: services.web.start_time: expected a duration like 250ms, 2s or 1m,"
            " got '5 minutes'"
        ],
    ),
    "bad-size": (
        svc("command: [a]", "log: {max_bytes: 10XB}"),
        {},
        ["4:22: services.web.log.max_bytes: expected a size like 512KB, 10MB or 1GB, got '10XB'"],
    ),
    "negative-backups": (
        svc("command: [a]", "log: {backups: -1}"),
        {},
        ["4:20: services.web.log.backups: must be between 0 and 100, got -1"],
    ),
    "ring-lines-not-int": (
        svc("command: [a]", "log: {ring_lines: many}"),
        {},
        ["4:23: services.web.log.ring_lines: expected an integer, got 'many'"],
    ),
    "bad-signal": (
        svc("command: [a]", "stop: {signal: FOO}"),
        {},
        ["4:20: services.web.stop.signal: expected a signal like TERM, SIGINT or 15, got 'FOO'"],
    ),
    "negative-timeout": (
        svc("command: [a]", "stop: {timeout: -5s}"),
        {},
        ["4:21: services.web.stop.timeout: must not be negative, got '-5s'"],
    ),
    "success-code-out-of-range": (
        svc("command: [a]", "success_codes: [0, 256]"),
        {},
        ["4:24: services.web.success_codes[1]: must be between 0 and 255, got 256"],
    ),
    "success-code-single-negative": (
        svc("command: [a]", "success_codes: -1"),
        {},
        ["4:20: services.web.success_codes: must be between 0 and 255, got -1"],
    ),
    "jitter-above-1": (
        svc("command: [a]", "backoff: {jitter: 1.5}"),
        {},
        ["4:23: services.web.backoff.jitter: must be between 0 and 1, got 1.5"],
    ),
    "factor-below-1": (
        svc("command: [a]", "backoff: {factor: 0.5}"),
        {},
        ["4:23: services.web.backoff.factor: must be between 1 and 100, got 0.5"],
    ),
    "backoff-max-below-initial": (
        svc("command: [a]", "backoff: {initial: 10s, max: 1s}"),
        {},
        ["4:14: services.web.backoff: max (1s) must be at least initial (10s)"],
    ),
    "crash-loop-zero-failures": (
        svc("command: [a]", "crash_loop: {max_failures: 0, window: 0}"),
        {},
        [
            "4:32: services.web.crash_loop.max_failures: must be at least 1, got 0",
            "4:43: services.web.crash_loop.window: must be greater than 0, got 0",
        ],
    ),
    "crash-loop-too-many-failures": (
        svc("command: [a]", "crash_loop: {max_failures: 100000, window: 60}"),
        {},
        ["4:32: services.web.crash_loop.max_failures: must be at most 10000, got 100000"],
    ),
    "crash-loop-give-up-not-a-boolean": (
        svc("command: [a]", "crash_loop: {give_up: yes please}"),
        {},
        ["4:27: services.web.crash_loop.give_up: expected a boolean, got 'yes please'"],
    ),
    "env-file-missing": (
        svc("command: [a]", "env_file: missing.env"),
        {},
        [
            "4:15: services.web.env_file: cannot read env file {dir}/missing.env:"
            " No such file or directory"
        ],
    ),
    "env-file-list-second-missing": (
        svc("command: [a]", "env_file: [a.env, b.env]"),
        {"a.env": "A=1\n"},
        [
            "4:23: services.web.env_file[1]: cannot read env file {dir}/b.env:"
            " No such file or directory"
        ],
    ),
    "env-file-bad-line": (
        svc("command: [a]", "env_file: .env"),
        {".env": "GOOD=1\nthis is bad\n"},
        [
            "4:15: services.web.env_file: env file {dir}/.env: line 2:"
            " expected KEY=VALUE, got 'this is bad'"
        ],
    ),
    "undefined-var-in-command": (
        svc('command: [echo, "${NOPE}"]'),
        {},
        ["3:21: services.web.command[1]: undefined variable ${NOPE}"],
    ),
    "undefined-var-in-cwd": (
        svc("command: [a]", "cwd: ${NOPE}/x"),
        {},
        ["4:10: services.web.cwd: undefined variable ${NOPE}"],
    ),
    "env-does-not-see-siblings": (
        svc("command: [a]", "env:", '  A: "1"', '  B: "${A}"'),
        {},
        ["6:10: services.web.env.B: undefined variable ${A}"],
    ),
    "unclosed-var": (
        svc('command: "echo ${HOME"'),
        {},
        ["3:14: services.web.command: unclosed '${' in '${HOME'"],
    ),
    "escaped-dollar-is-not-a-variable": (
        svc('command: [echo, "$${NOPE}", "${NOPE2}"]'),
        {},
        ["3:33: services.web.command[2]: undefined variable ${NOPE2}"],
    ),
    "shell-with-list": (
        svc("command: [echo, hi]", "shell: true"),
        {},
        ["3:14: services.web.command: with shell: true, command must be a string, got a list"],
    ),
    "shell-not-bool": (
        svc("command: echo", "shell: sometimes"),
        {},
        ["4:12: services.web.shell: expected a boolean, got 'sometimes'"],
    ),
    "empty-command-list": (
        svc("command: []"),
        {},
        ["3:14: services.web.command: command is empty"],
    ),
    "empty-command-string": (
        svc('command: "  "'),
        {},
        ["3:14: services.web.command: command is empty"],
    ),
    "empty-shell-command": (
        svc('command: ""', "shell: true"),
        {},
        ["3:14: services.web.command: command is empty"],
    ),
    "missing-command": (
        "services:\n  web:\n    user: x\n",
        {},
        ["2:3: services.web: missing required key 'command'"],
    ),
    "unclosed-quote": (
        svc('command: "echo \'hi"'),
        {},
        ["3:14: services.web.command: cannot split the command: no closing quotation"],
    ),
    "bad-service-name": (
        'services:\n  "my web":\n    command: [a]\n  web/x:\n    command: [a]\n',
        {},
        [
            "2:3: services: invalid service name 'my web': use only letters, digits,"
            " '_', '.' and '-'",
            "4:3: services: invalid service name 'web/x': use only letters, digits,"
            " '_', '.' and '-'",
        ],
    ),
    "version-2": ("version: 2\n" + svc("command: [a]"), {}, ["1:10: version: must be 1, got 2"]),
    "version-string": (
        'version: "1"\n' + svc("command: [a]"),
        {},
        ["1:10: version: must be 1, got '1'"],
    ),
    "services-empty": ("services: {}\n", {}, ["1:11: services: must define at least one service"]),
    "services-list": (
        "services: [web]\n",
        {},
        ["1:11: services: expected a mapping, got a list"],
    ),
    "metrics-bad-port": (
        "settings:\n  metrics_listen: localhost:99999\n" + svc("command: [a]"),
        {},
        ["2:19: settings.metrics_listen: port must be between 1 and 65535, got 99999"],
    ),
    "metrics-no-host": (
        "settings:\n  metrics_listen: 9464\n" + svc("command: [a]"),
        {},
        ["2:19: settings.metrics_listen: expected a string, got 9464"],
    ),
    "bad-sample-interval": (
        "settings:\n  sample_interval: often\n" + svc("command: [a]"),
        {},
        ["2:20: settings.sample_interval: expected a duration like 250ms, 2s or 1m, got 'often'"],
    ),
}


@pytest.mark.parametrize(("text", "files", "expected"), BAD.values(), ids=BAD.keys())
def test_bad_config(tmp_path: Path, text: str, files: dict[str, str], expected: list[str]) -> None:
    path = write(tmp_path, text, files)
    assert errors(path) == [f"{path}:" + e.replace("{dir}", str(tmp_path)) for e in expected]


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "supervisor.yaml"
    path.write_bytes(b"services:\n  web:\n    command: [caf\xe9]\n")
    assert errors(path) == [f"{path}:3:18: not valid UTF-8 (byte 0xe9); save it as UTF-8"]


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    assert errors(path) == [f"{path}: file not found"]


def test_directory_as_config(tmp_path: Path) -> None:
    assert errors(tmp_path) == [f"{tmp_path}: is a directory, expected a YAML file"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read anything")
def test_unreadable_file(tmp_path: Path) -> None:
    path = write(tmp_path, svc("command: [a]"))
    path.chmod(0)
    assert errors(path) == [f"{path}: cannot read the file: permission denied"]


def test_all_errors_reported_at_once_sorted_by_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "version: 3\n"
        "services:\n"
        "  web:\n"
        "    command: [a]\n"
        "    restart: sometimes\n"
        "    stop: {signal: NOPE, timeout: 1x}\n"
        "  db:\n"
        "    command: []\n"
        "    replicas: 3\n"
        "  web:\n"
        "    command: [b]\n"
        "settings: {sample_interval: -1}\n",
    )
    assert errors(path) == [
        f"{path}:1:10: version: must be 1, got 3",
        f"{path}:5:14: services.web.restart: must be one of always, on-failure, never,"
        " got 'sometimes'",
        f"{path}:6:20: services.web.stop.signal: expected a signal like TERM, SIGINT or 15,"
        " got 'NOPE'",
        f"{path}:6:35: services.web.stop.timeout: expected a duration like 250ms, 2s or 1m,"
        " got '1x'",
        f"{path}:8:14: services.db.command: command is empty",
        f"{path}:10:3: services: duplicate key 'web' (first defined on line 3)",
        f"{path}:12:29: settings.sample_interval: must not be negative, got -1",
    ]


# --- check_system --------------------------------------------------------------------------


def check_errors(tmp_path: Path, text: str) -> list[str]:
    path = write(tmp_path, text)
    load_config(path, environ=ENV)  # fine without the system checks
    return [e.removeprefix(f"{path}:") for e in errors(path, check_system=True)]


def test_check_missing_executable(tmp_path: Path) -> None:
    assert check_errors(tmp_path, svc("command: [no-such-program-xyz, -v]")) == [
        "3:14: services.web.command: executable 'no-such-program-xyz' not found in PATH"
    ]


def test_check_missing_relative_executable(tmp_path: Path) -> None:
    assert check_errors(tmp_path, svc("command: ./run.sh", "cwd: bin")) == [
        f"3:14: services.web.command: executable './run.sh' not found"
        f" (looked for {tmp_path}/bin/run.sh)",
        f"4:10: services.web.cwd: directory '{tmp_path}/bin' does not exist",
    ]


def test_check_not_executable(tmp_path: Path) -> None:
    (tmp_path / "run.sh").write_text("#!/bin/sh\n")
    assert check_errors(tmp_path, svc("command: ./run.sh")) == [
        f"3:14: services.web.command: './run.sh' is not an executable file ({tmp_path}/run.sh)"
    ]


def test_check_cwd_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("")
    assert check_errors(tmp_path, svc("command: [sh]", "cwd: afile")) == [
        f"4:10: services.web.cwd: '{tmp_path}/afile' is not a directory"
    ]


def test_check_unknown_user(tmp_path: Path) -> None:
    assert check_errors(tmp_path, svc("command: [sh]", "user: no-such-user-xyz")) == [
        "4:11: services.web.user: unknown user 'no-such-user-xyz'"
    ]


@pytest.mark.skipif(os.geteuid() == 0, reason="root may switch users")
def test_check_user_needs_root(tmp_path: Path) -> None:
    assert check_errors(tmp_path, svc("command: [sh]", "user: root")) == [
        "4:11: services.web.user: needs root to switch to 'root'"
    ]


def test_check_passes(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    script = tmp_path / "bin" / "run.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    path = write(
        tmp_path,
        "services:\n"
        "  a: {command: [sh, -c, 'true']}\n"
        "  b: {command: ./run.sh, cwd: bin}\n"
        "  c: {command: run.sh, env: {PATH: '/nowhere:bin'}}\n"
        "  d: {command: [sh], user: root}\n",
    )
    config = load_config(path, environ=ENV, check_system=True)
    assert list(config.services) == ["a", "b", "c", "d"]


# --- good configs --------------------------------------------------------------------------


def config_id_of(path: Path) -> str:
    return f"{path.stem}-{hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:8]}"


def test_minimal_config_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, svc('command: [sleep, "1"]'))
    config = load_config(path, environ=ENV)
    cid = config_id_of(path)
    assert config.path == path.resolve()
    assert config.config_id == cid
    state = Path("/home/test/.local/state/tui-supervisor") / cid
    assert config.settings.state_dir == state
    assert config.settings.log_dir == state / "logs"
    assert config.settings.runtime_dir == Path(f"/tmp/tui-supervisor-{os.getuid()}") / cid
    assert config.settings.sample_interval == 1.0
    assert config.settings.metrics_listen is None
    assert isinstance(config.services, MappingProxyType)
    web = config.services["web"]
    assert web == ServiceSpec(
        name="web",
        argv=("sleep", "1"),
        cwd=tmp_path,
        env=MappingProxyType(dict(ENV)),
        line=2,
    )
    assert isinstance(web.env, MappingProxyType)
    assert (web.autostart, web.start_time, web.restart) == (True, 1.0, RestartPolicy.ALWAYS)
    assert web.success_codes == frozenset({0})
    assert (web.backoff, web.crash_loop, web.stop, web.log) == (
        BackoffSpec(),
        CrashLoopSpec(),
        StopSpec(),
        LogSpec(),
    )


def test_xdg_dirs(tmp_path: Path) -> None:
    path = write(tmp_path, svc("command: [a]"))
    environ = {"HOME": "/h", "XDG_STATE_HOME": "/xs", "XDG_RUNTIME_DIR": "/run/user/7"}
    settings = load_config(path, environ=environ).settings
    cid = config_id_of(path)
    assert settings.state_dir == Path("/xs/tui-supervisor") / cid
    assert settings.log_dir == Path("/xs/tui-supervisor") / cid / "logs"
    assert settings.runtime_dir == Path("/run/user/7/tui-supervisor") / cid


def test_relative_xdg_state_home_is_ignored(tmp_path: Path) -> None:
    path = write(tmp_path, svc("command: [a]"))
    settings = load_config(path, environ={"HOME": "/h", "XDG_STATE_HOME": "rel"}).settings
    assert settings.state_dir == Path("/h/.local/state/tui-supervisor") / config_id_of(path)


def test_settings_paths_and_values(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "settings:\n"
        "  log_dir: logs\n"
        "  state_dir: ~/state\n"
        "  runtime_dir: /run/x/../tsup\n"
        "  sample_interval: 0\n"
        "  metrics_listen: 0.0.0.0:9464\n" + svc("command: [a]"),
    )
    settings = load_config(path, environ=ENV).settings
    assert settings.log_dir == tmp_path / "logs"
    assert settings.state_dir == Path("/home/test/state")
    assert settings.runtime_dir == Path("/run/tsup")
    assert settings.sample_interval == 0.0
    assert settings.metrics_listen == "0.0.0.0:9464"


def test_loader_creates_no_directories(tmp_path: Path) -> None:
    path = write(tmp_path, "settings: {log_dir: logs, state_dir: st}\n" + svc("command: [a]"))
    load_config(path, environ={"HOME": str(tmp_path / "home")})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["supervisor.yaml"]


def test_durations_sizes_signals_in_config(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        svc(
            "command: [a]",
            "start_time: 250ms",
            "backoff: {initial: 1.5s, factor: 3, max: 1m, jitter: 0, reset_after: 1h}",
            "crash_loop: {max_failures: 2, window: 90, give_up: true}",
            "stop: {signal: sigint, timeout: 0}",
            "log: {max_bytes: 1.5MB, backups: 0, ring_lines: 1}",
        ),
    )
    web = load_config(path, environ=ENV).services["web"]
    assert web.start_time == 0.25
    assert web.backoff == BackoffSpec(
        initial=1.5, factor=3.0, max=60.0, jitter=0.0, reset_after=3600.0
    )
    assert web.crash_loop == CrashLoopSpec(max_failures=2, window=90.0, give_up=True)
    assert web.stop == StopSpec(signal=2, timeout=0.0)
    assert web.log == LogSpec(max_bytes=1572864, backups=0, ring_lines=1)


def test_env_layering(tmp_path: Path) -> None:
    files = {
        "one.env": "# first\nexport B=file1\nC='file1'\n\nD=\"file1\"\n",
        "two.env": "C=file2\nE=file2 # not a comment\n",
    }
    path = write(
        tmp_path,
        svc("command: [a]", "env_file: [one.env, two.env]", 'env: {D: yaml, F: "${C}"}'),
        files,
    )
    environ = {"A": "sup", "B": "sup", "C": "sup", "D": "sup"}
    web = load_config(path, environ=environ).services["web"]
    assert dict(web.env) == {
        "A": "sup",
        "B": "file1",
        "C": "file2",
        "D": "yaml",
        "E": "file2 # not a comment",
        "F": "file2",
        "TUISUP_PYTHON": sys.executable,
    }
    assert web.env_files == (tmp_path / "one.env", tmp_path / "two.env")


def test_env_value_types_are_kept_as_written(tmp_path: Path) -> None:
    path = write(tmp_path, svc("command: [a]", 'env: {P: 8000, V: 1.10, D: yes, T: true, S: "x"}'))
    env = load_config(path, environ={}).services["web"].env
    assert {k: env[k] for k in "PVDTS"} == {
        "P": "8000",
        "V": "1.10",
        "D": "yes",
        "T": "true",
        "S": "x",
    }


def test_tuisup_python_default_and_override(tmp_path: Path) -> None:
    path = write(tmp_path, svc('command: ["${TUISUP_PYTHON}", -m, http.server]'))
    assert load_config(path, environ={}).services["web"].argv == (
        sys.executable,
        "-m",
        "http.server",
    )
    assert load_config(path, environ=ENV).services["web"].argv == ("/opt/py", "-m", "http.server")


def test_interpolation_everywhere(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        svc(
            'command: ["${APP}/run", "--port=${PORT}", "$$HOME", "$${PORT}", "a$b",'
            ' "${MISSING:-dflt}"]',
            "cwd: ${APP}",
            "user: ${WHO}",
            'env: {PORT: "80${N}", APP: /srv/app, WHO: nobody}',
        ),
    )
    web = load_config(path, environ={"N": "80", "APP": "/opt/app", "WHO": "root"}).services["web"]
    assert web.argv == ("/srv/app/run", "--port=8080", "$HOME", "${PORT}", "a$b", "dflt")
    assert web.cwd == Path("/srv/app")
    assert web.user == "nobody"
    assert web.env["PORT"] == "8080"


def test_string_command_is_split(tmp_path: Path) -> None:
    path = write(tmp_path, svc("command: \"prog -m 'a b' ${X}\""))
    argv = load_config(path, environ={"X": "two words"}).services["web"].argv
    assert argv == ("prog", "-m", "a b", "two words")


def test_shell_command(tmp_path: Path) -> None:
    path = write(tmp_path, svc('command: "echo $$HOME && ls ${DIR} | wc -l"', "shell: true"))
    argv = load_config(path, environ={"DIR": "/tmp"}).services["web"].argv
    assert argv == ("/bin/sh", "-c", "echo $HOME && ls /tmp | wc -l")


def test_relative_paths(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "app.env").write_text("K=v\n")
    path = tmp_path / "conf" / "supervisor.yaml"
    path.write_text(
        "services:\n"
        "  a: {command: [x], cwd: work, env_file: app.env}\n"
        "  b: {command: [x], cwd: ../other/./dir}\n"
        "  c: {command: [x], cwd: ~/w}\n"
        "  d: {command: [x], cwd: /abs}\n"
    )
    services = load_config(path, environ=ENV).services
    assert services["a"].cwd == tmp_path / "conf" / "work"
    assert services["a"].env_files == (tmp_path / "conf" / "app.env",)
    assert services["a"].env["K"] == "v"
    assert services["b"].cwd == tmp_path / "other" / "dir"
    assert services["c"].cwd == Path("/home/test/w")
    assert services["d"].cwd == Path("/abs")


def test_config_id_stability(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, svc("command: [a]"))
    first = load_config(path, environ=ENV).config_id
    assert first == config_id_of(path)
    assert first.startswith("supervisor-") and len(first) == len("supervisor-") + 8
    path.write_text(svc("command: [b]"))  # content does not matter
    assert load_config(path, environ=ENV).config_id == first
    monkeypatch.chdir(tmp_path)
    assert load_config("supervisor.yaml", environ=ENV).config_id == first
    other = tmp_path / "elsewhere"
    other.mkdir()
    shutil.copy(path, other / "supervisor.yaml")
    assert load_config(other / "supervisor.yaml", environ=ENV).config_id != first


def test_service_order_lines_and_immutability(tmp_path: Path) -> None:
    path = write(
        tmp_path, "services:\n  z: {command: [a]}\n  a: {command: [a]}\n\n  m:\n    command: [a]\n"
    )
    services = load_config(path, environ=ENV).services
    assert [(s.name, s.line) for s in services.values()] == [("z", 2), ("a", 3), ("m", 5)]
    with pytest.raises(TypeError):
        services["x"] = services["z"]  # type: ignore[index]


def test_yaml_booleans_and_success_codes(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "services:\n"
        "  a: {command: [x], autostart: off, success_codes: 3, restart: on-failure}\n"
        "  b: {command: [x], autostart: yes, success_codes: [0, 2, 255], restart: never}\n",
    )
    a, b = load_config(path, environ=ENV).services.values()
    assert (a.autostart, a.success_codes, a.restart) == (
        False,
        frozenset({3}),
        RestartPolicy.ON_FAILURE,
    )
    assert (b.autostart, b.success_codes, b.restart) == (
        True,
        frozenset({0, 2, 255}),
        RestartPolicy.NEVER,
    )


def test_merge_keys(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "services:\n"
        "  a: &base\n"
        "    command: [sleep, '1']\n"
        "    restart: never\n"
        "  b:\n"
        "    <<: *base\n"
        "    restart: on-failure\n",
    )
    b = load_config(path, environ=ENV).services["b"]
    assert (b.argv, b.restart, b.line) == (("sleep", "1"), RestartPolicy.ON_FAILURE, 5)


# --- units ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(0, 0.0), ("0", 0.0), (2, 2.0), (0.5, 0.5), ("250ms", 0.25), ("2s", 2.0), ("1.5s", 1.5),
     ("1m", 60.0), ("1h", 3600.0), ("1h30m", 5400.0), (" 3s ", 3.0), ("7", 7.0)],
)  # fmt: skip
def test_parse_duration(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize(
    ("value", "message"),
    [("abc", "expected a duration like 250ms, 2s or 1m, got 'abc'"),
     ("2 s s", "expected a duration like 250ms, 2s or 1m, got '2 s s'"),
     (True, "expected a duration like 250ms, 2s or 1m, got true"),
     (None, "expected a duration like 250ms, 2s or 1m, got null"),
     (float("inf"), "expected a duration like 250ms, 2s or 1m, got inf"),
     (-1, "must not be negative, got -1"), ("-2s", "must not be negative, got '-2s'")],
)  # fmt: skip
def test_parse_duration_errors(value: object, message: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_duration(value)
    assert str(err.value) == message


@pytest.mark.parametrize(
    ("value", "size"),
    [(0, 0), (1024, 1024), ("100B", 100), ("100", 100), ("512KB", 524288), ("10MB", 10485760),
     ("1.5MB", 1572864), ("1GB", 1073741824), ("2 kb", 2048), ("1MiB", 1048576)],
)  # fmt: skip
def test_parse_size(value: object, size: int) -> None:
    assert parse_size(value) == size


@pytest.mark.parametrize(
    ("value", "message"),
    [("10XB", "expected a size like 512KB, 10MB or 1GB, got '10XB'"),
     (1.5, "expected a size like 512KB, 10MB or 1GB, got 1.5"),
     (False, "expected a size like 512KB, 10MB or 1GB, got false"),
     (-1, "must not be negative, got -1"), ("-1KB", "must not be negative, got '-1KB'")],
)  # fmt: skip
def test_parse_size_errors(value: object, message: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_size(value)
    assert str(err.value) == message


@pytest.mark.parametrize(
    ("value", "number"),
    [("TERM", 15), ("SIGTERM", 15), ("term", 15), (15, 15), ("15", 15), ("INT", 2), ("hup", 1),
     ("SIGKILL", 9)],
)  # fmt: skip
def test_parse_signal(value: object, number: int) -> None:
    assert parse_signal(value) == number


@pytest.mark.parametrize("value", ["FOO", "SIG", "SIG_DFL", 0, 999, True, 1.0, None])
def test_parse_signal_errors(value: object) -> None:
    with pytest.raises(ValueError) as err:
        parse_signal(value)
    assert str(err.value).startswith("expected a signal like TERM, SIGINT or 15, got ")


@pytest.mark.parametrize(
    ("text", "result"),
    [("${A}", "1"), ("x${A}y${B}", "x1y"), ("$$", "$"), ("$${A}", "${A}"), ("$$$${A}", "$${A}"),
     ("a$b", "a$b"), ("$", "$"), ("${C:-z}", "z"), ("${B:-z}", "z"), ("${A:-z}", "1")],
)  # fmt: skip
def test_interpolate(text: str, result: str) -> None:
    assert interpolate(text, {"A": "1", "B": ""}) == result


@pytest.mark.parametrize(
    ("text", "message"),
    [("${NOPE}", "undefined variable ${NOPE}"), ("${A", "unclosed '${' in '${A'"),
     ("${1X}", "invalid variable name '1X' in '${1X}'")],
)  # fmt: skip
def test_interpolate_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError) as err:
        interpolate(text, {"A": "1"})
    assert str(err.value) == message


def test_parse_env_lines() -> None:
    text = "# c\n\nexport A=1\nB = 'two words'\nC=\"q\"\nD=\nE='mis\"\nF=a=b\n"
    assert parse_env_lines(text) == {
        "A": "1",
        "B": "two words",
        "C": "q",
        "D": "",
        "E": "'mis\"",
        "F": "a=b",
    }
