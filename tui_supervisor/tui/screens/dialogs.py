"""Small modal dialogs: confirm, quit (stop services or leave them running), pick a
signal, and a one-line prompt (search, filter)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList

SIGNALS = ("TERM", "INT", "HUP", "USR1", "USR2", "QUIT", "KILL", "STOP", "CONT")


class ConfirmScreen(ModalScreen[bool]):
    """Yes / no; `y`/`enter` confirm, `n`/`escape` cancel."""

    BINDINGS = [Binding("y", "answer(True)", "Yes"), Binding("n,escape", "answer(False)", "No")]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.question)
            with Horizontal(classes="buttons"):
                yield Button("Yes (y)", id="yes", variant="warning")
                yield Button("No (n)", id="no")

    def on_button_pressed(self, ev: Button.Pressed) -> None:
        self.dismiss(ev.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class QuitScreen(ModalScreen[str]):
    """Quit the UI: "stop" every service (and the engine), "leave" them running
    headless, or "cancel". `attached`: the engine runs elsewhere (`attach`)."""

    BINDINGS = [Binding("s", "choose('stop')", "Stop all"),
                Binding("l", "choose('leave')", "Leave running"),
                Binding("escape,c", "choose('cancel')", "Cancel")]

    def __init__(self, *, attached: bool = False) -> None:
        super().__init__()
        self.attached = attached

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Quit: stop every service and the engine, or leave them running "
                        "(`tui-supervisor attach` brings this view back)?" if self.attached
                        else "Quit: stop every service, or leave them running headless "
                        "(`tui-supervisor attach` brings this view back)?")
            with Horizontal(classes="buttons"):
                yield Button("Stop all (s)", id="stop", variant="error")
                yield Button("Leave running (l)", id="leave", variant="primary")
                yield Button("Cancel (esc)", id="cancel")

    def on_button_pressed(self, ev: Button.Pressed) -> None:
        self.dismiss(str(ev.button.id))

    def action_choose(self, what: str) -> None:
        self.dismiss(what)


class SignalScreen(ModalScreen[str | None]):
    """Pick a signal to send to a service."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"Send a signal to {self.service}:")
            yield OptionList(*SIGNALS, id="signals")

    def on_option_list_option_selected(self, ev: OptionList.OptionSelected) -> None:
        self.dismiss(SIGNALS[ev.option_index])

    def action_cancel(self) -> None:
        self.dismiss(None)


class PromptScreen(ModalScreen[str | None]):
    """One line of input (search, filter): enter submits, escape cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, label: str, value: str = "") -> None:
        super().__init__()
        self.label, self.value = label, value

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog prompt"):
            yield Label(self.label)
            yield Input(value=self.value, id="prompt")

    def on_input_submitted(self, ev: Input.Submitted) -> None:
        self.dismiss(ev.value)

    def action_cancel(self) -> None:
        self.dismiss(None)
