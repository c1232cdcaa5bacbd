"""`python -m tui_supervisor`."""

from tui_supervisor.cli import main

raise SystemExit(main())
