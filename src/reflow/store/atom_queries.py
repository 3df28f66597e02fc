"""What a store does with atoms runs and retry controllers' histories: `AtomQueries`, mixed
into `SQLStore` so both backends have it (the tables are `sql.MIGRATIONS`' atoms entry).

A decorated flow's `retry=` controller keeps its history in the same table as an atoms run's
controllers (`reflow_retry_histories`, keyed by run id and controller name). Large values
(a flow result, an atom's result, the initial store, a controller's value) go to the store's
result files as a flow run's do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from typing import Any

from reflow.store import atom_sql, sql
from reflow.store.atom_records import (
    AtomRecord,
    AtomRunRecord,
    RetryHistoryRecord,
    RetryTryRecord,
)
from reflow.store.fencing import Fence, FencedOff
from reflow.store.files import PREFIX, ResultFiles
from reflow.store.records import FlowRunRecord, StateRecord
from reflow.store.results import Encoded


class AtomQueries:
    """Atoms runs and retry histories, over the SQL store's connection."""

    placeholder: str
    files: ResultFiles | None

    def _transaction(self) -> AbstractContextManager[Any]:  # pragma: no cover - SQLStore's
        raise NotImplementedError

    def _query(self, statement: str, args: tuple[Any, ...] = ()) -> list[Any]:  # pragma: no cover
        raise NotImplementedError

    def _outline(self, row: tuple[Any, ...], *at: int) -> tuple[Any, ...]:  # pragma: no cover
        raise NotImplementedError

    def _inline(self, encoded: Encoded | None) -> Encoded | None:  # pragma: no cover
        raise NotImplementedError

    def _insert_many(
        self, cur: Any, statement: Callable[[str, int], str], rows: list[tuple[Any, ...]]
    ) -> None:  # pragma: no cover
        raise NotImplementedError

    def _fence(
        self, cur: Any, fences: Mapping[str, Fence]
    ) -> dict[str, FencedOff]:  # pragma: no cover
        raise NotImplementedError

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
        appended, and each history given replaces that controller's tries. `atom_rows` are
        atoms already as rows (`atom_sql.ATOM_COLUMNS`, one per atom), the writer's path.
        `fences`: as `SQLStore.write`'s (the rows of a lost run are left out, and it is
        returned)."""
        p = self.placeholder
        flows = [sql.flow_row(r) for r in flow_runs]
        changes = [sql.state_row(r) for r in states]
        runs = [atom_sql.atom_run_row(r) for r in atom_runs]
        rows = [atom_sql.atom_row(r) for r in atoms]
        rows.extend(atom_rows)
        replaced = list(histories)
        tries = [
            atom_sql.try_row(h.run_id, h.controller, i, t)
            for h in replaced
            for i, t in enumerate(h.tries)
        ]
        if self.files is not None:  # large values to files first, as `write` does
            flows = [self._outline(row, 12, 16) for row in flows]
            runs = [self._outline(row, 3) for row in runs]
            rows = [self._outline(row, 8) for row in rows]
            tries = [self._outline(row, 3) for row in tries]
        with self._transaction() as cur:
            lost = self._fence(cur, fences) if fences else {}
            if lost and fences:
                gone = {run_id for run_id, (root, _) in fences.items() if root in lost}
                flows = [r for r in flows if r[0] not in gone]
                changes = [r for r in changes if r[0] not in gone]
                runs = [r for r in runs if r[0] not in gone]
                rows = [r for r in rows if r[0] not in gone]
                replaced = [h for h in replaced if h.run_id not in gone]
                tries = [r for r in tries if r[0] not in gone]
            if flows:
                cur.executemany(sql.upsert_flow_run(p), flows)
            if changes:
                cur.executemany(sql.insert_state(p), changes)
            if runs:
                cur.executemany(atom_sql.upsert_atom_run(p), runs)
            if rows:
                self._insert_many(cur, atom_sql.upsert_atom, rows)
            if replaced:
                cur.executemany(
                    atom_sql.delete_tries(p), [(h.run_id, h.controller) for h in replaced]
                )
            if tries:
                cur.executemany(atom_sql.insert_try(p), tries)
        return lost

    def atom_run(self, run_id: str) -> AtomRunRecord | None:
        """An atoms run's own data; None when `run_id` is not an atoms run."""
        rows = self._query(
            f"SELECT {atom_sql.ATOM_RUN_COLUMNS} FROM reflow_atom_runs "
            f"WHERE run_id = {self.placeholder}",
            (run_id,),
        )
        if not rows:
            return None
        record = atom_sql.atom_run_record(rows[0])
        record.store = self._inline(record.store)
        return record

    def atoms(self, run_id: str) -> list[AtomRecord]:
        """An atoms run's atoms and controllers, in the flow's order."""
        rows = self._query(
            f"SELECT {atom_sql.ATOM_COLUMNS} FROM reflow_atoms WHERE run_id = {self.placeholder} "
            "ORDER BY position",
            (run_id,),
        )
        records = [atom_sql.atom_record(r) for r in rows]
        for record in records:
            record.result = self._inline(record.result)
        return records

    def retry_histories(self, run_id: str) -> list[RetryHistoryRecord]:
        """The history of each retry controller of a run (an atoms run's, or a decorated
        flow's `retry=`) that has tried its scope, by controller name."""
        rows = self._query(
            f"SELECT {atom_sql.TRY_COLUMNS} FROM reflow_retry_histories "
            f"WHERE run_id = {self.placeholder} ORDER BY controller, try_index",
            (run_id,),
        )
        found: dict[str, RetryHistoryRecord] = {}
        for row in rows:
            controller, each = atom_sql.try_record(row)
            if each.value is not None and each.value.encoding.startswith(PREFIX):
                each = RetryTryRecord(self._inline(each.value), each.failures)
            found.setdefault(controller, RetryHistoryRecord(run_id, controller)).tries.append(each)
        return list(found.values())


__all__ = ["AtomQueries"]
