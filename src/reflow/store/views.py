"""Read-only queries for looking at runs page by page (the dashboard, `reflow ui`): runs
listed and counted with filters, a run's task runs without their results, its log lines
newest first, and how many task runs it has in each state.

`ViewQueries` is mixed into `SQLStore`, so both backends have it. None of these queries loads
a result: a 10,000-task run is read as light rows (ids, keys, states, upstream ids), and only
the page of task runs shown is read with its state history.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from reflow.store import sql
from reflow.store.records import FlowRunRecord, LogRecord, TaskRunRecord

_LIGHT_FLOW_COLUMNS = (
    "id, name, version, parent_id, state, state_type, parameters, run_key, created, updated, "
    "heartbeat, worker, NULL, NULL, error, flow_path, NULL, NULL, epoch"
)
"""`sql.FLOW_COLUMNS` with the result and the call left out (read as None)."""

_LIGHT_TASK_COLUMNS = (
    "id, flow_run_id, call_key, task_name, state, state_type, upstream, attempts, created, "
    "updated, NULL, NULL, error, states"
)
"""`sql.TASK_COLUMNS` with the result left out."""

_SUMMARY_COLUMNS = (
    "id, call_key, task_name, state, state_type, upstream, attempts, created, updated, error"
)


@dataclass(frozen=True, slots=True)
class TaskRunSummary:
    """A task run as a row of a list or a node of a graph: no result, no state history."""

    id: str
    key: str
    task_name: str
    state: str
    state_type: str
    upstream: list[str] = field(default_factory=list)
    attempts: int = 0
    created: float = 0.0
    updated: float = 0.0
    error: str | None = None


@dataclass(frozen=True, slots=True)
class StateCount:
    """How many task runs of a run are in one state, and when the latest of them changed."""

    state: str
    state_type: str
    count: int
    updated: float


class ViewQueries:
    """Paged, light reads over the SQL store's connection."""

    placeholder: str

    def _query(self, statement: str, args: tuple[Any, ...] = ()) -> list[Any]:  # pragma: no cover
        raise NotImplementedError

    # -- flow runs ----------------------------------------------------------------------------

    def _run_filter(
        self, state_type: str | None, state: str | None, name: str | None, roots_only: bool
    ) -> tuple[str, tuple[Any, ...]]:
        p = self.placeholder
        where, args = [], []
        for column, value in (("state_type", state_type), ("state", state), ("name", name)):
            if value is not None:
                where.append(f"{column} = {p}")
                args.append(value)
        if roots_only:
            where.append("parent_id IS NULL")
        return (f"WHERE {' AND '.join(where)} " if where else ""), tuple(args)

    def flow_runs_page(
        self,
        *,
        state_type: str | None = None,
        state: str | None = None,
        name: str | None = None,
        roots_only: bool = False,
        limit: int = 50,
        offset: int = 0,
    ) -> list[FlowRunRecord]:
        """Flow runs newest first, `limit` of them after skipping `offset`, filtered by state
        type, state name, flow name and (`roots_only`) leaving subflow runs out. The records
        come without their result and call (None)."""
        clause, args = self._run_filter(state_type, state, name, roots_only)
        p = self.placeholder
        rows = self._query(
            f"SELECT {_LIGHT_FLOW_COLUMNS} FROM reflow_flow_runs {clause}"
            f"ORDER BY created DESC, id LIMIT {p} OFFSET {p}",
            (*args, int(limit), int(offset)),
        )
        return [sql.flow_record(r) for r in rows]

    def count_flow_runs(
        self,
        *,
        state_type: str | None = None,
        state: str | None = None,
        name: str | None = None,
        roots_only: bool = False,
    ) -> int:
        """How many flow runs `flow_runs_page` pages through with these filters."""
        clause, args = self._run_filter(state_type, state, name, roots_only)
        return int(self._query(f"SELECT COUNT(*) FROM reflow_flow_runs {clause}", args)[0][0])

    def flow_names(self, limit: int = 1000) -> list[str]:
        """The names of the flows that have runs, in order (what a filter offers)."""
        rows = self._query(
            f"SELECT DISTINCT name FROM reflow_flow_runs ORDER BY name LIMIT {self.placeholder}",
            (int(limit),),
        )
        return [row[0] for row in rows]

    def flow_run_light(self, run_id: str) -> FlowRunRecord | None:
        """One flow run without its result and call (None): cheap whatever they weigh."""
        rows = self._query(
            f"SELECT {_LIGHT_FLOW_COLUMNS} FROM reflow_flow_runs WHERE id = {self.placeholder}",
            (run_id,),
        )
        return sql.flow_record(rows[0]) if rows else None

    def result_preview(
        self, run_id: str, *, task: bool = False, limit: int = 65536
    ) -> tuple[str | None, bytes | None, int]:
        """A flow run's (or, `task`, a task run's) result as (encoding, bytes, size in bytes):
        the bytes only when they are at most `limit`, so a large result is never read to be
        shown. A result kept in a file has its file's reference as bytes, not its value."""
        table = "reflow_task_runs" if task else "reflow_flow_runs"
        p = self.placeholder
        rows = self._query(
            f"SELECT result_encoding, CASE WHEN LENGTH(result) <= {p} THEN result END, "
            f"LENGTH(result) FROM {table} WHERE id = {p}",
            (int(limit), run_id),
        )
        if not rows or rows[0][0] is None:
            return None, None, 0
        encoding, blob, size = rows[0]
        return encoding, None if blob is None else bytes(blob), int(size or 0)

    def activity(self, run_id: str) -> tuple[Any, ...]:
        """What changes whenever a run's task runs, atoms, controllers or logs change (counts,
        latest update, latest log line): what a page polls to know it must refresh."""
        p = self.placeholder
        return tuple(
            self._query(
                f"SELECT (SELECT COUNT(*) FROM reflow_task_runs WHERE flow_run_id = {p}), "
                f"(SELECT MAX(updated) FROM reflow_task_runs WHERE flow_run_id = {p}), "
                f"(SELECT MAX(seq) FROM reflow_logs WHERE flow_run_id = {p}), "
                f"(SELECT MAX(updated) FROM reflow_atoms WHERE run_id = {p}), "
                f"(SELECT COUNT(*) FROM reflow_retry_histories WHERE run_id = {p})",
                (run_id,) * 5,
            )[0]
        )

    def atoms_run_ids(self, run_ids: Iterable[str]) -> set[str]:
        """Which of these runs are atoms runs."""
        ids = list(run_ids)
        if not ids:
            return set()
        marks = ", ".join([self.placeholder] * len(ids))
        rows = self._query(
            f"SELECT run_id FROM reflow_atom_runs WHERE run_id IN ({marks})", tuple(ids)
        )
        return {row[0] for row in rows}

    # -- task runs ----------------------------------------------------------------------------

    def task_run_summaries(self, flow_run_id: str) -> list[TaskRunSummary]:
        """Every task run of a flow run as a light row, in the order they were created."""
        rows = self._query(
            f"SELECT {_SUMMARY_COLUMNS} FROM reflow_task_runs "
            f"WHERE flow_run_id = {self.placeholder} ORDER BY created, call_key",
            (flow_run_id,),
        )
        return [
            TaskRunSummary(
                id=r[0],
                key=r[1],
                task_name=r[2],
                state=r[3],
                state_type=r[4],
                upstream=json.loads(r[5]),
                attempts=r[6],
                created=r[7],
                updated=r[8],
                error=r[9],
            )
            for r in rows
        ]

    def task_runs_by_id(self, flow_run_id: str, ids: Iterable[str]) -> list[TaskRunRecord]:
        """These task runs of a flow run with their state histories (no result), in the order
        they were created; ids that are not its task runs are left out."""
        wanted = list(ids)
        if not wanted:
            return []
        p = self.placeholder
        marks = ", ".join([p] * len(wanted))
        rows = self._query(
            f"SELECT {_LIGHT_TASK_COLUMNS} FROM reflow_task_runs WHERE flow_run_id = {p} "
            f"AND id IN ({marks}) ORDER BY created, call_key",
            (flow_run_id, *wanted),
        )
        return [sql.task_record(r) for r in rows]

    def task_run_light(self, task_run_id: str) -> TaskRunRecord | None:
        """One task run by its id, with its state history but not its result."""
        rows = self._query(
            f"SELECT {_LIGHT_TASK_COLUMNS} FROM reflow_task_runs WHERE id = {self.placeholder}",
            (task_run_id,),
        )
        return sql.task_record(rows[0]) if rows else None

    def task_state_counts(self, flow_run_id: str) -> list[StateCount]:
        """How many of a flow run's task runs are in each state: cheap enough to poll."""
        rows = self._query(
            "SELECT state, state_type, COUNT(*), MAX(updated) FROM reflow_task_runs "
            f"WHERE flow_run_id = {self.placeholder} GROUP BY state, state_type "
            "ORDER BY state",
            (flow_run_id,),
        )
        return [StateCount(r[0], r[1], int(r[2]), float(r[3])) for r in rows]

    # -- logs ---------------------------------------------------------------------------------

    def logs_page(
        self,
        flow_run_id: str,
        *,
        task_run_id: str | None = None,
        before: int | None = None,
        limit: int = 200,
    ) -> list[LogRecord]:
        """A flow run's latest `limit` log records (of one task run, when given; before the
        record `before`, when given), oldest first."""
        p = self.placeholder
        where: list[str] = [f"flow_run_id = {p}"]
        args: list[Any] = [flow_run_id]
        if task_run_id is not None:
            where.append(f"task_run_id = {p}")
            args.append(task_run_id)
        if before is not None:
            where.append(f"seq < {p}")
            args.append(int(before))
        rows = self._query(
            f"SELECT {sql.LOG_COLUMNS} FROM reflow_logs WHERE {' AND '.join(where)} "
            f"ORDER BY seq DESC LIMIT {p}",
            (*args, int(limit)),
        )
        return [sql.log_record(r) for r in reversed(rows)]


__all__ = ["StateCount", "TaskRunSummary", "ViewQueries"]
