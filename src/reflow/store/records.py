"""What a store keeps: plain records of flow runs, task runs, their state changes and their
log records (an atoms run's own records are in atom_records.py).

They mirror the in-memory `FlowRun`, `TaskRun` and `State` objects with only data a database
can hold: names and ids, JSON-able parameters, and results as `Encoded` bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reflow.store.results import Encoded


@dataclass(frozen=True, slots=True)
class StateRecord:
    """One state change of a run (flow, task or atom), in the order they happened."""

    run_id: str
    run_kind: str
    name: str
    type: str
    timestamp: float
    message: str = ""
    attempt: int = 0
    error: str | None = None
    """For a state with an exception (a failed attempt): `module.Type: message`."""
    traceback: str | None = None
    """That exception's traceback, as text."""


@dataclass(slots=True)
class FlowRunRecord:
    """One flow run as stored."""

    id: str
    name: str
    state: str
    state_type: str
    created: float
    updated: float
    version: str | None = None
    parent_id: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    run_key: str | None = None
    """The caller's idempotency key (`run_key=`): at most one run per key."""
    heartbeat: float | None = None
    worker: str | None = None
    result: Encoded | None = None
    error: str | None = None
    flow_path: str | None = None
    """Where the flow function is (`module:qualname`), to import it again on resume."""
    call: Encoded | None = None
    """The call's arguments (args, kwargs), encoded as results are, to run it again."""
    epoch: int = 0
    """Moved on by each take-over of the run: its holder writes it under the epoch it took
    it over at, and nothing once that moved on (`reflow.store.fencing`)."""


@dataclass(slots=True)
class TaskRunRecord:
    """One task run of a flow run as stored, found again by its call key on resume."""

    id: str
    flow_run_id: str
    key: str
    task_name: str
    state: str
    state_type: str
    created: float
    updated: float
    upstream: list[str] = field(default_factory=list)
    attempts: int = 0
    result: Encoded | None = None
    error: str | None = None
    states: list[StateRecord] = field(default_factory=list)
    """The run's state changes so far, kept in its own row (one write per task, not per
    state)."""


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One log record of a run (from `reflow.get_run_logger()`), in the order they came."""

    seq: int
    """Its place among all the store's log records: `logs(run, after=seq)` gives the next."""
    flow_run_id: str
    task_run_id: str | None
    """The task run it was logged in, None for the flow's own code."""
    timestamp: float
    level: int
    """`logging.INFO`, `logging.WARNING`, ..."""
    logger: str
    message: str
    """The formatted message, with the traceback of `exc_info` when there was one."""
