"""`health:`: every mistake is one file:line:col issue; good probes load as specs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tui_supervisor.config import ConfigError, load_config
from tui_supervisor.config.health import HealthSpec, HttpProbe, ProbeSpec, TcpProbe

ENV = {"PATH": "/usr/bin:/bin", "HOME": "/home/test", "PORT": "8080"}


def load(tmp_path: Path, *lines: str) -> HealthSpec:
    path = tmp_path / "s.yaml"
    path.write_text("services:\n  web:\n    command: [a]\n    health:\n"
                    + "".join(f"      {line}\n" for line in lines))
    return load_config(path, environ=ENV).services["web"].health


BAD = {
    "unknown-kind": ("liveness: {grpc: {port: 1}}",
                     "5:18: services.web.health.liveness: unknown key 'grpc'"),
    "no-kind": ("liveness: {period: 1s}",
                "5:17: services.web.health.liveness: needs one probe kind: exec, http, tcp,"
                " log, silence, notify"),
    "two-kinds": ("readiness: {tcp: {port: 1}, http: {port: 1}}",
                  "5:35: services.web.health.readiness: has two probe kinds (tcp and http);"
                  " give one per probe"),
    "bad-regex": ("startup: {log: 'ready ('}",
                  "5:22: services.web.health.startup.log: invalid regex 'ready (': missing ),"
                  " unterminated subpattern at position 6"),
    "port-range": ("readiness: {tcp: {port: 70000}}",
                   "5:31: services.web.health.readiness.tcp.port: port must be between 1 and"
                   " 65535, got 70000"),
    "port-missing": ("readiness: {http: {path: /}}",
                     "5:25: services.web.health.readiness.http: missing required key 'port'"),
    "silence-readiness": ("readiness: {silence: 5s}",
                          "5:19: services.web.health.readiness.silence: a silence probe is"
                          " for liveness, not readiness"),
    "log-liveness": ("liveness: {log: x}",
                     "5:18: services.web.health.liveness.log: a log probe is for startup or"
                     " readiness, not liveness"),
    "unknown-probe": ("readyness: {tcp: {port: 1}}",
                      "5:7: services.web.health: unknown key 'readyness' (did you mean"
                      " 'readiness'?)"),
    "zero-period": ("liveness: {tcp: {port: 1}, period: 0}",
                    "5:42: services.web.health.liveness.period: must be greater than 0, got 0"),
    "bad-duration": ("liveness: {tcp: {port: 1}, timeout: 1x}",
                     "5:43: services.web.health.liveness.timeout: expected a duration like"
                     " 250ms, 2s or 1m, got '1x'"),
    "threshold-zero": ("readiness: {tcp: {port: 1}, failure_threshold: 0}",
                       "5:54: services.web.health.readiness.failure_threshold: must be"
                       " between 1 and 1000, got 0"),
    "liveness-success": ("liveness: {tcp: {port: 1}, success_threshold: 2}",
                         "5:53: services.web.health.liveness.success_threshold: must be 1 for"
                         " a liveness probe (as Kubernetes)"),
    "notify-false": ("readiness: {notify: false}",
                     "5:27: services.web.health.readiness.notify: must be true (leave the"
                     " probe out to turn it off)"),
    "exec-empty": ("liveness: {exec: []}",
                   "5:24: services.web.health.liveness.exec: command is empty"),
    "exec-number": ("liveness: {exec: 3}",
                    "5:24: services.web.health.liveness.exec: expected a list of strings or a"
                    " string, got 3"),
    "http-status": ("readiness: {http: {port: 1, status: [200, 42]}}",
                    "5:49: services.web.health.readiness.http.status[1]: must be between 100"
                    " and 599, got 42"),
    "http-path": ("readiness: {http: {port: 1, path: healthz}}",
                  "5:41: services.web.health.readiness.http.path: must start with /, got"
                  " 'healthz'"),
    "http-scheme": ("readiness: {http: {port: 1, scheme: ftp}}",
                    "5:43: services.web.health.readiness.http.scheme: must be one of http,"
                    " https, got 'ftp'"),
    "http-header": ("readiness: {http: {port: 1, headers: {'a b': x}}}",
                    "5:45: services.web.health.readiness.http.headers: invalid header name"
                    " 'a b'"),
    "undefined-var": ("readiness: {tcp: {port: '${NOPE}'}}",
                      "5:31: services.web.health.readiness.tcp.port: undefined variable"),
    "not-mapping": ("liveness: 3",
                    "5:17: services.web.health.liveness: expected a mapping, got 3"),
}


@pytest.mark.parametrize(("line", "expected"), BAD.values(), ids=BAD.keys())
def test_bad_probe(tmp_path: Path, line: str, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        load(tmp_path, line)
    issues = [str(i) for i in err.value.issues]
    assert len(issues) == 1, issues
    assert issues[0].startswith(f"{tmp_path / 's.yaml'}:{expected}"), issues[0]
    assert "\n" not in issues[0]


def test_good_probes(tmp_path: Path) -> None:
    health = load(
        tmp_path,
        "startup: {http: {port: '${PORT}', path: /healthz, headers: {X-A: b},"
        " status: [200, 204], body: ok}, period: 1s, failure_threshold: 30}",
        "readiness: {tcp: {port: 8080}, period: 5s, success_threshold: 2}",
        "liveness: {exec: [./check.sh, -q], period: 10s, timeout: 2s, initial_delay: 500ms}",
    )
    assert health.startup == ProbeSpec(
        kind="http", http=HttpProbe(port=8080, path="/healthz", headers=(("X-A", "b"),),
                                    status=frozenset({200, 204}), body="ok"),
        period=1.0, failure_threshold=30)
    assert health.readiness == ProbeSpec(kind="tcp", tcp=TcpProbe(port=8080), period=5.0,
                                         success_threshold=2)
    assert health.liveness == ProbeSpec(kind="exec", argv=("./check.sh", "-q"), period=10.0,
                                        timeout=2.0, initial_delay=0.5)
    assert list(health.probes()) == ["startup", "readiness", "liveness"]


@pytest.mark.parametrize(("line", "expected"), [
    ("liveness: {exec: 'test -f /tmp/x'}",
     ProbeSpec(kind="exec", argv=("/bin/sh", "-c", "test -f /tmp/x"))),
    ("startup: {log: 'listening on \\d+'}", ProbeSpec(kind="log", pattern=r"listening on \d+")),
    ("liveness: {silence: 1m}", ProbeSpec(kind="silence", silence=60.0)),
    ("readiness: {notify: true}", ProbeSpec(kind="notify")),
    ("liveness: {notify: true, period: 2s}", ProbeSpec(kind="notify", period=2.0)),
])
def test_kinds(tmp_path: Path, line: str, expected: ProbeSpec) -> None:
    assert load(tmp_path, line).probes() == {line.split(":")[0]: expected}


def test_no_health(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("services:\n  web:\n    command: [a]\n")
    assert load_config(path, environ=ENV).services["web"].health == HealthSpec()
