"""Typed, immutable config specs. No I/O here: `loader.py` builds these from YAML.

Durations are seconds (float), sizes are bytes (int), paths are absolute once loaded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType


class RestartPolicy(StrEnum):
    """When the supervisor respawns a service whose process exited by itself."""

    ALWAYS = "always"
    """Respawn after every exit the operator did not ask for."""
    ON_FAILURE = "on-failure"
    """Respawn unless the exit code is one of `success_codes`."""
    NEVER = "never"
    """Never respawn; the service ends in `exited` (or `fatal`)."""


@dataclass(frozen=True, slots=True)
class BackoffSpec:
    initial: float = 0.1
    """Delay before the second consecutive failed restart (seconds)."""
    factor: float = 2.0
    """Multiplier per further consecutive failure."""
    max: float = 30.0
    """Cap on the delay (seconds); a crash-looping service is retried this often."""
    jitter: float = 0.1
    """Relative jitter: the delay is scaled by a random factor in [1-jitter, 1+jitter]."""
    reset_after: float = 30.0
    """Seconds of `running` after which the consecutive-failure count resets (and a
    crash-looping service counts as recovered)."""


@dataclass(frozen=True, slots=True)
class CrashLoopSpec:
    max_failures: int = 5
    """This many failures inside `window` are a crash loop."""
    window: float = 60.0
    """Sliding window (seconds)."""
    give_up: bool = False
    """On a crash loop, make the service `fatal` (it waits for a manual start) instead of
    marking it crash-looping and retrying it every `backoff.max`."""


@dataclass(frozen=True, slots=True)
class StopSpec:
    signal: int = 15
    """Signal number sent to the process group to ask it to stop."""
    timeout: float = 10.0
    """Seconds to wait before SIGKILL."""


@dataclass(frozen=True, slots=True)
class LimitsSpec:
    memory: int | None = None
    """Bytes of resident memory the service's whole tree may use; over it (seen at a
    sample) the service is restarted, as a failure."""


@dataclass(frozen=True, slots=True)
class LogSpec:
    max_bytes: int = 10 * 1024 * 1024
    """Rotate the service's log file when it would grow past this size (0 = never)."""
    backups: int = 5
    """Rotated files kept (`name.log.1` ... `name.log.N`)."""
    ring_lines: int = 1000
    """Recent lines kept in memory for clients."""


# --- health probes (parsed by config/health.py) ---

@dataclass(frozen=True, slots=True)
class HttpProbe:
    port: int
    host: str = "127.0.0.1"
    scheme: str = "http"
    path: str = "/"
    headers: tuple[tuple[str, str], ...] = ()
    status: frozenset[int] = frozenset()
    """Codes that pass; empty: 200-399."""
    body: str | None = None
    """A substring the body must hold."""


@dataclass(frozen=True, slots=True)
class TcpProbe:
    port: int
    host: str = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class ProbeSpec:
    kind: str
    """exec, http, tcp, log, silence or notify."""
    argv: tuple[str, ...] = ()
    """exec: the command (a string runs with /bin/sh -c)."""
    http: HttpProbe | None = None
    tcp: TcpProbe | None = None
    pattern: str = ""
    """log: the regex a line of output must match."""
    silence: float = 0.0
    """silence: seconds without output that are a failure."""
    initial_delay: float = 0.0
    period: float = 10.0
    timeout: float = 1.0
    success_threshold: int = 1
    failure_threshold: int = 3


@dataclass(frozen=True, slots=True)
class HealthSpec:
    startup: ProbeSpec | None = None
    readiness: ProbeSpec | None = None
    liveness: ProbeSpec | None = None

    def probes(self) -> dict[str, ProbeSpec]:
        """Configured probes by name (startup, readiness, liveness), in that order."""
        found = {"startup": self.startup, "readiness": self.readiness,
                 "liveness": self.liveness}
        return {k: v for k, v in found.items() if v is not None}


@dataclass(frozen=True, slots=True)
class DependencySpec:
    """One entry of a service's `depends_on:`."""

    name: str
    """The service (or replica group) depended on."""
    condition: str = "started"
    """"started" | "ready" | "completed_successfully" | "log_ready"."""
    restart: bool = True
    """When the dependency goes down (or unready) at run time, stop this service and start
    it again once the condition holds again."""
    timeout: float | None = None
    """Seconds to wait for the condition before giving up (`fatal`); None: for ever."""
    line: int = field(default=0, compare=False)
    col: int = field(default=0, compare=False)
    """Where the entry is in the config file (for the cross-service checks' messages)."""


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    name: str
    """Service name (the key under `services:`)."""
    argv: tuple[str, ...]
    """Program and arguments, already interpolated; for `shell: true` it is `/bin/sh -c CMD`."""
    cwd: Path
    """Working directory (absolute)."""
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """The complete environment of the service: supervisor env + env_file + env."""
    env_files: tuple[Path, ...] = ()
    """env_file paths (absolute), watched for reload."""
    user: str | None = None
    """Run as this user (only when the supervisor runs as root)."""
    autostart: bool = True
    """Start when the supervisor starts."""
    start_time: float = 1.0
    """Seconds a process must stay up to count as started (`starting` -> `running`)."""
    restart: RestartPolicy = RestartPolicy.ALWAYS
    success_codes: frozenset[int] = frozenset({0})
    """Exit codes that count as a clean exit."""
    backoff: BackoffSpec = BackoffSpec()
    crash_loop: CrashLoopSpec = CrashLoopSpec()
    stop: StopSpec = StopSpec()
    log: LogSpec = LogSpec()
    limits: LimitsSpec = LimitsSpec()
    health: HealthSpec = HealthSpec()
    rlimits: tuple[tuple[str, int, int], ...] = ()
    """(resource name, soft, hard) set in the process before it starts (-1 = unlimited)."""
    depends_on: tuple[DependencySpec, ...] = ()
    """What must hold before the service starts (config/depends.py, engine/deps.py)."""
    line: int = 0
    """Line of the service's key in the config file (for messages); 0 if unknown."""
    group: str | None = None
    """The `replicas:` service this is a copy of (`web` for `web-2`); None: a plain one."""
    replica: int | None = None
    """This copy's number, 0-based (`${REPLICA}`); None for a plain service."""

    def restart_key(self) -> tuple[object, ...]:
        """Fields whose change requires a restart of the running process."""
        return (self.argv, self.cwd, tuple(sorted(self.env.items())), self.user,
                self.rlimits)


@dataclass(frozen=True, slots=True)
class Settings:
    log_dir: Path
    """Directory of the per-service log files (absolute)."""
    state_dir: Path
    """Directory of the state file, incidents, demo logs (absolute)."""
    runtime_dir: Path
    """Directory of the lock and the control socket (absolute, 0700)."""
    sample_interval: float = 1.0
    """Seconds between resource samples; 0 turns sampling off."""
    metrics_listen: str | None = None
    """host:port for Prometheus metrics, or None."""
    watch_config: bool = True
    """Reload the config automatically when it (or an env_file) is saved."""
    watch_code: bool | None = None
    """Reload the supervisor's own code when its source changes; None: only when run
    from a source checkout or an editable install."""
    cgroups: str = "auto"
    """A cgroup per service: "on", "off", or "auto" (where delegated; engine/cgroups.py)."""


@dataclass(frozen=True, slots=True)
class ReplicaGroup:
    """A service with `replicas: N`, as the file wrote it (config/replicas.py)."""

    name: str
    count: int
    """N in the file (a `scale` may run another count: the engine keeps that)."""
    make: Callable[[int], ServiceSpec] = field(compare=False, repr=False)
    """Replica i's spec, read from the same YAML as the others (`${REPLICA}` = i);
    raises ConfigError when that replica's values are wrong (a cwd that does not exist)."""


@dataclass(frozen=True, slots=True)
class Config:
    path: Path
    """Absolute path of the config file."""
    config_id: str
    """Stable id of this config (derived from its absolute path): names its dirs and marks
    its processes."""
    settings: Settings
    services: Mapping[str, ServiceSpec]
    """Services in file order."""
    environ: Mapping[str, str] | None = field(default=None, compare=False, repr=False)
    """The supervisor environment the services' env is based on, as loaded (None: built
    by hand; a reload then reads `os.environ`). The engine loads its config again with
    it, so the base stays the one of its first launch across config and code reloads."""
    groups: Mapping[str, ReplicaGroup] = field(
        default_factory=lambda: MappingProxyType({}), compare=False, repr=False)
    """The services with `replicas:` by group name (their copies are in `services`)."""
