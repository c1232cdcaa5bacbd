"""The keys and commands that act on services through the engine: restart, stop, start
(the selected one, or all after a confirmation), send a signal, reload the config or the
supervisor's own code. Each says its outcome, or the error, as a notification.

A mixin of `SupervisorApp`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tui_supervisor.engine.api import SupervisorAPI
from tui_supervisor.tui.screens.dialogs import ConfirmScreen, SignalScreen
from tui_supervisor.tui.store import Store
from tui_supervisor.tui.widgets.services import ServicesTable

if TYPE_CHECKING:
    from textual.app import App

    _AppBase = App[str]
else:  # mypy checks it as the App it is mixed into; at run time a plain class, so
    # SupervisorApp stays the only Textual class (one CSS path, one bindings list)
    _AppBase = object


class ServiceActions(_AppBase):
    """r, s, S, K, R, ctrl+r and the "… all" commands."""

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
        if names := self._targets():
            await self._call("stop", names)

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
