"""`reflow runs ls | show | logs | resume | cancel | prune`: the runs kept in a store (`show`
is in show.py, `prune` in prune.py)."""

from __future__ import annotations

import json
import logging
import time
from typing import Annotated

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
from reflow.cli.prune import prune
from reflow.cli.records import JsonOpt, RunArg, duration, flow_json, state_filter
from reflow.cli.run import StoreOpt, execute, finish
from reflow.cli.show import show
from reflow.states import FINAL_TYPE_NAMES as FINAL_TYPES

app = typer.Typer(
    name="runs",
    help="Look at the runs kept in the store, follow their logs, resume or cancel them, prune "
    "old ones.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)


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
    state_type, name = state_filter(state) if state else (None, None)
    with reading_store(store) as db:
        asked = limit if name is None else max(limit * 20, 500)
        records = db.flow_runs(state_type=state_type, name=flow, limit=asked)
    if name is not None:
        records = [r for r in records if r.state == name]
    records = records[:limit]
    if as_json:
        typer.echo(json.dumps([flow_json(r) for r in records], indent=2, default=str))
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
            seconds(duration(r)),
        )  # fmt: skip
    console.print(table)


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
    from reflow.store.claims import RunHeld
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
    try:  # the take-over forgets the cancel request made before it (only if it wins)
        flow_run = execute(lambda: kept.resume(record.id, clear_cancel=True))
    except RunHeld as exc:  # another process took it over meanwhile
        raise CLIError(str(exc)) from exc
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
app.command("prune")(prune)
