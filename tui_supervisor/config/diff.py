"""Compare two loaded configs to plan a reload. Pure: no I/O."""

from __future__ import annotations

from dataclasses import dataclass, fields

from tui_supervisor.config.schema import Config, ServiceSpec


@dataclass(frozen=True, slots=True)
class ConfigDiff:
    """What a reload from `old` to `new` must do, by service name.

    Names are in new-file order, except `removed` (old-file order).
    """

    added: tuple[str, ...] = ()
    """Services only in the new config: start them (if autostart)."""
    removed: tuple[str, ...] = ()
    """Services only in the old config: stop them."""
    changed: tuple[str, ...] = ()
    """`restart_key()` differs (argv, cwd, env, user): restart the process."""
    in_place: tuple[str, ...] = ()
    """Only policies differ (restart, backoff, crash_loop, stop, log, ...): apply without a
    restart."""
    unchanged: tuple[str, ...] = ()
    """Nothing relevant differs."""
    settings: tuple[str, ...] = ()
    """The `settings` keys that differ (in `Settings` order)."""

    @property
    def settings_changed(self) -> bool:
        return bool(self.settings)

    @property
    def is_empty(self) -> bool:
        """True when the reload has nothing to do."""
        return not (
            self.added or self.removed or self.changed or self.in_place or self.settings_changed
        )

    def __bool__(self) -> bool:
        return not self.is_empty


def policy_key(spec: ServiceSpec) -> tuple[object, ...]:
    """Fields that can be applied to a running service without restarting it."""
    return (
        spec.restart,
        spec.backoff,
        spec.crash_loop,
        spec.stop,
        spec.log,
        spec.start_time,
        spec.success_codes,
        spec.autostart,
        spec.env_files,
        spec.health,
        spec.depends_on,  # the coordinator reads it from the running spec
    )


def diff(old: Config, new: Config) -> ConfigDiff:
    """Classify every service of `old` and `new`; see `ConfigDiff`."""
    added: list[str] = []
    changed: list[str] = []
    in_place: list[str] = []
    unchanged: list[str] = []
    for name, spec in new.services.items():
        before = old.services.get(name)
        if before is None:
            added.append(name)
        elif before.restart_key() != spec.restart_key():
            changed.append(name)
        elif policy_key(before) != policy_key(spec):
            in_place.append(name)
        else:
            unchanged.append(name)
    return ConfigDiff(
        added=tuple(added),
        removed=tuple(name for name in old.services if name not in new.services),
        changed=tuple(changed),
        in_place=tuple(in_place),
        unchanged=tuple(unchanged),
        settings=tuple(f.name for f in fields(new.settings)
                       if getattr(old.settings, f.name) != getattr(new.settings, f.name)),
    )
