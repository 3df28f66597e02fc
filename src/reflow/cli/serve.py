"""`reflow serve FILE.py:FLOW --cron ... | --interval ...`, `reflow schedules ls`, and
`reflow worker`: the long-running commands, and the schedules they keep."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from reflow.cli._common import (
    UsageError,
    graceful_stop,
    handle_errors,
    load_target,
    parse_params,
    reading_store,
    stdout,
    store_url,
    styled_state,
)
from reflow.cli.run import ParamOpt, ParamsJsonOpt, StoreOpt, TargetArg

schedules_app = typer.Typer(
    name="schedules",
    help="The schedules `reflow serve` keeps in the store.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)


@handle_errors
def serve(
    target: TargetArg,
    cron: Annotated[
        str | None,
        typer.Option("--cron", metavar="EXPRESSION", help="Fire at the times of this cron "
                     "expression (minute hour day month weekday), e.g. '0 9 * * 1-5'.",
                     show_default=False),
    ] = None,
    timezone: Annotated[
        str | None,
        typer.Option("--timezone", "--tz", metavar="ZONE", help="The time zone of --cron, "
                     "e.g. Europe/Paris (default: REFLOW_TIMEZONE, else UTC).",
                     show_default=False),
    ] = None,
    interval: Annotated[
        str | None,
        typer.Option("--interval", metavar="DURATION", help="Fire every DURATION instead: "
                     "30s, 30m, 1h30m, 1d.", show_default=False),
    ] = None,
    catchup: Annotated[
        bool,
        typer.Option("--catchup", help="Queue the runs missed while nothing served this "
                     "schedule (at most 100, the newest); by default they are skipped."),
    ] = False,
    name: Annotated[
        str | None,
        typer.Option("--name", metavar="NAME", help="The schedule's name (default: the "
                     "flow's); one server per name fires each time once.", show_default=False),
    ] = None,
    param: ParamOpt = None,
    params_json: ParamsJsonOpt = None,
    store: StoreOpt = None,
) -> None:  # fmt: skip
    """Serve a flow on a schedule, and stay up: queue a run at each fire time and run it
    here, one run at a time.

    The schedule and its next fire time are kept in the store (`reflow schedules ls`). Runs
    queued in the same store by anyone else (`reflow run --submit`, `reflow.submit_run()`)
    are run here too: that is how to make an ad-hoc run while serving; `reflow run` from
    another shell also works at any time, in its own process. Fire times missed while down
    are not replayed unless `--catchup`. SIGINT or SIGTERM stops it after the current run
    (a second one stops it at once).

    **Examples**

    ```
    reflow serve examples/standup.py:standup --cron "0 9 * * 1-5" --timezone Europe/Paris
    reflow serve etl.py:load --interval 30m --param source=s3://bucket
    reflow serve etl.py:load --interval 1h --catchup --store postgresql://db/reflow
    ```
    """
    from reflow.logging import configure
    from reflow.schedule import Cron, Interval, Schedule, parse_duration
    from reflow.settings import settings
    from reflow.store.scheduler import serve as serve_flow

    if (cron is None) == (interval is None):
        raise UsageError("give one of --cron EXPRESSION or --interval DURATION")
    if interval is not None and timezone is not None:
        raise UsageError("--timezone goes with --cron (an interval counts elapsed time)")
    try:
        schedule: Schedule
        if cron is not None:
            schedule = Cron(cron, timezone or settings().timezone)
        else:
            schedule = Interval(parse_duration(interval or ""))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    flow = load_target(target)
    bound = parse_params(flow, param or [], params_json)
    url = store_url(store)
    if url == "memory":
        raise UsageError("serve keeps its schedule and runs in a store; REFLOW_STORE is 'memory'")
    configure()
    stop = threading.Event()
    typer.echo(
        f"serving {flow.name} {schedule.describe()} (schedule {name or flow.name}); "
        "Ctrl-C or SIGTERM to stop",
        err=True,
    )
    with graceful_stop(stop, "stopping after the current run"):
        ran = serve_flow(
            flow.with_options(persist=True, store=url), schedule, store=url, name=name,
            parameters=dict(bound.arguments), catchup=catchup, stop=stop,
        )  # fmt: skip
    typer.echo(f"stopped: ran {ran} run(s)", err=True)


@handle_errors
def worker(
    store: StoreOpt = None,
    max_runs: Annotated[
        int | None,
        typer.Option("--max-runs", min=1, metavar="N", help="Stop after N runs.",
                     show_default=False),
    ] = None,
    idle_exit: Annotated[
        float | None,
        typer.Option("--idle-exit", metavar="SECONDS", help="Stop when nothing came for "
                     "SECONDS.", show_default=False),
    ] = None,
    poll: Annotated[
        float, typer.Option("--poll", metavar="SECONDS", help="How often to look for runs.")
    ] = 0.2,
) -> None:  # fmt: skip
    """Run queued runs (`reflow run --submit`, `reflow.submit_run()`, schedules) from the
    store, one at a time, until stopped. Any number of workers can share a store (PostgreSQL
    for several machines); each run is taken by one worker only, and the runs of a worker
    that died are resumed by another.

    **Examples**

    ```
    reflow worker --store postgresql://db/reflow
    reflow worker --max-runs 10 --idle-exit 60
    ```
    """
    from reflow.logging import configure
    from reflow.store.persistence import WORKER
    from reflow.store.worker import run_worker

    url = store_url(store)
    if url == "memory":
        raise UsageError("a worker takes runs from a store; REFLOW_STORE is 'memory'")
    configure()
    stop = threading.Event()
    typer.echo(f"worker {WORKER} takes queued runs; Ctrl-C or SIGTERM to stop", err=True)
    with graceful_stop(stop, "stopping after the current run"):
        ran = run_worker(url, max_runs=max_runs, idle_exit=idle_exit, poll=poll, stop=stop)
    typer.echo(f"stopped: ran {ran} run(s)", err=True)


def _served(record: Any) -> str:
    from reflow.store.scheduler import SERVER_BEAT

    if record.server and record.heartbeat and time.time() - record.heartbeat < 3 * SERVER_BEAT:
        return f"[green]{escape(record.server)}[/]"
    return "[dim]not served[/]"


def _next(record: Any) -> str:
    from reflow.schedule import zone

    if record.next_run is None:
        return "-"
    tz = zone(record.timezone) if record.kind == "cron" else None
    moment = datetime.fromtimestamp(record.next_run, UTC).astimezone(tz)
    left = record.next_run - time.time()
    relative = f"in {left:.0f} s" if 0 <= left < 120 else ("due" if left < 0 else "")
    stamp = moment.strftime("%Y-%m-%d %H:%M:%S %Z")
    return f"{stamp} ({relative})" if relative else stamp


@handle_errors
def schedules_ls(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON, for programs.")] = False,
    store: StoreOpt = None,
) -> None:
    """List the schedules with their next fire time, last run and server.

    **Examples**

    ```
    reflow schedules ls
    reflow schedules ls --json
    ```
    """
    from reflow.store.scheduler import schedule_of

    with reading_store(store) as db:
        records = db.schedules()
        last = {r.name: db.flow_run(r.last_run_id) if r.last_run_id else None for r in records}
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {"name": r.name, "flow": r.flow_name, "flow_path": r.flow_path,
                     "kind": r.kind, "expression": r.expression, "timezone": r.timezone,
                     "schedule": schedule_of(r).describe(), "next_run": r.next_run,
                     "last_run": r.last_run, "last_run_id": r.last_run_id,
                     "parameters": r.parameters, "catchup": r.catchup, "server": r.server,
                     "heartbeat": r.heartbeat}
                    for r in records
                ],
                indent=2,
            )
        )  # fmt: skip
        return
    console = stdout()
    if not records:
        console.print("no schedules yet: `reflow serve FILE.py:FLOW --cron ...` makes one")
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("schedule", "flow", "when", "next run", "last run", "server"):
        table.add_column(column)
    for r in records:
        run = last[r.name]
        shown = f"{run.id[:12]} {styled_state(run.state, run.state_type)}" if run else "-"
        table.add_row(
            escape(r.name), escape(r.flow_name), escape(schedule_of(r).describe()), _next(r),
            shown, _served(r),
        )  # fmt: skip
    console.print(table)


schedules_app.command("ls")(schedules_ls)
