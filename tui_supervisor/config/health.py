"""The `health:` key of a service: startup, readiness and liveness probes.

Each probe has exactly one kind key (`exec`, `http`, `tcp`, `log`, `silence`, `notify`)
and Kubernetes' timing fields. Every mistake is one issue at file:line:col.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Mapping
from typing import Any

from yaml.nodes import Node, SequenceNode

from tui_supervisor.config.reader import Items, Reader, join
from tui_supervisor.config.schema import HealthSpec, HttpProbe, ProbeSpec, TcpProbe

__all__ = ["HealthSpec", "HttpProbe", "ProbeSpec", "TcpProbe", "load_health"]
from tui_supervisor.config.units import (
    in_range,
    interpolate,
    parse_duration,
    show,
    show_duration,
    to_bool,
    to_choice,
    to_int,
    to_str,
)

KINDS = ("exec", "http", "tcp", "log", "silence", "notify")
PROBES = ("startup", "readiness", "liveness")
TIMING = ("initial_delay", "period", "timeout", "success_threshold", "failure_threshold")
MAX_PROBE_DURATION = 24 * 3600.0
MAX_THRESHOLD = 1000
ONLY_IN = {"silence": ("liveness",), "log": ("startup", "readiness")}
"""Kinds that make sense for some probes only: silence can only fail, a log line only
passes once."""


_DEFAULT = ProbeSpec(kind="")


def positive_duration(value: Any) -> float:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f"must be greater than 0, got {show(value)}")
    if seconds > MAX_PROBE_DURATION:
        raise ValueError(f"must be at most {show_duration(MAX_PROBE_DURATION)}, "
                         f"got {show(value)}")
    return seconds


def port(value: Any) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected a port number, got {show(value)}")
    if not 1 <= value <= 65535:
        raise ValueError(f"port must be between 1 and 65535, got {value}")
    return value


def regex(value: Any) -> str:
    text = to_str(value)
    try:
        re.compile(text)
    except re.error as e:
        raise ValueError(f"invalid regex {show(text)}: {e}") from None
    return text


TIMING_CONV: dict[str, Callable[[Any], Any]] = {
    "initial_delay": in_range(parse_duration, 0, MAX_PROBE_DURATION, show_duration),
    "period": positive_duration,
    "timeout": positive_duration,
    "success_threshold": to_int(1, MAX_THRESHOLD),
    "failure_threshold": to_int(1, MAX_THRESHOLD),
}


def load_health(r: Reader, items: Items, path: str, env: Mapping[str, str]) -> HealthSpec:
    """The service's `health:` (HealthSpec() when absent or wrong)."""
    if "health" not in items:
        return HealthSpec()
    hpath = join(path, "health")
    found = r.mapping(items["health"][1], hpath)
    if not found:
        return HealthSpec()
    r.check_keys(found, set(PROBES), hpath)
    probes: dict[str, ProbeSpec | None] = {}
    for name in PROBES:
        if name in found:
            probes[name] = load_probe(r, name, found[name][1], join(hpath, name), env)
    return HealthSpec(**probes)


def load_probe(r: Reader, name: str, node: Node, path: str,
               env: Mapping[str, str]) -> ProbeSpec | None:
    items = r.mapping(node, path, null_ok=False)
    if items is None:
        return None
    r.check_keys(items, {*KINDS, *TIMING}, path)
    kinds = [k for k in items if k in KINDS]
    if not kinds:
        if all(k in TIMING for k in items):  # else an unknown key is already reported
            r.add(node, path, f"needs one probe kind: {', '.join(KINDS)}")
        return None
    if len(kinds) > 1:
        r.add(items[kinds[1]][0], path,
              f"has two probe kinds ({kinds[0]} and {kinds[1]}); give one per probe")
        return None
    kind = kinds[0]
    key_node, value_node = items[kind]
    if name not in ONLY_IN.get(kind, PROBES):
        allowed = " or ".join(ONLY_IN[kind])
        r.add(key_node, join(path, kind), f"a {kind} probe is for {allowed}, not {name}")
        return None
    timing = {k: r.get(items, k, path, TIMING_CONV[k], getattr(_DEFAULT, k))
              for k in TIMING}
    if name != "readiness" and timing["success_threshold"] != 1 and \
            "success_threshold" in items:
        r.add(items["success_threshold"][1], join(path, "success_threshold"),
              f"must be 1 for a {name} probe (as Kubernetes)")
    kpath = join(path, kind)
    before = len(r.issues)
    spec: dict[str, Any] = {}
    try:
        if kind == "exec":
            spec["argv"] = exec_argv(r, value_node, kpath, env)
        elif kind == "http":
            spec["http"] = load_http(r, value_node, kpath, env)
        elif kind == "tcp":
            sub = r.mapping(value_node, kpath, null_ok=False) or {}
            r.check_keys(sub, {"port", "host"}, kpath)
            if "port" not in sub:
                r.add(value_node, kpath, "missing required key 'port'")
            spec["tcp"] = TcpProbe(port=r.get(sub, "port", kpath, interpolated(port, env), 0),
                                   host=r.get(sub, "host", kpath, interpolated(to_str, env),
                                              "127.0.0.1"))
        elif kind == "log":
            spec["pattern"] = regex(r.plain(value_node))
        elif kind == "silence":
            spec["silence"] = positive_duration(r.plain(value_node))
        elif kind == "notify" and not to_bool(r.plain(value_node)):
            raise ValueError("must be true (leave the probe out to turn it off)")
    except ValueError as e:
        r.add(value_node, kpath, str(e))
    if len(r.issues) > before:
        return None
    return ProbeSpec(kind=kind, **spec, **timing)


def interpolated(conv: Callable[[Any], Any], env: Mapping[str, str]) -> Callable[[Any], Any]:
    """`conv` of a value whose strings may hold ${VAR} of the service's env."""
    def read(value: Any) -> Any:
        return conv(interpolate(value, env) if isinstance(value, str) else value)
    return read


def exec_argv(r: Reader, node: Node, path: str, env: Mapping[str, str]) -> tuple[str, ...]:
    """A list is argv; a string runs with /bin/sh -c (with the service's env)."""
    if isinstance(node, SequenceNode):
        argv = []
        for item in node.value:
            value = r.plain(item)
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                raise ValueError(f"expected a list of strings, got {show(value)} in it")
            argv.append(interpolate(str(value), env))
        if not argv or not argv[0]:
            raise ValueError("command is empty")
        return tuple(argv)
    value = r.plain(node)
    if not isinstance(value, str):
        raise ValueError(f"expected a list of strings or a string, got {show(value)}")
    if not value.strip():
        raise ValueError("command is empty")
    try:
        shlex.split(value)
    except ValueError as e:
        raise ValueError(f"cannot split the command: {str(e).lower()}") from None
    return ("/bin/sh", "-c", value)


HTTP_KEYS = {"port", "host", "scheme", "path", "headers", "status", "body"}


def load_http(r: Reader, node: Node, path: str, env: Mapping[str, str]) -> HttpProbe | None:
    items = r.mapping(node, path, null_ok=False)
    if items is None:
        return None
    r.check_keys(items, HTTP_KEYS, path)
    if "port" not in items:
        r.add(node, path, "missing required key 'port'")
    text = interpolated(to_str, env)
    page = r.get(items, "path", path, text, "/")
    if not page.startswith("/"):
        r.add(items["path"][1], join(path, "path"), f"must start with /, got {show(page)}")
    headers: list[tuple[str, str]] = []
    if "headers" in items:
        hpath = join(path, "headers")
        for key, (kn, vn) in (r.mapping(items["headers"][1], hpath) or {}).items():
            value = r.get({key: (kn, vn)}, key, hpath, text, None)
            if not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", key):
                r.add(kn, hpath, f"invalid header name {show(key)}")
            elif value is not None and ("\r" in value or "\n" in value):
                r.add(vn, join(hpath, key), "a header value cannot hold a line break")
            elif value is not None:
                headers.append((key, value))
    return HttpProbe(
        port=r.get(items, "port", path, interpolated(port, env), 0),
        host=r.get(items, "host", path, text, "127.0.0.1"),
        scheme=r.get(items, "scheme", path, to_choice(("http", "https")), "http"),
        path=page,
        headers=tuple(headers),
        status=load_status(r, items, path),
        body=r.get(items, "body", path, to_str, None),
    )


def load_status(r: Reader, items: Items, path: str) -> frozenset[int]:
    if "status" not in items:
        return frozenset()
    node, spath = items["status"][1], join(path, "status")
    nodes = node.value if isinstance(node, SequenceNode) else [node]
    codes = set()
    for i, item in enumerate(nodes):
        try:
            codes.add(to_int(100, 599)(r.plain(item)))
        except ValueError as e:
            r.add(item, f"{spath}[{i}]" if item is not node else spath, str(e))
    return frozenset(codes)
