"""The dashboard's pages, rendered on the server: the runs list, a run (flow or atoms), a task
run, the schedules, the API's endpoints. Each live part also has a fragment URL that the
page's script fetches again when the run changed (`/fragments/...`).

Large runs stay fast: the task graph groups mapped task runs into one node, and the task
runs (their table and timeline) and log lines are read a page at a time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from reflow.store.control import Refused
from reflow.store.records import FlowRunRecord, StateRecord
from reflow.ui import atoms_view, data, graph, schedules_view, timeline
from reflow.ui.app import Dashboard
from reflow.ui.fmt import FINAL_TYPES
from reflow.ui.masking import mask_text
from reflow.ui.render import query
from reflow.ui.svg import TYPE_ORDER

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
"""Runs, task runs, atoms (and timeline rows) per page."""
LOG_LINES = 200

Page = Annotated[int, Query(ge=1, le=10**6)]
Text = Annotated[str | None, Query(max_length=400)]


def _board(request: Request) -> Dashboard:
    found: Dashboard = request.app.state.dashboard
    return found


def _html(request: Request, template: str, **context: Any) -> HTMLResponse:
    return HTMLResponse(_board(request).renderer.page(template, **context))


# -- runs --------------------------------------------------------------------------------------


def _runs_context(request: Request, flow: str | None, state: str | None, page: int) -> Any:
    store = _board(request).store
    listed = data.list_runs(
        store, flow=flow, state=state, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
    )
    params = {"flow": flow, "state": state}
    return {
        "listed": listed,
        "page": page,
        "pages": max(1, -(-listed.total // PAGE_SIZE)),
        "params": params,
        "flows": store.flow_names(),
        "flow": flow or "",
        "state": state or "",
        "states": _state_choices(),
        "fragment": "/fragments/runs" + query(params, page=page if page > 1 else None),
    }


def _state_choices() -> list[str]:
    from reflow.states import STATE_TYPES

    return [*TYPE_ORDER, *sorted(STATE_TYPES)]


@router.get("/", response_class=HTMLResponse)
def runs_page(request: Request, flow: Text = None, state: Text = None, page: Page = 1) -> Any:
    return _html(request, "runs.html", **_runs_context(request, flow, state, page))


@router.get("/fragments/runs", response_class=HTMLResponse)
def runs_fragment(request: Request, flow: Text = None, state: Text = None, page: Page = 1) -> Any:
    return _html(request, "_runs_table.html", **_runs_context(request, flow, state, page))


# -- one run -----------------------------------------------------------------------------------


def _until(record: FlowRunRecord) -> float:
    return record.updated if record.state_type in FINAL_TYPES else time.time()


@dataclass(frozen=True, slots=True)
class RunView:
    """What a run page shows of its run: the timeline's page and filters, the logs' task and
    position (the page and its live fragment take the same query)."""

    page: int
    state: str | None
    group: str | None
    retried: bool
    log_task: str | None
    logs_before: int | None


def run_view(
    page: Page = 1,
    state: Text = None,
    group: Text = None,
    retried: bool = False,
    log_task: Text = None,
    logs_before: Annotated[int | None, Query(ge=0, le=2**62)] = None,
) -> RunView:
    """The run page's query parameters (a FastAPI dependency)."""
    return RunView(page, state, group, retried, log_task, logs_before)


def _run_context(request: Request, run_id: str, view: RunView) -> dict[str, Any]:
    page, state, group, retried = view.page, view.state, view.group, view.retried
    log_task, logs_before = view.log_task, view.logs_before
    board = _board(request)
    store = board.store
    record = data.get_run(store, run_id)
    detail = data.detail(store, record)
    params = {
        "state": state,
        "group": group,
        "retried": "1" if retried else None,
        "log_task": log_task,
    }
    base = f"/runs/{record.id}"
    until = _until(record)
    flow_states = store.states(record.id)
    rows = [timeline.Row("flow run", timeline.segments(flow_states, until))]
    context: dict[str, Any] = {
        "record": record,
        "detail": detail,
        "params": params,
        "base": base,
        "page": page,
        "state": state or "",
        "group": group or "",
        "retried": retried,
        "states": _state_choices(),
        "resumption": board.actions.resumption(record.id),
        "mask": mask_text,
    }
    keys: dict[str, str] = {}
    if detail.run.kind == "atoms":
        atoms = atoms_view.atoms_out(store, record.id)
        chosen = [a for a in atoms if _state_matches(a.state, a.state_type, state)]
        shown = chosen[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
        for atom in shown:
            history = [
                StateRecord(
                    record.id, "atom", s.name, s.type, s.timestamp, s.message, s.attempt, s.error
                )
                for s in atom.states
            ]
            label = f"{atom.name} (retry)" if atom.kind == "retry" else atom.name
            rows.append(timeline.Row(label, timeline.segments(history, until)))
        context.update(
            atoms=shown, total=len(chosen), histories=atoms_view.histories_out(store, record.id)
        )
    else:
        summaries = store.task_run_summaries(record.id)
        keys = {s.id: s.key for s in summaries}
        drawn = graph.task_graph(summaries)

        def link(node: graph.Group) -> str:
            if node.run_id is not None:
                return f"{base}/tasks/{node.run_id}"
            return base + query(params, group=node.key) + "#tasks"

        chosen_tasks = data.select_tasks(summaries, state=state, group=group, retried=retried)
        records = data.task_page(store, record.id, chosen_tasks, (page - 1) * PAGE_SIZE, PAGE_SIZE)
        for task in records:
            rows.append(
                timeline.Row(
                    task.key, timeline.segments(task.states, until), f"{base}/tasks/{task.id}"
                )
            )
        context.update(
            graph=drawn,
            graph_svg=graph.render(drawn, link),
            tasks=[data.task_out(t, t.states) for t in records],
            total=len(chosen_tasks),
            retried_tasks=sum(1 for s in summaries if s.attempts > 1),
        )
    context["pages"] = max(1, -(-context["total"] // PAGE_SIZE))
    context["timeline_svg"] = timeline.render(rows)
    logs = data.logs(store, record.id, task_run_id=log_task, before=logs_before, limit=LOG_LINES)
    context.update(logs=logs, log_keys=keys, log_task=log_task or "")
    context["fragment"] = f"/fragments{base}" + query(
        params, page=page if page > 1 else None, logs_before=logs_before
    )
    return context


def _state_matches(name: str, state_type: str, state: str | None) -> bool:
    wanted_type, wanted_name = data.state_filter(state)
    return (wanted_type is None or state_type == wanted_type) and (
        wanted_name is None or name == wanted_name
    )


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_page(
    request: Request,
    run_id: str,
    view: Annotated[RunView, Depends(run_view)],
    notice: Text = None,
    error: Text = None,
) -> Any:
    context = _run_context(request, run_id, view)
    return _html(request, "run.html", notice=notice, error=error, **context)


@router.get("/fragments/runs/{run_id}", response_class=HTMLResponse)
def run_fragment(request: Request, run_id: str, view: Annotated[RunView, Depends(run_view)]) -> Any:
    return _html(request, "_run_body.html", **_run_context(request, run_id, view))


def _after_action(run_id: str, *, notice: str | None = None, error: str | None = None) -> Any:
    shown = {"notice": notice} if notice else {"error": error or ""}
    return RedirectResponse(f"/runs/{run_id}?{urlencode(shown)}", status_code=303)


@router.post("/runs/{run_id}/resume")
def resume_button(request: Request, run_id: str) -> Any:
    """The resume button without script: do it, then back to the run's page."""
    board = _board(request)
    record = data.get_run(board.store, run_id)
    try:
        started = board.actions.resume(record)
    except Refused as exc:
        return _after_action(record.id, error=str(exc))
    return _after_action(record.id, notice=f"resuming in process {started.pid}")


@router.post("/runs/{run_id}/cancel")
def cancel_button(request: Request, run_id: str) -> Any:
    board = _board(request)
    record = data.get_run(board.store, run_id)
    try:
        done = board.actions.cancel(record)
    except Refused as exc:
        return _after_action(record.id, error=str(exc))
    return _after_action(record.id, notice=done.message)


# -- a task run --------------------------------------------------------------------------------


@router.get("/runs/{run_id}/tasks/{task_run_id}", response_class=HTMLResponse)
def task_page(request: Request, run_id: str, task_run_id: str) -> Any:
    store = _board(request).store
    record = data.get_run(store, run_id)
    task = data.get_task(store, record.id, task_run_id)
    detail = data.task_detail(store, task)
    until = task.updated if task.state_type in FINAL_TYPES else time.time()
    svg = timeline.render([timeline.Row(task.key, timeline.segments(task.states, until))])
    logs = data.logs(store, record.id, task_run_id=task.id, limit=LOG_LINES)
    return _html(
        request,
        "task.html",
        record=record,
        task=detail,
        timeline_svg=svg,
        logs=logs,
        log_keys={task.id: task.key},
        base=f"/runs/{record.id}",
    )


# -- schedules, the API ------------------------------------------------------------------------


@router.get("/schedules", response_class=HTMLResponse)
def schedules_page(request: Request) -> Any:
    return _html(
        request, "schedules.html", schedules=schedules_view.schedules_out(_board(request).store)
    )


@router.get("/api", response_class=HTMLResponse)
def api_page(request: Request) -> Any:
    """The API's endpoints, read from the app's own OpenAPI schema."""
    schema = request.app.openapi()
    endpoints = [
        (method.upper(), path, op.get("summary", ""), op.get("description", ""))
        for path, ops in schema.get("paths", {}).items()
        for method, op in ops.items()
    ]
    return _html(request, "api.html", endpoints=endpoints)


__all__ = ["router"]
