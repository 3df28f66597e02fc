"""`reflow run FILE.py:FLOW`: run a flow here, with live progress and a summary; and the
shared way of running one (`reflow runs resume` uses it too)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from reflow.cli._common import (
    CLIError,
    handle_errors,
    load_target,
    parse_params,
    seconds,
    stdout,
    store_url,
    styled_state,
)
from reflow.cli.progress import RunDisplay, summary_table

TargetArg = Annotated[
    str,
    typer.Argument(
        metavar="FILE.py:FLOW",
        help="The flow: a file and the flow's name in it (or module:FLOW, or FILE.py alone "
        "when it holds one flow).",
        show_default=False,
    ),
]
ParamOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--param",
        "-p",
        metavar="NAME=VALUE",
        help="A parameter of the flow (repeat for more). Checked and converted by the flow's "
        "type hints; a value that does not fit as text is read as JSON.",
        show_default=False,
    ),
]
ParamsJsonOpt = Annotated[
    Path | None,
    typer.Option(
        "--params-json",
        metavar="FILE",
        help="A JSON object of parameters ('-': standard input); --param wins over it.",
        show_default=False,
    ),
]
StoreOpt = Annotated[
    str | None,
    typer.Option(
        "--store",
        metavar="URL",
        help="Where runs are kept: sqlite:///path, a file path or postgresql://... "
        "(default: REFLOW_STORE, else $REFLOW_HOME/reflow.db).",
        show_default=False,
    ),
]


def run_command(
    target: TargetArg,
    param: ParamOpt = None,
    params_json: ParamsJsonOpt = None,
    store: StoreOpt = None,
    submit: Annotated[
        bool,
        typer.Option(
            "--submit",
            help="Queue the run instead of running it here: a `reflow serve` or `reflow "
            "worker` on the same store runs it. Prints the run's id.",
        ),
    ] = False,
    id_file: Annotated[
        Path | None,
        typer.Option(
            "--id-file",
            metavar="PATH",
            help="Also write the run's id to this file (for scripts).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run a flow here, showing its progress, and sum it up.

    With a terminal, a live tree of task states and progress bars for maps; without one,
    one plain line per state change. Then a table: task, state, attempts, duration. The run is
    kept in the store, to look at with `reflow runs show`.

    **Exit code**: 0 when the run Completed, 1 when it ended otherwise (Failed, Cancelled,
    Crashed, Paused), 2 for a usage error, 130 when interrupted (the run is then Crashed:
    `reflow runs resume` carries it on).

    **Examples**

    ```
    reflow run examples/standup.py:standup
    reflow run examples/standup.py:standup --param team=platform --param day=2026-11-23
    reflow run etl.py:load --params-json params.json --store postgresql://db/reflow
    reflow run etl.py:load --submit     # queued for `reflow serve` / `reflow worker`
    ```
    """
    flow = load_target(target)
    bound = parse_params(flow, param or [], params_json)
    url = store_url(store)
    if submit:
        from reflow.store.worker import submit_run

        if url == "memory":
            raise CLIError("--submit needs a store to queue the run in; REFLOW_STORE is 'memory'")
        run_id = submit_run(flow, *bound.args, store=url, **bound.kwargs)
        _write_id(id_file, run_id)
        typer.echo(run_id)
        return
    if url == "memory":
        runnable = flow.with_options(persist=False)
    else:
        runnable = flow.with_options(persist=True, store=url)
    flow_run = execute(lambda: runnable.run(*bound.args, **bound.kwargs), id_file=id_file)
    finish(flow_run, stored=url != "memory")


def execute(start: Callable[[], Any], *, id_file: Path | None = None) -> Any:
    """Run `start()` (which runs a flow and returns its FlowRun, or a coroutine of it) under
    the progress display; an interrupt says how to resume and exits 130."""
    from reflow.logging import configure

    console = stdout()
    configure()
    display = RunDisplay(console)
    try:
        with display:
            outcome = start()
            if inspect.isawaitable(outcome):
                outcome = asyncio.run(_awaited(outcome))
    except KeyboardInterrupt:
        if display.root is not None:
            _write_id(id_file, display.root)
            typer.echo(
                f"reflow: interrupted: flow run {display.root} is Crashed; carry it on with "
                f"`reflow runs resume {display.root[:12]}`",
                err=True,
            )
        raise typer.Exit(130) from None
    _write_id(id_file, outcome.id)
    return outcome


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


def finish(flow_run: Any, *, stored: bool = True) -> None:
    """Print the summary of a finished run and exit with its code (0: Completed, 1: not)."""
    console = stdout()
    report(console, flow_run, stored=stored)
    raise typer.Exit(0 if flow_run.state.is_completed() else 1)


def report(console: Console, flow_run: Any, *, stored: bool = True) -> None:
    """The summary table and the run's final line."""
    state = flow_run.state
    console.print()
    console.print(summary_table(flow_run))
    console.print()
    took = time.time() - flow_run.states[0].timestamp if flow_run.states else None
    console.print(
        f"flow run [bold]{flow_run.name}[/] {flow_run.id} "
        f"{styled_state(state.name, state.type.name)} in {seconds(took)}"
    )
    if not state.is_completed() and state.message:
        from reflow.secrets import redact_text

        console.print(f"  {redact_text(state.message)}", markup=False, soft_wrap=True)
    if stored:
        console.print(
            f"see it again: reflow runs show {flow_run.id[:12]}", markup=False, soft_wrap=True
        )


def _write_id(path: Path | None, run_id: str) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(run_id + "\n")


run_command = handle_errors(run_command)
