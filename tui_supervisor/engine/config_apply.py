"""Config apply: read the config file (off the event loop), diff it against the running
one and apply it, all or nothing, one apply at a time (a save, `R`, SIGHUP and the socket
can each ask at any moment).

A part of `Supervisor` (its `reload()` and `apply_config()`), split out for size: it works
on the engine's services and counters through the engine itself.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from tui_supervisor.config.schema import Config
from tui_supervisor.engine.api import UnknownService
from tui_supervisor.engine.events import Topic
from tui_supervisor.engine.service import Service

if TYPE_CHECKING:
    from tui_supervisor.engine.supervisor import Supervisor
    from tui_supervisor.engine.views import ReloadResult, ScaleResult


def _retired() -> ReloadResult:
    """The answer to a reload that waited while the engine stopped or handed over:
    applying it would act on services another engine now owns."""
    return {"ok": False, "errors": [
        "this engine has stopped or handed its services over (a code reload): not applied"]}


class ConfigApply:
    """Applies configs to one engine, serialised by `lock`."""

    def __init__(self, sup: Supervisor) -> None:
        self.sup = sup
        self.lock = asyncio.Lock()
        """Held while a config is read and applied: an apply half done is no base for the
        next (the code reload takes it too, so it never hands over a half state)."""
        self._asked = 0
        self._served = 0
        self._last: ReloadResult | None = None

    async def reload(self) -> ReloadResult:
        """Read the config file and apply it. Reloads are applied one at a time; one that
        waited while another ran is answered by the next read of the file (made after it
        was asked), so a burst of them costs one or two applies, and all end in the state
        of the file as it was last read."""
        self._asked += 1
        ticket = self._asked
        async with self.lock:
            if self.sup.retired:
                return _retired()
            if self._served >= ticket and self._last is not None:
                return self._last  # a read started after this ask covered it
            served, self._served = self._served, self._asked
            try:
                result = self._last = await self._read_and_apply()
            except BaseException:  # those who waited read the file themselves
                self._served = served
                raise
            return result

    async def apply(self, new: Config) -> ReloadResult:
        """Diff the running config against `new` and apply it (see `_apply`). Waits for a
        reload or apply under way (see `reload`)."""
        async with self.lock:
            if self.sup.retired:
                return _retired()
            return await self._apply(new)

    async def _read_and_apply(self) -> ReloadResult:
        from tui_supervisor.config import ConfigError, load_config

        sup = self.sup
        try:
            # In a thread: a big file parses for seconds, the services meanwhile do not
            # wait. The same base env as the running config (the engine's first launch's):
            # a variable of this process's own (a code reload's) changes no service.
            new = await asyncio.to_thread(load_config, sup.config.path,
                                          environ=sup.config.environ)
        except ConfigError as e:
            return self._refused("config not reloaded", [str(i) for i in e.issues])
        return await self._apply(new)

    async def scale(self, group: str, n: int) -> ScaleResult:
        """Run `n` copies of `group` (see `SupervisorAPI.scale`): the running config
        with the group rescaled, applied like a reload that touches only that group."""
        from tui_supervisor.config import ConfigError, diff
        from tui_supervisor.config.replicas import rescale

        sup = self.sup

        def refused(error: str) -> ScaleResult:
            count = sum(1 for s in sup.services.values() if s.spec.group == group)
            return {"ok": False, "group": group, "replicas": count, "started": [],
                    "stopped": [], "error": error}

        async with self.lock:
            if sup.retired:
                return refused(_retired()["errors"][0])
            if group not in sup.config.groups:
                if group in sup.services:
                    return refused(f"{group} has no replicas: (only a service with "
                                   "replicas: N can be scaled)")
                raise UnknownService(group)
            try:
                new = rescale(sup.config, group, n)
                d = diff(sup.config, new)
                added = self._new_services(new, d.added)
            except (ValueError, ConfigError) as e:
                return refused(str(e))
            file_n = sup.config.groups[group].count
            if n == file_n:
                sup.scaled.pop(group, None)
            else:
                sup.scaled[group] = (n, file_n)
            sup.config = new
            await self._remove(d.removed)
            sup.services.update(added)
            sup.services = {n: sup.services[n] for n in new.services}  # config order
            for name in d.added:
                sup.services[name].start("scaled up")
            started, stopped = list(d.added), list(reversed(d.removed))
            done = "; ".join(f"{k} {', '.join(v)}" for k, v in
                             (("started", started), ("stopped", stopped)) if v)
            sup._notice("info", f"scaled {group} to {n}" + (f": {done}" if done else ""),
                        topic=Topic.SCALED, data={"group": group, "replicas": n,
                                                  "started": started, "stopped": stopped})
            return {"ok": True, "group": group, "replicas": n, "started": list(d.added),
                    "stopped": list(reversed(d.removed))}

    async def _remove(self, removed: tuple[str, ...]) -> None:
        """Stop and drop `removed` together, signals sent in reverse config order (the
        highest copies of a group first, as a shutdown does)."""
        sup = self.sup
        await asyncio.gather(*(sup._remove(n, "removed from config") for n in reversed(removed)))

    def _refused(self, what: str, errors: list[str]) -> ReloadResult:
        """Nothing of a new config was applied: count it, say why (once), answer so."""
        self.sup.reload_failures += 1
        self.sup.config_error = "; ".join(errors)
        self.sup._notice("error", f"{what}: " + "; ".join(errors),
                         topic=Topic.CONFIG_INVALID, data={"errors": errors})
        return {"ok": False, "errors": errors}

    def _new_services(self, new: Config, names: tuple[str, ...]) -> dict[str, Service]:
        """The added services, set up (their log files open) but not started. Raises
        ConfigError naming the first that cannot be set up, the others closed again."""
        from tui_supervisor.config import ConfigError, ConfigIssue

        assert self.sup.ctx is not None
        made: dict[str, Service] = {}
        for name in names:
            spec = new.services[name]
            try:
                made[name] = Service(spec, self.sup.ctx)
            except (OSError, ValueError) as e:  # the log dir or file (ENAMETOOLONG, EACCES)
                for svc in made.values():
                    svc.close()
                why = getattr(e, "strerror", None) or str(e)
                where = getattr(e, "filename", None)
                raise ConfigError([ConfigIssue(
                    str(new.path), spec.line, 0, f"services.{name}",
                    f"cannot set up the service: {why}" + (f" ({where})" if where else ""),
                )]) from None
        return made

    async def _apply(self, new: Config) -> ReloadResult:
        """All or nothing: first set up the added services (nothing changes if one cannot
        be); then stop removed, start added, restart changed, update in place the rest.
        Unchanged services are not touched."""
        from tui_supervisor.config import ConfigError, diff
        from tui_supervisor.config.replicas import keep_scaled

        sup = self.sup
        assert sup.ctx is not None
        began = time.monotonic()
        # a `scale`d group keeps its count unless the file's `replicas:` changed
        new, scaled = keep_scaled(new, sup.scaled)
        d = diff(sup.config, new)
        try:
            added = self._new_services(new, d.added)
        except ConfigError as e:
            return self._refused("config not applied", [str(i) for i in e.issues])
        old_settings, sup.config, sup.scaled = sup.config.settings, new, scaled
        if d.settings_changed:
            for hook in tuple(sup.settings_hooks):
                hook(old_settings, new.settings)
        for name in d.in_place:  # first: a dependency removed with its depends_on entry
            sup.services[name].update_spec(new.services[name])  # takes nobody down
        changed = [sup.services[n] for n in d.changed]
        restart = {s.name for s in changed if s.wanted}
        await self._remove(d.removed)
        await sup._stop_all(changed, "config changed")
        for name in d.changed:
            sup.services[name].update_spec(new.services[name])
        sup.services.update(added)
        sup.services = {n: sup.services[n] for n in new.services}  # config order
        sup.autostart(d.added)
        for name in restart:  # (one whose dependencies do not hold waits for them)
            sup.coordinator.start(sup.services[name], "config changed")
        sup.coordinator.recheck_soon()  # a depends_on changed in place: waits re-checked
        sup.reloads += 1
        sup.config_error = None
        sup.last_reload_seconds = time.monotonic() - began
        changes = {"added": list(d.added), "removed": list(d.removed),
                   "restarted": list(d.changed), "in_place": list(d.in_place),
                   "settings": list(d.settings)}
        done = ", ".join(f"{k} {', '.join(v)}" for k, v in changes.items() if v)
        sup._notice("info", "config reloaded: " + (done or "nothing changed"),
                    topic=Topic.CONFIG_RELOADED, data=changes)
        return {"ok": True, "added": changes["added"], "removed": changes["removed"],
                "restarted": changes["restarted"], "in_place": changes["in_place"],
                "settings": changes["settings"]}
