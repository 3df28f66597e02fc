"""`reflow runs prune`: delete old runs, expired cache entries and the result files nothing
names any more (`SQLStore.delete_runs`, `cache_expire`, `collect_result_files`)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from reflow.cli._common import UsageError, handle_errors, reading_store
from reflow.cli.records import JsonOpt, state_filter
from reflow.cli.run import StoreOpt


@handle_errors
def prune(
    older_than: Annotated[
        str,
        typer.Option(
            "--older-than", metavar="AGE", help="Runs that last changed longer ago than this: "
            "30d, 12h, 90m, 3600 (seconds).", show_default=False,
        ),
    ],
    state: Annotated[
        list[str] | None,
        typer.Option(
            "--state", metavar="STATE", help="Only runs in this state (Completed) or of this "
            "type (FAILED); repeat it for several. Default: runs that ended (Completed, "
            "Failed, Cancelled and their kinds). Never Pending or Running.", show_default=False,
        ),
    ] = None,
    grace: Annotated[
        str,
        typer.Option(
            "--grace", metavar="AGE", help="Result files younger than this are kept even when "
            "no run names them (a writer may be about to).",
        ),
    ] = "1h",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would go; delete nothing.")
    ] = False,
    as_json: JsonOpt = False,
    store: StoreOpt = None,
) -> None:  # fmt: skip
    """Delete old runs with everything kept of them (their subflow runs, task runs, states,
    logs, atoms and retry histories), the task cache's expired entries, and the result files
    that no row names any more. A run that is Pending or Running is never deleted.

    **Examples**

    ```
    reflow runs prune --older-than 30d --dry-run
    reflow runs prune --older-than 30d
    reflow runs prune --older-than 7d --state Failed --state Crashed
    ```
    """
    from reflow.schedule import parse_duration

    try:  # 0 is a duration here: everything, no grace
        age, spared = (
            0.0 if t.strip() in ("0", "0s") else parse_duration(t) for t in (older_than, grace)
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    states = None
    if state:
        states = [name or kind for kind, name in (state_filter(s) for s in state)]
    with reading_store(store) as db:
        try:
            runs = db.delete_runs(older_than=age, states=states, dry_run=dry_run)
        except ValueError as exc:
            raise UsageError(f"--state: {exc}") from exc
        expired = db.cache_expire(dry_run=dry_run)
        files = db.collect_result_files(spared, dry_run=dry_run)
    if as_json:
        found = {
            "dry_run": dry_run,
            "runs": runs,
            "cache_entries": expired,
            "files": [str(p) for p in files.paths],
            "bytes": files.bytes,
        }
        typer.echo(json.dumps(found, indent=2))
        return
    verb = "would delete" if dry_run else "deleted"
    typer.echo(
        f"{verb} {len(runs)} run(s), {expired} expired cache entr{'y' if expired == 1 else 'ies'}"
        f" and {len(files.paths)} result file(s) ({_size(files.bytes)})"
    )
    if dry_run and runs:
        typer.echo(
            "the result files of the runs it would delete are not counted: they are collected "
            "once their runs are gone (and the grace period passed)"
        )


def _size(count: int) -> str:
    if count < 1024:
        return f"{count} bytes"
    size = count / 1024
    for unit in ("KiB", "MiB"):
        if size < 1024:
            return f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"
