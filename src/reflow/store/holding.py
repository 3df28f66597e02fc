"""Which process holds a run, in the store: `RunHolding`, mixed into `SQLStore` so both
backends have it.

A running run's process beats (`heartbeat`); a run whose beats stopped is found
(`stale_runs`) and marked Crashed once (`mark_crashed`). A process carries a run on by taking
it over (`take_over`, one compare-and-set; `reflow.store.claims` decides when it may) or, a
worker, by claiming a queued or crashed one (`claim`); both move the run's epoch on, and each
write of a run by its holder is fenced by the epoch it holds it under (`_fence`,
`reflow.store.fencing`), so a process that lost its run writes nothing more of it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from typing import Any

from reflow.store import sql
from reflow.store.fencing import Fence, FencedOff
from reflow.store.records import FlowRunRecord


class RunHolding:
    """Heartbeats, crashes, take-overs, claims and fences, over the SQL store's connection."""

    placeholder: str

    def _transaction(self) -> AbstractContextManager[Any]:  # pragma: no cover - SQLStore's
        raise NotImplementedError

    def _query(self, statement: str, args: tuple[Any, ...] = ()) -> list[Any]:  # pragma: no cover
        raise NotImplementedError

    def _flow(self, row: Any) -> FlowRunRecord:  # pragma: no cover
        raise NotImplementedError

    def heartbeat(
        self,
        run_ids: Iterable[str],
        at: float,
        worker: str,
        *,
        fences: Mapping[str, Fence] | None = None,
    ) -> dict[str, FencedOff]:
        """Say these runs are alive, run by `worker`, at `at`; a run whose fence (see
        `write`) no longer holds is not touched, and returned."""
        p = self.placeholder
        ids = list(run_ids)
        if not ids:
            return {}
        with self._transaction() as cur:
            lost = self._fence(cur, fences) if fences else {}
            rows = [(at, worker, run_id) for run_id in ids if run_id not in lost]
            cur.executemany(
                f"UPDATE reflow_flow_runs SET heartbeat = {p}, worker = {p} WHERE id = {p}",
                rows,
            )
        return lost

    def stale_runs(self, before: float) -> list[FlowRunRecord]:
        p = self.placeholder
        rows = self._query(
            f"SELECT {sql.FLOW_COLUMNS} FROM reflow_flow_runs WHERE state_type IN "
            f"('PENDING', 'RUNNING', 'SCHEDULED') AND COALESCE(heartbeat, updated) < {p} "
            "ORDER BY created",
            (before,),
        )
        return [self._flow(r) for r in rows]

    def mark_crashed(self, run_id: str, at: float, message: str) -> bool:
        """Mark a run that is not over as Crashed; False when it ended (or another process
        marked it) meanwhile, so exactly one detector reports each crash."""
        p = self.placeholder
        with self._transaction() as cur:
            cur.execute(
                f"UPDATE reflow_flow_runs SET state = 'Crashed', state_type = 'CRASHED', "
                f"updated = {p}, error = {p} WHERE id = {p} AND state_type IN "
                "('PENDING', 'RUNNING', 'SCHEDULED')",
                (at, message, run_id),
            )
            changed = bool(cur.rowcount == 1)
            if changed:
                cur.execute(
                    sql.insert_state(p),
                    (run_id, "flow", "Crashed", "CRASHED", at, message, 0, None, None),
                )
            return changed

    def take_over(
        self,
        expected: FlowRunRecord,
        state: str,
        state_type: str,
        worker: str,
        at: float,
        *,
        clear_cancel: bool = False,
    ) -> int | None:
        """Make `worker` the run's holder, in `state`, if its row is still as `expected` says
        (state, worker, heartbeat, last update, epoch): one compare-and-set statement, so of
        two processes taking over the same run, one wins and the other gets None. The winner
        gets the run's new epoch: the run's rows are its to write under that epoch, and no
        longer the earlier holder's (`reflow.store.fencing`).

        `clear_cancel` (a resume asked for on purpose) also forgets the run's cancel request
        made before the take-over (`at`), in the same transaction and only when this take-over
        won: a request made once the run is taken over, or while another process wins it, is
        kept, and that run's process cancels it."""
        p = self.placeholder
        with self._transaction() as cur:
            epoch = expected.epoch + 1
            cur.execute(
                f"UPDATE reflow_flow_runs SET state = {p}, state_type = {p}, worker = {p}, "
                f"heartbeat = {p}, updated = {p}, epoch = {p} WHERE id = {p} AND state = {p} AND "
                f"COALESCE(worker, '') = {p} AND COALESCE(heartbeat, -1) = {p} AND updated = {p} "
                f"AND epoch = {p}",
                (
                    state, state_type, worker, at, at, epoch, expected.id, expected.state,
                    expected.worker or "",
                    -1 if expected.heartbeat is None else expected.heartbeat, expected.updated,
                    expected.epoch,
                ),
            )  # fmt: skip
            if cur.rowcount != 1:
                return None
            if clear_cancel:
                cur.execute(
                    f"DELETE FROM reflow_cancel_requests WHERE run_id = {p} AND requested <= {p}",
                    (expected.id, at),
                )
            return epoch

    def claim(self, worker: str, at: float) -> FlowRunRecord | None:
        """Take the oldest queued (or crashed) run for `worker`, or None: one statement, so no
        two workers ever take the same run. Atoms runs are left alone: a flow worker cannot
        run them (`reflow.atoms.resume` continues them, given their flow)."""
        p = self.placeholder
        rows = self._query(
            "UPDATE reflow_flow_runs SET state = 'Pending', state_type = 'PENDING', "
            f"worker = {p}, heartbeat = {p}, updated = {p}, epoch = epoch + 1 WHERE id = ("
            "SELECT id FROM reflow_flow_runs WHERE state_type IN ('SCHEDULED', 'CRASHED') "
            "AND id NOT IN (SELECT run_id FROM reflow_atom_runs) "  # resumed by atoms.resume
            f"ORDER BY created, id LIMIT 1{self.skip_locked}) "
            "AND state_type IN ('SCHEDULED', 'CRASHED') "
            f"RETURNING {sql.FLOW_COLUMNS}",
            (worker, at, at),
        )
        return self._flow(rows[0]) if rows else None

    skip_locked = ""
    """How the backend skips rows another transaction is claiming (PostgreSQL's clause)."""

    def _fence(self, cur: Any, fences: Mapping[str, Fence]) -> dict[str, FencedOff]:
        """Lock each fenced root run's row for this transaction, if it is still under the
        epoch its fence says; return the roots that are not, as their rows are now. The lock
        (one UPDATE a root) makes a take-over wait for this write, or this write see it."""
        p = self.placeholder
        lost: dict[str, FencedOff] = {}
        for root, epoch in sorted(dict(fences.values()).items()):  # one lock order for all
            cur.execute(
                f"UPDATE reflow_flow_runs SET epoch = epoch WHERE id = {p} AND epoch = {p}",
                (root, epoch),
            )
            if cur.rowcount != 1:
                cur.execute(
                    f"SELECT worker, state, epoch FROM reflow_flow_runs WHERE id = {p}", (root,)
                )
                row = cur.fetchone()
                lost[root] = FencedOff(*row) if row else FencedOff(None, None, None)
        return lost


__all__ = ["RunHolding"]
