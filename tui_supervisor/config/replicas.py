"""`replicas: N`: one service entry becomes N services `web-0 ... web-(N-1)`.

Each copy is the entry loaded again with `REPLICA` (0-based) added to its base
environment, so `${REPLICA}` works wherever `${VAR}` does (command, env values, cwd,
env_file, user) and the process gets `REPLICA` in its environment too. A copy is a plain
`ServiceSpec` with `group` and `replica` set: its own log file (`web-2.log`), metrics and
state. `replicas: 1` still names its one copy `web-0`: a later `scale web 2` or a reload
to 2 then adds `web-1` without renaming (restarting) the running one.

`ReplicaGroup.make` builds any copy later from the same YAML (a live `scale`), with its
own issues. Pure but for the system checks `load` makes (as for any service).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from types import MappingProxyType

from yaml.nodes import MappingNode, Node

from tui_supervisor.config.reader import ConfigError, Reader, join
from tui_supervisor.config.schema import Config, ReplicaGroup, ServiceSpec
from tui_supervisor.config.units import to_int

REPLICA = "REPLICA"
"""The variable holding a copy's number (reserved: the supervisor's own is not passed on)."""
MAX_REPLICAS = 256
"""Copies of one service: each is a process, pipes, a log file and a row of the dashboard."""

Load = Callable[[Reader, Mapping[str, str]], "ServiceSpec | None"]
"""Load the entry with this reader and base environment (config/services.py)."""


def replica_name(group: str, i: int) -> str:
    return f"{group}-{i}"


def count_of(r: Reader, node: Node, path: str) -> int | None:
    """`replicas:` of an entry, or None (absent or wrong: the wrong one is reported)."""
    if not isinstance(node, MappingNode):
        return None
    items = Reader(r.file, r.loader).mapping(node, path)  # (its issues: load's to say)
    if not items or "replicas" not in items:
        return None
    count: int | None = r.get(items, "replicas", path, to_int(1, MAX_REPLICAS), None)
    return count


def expand(
    r: Reader, out: dict[str, ServiceSpec], groups: dict[str, ReplicaGroup], name: str,
    key_node: Node, node: Node, base: Mapping[str, str], load: Load, max_name: int,
) -> None:  # fmt: skip
    """Load entry `name` into `out` (one service, or its copies); a group into `groups`.
    A name already in `out` (a copy named like a service, or the reverse) is an error."""
    path = f"services.{name}"
    plain = MappingProxyType({k: v for k, v in base.items() if k != REPLICA})
    count = count_of(r, node, path)
    first = len(r.issues)
    if count is None:
        spec = load(r, plain)
        if spec is not None:
            _add(r, out, spec, key_node, path)
        return
    if len(replica_name(name, count - 1)) > max_name:
        r.add(key_node, path, f"replica name {replica_name(name, count - 1)!r} is longer "
                              f"than {max_name} characters")
        return

    def make(i: int, reader: Reader) -> ServiceSpec | None:
        spec = load(reader, MappingProxyType({**plain, REPLICA: str(i)}))
        return None if spec is None else replace(
            spec, name=replica_name(name, i), group=name, replica=i)

    def make_checked(i: int) -> ServiceSpec:
        reader = Reader(r.file, r.loader)
        spec = make(i, reader)
        if reader.issues or spec is None:
            raise ConfigError(reader.issues)
        return spec

    for i in range(count):
        spec = make(i, r)
        if spec is not None:
            _add(r, out, spec, key_node, path)
    # the same mistake in every copy is said once (a copy's own, e.g. its cwd, each time)
    r.issues[first:] = list(dict.fromkeys(r.issues[first:]))
    groups[name] = ReplicaGroup(name, count, make_checked)


def _add(r: Reader, out: dict[str, ServiceSpec], spec: ServiceSpec, key_node: Node,
         path: str) -> None:
    if spec.name in out:
        other = out[spec.name]
        whose = (f"a replica of {other.group!r}" if other.group else "a service")
        r.add(key_node, join(path, "replicas") if spec.group else path,
              f"{spec.name!r} is both {whose} (line {other.line}) and "
              + (f"a replica of {spec.group!r}" if spec.group else "a service")
              + ": rename one")
        return
    out[spec.name] = spec


def rescale(config: Config, group: str, n: int) -> Config:
    """`config` with `n` copies of `group` where its copies are (0..n-1 kept as they
    are, more made from its YAML, the highest ones dropped). Raises KeyError for a name
    that is not a group, ValueError for `n` out of range or a copy named like another
    service, ConfigError for a new copy whose values are wrong."""
    spec_of = config.groups[group]
    if not 1 <= n <= MAX_REPLICAS:
        raise ValueError(f"replicas must be between 1 and {MAX_REPLICAS}, got {n}")
    mine = [s for s in config.services.values() if s.group == group]
    have = {s.replica: s for s in mine}
    copies = [have.get(i) or spec_of.make(i) for i in range(n)]
    out: dict[str, ServiceSpec] = {}
    for name, spec in config.services.items():
        if spec.group != group:
            out[name] = spec
        elif spec is mine[0]:  # the group's place in the file
            for copy in copies:
                if copy.name in config.services and config.services[copy.name].group != group:
                    raise ValueError(f"{copy.name!r} is already a service: rename one")
                out[copy.name] = copy
    return replace(config, services=MappingProxyType(out))


def keep_scaled(config: Config, scaled: Mapping[str, tuple[int, int]]
                ) -> tuple[Config, dict[str, tuple[int, int]]]:
    """A newly read `config` with the counts a `scale` chose, `scaled`: group ->
    (count, the file's count then). Where the file's `replicas:` changed since (or the
    group is gone, or a copy cannot be made), the file wins. Returns the config and the
    counts still kept."""
    kept: dict[str, tuple[int, int]] = {}
    for group, (n, file_n) in scaled.items():
        spec_of = config.groups.get(group)
        if spec_of is None or spec_of.count != file_n or n == file_n:
            continue
        try:
            config = rescale(config, group, n)
        except (ValueError, ConfigError):
            continue
        kept[group] = (n, file_n)
    return config, kept
