"""The dashboard's JSON API, under `/api/`: the facts the pages show, for programs.

Every answer is a pydantic model of `reflow.ui.models`, so `/openapi.json` documents it.
Secrets are masked as on the pages. POSTs need the CSRF token or a Bearer header (see
`reflow.ui.auth`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from reflow.ui import atoms_view, data, models, schedules_view
from reflow.ui.app import Dashboard
from reflow.ui.graph import task_graph

_errors: dict[int | str, dict[str, object]] = {
    401: {"model": models.ErrorOut, "description": "the dashboard's token is missing or wrong"},
    404: {"model": models.ErrorOut, "description": "no such run, task run or schedule"},
    422: {"description": "a parameter that does not fit"},
}
router = APIRouter(prefix="/api", responses=_errors)

RunId = Annotated[str, Path(description="the run's id", max_length=data.MAX_ID)]
TaskRunId = Annotated[str, Path(description="the task run's id", max_length=data.MAX_ID)]
Limit = Annotated[int, Query(ge=1, le=500, description="at most this many")]
Offset = Annotated[int, Query(ge=0, le=10**9, description="skip this many first")]
StateQuery = Annotated[
    str | None,
    Query(max_length=40, description="a state (Failed) or a state type (FAILED)"),
]


def dashboard(request: Request) -> Dashboard:
    found: Dashboard = request.app.state.dashboard
    return found


@router.get("/runs", response_model=models.RunList, tags=["runs"], summary="List runs")
def list_runs(
    request: Request,
    flow: Annotated[str | None, Query(max_length=200, description="a flow's name")] = None,
    state: StateQuery = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> models.RunList:
    """Flow and atoms runs, newest first, a page at a time (subflow runs included)."""
    return data.list_runs(
        dashboard(request).store, flow=flow, state=state, limit=limit, offset=offset
    )


@router.get("/runs/{run_id}", response_model=models.RunDetail, tags=["runs"], summary="A run")
def get_run(request: Request, run_id: RunId) -> models.RunDetail:
    """A run's record, parameters (secrets masked), result (JSON only), states, task-run
    counts by state, subflow runs, and whether it can be resumed or cancelled."""
    store = dashboard(request).store
    return data.detail(store, data.get_run(store, run_id))


@router.get(
    "/runs/{run_id}/status",
    response_model=models.RunStatus,
    tags=["runs"],
    summary="Whether a run changed",
)
def run_status(request: Request, run_id: RunId) -> models.RunStatus:
    """Its state and a `version` that changes whenever anything of the run does: cheap to
    poll."""
    store = dashboard(request).store
    return data.status(store, data.get_run(store, run_id))


@router.get(
    "/runs/{run_id}/tasks",
    response_model=models.TaskRunList,
    tags=["task runs"],
    summary="A run's task runs",
)
def list_tasks(
    request: Request,
    run_id: RunId,
    state: StateQuery = None,
    group: Annotated[
        str | None, Query(max_length=400, description="a graph node: fetch-0[*], fetch-*")
    ] = None,
    retried: Annotated[bool, Query(description="only those with more than one attempt")] = False,
    limit: Limit = 50,
    offset: Offset = 0,
) -> models.TaskRunList:
    """A page of a run's task runs with their state histories (every attempt, and each
    failed attempt's error and traceback), in the order they were created."""
    store = dashboard(request).store
    record = data.get_run(store, run_id)
    return data.task_list(
        store, record.id, offset=offset, limit=limit, state=state, group=group, retried=retried
    )


@router.get(
    "/runs/{run_id}/tasks/{task_run_id}",
    response_model=models.TaskRunDetail,
    tags=["task runs"],
    summary="A task run",
)
def get_task(request: Request, run_id: RunId, task_run_id: TaskRunId) -> models.TaskRunDetail:
    """One task run: its states (its attempts and their errors) and its result (JSON only)."""
    store = dashboard(request).store
    record = data.get_run(store, run_id)
    return data.task_detail(store, data.get_task(store, record.id, task_run_id))


@router.get(
    "/runs/{run_id}/graph",
    response_model=models.GraphOut,
    tags=["task runs"],
    summary="A run's task graph",
)
def get_graph(request: Request, run_id: RunId) -> models.GraphOut:
    """The task graph, grouped as the page draws it: a node per task run when there are
    few, else per map (`fetch-0[*]`), else per task; edges from task runs' upstreams."""
    store = dashboard(request).store
    record = data.get_run(store, run_id)
    return data.graph_out(task_graph(store.task_run_summaries(record.id)))


@router.get(
    "/runs/{run_id}/logs", response_model=models.LogList, tags=["runs"], summary="A run's log lines"
)
def get_logs(
    request: Request,
    run_id: RunId,
    task_run_id: Annotated[
        str | None, Query(max_length=data.MAX_ID, description="only this task run's")
    ] = None,
    before: Annotated[int | None, Query(ge=0, le=2**62, description="older than this seq")] = None,
    after: Annotated[int | None, Query(ge=0, le=2**62, description="newer than this seq")] = None,
    limit: Limit = 200,
) -> models.LogList:
    """The latest log lines (of one task run, when asked), oldest first; `before=` pages
    back, `after=` follows new lines."""
    store = dashboard(request).store
    record = data.get_run(store, run_id)
    return data.logs(
        store, record.id, task_run_id=task_run_id, before=before, after=after, limit=limit
    )


@router.get(
    "/runs/{run_id}/atoms",
    response_model=list[models.AtomOut],
    tags=["atoms runs"],
    summary="An atoms run's atoms",
)
def get_atoms(request: Request, run_id: RunId) -> list[models.AtomOut]:
    """Its atoms and retry controllers in the flow's order, with their state histories
    (empty for a flow run)."""
    store = dashboard(request).store
    record = data.get_run(store, run_id)
    return atoms_view.atoms_out(store, record.id)


@router.get(
    "/runs/{run_id}/retry-histories",
    response_model=list[models.RetryHistoryOut],
    tags=["atoms runs"],
    summary="Retry controllers' histories",
)
def get_histories(request: Request, run_id: RunId) -> list[models.RetryHistoryOut]:
    """Each retry controller's tries: what it provided, and its atoms' failures."""
    store = dashboard(request).store
    record = data.get_run(store, run_id)
    return atoms_view.histories_out(store, record.id)


@router.get("/flows", response_model=list[str], tags=["runs"], summary="Flow names")
def list_flows(request: Request) -> list[str]:
    """The names of the flows that have runs (what the runs filter offers)."""
    return dashboard(request).store.flow_names()


@router.get(
    "/schedules", response_model=list[models.ScheduleOut], tags=["schedules"], summary="Schedules"
)
def list_schedules(request: Request) -> list[models.ScheduleOut]:
    """Every schedule with its next fire times and whether a server serves it now."""
    return schedules_view.schedules_out(dashboard(request).store)


@router.get("/csrf", response_model=models.CsrfOut, tags=["actions"], summary="CSRF token")
def csrf(request: Request) -> models.CsrfOut:
    """The token a POST sends as its X-Reflow-CSRF header (not needed with a Bearer one)."""
    return models.CsrfOut(csrf_token=dashboard(request).guard.csrf_token)


@router.post(
    "/runs/{run_id}/resume",
    response_model=models.ActionOut,
    status_code=202,
    tags=["actions"],
    summary="Resume a run",
    responses={
        409: {"model": models.ErrorOut, "description": "it cannot be resumed now"},
        403: {"model": models.ErrorOut, "description": "no CSRF token"},
    },
)
def resume(request: Request, run_id: RunId) -> models.ActionOut:
    """Run `reflow runs resume RUN` in a process of its own: calls that completed return
    their stored results, the rest run. Refused (409) as the command refuses: a Completed
    run, a subflow run, an atoms run, one running in a live process."""
    board = dashboard(request)
    record = data.get_run(board.store, run_id)
    started = board.actions.resume(record)
    return models.ActionOut(
        run_id=record.id,
        outcome="started",
        pid=started.pid,
        message=f"resuming flow run {record.id} ({record.name}) in process {started.pid}",
    )


@router.post(
    "/runs/{run_id}/cancel",
    response_model=models.ActionOut,
    tags=["actions"],
    summary="Cancel a run",
    responses={
        409: {"model": models.ErrorOut, "description": "it ended already"},
        403: {"model": models.ErrorOut, "description": "no CSRF token"},
    },
)
def cancel(request: Request, run_id: RunId) -> models.ActionOut:
    """As `reflow runs cancel`: a run no process runs is Cancelled at once ("cancelled"); a
    running one is asked to stop, and its process cancels it ("requested")."""
    board = dashboard(request)
    record = data.get_run(board.store, run_id)
    done = board.actions.cancel(record)
    return models.ActionOut(run_id=record.id, outcome=done.outcome, message=done.message)


__all__ = ["router"]
