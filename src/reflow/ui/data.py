"""What the dashboard reads from the store, as the API's models: one place for the API routes
and the pages, so both show the same facts, masked the same way.

Every text that may hold a secret goes through `reflow.ui.masking` here. Results are shown
only when stored as JSON and small; pickles are never loaded by the dashboard.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterable, Sequence
from typing import Any

from reflow import states
from reflow.store.base import SQLStore
from reflow.store.control import Refused, check_resumable
from reflow.store.files import PREFIX
from reflow.store.records import FlowRunRecord, StateRecord, TaskRunRecord
from reflow.store.views import TaskRunSummary
from reflow.ui import models
from reflow.ui.fmt import FINAL_TYPES, duration
from reflow.ui.graph import TaskGraph, group_of
from reflow.ui.masking import mask_optional, mask_text, mask_value

RESULT_LIMIT = 64 * 1024
"""A JSON result of more bytes than this is not shown (its size is)."""
MAX_ID = 200


class NotFound(LookupError):
    """No such run, task run or schedule (a 404)."""


class BadRequest(ValueError):
    """A filter or parameter that makes no sense (a 422)."""


def clean_id(text: str, what: str = "flow run") -> str:
    """`text` as an id to look up; NotFound for one no store could hold (too long, a NUL, a
    character UTF-8 cannot carry), so bad input is a 404 and never a database error."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise NotFound(f"no {what} with that id") from None
    if not text or len(text) > MAX_ID or "\x00" in text:
        raise NotFound(f"no {what} with that id")
    return text


def state_filter(state: str | None) -> tuple[str | None, str | None]:
    """(state type, state name) to filter by, from a state (`Failed`) or a type (`FAILED`),
    as `reflow runs ls --state` takes it."""
    if not state:
        return None, None
    try:
        return states.state_filter(state)
    except ValueError as error:
        raise BadRequest(f"state {error}") from None


# -- runs ----------------------------------------------------------------------------------------


def run_out(record: FlowRunRecord, atoms: bool = False, now: float | None = None) -> models.RunOut:
    return models.RunOut(
        id=record.id,
        name=record.name,
        kind="atoms" if atoms else "flow",
        state=record.state,
        state_type=record.state_type,
        created=record.created,
        updated=record.updated,
        duration=duration(record.created, record.updated, record.state_type, now),
        version=record.version,
        parent_id=record.parent_id,
        run_key=record.run_key,
        worker=record.worker,
        heartbeat=record.heartbeat,
        error=mask_optional(record.error),
        flow_path=record.flow_path,
    )


def list_runs(
    store: SQLStore,
    *,
    flow: str | None = None,
    state: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> models.RunList:
    """A page of runs, newest first, with the total for the filters."""
    state_type, name = state_filter(state)
    flow = flow or None
    if flow is not None:
        flow = clean_text(flow)
    records = store.flow_runs_page(
        state_type=state_type, state=name, name=flow, limit=limit, offset=offset
    )
    total = store.count_flow_runs(state_type=state_type, state=name, name=flow)
    atoms = store.atoms_run_ids(r.id for r in records)
    now = time.time()
    return models.RunList(
        total=total,
        offset=offset,
        limit=limit,
        runs=[run_out(r, r.id in atoms, now) for r in records],
    )


def clean_text(text: str) -> str:
    """A filter value no database chokes on (a NUL or lone surrogate is dropped)."""
    return text.encode("utf-8", "ignore").decode("utf-8").replace("\x00", "")


def get_run(store: SQLStore, run_id: str) -> FlowRunRecord:
    record = store.flow_run_light(clean_id(run_id))
    if record is None:
        raise NotFound(f"no flow run {run_id!r} in {store!r}")
    return record


def is_atoms(store: SQLStore, run_id: str) -> bool:
    return bool(store.atoms_run_ids([run_id]))


def states_out(states: Iterable[StateRecord]) -> list[models.StateOut]:
    return [
        models.StateOut(
            name=s.name,
            type=s.type,
            timestamp=s.timestamp,
            message=mask_text(s.message),
            attempt=s.attempt,
            error=mask_optional(s.error),
            traceback=mask_optional(s.traceback),
        )
        for s in states
    ]


def version(store: SQLStore, record: FlowRunRecord) -> str:
    """A short token that changes whenever anything the run page shows changes."""
    seen = repr((record.state, record.updated, record.heartbeat, store.activity(record.id)))
    return hashlib.blake2s(seen.encode(), digest_size=8).hexdigest()


def resume_refusal(record: FlowRunRecord, atoms: bool) -> str | None:
    """Why the run cannot be resumed now (None: it can), as the CLI would say it."""
    try:
        check_resumable(record, atoms=atoms)
    except Refused as exc:
        return str(exc)
    return None


def cancellable(record: FlowRunRecord) -> bool:
    return record.state_type not in ("COMPLETED", "FAILED", "CANCELLED")


NOT_KEPT_NOTE = "not kept in the store (persist_result=False, or a value that cannot be stored)"
"""What a completed run's result is shown as when the store has none."""


def result_view(encoding: str | None, blob: bytes | None, size: int) -> tuple[Any, str | None]:
    """(value shown, or a note saying what it is instead)."""
    if encoding is None:
        return None, NOT_KEPT_NOTE
    if encoding.startswith(PREFIX):
        return None, f"kept in a file ({encoding.removeprefix(PREFIX)}): not shown here"
    if encoding != "json":
        return None, f"a {encoding} of {size:,} bytes: not shown here"
    if blob is None:
        return None, f"JSON of {size:,} bytes: too large to show here"
    try:
        return mask_value(json.loads(blob)), None
    except ValueError:
        return None, f"JSON of {size:,} bytes that does not parse"


def detail(store: SQLStore, record: FlowRunRecord) -> models.RunDetail:
    """Everything the run page's header shows."""
    atoms = is_atoms(store, record.id)
    counts = store.task_state_counts(record.id)
    result, note = (None, None)
    if record.state_type == "COMPLETED":
        result, note = result_view(*store.result_preview(record.id, limit=RESULT_LIMIT))
    refusal = resume_refusal(record, atoms)
    return models.RunDetail(
        run=run_out(record, atoms),
        parameters=mask_value(record.parameters),
        result=result,
        result_note=note,
        states=states_out(store.states(record.id)),
        task_runs=sum(c.count for c in counts),
        task_counts=[
            models.StateCountOut(state=c.state, state_type=c.state_type, count=c.count)
            for c in counts
        ],
        subflows=[run_out(r) for r in store.subflow_runs(record.id)],
        resumable=refusal is None,
        resume_refusal=refusal,
        cancellable=cancellable(record),
        version=version(store, record),
    )


def status(store: SQLStore, record: FlowRunRecord) -> models.RunStatus:
    return models.RunStatus(
        id=record.id,
        state=record.state,
        state_type=record.state_type,
        final=record.state_type in FINAL_TYPES,
        version=version(store, record),
    )


# -- task runs -----------------------------------------------------------------------------------


def task_seconds(states: Sequence[StateRecord], state_type: str, updated: float) -> float | None:
    """From its first attempt to its end (None while it runs or when it never ran)."""
    started = next((s.timestamp for s in states if s.type == "RUNNING"), None)
    if started is None or state_type not in FINAL_TYPES:
        return None
    return max(0.0, updated - started)


def task_out(
    run: TaskRunSummary | TaskRunRecord, states: Sequence[StateRecord] | None = None
) -> models.TaskRunOut:
    return models.TaskRunOut(
        id=run.id,
        key=run.key,
        group=group_of(run.key, 1),
        task_name=run.task_name,
        state=run.state,
        state_type=run.state_type,
        attempts=run.attempts,
        created=run.created,
        updated=run.updated,
        duration=None if states is None else task_seconds(states, run.state_type, run.updated),
        error=mask_optional(run.error),
        upstream=list(run.upstream),
        states=None if states is None else states_out(states),
    )


def select_tasks(
    runs: Sequence[TaskRunSummary],
    *,
    state: str | None = None,
    group: str | None = None,
    retried: bool = False,
) -> list[TaskRunSummary]:
    """The task runs a page lists: of one state (or type), one graph node, retried ones."""
    state_type, name = state_filter(state)
    chosen: Iterable[TaskRunSummary] = runs
    if state_type is not None:
        chosen = [r for r in chosen if r.state_type == state_type]
    if name is not None:
        chosen = [r for r in chosen if r.state == name]
    if group:
        chosen = [r for r in chosen if group in (r.key, group_of(r.key, 1), group_of(r.key, 2))]
    if retried:
        chosen = [r for r in chosen if r.attempts > 1]
    return list(chosen)


def task_page(
    store: SQLStore, run_id: str, chosen: Sequence[TaskRunSummary], offset: int, limit: int
) -> list[TaskRunRecord]:
    """The task runs of one page, with their state histories."""
    return store.task_runs_by_id(run_id, [r.id for r in chosen[offset : offset + limit]])


def task_list(
    store: SQLStore,
    run_id: str,
    *,
    offset: int = 0,
    limit: int = 50,
    state: str | None = None,
    group: str | None = None,
    retried: bool = False,
) -> models.TaskRunList:
    chosen = select_tasks(
        store.task_run_summaries(run_id), state=state, group=group, retried=retried
    )
    page = task_page(store, run_id, chosen, offset, limit)
    return models.TaskRunList(
        total=len(chosen),
        offset=offset,
        limit=limit,
        task_runs=[task_out(r, r.states) for r in page],
    )


def get_task(store: SQLStore, run_id: str, task_run_id: str) -> TaskRunRecord:
    record = store.task_run_light(clean_id(task_run_id, "task run"))
    if record is None or record.flow_run_id != run_id:
        raise NotFound(f"flow run {run_id} has no task run {task_run_id!r}")
    return record


def task_detail(store: SQLStore, record: TaskRunRecord) -> models.TaskRunDetail:
    result, note = (None, None)
    if record.state_type == "COMPLETED":
        preview = store.result_preview(record.id, task=True, limit=RESULT_LIMIT)
        result, note = result_view(*preview)
    out = task_out(record, record.states)
    return models.TaskRunDetail(**out.model_dump(), result=result, result_note=note)


def graph_out(graph: TaskGraph) -> models.GraphOut:
    return models.GraphOut(
        unit=graph.unit,
        nodes=[
            models.GraphNode(
                key=g.key,
                task_name=g.task_name,
                count=g.count,
                state_type=g.state_type,
                states=dict(g.states),
                task_run_id=g.run_id,
            )
            for g in graph.groups
        ],
        edges=[models.GraphEdge(source=a, target=b, count=n) for a, b, n in graph.edges],
        left_out=graph.left_out,
    )


# -- logs ----------------------------------------------------------------------------------------


def logs(
    store: SQLStore,
    run_id: str,
    *,
    task_run_id: str | None = None,
    before: int | None = None,
    after: int | None = None,
    limit: int = 200,
) -> models.LogList:
    """The latest `limit` log lines (before `before`), or those after `after` (following)."""
    if task_run_id is not None:
        task_run_id = clean_id(task_run_id, "task run")
    if after is not None:
        records = store.logs(run_id, after=after, limit=limit)
        if task_run_id is not None:
            records = [r for r in records if r.task_run_id == task_run_id]
    else:
        records = store.logs_page(run_id, task_run_id=task_run_id, before=before, limit=limit)
    lines = [
        models.LogOut(
            seq=r.seq,
            task_run_id=r.task_run_id,
            timestamp=r.timestamp,
            level=r.level,
            level_name=logging.getLevelName(r.level),
            logger=r.logger,
            message=mask_text(r.message),
        )
        for r in records
    ]
    older = lines[0].seq if len(lines) == limit and after is None else None
    last = max([line.seq for line in lines], default=after or 0)
    return models.LogList(logs=lines, before=older, after=last)
