"""`reflow runs ls | show | logs | resume | cancel`: the runs kept in a store."""

from __future__ import annotations

import json
import logging
import time
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from reflow.cli._common import (
    CLIError,
    UsageError,
    handle_errors,
    reading_store,
    resolve_run,
    seconds,
    stdout,
    store_url,
    styled_state,
    when,
)
from reflow.cli.run import StoreOpt, execute, finish

app = typer.Typer(
    name="runs",
    help="Look at the runs kept in the store, follow their logs, resume or cancel them.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)

RunArg = Annotated[
    str,
    typer.Argument(
        metavar="RUN",
        help="The run: its id, 4 or more of its first characters, or `last`.",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON, for programs.")]
FINAL_TYPES = ("COMPLETED", "FAILED", "CANCELLED", "CRASHED")


def _state_filter(state: str) -> tuple[str, str | None]:
    """(state type to ask the store for, state name to keep) for `--state`."""
    from reflow.states import STATE_TYPES, StateType

    if state.upper() in StateType.__members__:
        return state.upper(), None
    names = {name.lower(): name for name in STATE_TYPES}
    if state.lower() in names:
        name = names[state.lower()]
        return STATE_TYPES[name].name, name
    known = ", ".join(sorted(STATE_TYPES))
    raise UsageError(f"--state {state!r}: not a state; the states are {known}")


def _duration(record: Any) -> float | None:
    if record.state_type not in FINAL_TYPES:
        return time.time() - float(record.created)
    return float(record.updated - record.created)


def _flow_json(record: Any) -> dict[str, Any]:
    return {
        "id": record.id,
        "name": record.name,
        "state": record.state,
        "state_type": record.state_type,
        "created": record.created,
        "updated": record.updated,
        "duration": _duration(record),
        "version": record.version,
        "parent_id": record.parent_id,
        "parameters": record.parameters,
        "run_key": record.run_key,
        "worker": record.worker,
        "heartbeat": record.heartbeat,
        "error": record.error,
        "flow_path": record.flow_path,
    }


@handle_errors
def ls(
    state: Annotated[
        str | None,
        typer.Option(
            "--state", metavar="STATE", help="Only runs in this state (Failed) or of this type "
            "(FAILED: Failed, TimedOut, TriggerFailed).", show_default=False,
        ),
    ] = None,
    flow: Annotated[
        str | None,
        typer.Option("--flow", metavar="FLOW", help="Only runs of this flow (by name).",
                     show_default=False),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many runs.")] = 20,
    as_json: JsonOpt = False,
    store: StoreOpt = None,
) -> None:  # fmt: skip
    """List flow runs, newest first.

    **Examples**

    ```
    reflow runs ls
    reflow runs ls --state Failed --flow standup --limit 5
    reflow runs ls --json | jq '.[0].id'
    ```
    """
    state_type, name = _state_filter(state) if state else (None, None)
    with reading_store(store) as db:
        asked = limit if name is None else max(limit * 20, 500)
        records = db.flow_runs(state_type=state_type, name=flow, limit=asked)
    if name is not None:
        records = [r for r in records if r.state == name]
    records = records[:limit]
    if as_json:
        typer.echo(json.dumps([_flow_json(r) for r in records], indent=2, default=str))
        return
    console = stdout()
    if not records:
        console.print("no flow runs" + (" matching" if state or flow else " yet"))
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("run", "flow", "state", "started", "duration"):
        table.add_column(column, justify="right" if column == "duration" else "left")
    for r in records:
        shown = r.name if r.parent_id is None else f"{r.name} (subflow)"
        table.add_row(
            r.id[:12], escape(shown), styled_state(r.state, r.state_type), when(r.created),
            seconds(_duration(r)),
        )  # fmt: skip
    console.print(table)


def _task_seconds(task: Any) -> float | None:
    started = next((s.timestamp for s in task.states if s.type == "RUNNING"), None)
    if started is None or task.state_type not in FINAL_TYPES:
        return None
    return float(task.updated - started)


def _result_text(encoded: Any) -> str:
    if encoded is None:
        return "-"
    if encoded.encoding == "json":
        text = str(encoded.data.decode("utf-8", "replace"))
        return text if len(text) <= 200 else text[:197] + "..."
    return f"({encoded.encoding}, {len(encoded.data)} bytes)"


@handle_errors
def show(run: RunArg, as_json: JsonOpt = False, store: StoreOpt = None) -> None:
    """Show one run: its states, parameters, task runs (state, attempts, duration, error) and
    the retry history of the task runs that were retried.

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
    if as_json:
        typer.echo(
            json.dumps(
                {
                    **_flow_json(record),
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
                    "subflow_runs": [_flow_json(s) for s in subflows],
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
    facts.add_row("duration", seconds(_duration(record)))
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
        facts.add_row("result", escape(_result_text(record.result)))
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

    if subflows:
        console.print("\n[bold]subflow runs[/]")
        for sub in subflows:
            console.print(
                f"  {sub.id[:12]}  {escape(sub.name)}  {styled_state(sub.state, sub.state_type)}"
            )


@handle_errors
def logs(
    run: RunArg,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines until the run ends.")
    ] = False,
    store: StoreOpt = None,
) -> None:
    """Print a run's log lines (its tasks' and its own), with the time, level and task.

    **Examples**

    ```
    reflow runs logs 3f2a9c1e
    reflow runs logs last --follow
    ```
    """
    with reading_store(store) as db:
        record = resolve_run(db, run)
        keys = {t.id: t.key for t in db.task_runs(record.id)}
        after = 0
        try:
            while True:
                for line in db.logs(record.id, after=after):
                    after = max(after, line.seq)
                    if line.task_run_id and line.task_run_id not in keys:
                        keys.update({t.id: t.key for t in db.task_runs(record.id)})
                    where = keys.get(line.task_run_id or "", "") or record.name
                    stamp = time.strftime("%H:%M:%S", time.localtime(line.timestamp))
                    level = logging.getLevelName(line.level)
                    typer.echo(f"{stamp} {level:<7} {where}: {line.message}")
                if not follow:
                    return
                current = db.flow_run(record.id)
                if current is None or current.state_type in FINAL_TYPES:
                    if not db.logs(record.id, after=after):
                        return
                    continue
                time.sleep(0.5)
        except KeyboardInterrupt:
            return


@handle_errors
def resume(run: RunArg, store: StoreOpt = None) -> None:
    """Carry on a run that did not complete (Crashed, Failed, Paused, Cancelled), here: task
    calls that completed before return their stored results without running again.

    The flow is loaded from where the run says it is (its file, or its module). Exit codes
    as for `reflow run`.

    **Examples**

    ```
    reflow runs resume 3f2a9c1e
    reflow runs resume last --store postgresql://db/reflow
    ```
    """
    from reflow.store.control import LIVE, Refused, check_resumable
    from reflow.store.persistence import mark_crashed, persistence

    url = store_url(store)
    if url == "memory":
        raise UsageError("the store is 'memory' (REFLOW_STORE): there is nothing to resume")
    kept = persistence(True, url)
    assert kept is not None
    record = resolve_run(kept.store, run)
    if record.state_type in LIVE:
        mark_crashed(url)  # its process may have died: then it is Crashed, and resumable
        record = kept.store.flow_run(record.id) or record
    try:  # the checks the dashboard's resume button makes too
        check_resumable(record, atoms=kept.store.atom_run(record.id) is not None)
    except Refused as exc:
        raise (UsageError if exc.usage else CLIError)(str(exc)) from None
    kept.store.clear_cancel(record.id)
    try:
        flow_run = execute(lambda: kept.resume(record.id))
    except (LookupError, ImportError, OSError) as exc:
        raise CLIError(
            f"cannot load the flow of run {record.id} ({record.flow_path}): {exc}"
        ) from exc
    finish(flow_run)


@handle_errors
def cancel(
    run: RunArg,
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait until the run has ended, and say how.")
    ] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", metavar="SECONDS", help="How long --wait waits.")
    ] = 60.0,
    store: StoreOpt = None,
) -> None:
    """Cancel a run. A queued (or crashed, or paused) run is Cancelled at once; a running one
    is asked to stop, and its own process cancels it within about a second: task runs not
    started yet end Cancelled, and so does the run. Works across processes and machines.

    **Examples**

    ```
    reflow runs cancel 3f2a9c1e
    reflow runs cancel last --wait
    ```
    """
    from reflow.store.control import Refused
    from reflow.store.control import cancel as cancel_run
    from reflow.store.persistence import WORKER

    with reading_store(store) as db:
        record = resolve_run(db, run)
        try:  # what the dashboard's cancel button calls too
            done = cancel_run(db, record, f"reflow runs cancel ({WORKER})")
        except Refused as exc:
            raise CLIError(str(exc)) from None
        typer.echo(done.message)
        if done.outcome == "cancelled":
            return
        if not wait:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            current = db.flow_run(record.id)
            if current is not None and current.state_type in FINAL_TYPES:
                typer.echo(f"flow run {record.id} ended {current.state}")
                raise typer.Exit(0 if current.state_type == "CANCELLED" else 1)
            time.sleep(0.1)
        raise CLIError(f"flow run {record.id} has not ended after {timeout:g} s")


app.command("ls")(ls)
app.command("show")(show)
app.command("logs")(logs)
app.command("resume")(resume)
app.command("cancel")(cancel)
