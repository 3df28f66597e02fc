"""The JSON the dashboard's API answers with, as pydantic models: FastAPI checks every answer
against them and documents them in the OpenAPI schema (`/openapi.json`).

Times are seconds since the epoch (UTC), durations seconds. Every text that may hold a
secret (parameters, errors, messages, log lines) is masked before it gets here.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class ErrorOut(BaseModel):
    """What a request that cannot be answered gets (404, 409, 422, 401, 403)."""

    detail: str


class RunOut(BaseModel):
    """A flow run (or an atoms run) as listed."""

    id: str
    name: str
    kind: Literal["flow", "atoms"] = "flow"
    state: str
    state_type: str
    created: float
    updated: float
    duration: float | None = Field(None, description="seconds; until now while it runs")
    version: str | None = None
    parent_id: str | None = None
    run_key: str | None = None
    worker: str | None = None
    heartbeat: float | None = None
    error: str | None = None
    flow_path: str | None = None


class RunList(BaseModel):
    """A page of runs, newest first."""

    total: int = Field(description="runs matching the filters, on every page")
    offset: int
    limit: int
    runs: list[RunOut]


class StateOut(BaseModel):
    """One state change of a run, task run or atom."""

    name: str
    type: str
    timestamp: float
    message: str = ""
    attempt: int = 0
    error: str | None = None
    traceback: str | None = None


class StateCountOut(BaseModel):
    state: str
    state_type: str
    count: int


class RunDetail(BaseModel):
    """One run: its record, parameters (secrets masked), states, how many task runs it has
    in each state, its subflow runs, and whether it can be resumed or cancelled now."""

    run: RunOut
    parameters: dict[str, Any]
    result: Any = Field(None, description="a Completed run's result when stored as JSON")
    result_note: str | None = Field(None, description="what the result is when not shown")
    states: list[StateOut]
    task_runs: int
    task_counts: list[StateCountOut]
    subflows: list[RunOut]
    resumable: bool
    resume_refusal: str | None = None
    cancellable: bool
    version: str = Field(description="changes whenever anything shown of the run changes")


class RunStatus(BaseModel):
    """What a page polls to know whether the run changed."""

    id: str
    state: str
    state_type: str
    final: bool
    version: str


class TaskRunOut(BaseModel):
    """A task run; `states` is its whole state history (each failed attempt's error too)."""

    id: str
    key: str
    group: str = Field(description="its map's key (fetch-0[*]) or its own")
    task_name: str
    state: str
    state_type: str
    attempts: int
    created: float
    updated: float
    duration: float | None = None
    error: str | None = None
    upstream: list[str]
    states: list[StateOut] | None = None


class TaskRunList(BaseModel):
    """A page of a run's task runs, in the order they were created."""

    total: int
    offset: int
    limit: int
    task_runs: list[TaskRunOut]


class TaskRunDetail(TaskRunOut):
    result: Any = None
    result_note: str | None = None


class GraphNode(BaseModel):
    """A node of the task graph: one task run, or all those of a map or of a task."""

    key: str
    task_name: str
    count: int
    state_type: str = Field(description="the worst state type among its task runs")
    states: dict[str, int]
    task_run_id: str | None = Field(None, description="set when the node is one task run")


class GraphEdge(BaseModel):
    source: str
    target: str
    count: int = Field(description="how many task-run edges it stands for")


class GraphOut(BaseModel):
    """The task graph; `unit` says what a node stands for: "task run", "map" or "task"."""

    unit: str
    nodes: list[GraphNode]
    edges: list[GraphEdge]
    left_out: int = Field(description="nodes not drawn, past the limit")


class LogOut(BaseModel):
    seq: int
    task_run_id: str | None
    timestamp: float
    level: int
    level_name: str
    logger: str
    message: str


class LogList(BaseModel):
    """Log records oldest first; `before` pages to older ones, `after` follows new ones."""

    logs: list[LogOut]
    before: int | None = None
    after: int


class AtomOut(BaseModel):
    """An atom (or retry controller) of an atoms run."""

    name: str
    position: int
    kind: str
    state: str
    state_type: str
    updated: float
    failure: str | None = None
    states: list[StateOut]


class RetryTryOut(BaseModel):
    index: int
    value: Any = Field(None, description="what the controller provided, when JSON")
    failures: dict[str, str] = Field(description="atom name: its failure in that try")


class RetryHistoryOut(BaseModel):
    """A retry controller's tries, oldest first."""

    controller: str
    tries: list[RetryTryOut]


class ScheduleOut(BaseModel):
    name: str
    flow_name: str
    flow_path: str
    kind: str
    expression: str
    timezone: str
    parameters: dict[str, Any]
    catchup: bool
    next_run: float | None
    next_runs: list[float] = Field(description="the next fire times, from now")
    last_run: float | None
    last_run_id: str | None
    server: str | None
    served: bool = Field(description="its server beat recently")


class ActionOut(BaseModel):
    """What a resume or cancel did: `outcome` is "started" (a resume runs in a process of
    its own, `pid`), "cancelled" or "requested"."""

    run_id: str
    outcome: str
    message: str
    pid: int | None = None


class CsrfOut(BaseModel):
    csrf_token: str = Field(description="send it as the X-Reflow-CSRF header of a POST")
