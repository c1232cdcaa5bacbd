"""Hostile config files: every one is refused by one line at file:line:col (with the key
path where one is known), in bounded time and memory, never by a traceback; every count,
size and duration has a range, said in the message."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import cli, one_error_line

from tui_supervisor.config import ConfigError, load_config
from tui_supervisor.config.parse import MAX_ALIAS_VALUES, MAX_DEPTH, MAX_FILE_BYTES
from tui_supervisor.config.reader import MAX_ISSUES

ENV = {"PATH": "/usr/bin:/bin", "HOME": "/home/test"}
SERVICE = "services:\n  web:\n    command: [sleep, '1']\n"


def write(tmp_path: Path, data: str | bytes, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    if isinstance(data, str):
        data = data.encode()
    path.write_bytes(data)
    return path


def issues(path: Path) -> list[str]:
    """The issues of a refused file, each without the "<path>:" prefix."""
    with pytest.raises(ConfigError) as err:
        load_config(path, environ=ENV)
    lines = [str(i) for i in err.value.issues]
    assert all("\n" not in line and "\r" not in line for line in lines)
    return [line.removeprefix(f"{path}:").lstrip() for line in lines]


def svc(*lines: str) -> str:
    return "services:\n  web:\n    command: [sleep, '1']\n" + "".join(
        f"    {line}\n" for line in lines)


def alias_bomb(levels: int = 24) -> str:
    """Each level merges the one before twice: 2**levels values once expanded."""
    lines = ["services:", "  web:", "    command: [sleep, '1']",
             "    env: &a0 {K0: v}"]
    for i in range(1, levels + 1):
        lines.append(f"  s{i}: &a{i} {{<<: [*a{i - 1}, *a{i - 1}], K{i}: v}}")
    lines.append(f"  last: {{command: [x], env: *a{levels}}}")
    return "\n".join(lines) + "\n"


# --- the file: size, bytes, characters -------------------------------------------------


@pytest.mark.parametrize(("char", "name"), [("\x00", "a NUL byte"),
                                            ("\x01", "control character U+0001"),
                                            ("\x1b", "control character U+001B"),
                                            ("\x7f", "control character U+007F")])
def test_control_characters_are_one_line_at_their_place(tmp_path: Path, char: str,
                                                        name: str) -> None:
    path = write(tmp_path, f"services:\n  web:\n    command: [sleep, '1{char}']\n")
    assert issues(path) == [f"3:24: {name} is not allowed in a YAML file (remove it, or "
                            "write it as an escape in a double-quoted string)"]
    line = one_error_line(cli(tmp_path, "check", "-c", str(path)))
    assert line.startswith(f"{path}:3:24: {name} is not allowed")


def test_a_nul_written_as_an_escape_is_refused_at_its_key(tmp_path: Path) -> None:
    path = write(tmp_path, svc('cwd: "/tmp\\0x"'))
    assert issues(path) == ["4:10: services.web.cwd: '/tmp\\x00x' holds a NUL character (\\0),"
                            " which no command, path or environment can hold"]
    path = write(tmp_path, 'services:\n  web:\n    command: [sleep, "1\\0"]\n')
    assert issues(path) == ["3:22: services.web.command[1]: '1\\x00' holds a NUL character "
                            "(\\0), which no command, path or environment can hold"]


def test_a_file_over_the_size_limit_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    path = write(tmp_path, SERVICE + "# " + "x" * (20 * 1024 * 1024) + "\n")  # 20 MB
    assert issues(path) == ["the file is larger than 4 MiB, the limit for a config file"]
    assert len(SERVICE + "# " + "x" * (MAX_FILE_BYTES - 200)) <= MAX_FILE_BYTES
    ok = write(tmp_path, SERVICE + "# " + "x" * (MAX_FILE_BYTES - 200) + "\n", "ok.yaml")
    assert list(load_config(ok, environ=ENV).services) == ["web"]


def test_an_endless_env_file_is_read_to_the_limit_only(tmp_path: Path) -> None:
    path = write(tmp_path, svc("env_file: /dev/zero"))
    assert issues(path) == ["4:15: services.web.env_file: env file /dev/zero is larger than "
                            "4 MiB, the limit for a config file"]
    (tmp_path / "nul.env").write_bytes(b"A=1\nB=x\x00y\n")
    path = write(tmp_path, svc(f"env_file: {tmp_path / 'nul.env'}"))
    assert issues(path) == [f"4:15: services.web.env_file: env file {tmp_path / 'nul.env'}: "
                            "line 2: holds a NUL character"]


# --- nesting, aliases, tags ------------------------------------------------------------


@pytest.mark.parametrize(("value", "col"), [("[" * 5000 + "]" * 5000, 75),
                                            ("{a: " * 5000 + "1" + "}" * 5000, 258)])
def test_deep_nesting_is_one_line(tmp_path: Path, value: str, col: int) -> None:
    path = write(tmp_path, f"services:\n  web:\n    command: {value}\n")
    (issue,) = issues(path)
    assert issue.startswith(f"3:{col}: services.web.command")
    assert issue.endswith(f"...: nested more than {MAX_DEPTH} levels deep")
    line = one_error_line(cli(tmp_path, "check", "-c", str(path)))
    assert line.endswith(f"nested more than {MAX_DEPTH} levels deep")


def test_nesting_through_aliases_counts(tmp_path: Path) -> None:
    chain = ["services:", "  web:", "    command: [sleep, '1']", "    env: &m0 {A: b}"]
    chain += [f"  s{i}: &m{i} {{<<: *m{i - 1}}}" for i in range(1, 100)]
    path = write(tmp_path, "\n".join(chain) + "\n")
    (issue,) = issues(path)
    assert issue == f"66:18: services.s62.<<: nested more than {MAX_DEPTH} levels deep " \
                    "(through *m61)"


def test_an_alias_bomb_is_refused_as_soon_as_it_grows(tmp_path: Path) -> None:
    path = write(tmp_path, alias_bomb())
    assert issues(path) == [f"17:25: services.s13.<<[1]: aliases expand to more than "
                            f"{MAX_ALIAS_VALUES} values in all (an alias bomb?)"]
    line = one_error_line(cli(tmp_path, "check", "-c", str(path)))
    assert "aliases expand to more than" in line


def test_a_billion_laughs_of_lists_is_refused(tmp_path: Path) -> None:
    lol = ['lols: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lol += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 10)]
    path = write(tmp_path, SERVICE + "\n".join(lol) + "\n")
    (issue,) = issues(path)
    assert "aliases expand to more than" in issue


def test_shared_blocks_merged_into_many_services_load(tmp_path: Path) -> None:
    text = ("services:\n  s0: &base {command: [sleep, '1'], restart: never, "
            "stop: {timeout: 2s}, env: {A: '1', B: '2'}}\n")
    text += "".join(f"  s{i}: {{<<: *base, env: {{N: '{i}'}}}}\n" for i in range(1, 1000))
    cfg = load_config(write(tmp_path, text), environ=ENV)
    assert len(cfg.services) == 1000 and cfg.services["s999"].stop.timeout == 2.0


@pytest.mark.parametrize(("tagged", "tag"), [
    ("!!python/object:os.system {a: 1}", "!!python/object:os.system"),
    ("!!python/object/apply:os.system [id]", "!!python/object/apply:os.system"),
    ("!!binary aGk=", "!!binary"),
    ("!!set {a, b}", "!!set"),
    ("!custom x", "!custom"),
])
def test_non_standard_tags_are_refused_where_they_are(tmp_path: Path, tagged: str,
                                                      tag: str) -> None:
    path = write(tmp_path, svc(f"cwd: {tagged}"))
    assert issues(path) == [f"4:10: services.web.cwd: the YAML tag {tag} is not allowed "
                            "(only !!str, !!int, !!float, !!bool, !!null, !!seq, !!map)"]


def test_a_tag_on_the_services_mapping_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "services: !!python/object:os.system\n  web:\n"
                           "    command: [sleep, '1']\n")
    line = one_error_line(cli(tmp_path, "check", "-c", str(path)))
    assert line == (f"{path}:1:11: services: the YAML tag !!python/object:os.system is not "
                    "allowed (only !!str, !!int, !!float, !!bool, !!null, !!seq, !!map)")


def test_standard_tags_still_work(tmp_path: Path) -> None:
    path = write(tmp_path, "services: !!map\n  web:\n    command: !!seq [sleep, !!str 1]\n"
                           "    start_time: !!float 2\n")
    assert load_config(path, environ=ENV).services["web"].argv == ("sleep", "1")


# --- counts, sizes, durations ------------------------------------------------------------

BOUNDS = [
    ("log: {backups: 1000000000000}", "4:20: services.web.log.backups",
     "must be between 0 and 100, got 1000000000000"),
    ("log: {backups: 101}", "4:20: services.web.log.backups",
     "must be between 0 and 100, got 101"),
    ("log: {max_bytes: 1KB}", "4:22: services.web.log.max_bytes",
     "must be between 16KB and 1TB (or 0: off), got '1KB'"),
    ("log: {max_bytes: 2TB}", "4:22: services.web.log.max_bytes",
     "must be between 16KB and 1TB (or 0: off), got '2TB'"),
    ("log: {max_bytes: 99999999999999999999999999999999}", "4:22: services.web.log.max_bytes",
     "must be between 16KB and 1TB (or 0: off), got 999999999999... (32 digits)"),
    ("log: {ring_lines: 100001}", "4:23: services.web.log.ring_lines",
     "must be between 1 and 100000, got 100001"),
    ("start_time: 25h", "4:17: services.web.start_time",
     "must be between 0s and 24h, got '25h'"),
    ("stop: {timeout: 99999999h}", "4:21: services.web.stop.timeout",
     "must be between 0s and 24h, got '99999999h'"),
    ("backoff: {initial: 2d}", "4:24: services.web.backoff.initial",
     "expected a duration like 250ms, 2s or 1m, got '2d'"),
    ("backoff: {max: 1e400}", "4:20: services.web.backoff.max",
     "expected a duration like 250ms, 2s or 1m, got '1e400'"),
    ("backoff: {max: 1.0e+400}", "4:20: services.web.backoff.max",
     "expected a duration like 250ms, 2s or 1m, got inf"),
    ("backoff: {reset_after: 1000000h}", "4:28: services.web.backoff.reset_after",
     "must be between 0s and 24h, got '1000000h'"),
    ("backoff: {factor: 1.0e+400}", "4:23: services.web.backoff.factor",
     "must be between 1 and 100, got inf"),
    ("backoff: {factor: 101}", "4:23: services.web.backoff.factor",
     "must be between 1 and 100, got 101"),
    ("crash_loop: {window: 30000h}", "4:26: services.web.crash_loop.window",
     "must be at most 24h, got '30000h'"),
    (f"crash_loop: {{max_failures: 1{'0' * 4000}}}", "4:32: services.web.crash_loop.max_failures",
     "must be at most 10000, got 100000000000... (4001 digits)"),
    (f"crash_loop: {{max_failures: 1{'0' * 5000}}}", "4:32: services.web.crash_loop.max_failures",
     f"cannot read '1{'0' * 59}'... (5001 characters) as !!int"),
    ("success_codes: [0, 256]", "4:24: services.web.success_codes[1]",
     "must be between 0 and 255, got 256"),
]


@pytest.mark.parametrize(("line", "where", "message"), BOUNDS,
                         ids=[b[1].rsplit(" ", 1)[1] + f"-{i}" for i, b in enumerate(BOUNDS)])
def test_every_count_size_and_duration_has_a_range(tmp_path: Path, line: str, where: str,
                                                   message: str) -> None:
    assert issues(write(tmp_path, svc(line))) == [f"{where}: {message}"]


@pytest.mark.parametrize(("value", "message"), [
    ("10ms", "must be between 100ms and 1h (or 0: off), got '10ms'"),
    ("2h", "must be between 100ms and 1h (or 0: off), got '2h'"),
])
def test_sample_interval_has_a_range(tmp_path: Path, value: str, message: str) -> None:
    path = write(tmp_path, f"settings: {{sample_interval: {value}}}\n" + SERVICE)
    assert issues(path) == [f"1:29: settings.sample_interval: {message}"]


def test_the_bounds_themselves_load(tmp_path: Path) -> None:
    path = write(tmp_path, "settings: {sample_interval: 100ms}\n" + svc(
        "start_time: 24h", "stop: {timeout: 24h}",
        "backoff: {initial: 24h, max: 24h, factor: 100, reset_after: 24h}",
        "crash_loop: {max_failures: 10000, window: 24h}",
        "log: {max_bytes: 16KB, backups: 100, ring_lines: 100000}"))
    web = load_config(path, environ=ENV).services["web"]
    assert (web.log.max_bytes, web.log.backups, web.crash_loop.window) == (16384, 100, 86400)
    zero = write(tmp_path, "settings: {sample_interval: 0}\n" + svc("log: {max_bytes: 0}"))
    assert load_config(zero, environ=ENV).services["web"].log.max_bytes == 0


def test_a_long_service_name_is_refused(tmp_path: Path) -> None:
    name = "a" * 300
    path = write(tmp_path, f"services:\n  {name}:\n    command: [sleep, '1']\n")
    line = one_error_line(cli(tmp_path, "check", "-c", str(path)))
    assert line == (f"{path}:2:3: services: service name '{'a' * 60}'... (300 characters) "
                    "is longer than 64 characters")
    ok = write(tmp_path, f"services:\n  {'b' * 64}:\n    command: [sleep, '1']\n")
    assert list(load_config(ok, environ=ENV).services) == ["b" * 64]


# --- messages stay one line, and few -----------------------------------------------------


def test_keys_with_line_breaks_do_not_break_the_message(tmp_path: Path) -> None:
    path = write(tmp_path, svc('env: {"A\\nB": [1], "C\\rD": "${X\\n"}'))
    assert issues(path) == [
        "4:19: services.web.env.A\\nB: expected a string, number or boolean, got a list",
        "4:32: services.web.env.C\\rD: unclosed '${' in '${X\\n'"]


def test_many_problems_are_cut_to_a_count(tmp_path: Path) -> None:
    codes = ", ".join(["300"] * 500)
    got = issues(write(tmp_path, svc(f"success_codes: [{codes}]")))
    assert len(got) == MAX_ISSUES + 1
    assert got[-1] == f"... and {500 - MAX_ISSUES} more problems"


def test_an_anchor_named_again_inside_itself_is_one_line(tmp_path: Path) -> None:
    """(Found by the fuzz test: the composer's own bookkeeping raised KeyError.)"""
    path = write(tmp_path, "services: &s\n  web: &s\n    command: [sleep, '1']\n")
    assert issues(path) == ["2:8: invalid YAML: second occurrence (found duplicate anchor 's'; "
                            "first occurrence at 1:11)"]
