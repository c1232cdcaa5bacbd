"""The keys and commands that act on services through the engine: restart, stop, start
(the selected one, a group's replicas, or all after a confirmation), send a signal, scale
a replica group, reload the config or the supervisor's own code. Each says its outcome,
or the error, as a notification.

A mixin of `SupervisorApp`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tui_supervisor.engine.api import SupervisorAPI
from tui_supervisor.tui.screens.dialogs import ConfirmScreen, PromptScreen, SignalScreen
from tui_supervisor.tui.store import Store
from tui_supervisor.tui.widgets.health import stop_affects
from tui_supervisor.tui.widgets.services import ServicesTable

if TYPE_CHECKING:
    from textual.app import App

    _AppBase = App[str]
else:  # mypy checks it as the App it is mixed into; at run time a plain class, so
    # SupervisorApp stays the only Textual class (one CSS path, one bindings list)
    _AppBase = object


def scale_summary(r: Mapping[str, Any]) -> str:
    """A `ScaleResult` in words: "web: 4 replicas (started web-3)"."""
    n = r.get("replicas")
    said = [f"{r.get('group', '?')}: {n} replica{'' if n == 1 else 's'}"]
    moves = [f"{verb} {', '.join(map(str, r.get(verb) or ()))}"
             for verb in ("started", "stopped") if r.get(verb)]
    return said[0] + (f" ({'; '.join(moves)})" if moves else " (no change)")


def scale_count(text: str | None) -> int | None:
    """The prompt's answer as a replica count (None: not a count, or cancelled)."""
    try:
        n = int((text or "").strip())
    except ValueError:
        return None
    return n if n >= 0 else None


class ServiceActions(_AppBase):
    """r, s, S, K, +, -, R, ctrl+r and the "… all" commands."""

    # What it uses of the app.
    api: SupervisorAPI
    store: Store

    if TYPE_CHECKING:
        @property
        def table(self) -> ServicesTable: ...

    def _target(self) -> str | None:
        name = self.table.selected
        if name is None:
            self.notify("no service selected", severity="warning")
        return name

    def _targets(self) -> list[str]:
        """The selected service, or every replica of the selected group row."""
        names = self.table.selected_names()
        if not names:
            self.notify("no service selected", severity="warning")
        return names

    async def _call(self, verb: str, names: list[str]) -> None:
        try:
            await getattr(self.api, verb)(names)
        except Exception as e:
            self.notify(f"{verb} {', '.join(names)}: {e}", severity="error")
            return
        self.notify(f"{verb}: {', '.join(names) if len(names) < 6 else f'{len(names)} services'}",
                    timeout=3)

    async def action_restart(self) -> None:
        if names := self._targets():
            await self._call("restart", names)

    async def action_stop(self) -> None:
        """Asks first when services that depend on these are up (they would go down or
        wait: the engine stops dependents with `restart: true`)."""
        if not (names := self._targets()):
            return
        affected = stop_affects(names, (i.view for i in self.store.services.values()))
        if not affected:
            await self._call("stop", names)
            return

        async def answered(yes: bool | None) -> None:
            if yes:
                await self._call("stop", names)

        self.push_screen(ConfirmScreen(
            f"Stop {', '.join(names)}? {', '.join(affected)} depend"
            f"{'s' if len(affected) == 1 else ''} on "
            f"{'it' if len(names) == 1 else 'them'} and will stop or wait."), answered)

    async def action_start(self) -> None:
        if names := self._targets():
            await self._call("start", names)

    def _all(self, verb: str) -> None:
        names = list(self.store.services)

        async def answered(yes: bool | None) -> None:
            if yes:
                await self._call(verb, names)

        self.push_screen(ConfirmScreen(f"{verb.capitalize()} all {len(names)} services?"),
                         answered)

    def action_restart_all(self) -> None:
        self._all("restart")

    def action_stop_all(self) -> None:
        self._all("stop")

    def action_start_all(self) -> None:
        self._all("start")

    def action_signal(self) -> None:
        name = self._target()
        if name is not None:
            self.push_screen(SignalScreen(name), lambda sig: self._send(name, sig))

    async def _send(self, name: str, sig: str | None) -> None:
        if sig:
            try:
                r = await self.api.signal(name, sig)
            except Exception as e:
                self.notify(f"signal {name}: {e}", severity="error")
                return
            self.notify(f"sent {r.get('signal', sig)} to {name}" if r.get("ok") else
                        f"{name} has no process to signal", timeout=3,
                        severity="information" if r.get("ok") else "warning")

    # -- scaling a replica group ------------------------------------------------------
    def _group(self) -> str | None:
        group = self.table.selected_group
        if group is None:
            self.notify("not a replica group (select a group or one of its replicas)",
                        severity="warning")
        return group

    async def action_scale_by(self, step: int) -> None:
        """+ / -: one replica more or fewer (never below one: 0 from the palette)."""
        if (group := self._group()) is None:
            return
        n = len(self.table.replicas(group)) + step
        if n < 1:
            self.notify(f"{group}: one replica left (scale to 0 from the palette)",
                        severity="warning")
            return
        await self._scale(group, n)

    def action_scale(self) -> None:
        """The palette's "Scale the selected group…": asks for N."""
        if (group := self._group()) is None:
            return

        async def answered(text: str | None) -> None:
            if text is None:
                return
            n = scale_count(text)
            if n is None:
                self.notify(f"scale {group}: {text!r} is not a number of replicas",
                            severity="error")
                return
            await self._scale(group, n)

        self.push_screen(PromptScreen(f"Scale {group} to how many replicas?",
                                      str(len(self.table.replicas(group)))), answered)

    async def _scale(self, group: str, n: int) -> None:
        try:
            r = await self.api.scale(group, n)
        except Exception as e:  # an engine from before replicas answers unknown_verb
            older = getattr(e, "code", None) == "unknown_verb"
            self.notify("this engine cannot scale (an older version)" if older
                        else f"scale {group}: {e}", severity="warning" if older else "error")
            return
        if r.get("ok"):
            self.notify(f"scaled {scale_summary(r)}", timeout=4)
        else:
            self.notify(f"scale {group}: {r.get('error') or 'refused'}", severity="warning")

    async def action_reload(self) -> None:
        """The outcome comes back as the engine's notice (`_on_notice`), as it does for
        every reload, whoever asked: only a failed request is said here."""
        try:
            await self.api.reload()
        except Exception as e:
            self.notify(f"reload: {e}", severity="error")

    async def action_reload_code(self) -> None:
        """A refusal comes back as the engine's notice (`_on_notice`)."""
        try:
            r = await self.api.reload_code()
        except Exception as e:
            self.notify(f"code reload: {e}", severity="error")
            return
        if r.get("ok"):
            self.notify("code checked: reloading (services kept)", timeout=3)
