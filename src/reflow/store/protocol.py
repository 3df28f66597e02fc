"""`Store`: what the durability layer asks of a database (`SQLStore` implements it for
SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from reflow.store.atom_records import AtomRecord, AtomRunRecord, RetryHistoryRecord
from reflow.store.fencing import Fence, FencedOff
from reflow.store.records import FlowRunRecord, LogRecord, StateRecord, TaskRunRecord
from reflow.store.results import Encoded


class Store(Protocol):
    """A place flow runs, task runs and state changes are kept across processes."""

    def write(
        self,
        flow_runs: Iterable[FlowRunRecord] = (),
        task_runs: Iterable[TaskRunRecord] = (),
        states: Iterable[StateRecord] = (),
        task_rows: Iterable[tuple[Any, ...]] = (),
        logs: Iterable[LogRecord] = (),
        *,
        fences: Mapping[str, Fence] | None = None,
    ) -> dict[str, FencedOff]:
        """Save the records in one transaction (runs are upserted by id, states and logs
        appended); `task_rows` are task runs already as rows (`sql.TASK_COLUMNS`). The rows of
        a run whose fence (run id -> its root's id and epoch) no longer holds are left out,
        and its root returned (`reflow.store.fencing`)."""
        ...

    def flow_run(self, run_id: str) -> FlowRunRecord | None: ...

    def flow_runs(
        self, *, state_type: str | None = None, name: str | None = None, limit: int = 50
    ) -> list[FlowRunRecord]:
        """The newest runs first, optionally of one state type or flow name."""
        ...

    def flow_run_by_key(self, run_key: str) -> FlowRunRecord | None: ...

    def task_runs(self, flow_run_id: str) -> list[TaskRunRecord]:
        """A flow run's task runs, in the order they were created."""
        ...

    def completed_task_run(self, flow_run_id: str, key: str) -> TaskRunRecord | None:
        """The call's run if it completed: what a resumed flow reuses instead of running."""
        ...

    def states(self, run_id: str) -> list[StateRecord]: ...

    def logs(
        self, flow_run_id: str, *, after: int = 0, limit: int | None = None
    ) -> list[LogRecord]:
        """A flow run's log records (its tasks' too) in order, those after `seq` `after`."""
        ...

    def cache_get(self, key: str) -> tuple[str, float, float | None, Encoded] | None:
        """The task cache's entry for `key`: (task name, created, expires, value)."""
        ...

    def cache_put(
        self, key: str, task_name: str, created: float, expires: float | None, value: Encoded
    ) -> None:
        """Keep a task result in the cache under `key`, replacing any entry there."""
        ...

    def cache_clear(self, task_name: str | None = None) -> int:
        """Forget the cache entries (of one task, or all); returns how many were removed."""
        ...

    def heartbeat(
        self,
        run_ids: Iterable[str],
        at: float,
        worker: str,
        *,
        fences: Mapping[str, Fence] | None = None,
    ) -> dict[str, FencedOff]:
        """Say these runs are alive, run by `worker`, at time `at`; a fenced run whose fence
        no longer holds is left alone, and returned."""
        ...

    def stale_runs(self, before: float) -> list[FlowRunRecord]:
        """Runs not ended (nor paused) whose last heartbeat is older than `before`."""
        ...

    def write_atoms(
        self,
        *,
        flow_runs: Iterable[FlowRunRecord] = (),
        states: Iterable[StateRecord] = (),
        atom_runs: Iterable[AtomRunRecord] = (),
        atoms: Iterable[AtomRecord] = (),
        histories: Iterable[RetryHistoryRecord] = (),
        atom_rows: Iterable[tuple[Any, ...]] = (),
        fences: Mapping[str, Fence] | None = None,
    ) -> dict[str, FencedOff]:
        """Save what an atoms run did in one transaction: runs and atoms are upserted, states
        appended, and each history given replaces that controller's tries (a decorated flow's
        `retry=` controller's too); `atom_rows` are atoms already as rows. `fences`: as
        `write`'s."""
        ...

    def atom_run(self, run_id: str) -> AtomRunRecord | None:
        """An atoms run's own data; None when `run_id` is not an atoms run."""
        ...

    def atoms(self, run_id: str) -> list[AtomRecord]:
        """An atoms run's atoms and controllers, in the flow's order."""
        ...

    def retry_histories(self, run_id: str) -> list[RetryHistoryRecord]:
        """The history of each retry controller of a run (an atoms run's, a decorated flow's
        `retry=`) that has tried its scope."""
        ...

    def close(self) -> None: ...


__all__ = ["Store"]
