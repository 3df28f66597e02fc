"""`reflow runs show RUN`: one run, all that the store holds of it."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from reflow.cli._common import (
    handle_errors,
    reading_store,
    resolve_run,
    seconds,
    stdout,
    styled_state,
    when,
)
from reflow.cli.records import (
    JsonOpt,
    RunArg,
    duration,
    failure_text,
    flow_json,
    result_text,
)
from reflow.cli.run import StoreOpt
from reflow.states import FINAL_TYPE_NAMES as FINAL_TYPES


def _task_seconds(task: Any) -> float | None:
    started = next((s.timestamp for s in task.states if s.type == "RUNNING"), None)
    if started is None or task.state_type not in FINAL_TYPES:
        return None
    return float(task.updated - started)


@handle_errors
def show(run: RunArg, as_json: JsonOpt = False, store: StoreOpt = None) -> None:
    """Show one run: its states, parameters, task runs (state, attempts, duration, error),
    the retry history of the task runs that were retried, and its retry controllers' tries
    (a flow's `retry=`, an atoms run's controllers); for an atoms run, its atoms.

    **Examples**

    ```
    reflow runs show 3f2a9c1e
    reflow runs show last
    reflow runs show last --json
    ```
    """
    with reading_store(store) as db:
        record = resolve_run(db, run)
        states = db.states(record.id)
        tasks = db.task_runs(record.id)
        subflows = db.subflow_runs(record.id)
        atoms = db.atoms(record.id)
        controllers = db.retry_histories(record.id)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    **flow_json(record),
                    "states": [
                        {"name": s.name, "type": s.type, "timestamp": s.timestamp,
                         "message": s.message, "attempt": s.attempt}
                        for s in states
                    ],
                    "task_runs": [
                        {"id": t.id, "key": t.key, "task": t.task_name, "state": t.state,
                         "state_type": t.state_type, "attempts": t.attempts,
                         "duration": _task_seconds(t), "error": t.error, "upstream": t.upstream,
                         "states": [{"name": s.name, "timestamp": s.timestamp,
                                     "message": s.message, "attempt": s.attempt}
                                    for s in t.states]}
                        for t in tasks
                    ],
                    "subflow_runs": [flow_json(s) for s in subflows],
                    "atoms": [
                        {"name": a.name, "kind": a.kind, "state": a.state,
                         "state_type": a.state_type, "updated": a.updated,
                         "failure": failure_text(a.failure)}
                        for a in atoms
                    ],
                    "retry_controllers": [
                        {"controller": h.controller,
                         "tries": [{"value": result_text(t.value),
                                    "failures": {n: failure_text(f)
                                                 for n, f in t.failures.items()}}
                                   for t in h.tries]}
                        for h in controllers
                    ],
                },
                indent=2, default=str,
            )
        )  # fmt: skip
        return
    console = stdout()
    state = styled_state(record.state, record.state_type)
    console.print(f"[bold]{escape(record.name)}[/] {record.id}  {state}")
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="dim")
    facts.add_column()
    facts.add_row("started", when(record.created))
    facts.add_row("duration", seconds(duration(record)))
    if record.parameters:
        shown = ", ".join(f"{k}={json.dumps(v, default=str)}" for k, v in record.parameters.items())
        facts.add_row("parameters", escape(shown))
    for label, value in (
        ("run key", record.run_key), ("parent run", record.parent_id),
        ("worker", record.worker), ("flow", record.flow_path),
    ):  # fmt: skip
        if value:
            facts.add_row(label, escape(str(value)))
    if record.state_type == "COMPLETED":
        kept = record.result is not None  # else persist_result=False, or it could not be
        facts.add_row("result", escape(result_text(record.result)) if kept else "not kept")
    if record.error:
        facts.add_row("error", f"[red]{escape(record.error)}[/]")
    console.print(facts)

    console.print("\n[bold]states[/]")
    for s in states:
        message = f"  [dim]{escape(s.message)}[/]" if s.message else ""
        console.print(
            f"  {when(s.timestamp)}  {styled_state(s.name, s.type)}{message}", soft_wrap=True
        )

    if tasks:
        console.print("\n[bold]task runs[/]")
        table = Table(box=None, header_style="bold", pad_edge=False)
        for column in ("task", "state", "attempts", "duration", "error"):
            table.add_column(
                column, justify="right" if column in ("attempts", "duration") else "left"
            )
        for t in tasks:
            table.add_row(
                escape(t.key), styled_state(t.state, t.state_type), str(t.attempts),
                seconds(_task_seconds(t)), escape(t.error or ""),
            )  # fmt: skip
        console.print(table)

    retried = [
        t for t in tasks if t.attempts > 1 or any(s.name == "AwaitingRetry" for s in t.states)
    ]
    if retried:
        console.print("\n[bold]retry history[/]")
        for t in retried:
            console.print(f"  [bold]{escape(t.key)}[/]")
            for s in t.states:
                if s.name == "Pending":
                    continue
                attempt = f" (attempt {s.attempt})" if s.attempt else ""
                message = f"  [dim]{escape(s.message)}[/]" if s.message else ""
                console.print(
                    f"    {when(s.timestamp)}  {styled_state(s.name, s.type)}{attempt}{message}",
                    soft_wrap=True,
                )

    if atoms:
        console.print("\n[bold]atoms[/]")
        table = Table(box=None, header_style="bold", pad_edge=False)
        for column in ("atom", "kind", "state", "failure"):
            table.add_column(column)
        for a in atoms:
            table.add_row(
                escape(a.name), a.kind, styled_state(a.state, a.state_type),
                escape(failure_text(a.failure) or ""),
            )  # fmt: skip
        console.print(table)

    if controllers:
        console.print("\n[bold]retry controllers[/]")
        for h in controllers:
            console.print(f"  [bold]{escape(h.controller)}[/]")
            for i, t in enumerate(h.tries, 1):
                value = "" if t.value is None else f" ({escape(result_text(t.value))})"
                if not t.failures:
                    console.print(f"    try {i}{value}: no failure", soft_wrap=True)
                for name, failure in t.failures.items():
                    text = escape(f"{name}: {failure_text(failure)}")
                    console.print(f"    try {i}{value}: [red]{text}[/]", soft_wrap=True)

    if subflows:
        console.print("\n[bold]subflow runs[/]")
        for sub in subflows:
            console.print(
                f"  {sub.id[:12]}  {escape(sub.name)}  {styled_state(sub.state, sub.state_type)}"
            )
