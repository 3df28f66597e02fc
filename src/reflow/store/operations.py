"""What the operations layer (the CLI, `reflow serve`) asks of a store, beyond runs: cancel
requests, schedules, and finding runs by an id prefix or a parent.

`OperationsQueries` is mixed into `SQLStore`, so both backends have it; its tables come from
their own migration (`reflow_cancel_requests`, `reflow_schedules`).

Cancelling works across processes. A run that is not running anywhere (queued, crashed, paused)
ends Cancelled at once, in the store (its epoch moves on, so a process that still ran it after
all writes none of it any more: `reflow.store.fencing`). A running one gets a cancel request;
the process running it reads the requests of its runs (at start, then about every second) and
cancels them itself, so the run ends Cancelled through the flow engine, hooks included. A
resume asked for on purpose (`reflow runs resume`) forgets the request made before it took the
run over, in the take-over's own transaction (`SQLStore.take_over`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from reflow.store import sql
from reflow.store.records import FlowRunRecord

ENDED = ("COMPLETED", "FAILED", "CANCELLED")
"""State types a run never leaves (Crashed runs can be resumed, so they are not here)."""

SCHEDULE_COLUMNS = (
    "name, flow_name, flow_path, kind, expression, timezone, parameters, catchup, next_run, "
    "last_run, last_run_id, server, heartbeat, created, updated"
)


@dataclass(slots=True)
class ScheduleRecord:
    """A schedule as stored: which flow, when (cron or interval), and its next fire time."""

    name: str
    flow_name: str
    flow_path: str
    kind: str
    """"cron" or "interval"."""
    expression: str
    """The cron expression, or the interval in seconds."""
    timezone: str
    created: float
    updated: float
    parameters: dict[str, Any] = field(default_factory=dict)
    catchup: bool = False
    next_run: float | None = None
    """The next fire time (epoch seconds)."""
    last_run: float | None = None
    """The fire time of the last run it queued."""
    last_run_id: str | None = None
    server: str | None = None
    """The `host:pid` serving it now (None once that process stopped)."""
    heartbeat: float | None = None
    """When its server last said it is up."""


def _schedule_row(r: ScheduleRecord) -> tuple[Any, ...]:
    return (
        r.name, r.flow_name, r.flow_path, r.kind, r.expression, r.timezone,
        json.dumps(r.parameters, default=repr), int(r.catchup), r.next_run, r.last_run,
        r.last_run_id, r.server, r.heartbeat, r.created, r.updated,
    )  # fmt: skip


def _schedule_record(row: Any) -> ScheduleRecord:
    return ScheduleRecord(
        name=row[0], flow_name=row[1], flow_path=row[2], kind=row[3], expression=row[4],
        timezone=row[5], parameters=json.loads(row[6]), catchup=bool(row[7]), next_run=row[8],
        last_run=row[9], last_run_id=row[10], server=row[11], heartbeat=row[12],
        created=row[13], updated=row[14],
    )  # fmt: skip


class OperationsQueries:
    """Cancel requests, schedules and run look-ups, over the SQL store's connection."""

    placeholder: str

    def _transaction(self) -> AbstractContextManager[Any]:  # pragma: no cover - SQLStore's
        raise NotImplementedError

    def _query(self, statement: str, args: tuple[Any, ...] = ()) -> list[Any]:  # pragma: no cover
        raise NotImplementedError

    # -- runs ---------------------------------------------------------------------------------

    def run_ids_starting(self, prefix: str, limit: int = 5) -> list[str]:
        """Ids of flow runs that start with `prefix` (what `reflow runs show 3f2a` finds)."""
        p = self.placeholder
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = self._query(
            f"SELECT id FROM reflow_flow_runs WHERE id LIKE {p} ESCAPE '\\' ORDER BY id LIMIT {p}",
            (escaped + "%", int(limit)),
        )
        return [row[0] for row in rows]

    def subflow_runs(self, parent_id: str) -> list[FlowRunRecord]:
        """The runs of the flows a run called (its subflows), oldest first."""
        rows = self._query(
            f"SELECT {sql.FLOW_COLUMNS} FROM reflow_flow_runs WHERE parent_id = "
            f"{self.placeholder} ORDER BY created, id",
            (parent_id,),
        )
        return [sql.flow_record(r) for r in rows]

    # -- cancelling ---------------------------------------------------------------------------

    def request_cancel(self, run_id: str, at: float, by: str) -> str:
        """Cancel a run: "cancelled" (it was not running: Cancelled now), "requested" (its
        process will cancel it), "ended" (it had ended already) or "missing"."""
        p = self.placeholder
        message = f"cancelled by {by}"
        with self._transaction() as cur:
            cur.execute(
                "UPDATE reflow_flow_runs SET state = 'Cancelled', state_type = 'CANCELLED', "
                f"updated = {p}, error = {p}, epoch = epoch + 1 WHERE id = {p} AND state_type "
                "IN ('SCHEDULED', 'CRASHED', 'PAUSED')",
                (at, message, run_id),
            )
            if cur.rowcount == 1:
                cur.execute(
                    sql.insert_state(p),
                    (run_id, "flow", "Cancelled", "CANCELLED", at, message, 0, None, None),
                )
                outcome = "cancelled"
            else:
                cur.execute(f"SELECT state_type FROM reflow_flow_runs WHERE id = {p}", (run_id,))
                row = cur.fetchone()
                if row is None:
                    return "missing"
                if row[0] in ENDED:
                    return "ended"
                outcome = "requested"
            cur.execute(
                "INSERT INTO reflow_cancel_requests (run_id, requested, requested_by) "
                f"VALUES ({p}, {p}, {p}) ON CONFLICT (run_id) DO NOTHING",
                (run_id, at, by),
            )  # kept for a paused run resumed later, and as a record of who asked
            return outcome

    def cancel_requested(self, run_ids: Iterable[str]) -> set[str]:
        """Which of these runs someone asked to cancel."""
        ids = list(run_ids)
        if not ids:
            return set()
        marks = ", ".join([self.placeholder] * len(ids))
        rows = self._query(
            f"SELECT run_id FROM reflow_cancel_requests WHERE run_id IN ({marks})", tuple(ids)
        )
        return {row[0] for row in rows}

    def clear_cancel(self, run_id: str) -> None:
        """Forget a run's cancel request (it is resumed on purpose)."""
        with self._transaction() as cur:
            cur.execute(
                f"DELETE FROM reflow_cancel_requests WHERE run_id = {self.placeholder}", (run_id,)
            )

    # -- schedules ----------------------------------------------------------------------------

    def save_schedule(self, record: ScheduleRecord) -> None:
        """Insert or replace the schedule of this name."""
        p = self.placeholder
        updates = ", ".join(
            f"{c.strip()} = excluded.{c.strip()}" for c in SCHEDULE_COLUMNS.split(",")[1:]
        )
        with self._transaction() as cur:
            cur.execute(
                f"INSERT INTO reflow_schedules ({SCHEDULE_COLUMNS}) VALUES "
                f"({', '.join([p] * 15)}) ON CONFLICT (name) DO UPDATE SET {updates}",
                _schedule_row(record),
            )

    def schedule(self, name: str) -> ScheduleRecord | None:
        rows = self._query(
            f"SELECT {SCHEDULE_COLUMNS} FROM reflow_schedules WHERE name = {self.placeholder}",
            (name,),
        )
        return _schedule_record(rows[0]) if rows else None

    def schedules(self) -> list[ScheduleRecord]:
        """Every schedule, by name."""
        rows = self._query(f"SELECT {SCHEDULE_COLUMNS} FROM reflow_schedules ORDER BY name")
        return [_schedule_record(r) for r in rows]

    def advance_schedule(
        self, name: str, expected: float, next_run: float, fired: float, at: float
    ) -> bool:
        """Move a schedule on from the fire time `expected` to `next_run`, recording `fired`
        as its last run's time; False when another process moved it first (so each fire time
        fires once)."""
        p = self.placeholder
        with self._transaction() as cur:
            cur.execute(
                f"UPDATE reflow_schedules SET next_run = {p}, last_run = {p}, updated = {p} "
                f"WHERE name = {p} AND next_run = {p}",
                (next_run, fired, at, name, expected),
            )
            return bool(cur.rowcount == 1)

    def schedule_heartbeat(self, name: str, server: str | None, at: float) -> None:
        """Say who serves the schedule now (None: nobody, its server stopped)."""
        p = self.placeholder
        with self._transaction() as cur:
            cur.execute(
                f"UPDATE reflow_schedules SET server = {p}, heartbeat = {p} WHERE name = {p}",
                (server, at, name),
            )


__all__ = ["ENDED", "OperationsQueries", "ScheduleRecord"]
