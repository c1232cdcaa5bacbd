"""The engine host (docs/ARCHITECTURE.md §2, §5, §6): builds the engine, its control socket and
watchers, owns the signal table, and runs the one boot → serve → hand over → boot-again
loop with a front: the headless console or the dashboard. The command line imports
the entry point it needs from its module (a code reload's new image imports only its
own front's modules); nothing else imports this package.

- engine.py     one boot of the engine: Supervisor + metrics + socket + watchers
- front.py      what a front is, and how it ended (UiOutcome)
- host.py       the loop: boot, serve, hand over on a code reload, boot again
- signals.py    the signal table
- headless.py   the console front (`run --headless`, `--detach`)
- dashboard.py  the dashboard front (hosted; headless once the UI is gone)
- fork.py       forking off the shell's job, leaving the terminal
- attach.py     the dashboard as a client of a running engine
"""

