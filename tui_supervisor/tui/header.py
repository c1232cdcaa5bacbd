"""The dashboard's header: config, engine uptime/CPU/RSS, services by state, reloads, and
the two things the user must not miss (the engine out of reach, a pending config error)."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from tui_supervisor.formatting import fmt_bytes, fmt_duration, fmt_percent
from tui_supervisor.tui.store import Store


class EngineHeader(Static):
    """Config, engine uptime/CPU/RSS, services by state, reloads, pending config error."""

    _text = ""

    def render_from(self, store: Store, mode: str, error: str | None,
                    link: str | None = None) -> None:
        e = store.engine
        res = e.get("resources") or {}
        counts = store.counts_by_state()
        states = "  ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        usage = f"CPU {fmt_percent(res.get('cpu_percent'))} RSS {fmt_bytes(res.get('rss_bytes'))}" \
            if res else "sampling off"
        parts = [f"[b]{e.get('config', '?')}[/b]",
                 f"engine pid {e.get('pid', '?')}{' (attached)' if mode == 'attached' else ''}",
                 f"up {fmt_duration(e.get('uptime'))}", usage, states,
                 f"reloads {e.get('reloads', 0)}"]
        text = " · ".join(parts)
        if link:  # attached: the connection to the engine is down
            text += f"\n[b yellow]{link}[/]"
        if error:
            text += f"\n[b red]config error:[/] {error}"
        if text != self._text:  # a layout pass is of the whole screen: only if it may grow
            layout = not (self._one_line(text) and self._one_line(self._text))
            self._text = text
            self.update(text, layout=layout)

    def _one_line(self, text: str) -> bool:
        return "\n" not in text and Text.from_markup(text).cell_len <= self.content_size.width
