"""`reflow`, the command line: run flows, look at runs, serve schedules, run workers.

    reflow run examples/standup.py:standup
    reflow runs show last

`main()` is the console script; `app` is the typer application (tests call it through
`typer.testing.CliRunner`). typer and rich are imported here, never by `import reflow`.
"""

from __future__ import annotations

from reflow.cli.app import app, main

__all__ = ["app", "main"]
