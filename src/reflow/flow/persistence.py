"""The seam the durability layer plugs into: how a flow run is kept, and found again.

The flow layer never imports the store. `reflow/__init__` sets `factory`, which turns a flow's
`persist=`/`store=` options into a `Persistence` (or None: the run stays in memory). Runs are
kept by default; `persist=False` (or `REFLOW_STORE=memory`) keeps them in memory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class StoredCall:
    """A task call that completed in an earlier process: what a resumed run reuses."""

    run_id: str
    result: Any
    """Its value; `reflow.states.NOT_KEPT` when the store did not keep it."""
    attempts: int
    state: str = "Completed"
    """The name of the state it ended in (Completed, Cached, Skipped, ...)."""


class Persistence(Protocol):
    """Keeps one flow run (and its task runs and subflows) in a store."""

    def begin(self, flow_run: Any) -> None:
        """The run starts (or resumes): record it, with what is needed to run it again."""
        ...

    def completed(self, flow_run_id: str, key: str) -> StoredCall | None:
        """The call's completed run in an earlier process, if there is one."""
        ...

    def paused(self, flow_run_id: str, key: str) -> bool:
        """Whether the call's run was Paused when an earlier process left the run."""
        ...

    def end(self, flow_run: Any) -> None:
        """The run reached a final (or Paused) state: write everything before returning."""
        ...

    def by_run_key(self, run_key: str) -> tuple[str, str, Any, str | None] | None:
        """(run id, state name, result if completed (`NOT_KEPT` if it was not kept), error if
        failed) of the run made with this key."""
        ...

    def keep_tries(self, flow_run_id: str, controller: str, tries: list[Any]) -> None:
        """The run's retry controller began a try or decided: keep its history (its tries,
        each `(value, {name: Failure})`) before the run goes on."""
        ...

    def tries(self, flow_run_id: str, controller: str) -> list[Any]:
        """The history the run's retry controller had when the run was left (empty: none, or
        the run failed for good, so its controller starts afresh)."""
        ...

    def resume(self, run_id: str, flow: Any = None) -> Any:
        """Run the stored run again to its end (with `flow`, else the flow found by the path
        recorded with it); return its FlowRun."""
        ...


factory: Callable[[bool | None, Any], Persistence | None] | None = None
"""Set by reflow/__init__: `(persist, store) -> Persistence | None`."""


def persistence_for(persist: bool | None, store: Any) -> Persistence | None:
    """The persistence a flow's options ask for (None: in memory)."""
    if persist is False or factory is None:
        return None
    return factory(persist, store)
