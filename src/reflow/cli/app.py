"""The `reflow` command: its typer app, the global options, and `main()` (the console script)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from reflow.cli import runs, serve, ui
from reflow.cli._common import DEBUG, fail, handle_errors, stdout
from reflow.cli.run import run_command

app = typer.Typer(
    name="reflow",
    help="Run flows, look at their runs, serve them on schedules.\n\n"
    "Start with `reflow run FILE.py:FLOW`, then `reflow runs show last`.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from reflow import __version__

        typer.echo(f"reflow {__version__}")
        raise typer.Exit()


@app.callback()
def options(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the traceback of an error, not one line.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Options for every command."""
    DEBUG["on"] = debug


@handle_errors
def settings_command() -> None:
    """Show the settings in force and where each can be set (`REFLOW_*` variables, which win,
    and `reflow.toml`).

    **Example**

    ```
    REFLOW_LOG_LEVEL=DEBUG reflow settings
    ```
    """
    from rich.markup import escape
    from rich.table import Table

    from reflow.settings import SETTINGS, settings

    current = settings()
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("setting", "variable", "value"):
        table.add_column(column)
    for setting in SETTINGS:
        value = getattr(current, setting.name)
        table.add_row(setting.name, setting.env, escape("-" if value is None else str(value)))
    console = stdout()
    console.print(table)
    where = current.config_file or "none (reflow.toml in this folder, or REFLOW_CONFIG)"
    console.print(f"\nconfig file: {where}", markup=False)


app.command("run")(run_command)
app.add_typer(runs.app)
app.command("serve")(serve.serve)
app.add_typer(serve.schedules_app)
app.command("worker")(serve.worker)
app.command("settings")(settings_command)
app.command("ui")(ui.ui)


def main(argv: list[str] | None = None) -> int:
    """The `reflow` console script: usage errors as one line (exit 2), the commands' own exit
    codes otherwise."""
    try:
        code = app(args=argv, prog_name="reflow", standalone_mode=False)
    except typer.Abort:
        fail("interrupted")
        return 130
    except Exception as exc:
        describe = getattr(exc, "format_message", None)
        if describe is None:  # not a command-line error (those are handled by the commands)
            raise
        ctx = getattr(exc, "ctx", None)
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        fail(f"{describe()}{hint}")
        return int(getattr(exc, "exit_code", 2))
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
