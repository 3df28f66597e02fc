"""`FlowRun`: the in-memory record of one run of a flow: its states, task runs and subflows."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from reflow._ids import new_id
from reflow.flow.graph import mermaid
from reflow.states import State, StateError

if TYPE_CHECKING:
    from reflow.flow.decorator import Flow
    from reflow.task.run import TaskRun


class FlowRun:
    """One run of a flow. `task_runs` holds the latest run of each task call, in call order."""

    def __init__(
        self, flow: Flow[..., Any], parent_id: str | None = None, run_id: str | None = None
    ) -> None:
        self.id = run_id if run_id is not None else new_id()
        self.flow = flow
        self.name = flow.name
        self.version = flow.version
        self.parent_id = parent_id
        """The flow run this one is a subflow of."""
        self.upstream: tuple[str, ...] = ()
        """Ids of the task runs whose futures were among a subflow's arguments."""
        self.parameters: dict[str, Any] = {}
        """The call's arguments by name, validated and coerced."""
        self.states: list[State[Any]] = []
        self.attempts = 0
        """How many times the flow function ran (retries and resumes included)."""
        self.subflow_runs: list[FlowRun] = []
        self.hook_errors: list[BaseException] = []
        self.call: tuple[tuple[Any, ...], dict[str, Any]] = ((), {})
        self.runs_by_key: dict[str, TaskRun] = {}
        """The latest task run of each call key (task name, call number, map index)."""
        self.subflows_by_key: dict[str, FlowRun] = {}
        self.superseded: list[TaskRun] = []
        """Task runs replaced by a later run of the same call (a flow retry or a resume)."""
        self.cancel_requested = False
        self.bound: Any = None  # the bound call (inspect.BoundArguments)
        self.scope: Any = None  # the retry controller's scope, for a flow with retry=
        self.run_key: str | None = None
        """The caller's idempotency key (`run_key=`), when given."""
        self.persistence: Any = None  # how the run is kept in a store (None: memory only)
        self.persist_result: bool | None = getattr(flow, "persist_result", None)
        """False: no result of the run is written to its store (its own, and those of its
        task runs and subflows that do not say otherwise)."""
        self.revert_errors: list[BaseException] = []
        """Errors raised by the reverts of completed task runs when the run failed."""

    @property
    def state(self) -> State[Any]:
        """The current (after the run: final, or Paused) state."""
        return self.states[-1]

    @property
    def task_runs(self) -> list[TaskRun]:
        """Every task call's latest run, in the order of the calls."""
        return list(self.runs_by_key.values())

    def result(self, raise_on_failure: bool = True) -> Any:
        """The flow's return value; raise its failure (unless told not to)."""
        return self.state.result(raise_on_failure)

    def graph(self) -> str:
        """The run's task graph as Mermaid flowchart text: one node per task run, colored by
        state, an arrow from each upstream run."""
        return mermaid(self)

    def resume(self) -> State[Any]:
        """Carry on a Paused run in this process: the flow function runs again, completed task
        runs are reused, paused ones run. Returns the new final (or Paused) state."""
        self._check_resumable()
        if self.flow.is_async:
            raise TypeError(
                f"flow {self.name} is async: resume it with `await flow_run.resume_async()`"
            )
        return self.flow._resume(self)  # type: ignore[no-any-return]

    def resume_async(self) -> Awaitable[State[Any]]:
        """`resume()` for an async flow: `await flow_run.resume_async()`."""
        self._check_resumable()
        if not self.flow.is_async:
            raise TypeError(f"flow {self.name} is not async: resume it with flow_run.resume()")
        return self.flow._resume(self)  # type: ignore[no-any-return]

    def _check_resumable(self) -> None:
        if not self.states or not self.state.is_paused():
            shown = self.states[-1].name if self.states else "not started"
            raise StateError(f"flow run {self.name} ({self.id[:8]}) is {shown}, not Paused")

    def cancel(self) -> None:
        """Ask the run to stop: task runs not yet started end Cancelled, and so does the run.

        Safe from any thread. Task runs already running finish (Python cannot stop a thread);
        the flow function carries on to its end, its remaining task calls cancelled.
        """
        self.cancel_requested = True

    def __repr__(self) -> str:
        shown = self.states[-1].name if self.states else "new"
        return f"<FlowRun {self.name} {self.id[:8]} {shown}, {len(self.runs_by_key)} task run(s)>"
