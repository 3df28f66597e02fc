"""The SQL of atoms runs, shared by both stores: statements and row conversions for the tables
of `sql.MIGRATIONS`' atoms entry (reflow_atom_runs, reflow_atoms, reflow_retry_histories)."""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import Any

from reflow.store.atom_records import AtomRecord, AtomRunRecord, RetryTryRecord
from reflow.store.records import StateRecord
from reflow.store.results import Encoded
from reflow.store.sql import _encoded, result_columns

ATOM_RUN_COLUMNS = "run_id, atoms, retries, store_encoding, store, defer_reverts, errors"
ATOM_COLUMNS = (
    "run_id, name, position, kind, state, state_type, updated, completed_order, "
    "result_encoding, result, failure, states"
)
TRY_COLUMNS = "run_id, controller, try_index, value_encoding, value, failures"


def upsert_atom_run(p: str) -> str:
    """Only its errors change once it is written (they are known when it ends)."""
    return (
        f"INSERT INTO reflow_atom_runs ({ATOM_RUN_COLUMNS}) VALUES ({', '.join([p] * 7)}) "
        "ON CONFLICT (run_id) DO UPDATE SET errors = excluded.errors"
    )


@functools.cache
def upsert_atom(p: str, rows: int = 1) -> str:
    """Keyed by run and atom name; `rows` rows a statement (each atom once per batch)."""
    values = ", ".join([f"({', '.join([p] * 12)})"] * rows)
    updates = ", ".join(
        f"{c} = excluded.{c}"
        for c in (
            "state", "state_type", "updated", "completed_order", "result_encoding", "result",
            "failure", "states",
        )
    )  # fmt: skip
    return (
        f"INSERT INTO reflow_atoms ({ATOM_COLUMNS}) VALUES {values} "
        f"ON CONFLICT (run_id, name) DO UPDATE SET {updates}"
    )


def delete_tries(p: str) -> str:
    return f"DELETE FROM reflow_retry_histories WHERE run_id = {p} AND controller = {p}"


def insert_try(p: str) -> str:
    return f"INSERT INTO reflow_retry_histories ({TRY_COLUMNS}) VALUES ({', '.join([p] * 6)})"


def atom_run_row(r: AtomRunRecord) -> tuple[Any, ...]:
    encoding, blob = result_columns(r.store)
    return (
        r.id, json.dumps(r.atoms), json.dumps(r.retries), encoding, blob,
        int(r.defer_reverts), json.dumps(r.errors),
    )  # fmt: skip


def atom_row(r: AtomRecord) -> tuple[Any, ...]:
    encoding, blob = result_columns(r.result)
    return (
        r.run_id, r.name, r.position, r.kind, r.state, r.state_type, r.updated, r.order,
        encoding, blob, None if r.failure is None else json.dumps(r.failure),
        json.dumps([[s.name, s.type, s.timestamp, s.message] for s in r.states]),
    )  # fmt: skip


def try_row(run_id: str, controller: str, index: int, t: RetryTryRecord) -> tuple[Any, ...]:
    encoding, blob = result_columns(t.value)
    return (run_id, controller, index, encoding, blob, json.dumps(t.failures))


def atom_run_record(row: Sequence[Any]) -> AtomRunRecord:
    return AtomRunRecord(
        id=row[0], atoms=json.loads(row[1]), retries=json.loads(row[2]),
        store=_encoded(row[3], row[4]), defer_reverts=bool(row[5]), errors=json.loads(row[6]),
    )  # fmt: skip


def atom_record(row: Sequence[Any]) -> AtomRecord:
    return AtomRecord(
        run_id=row[0], name=row[1], position=row[2], kind=row[3], state=row[4],
        state_type=row[5], updated=row[6], order=row[7], result=_encoded(row[8], row[9]),
        failure=None if row[10] is None else json.loads(row[10]),
        states=[StateRecord(row[0], "atom", *s) for s in json.loads(row[11])],
    )  # fmt: skip


def try_record(row: Sequence[Any]) -> tuple[str, RetryTryRecord]:
    """(controller, the try) from a row of `TRY_COLUMNS`."""
    value: Encoded | None = _encoded(row[3], row[4])
    return row[1], RetryTryRecord(value, json.loads(row[5]))


class KeptAtom:
    """An atom's row as the store's writer keeps it between batches: its columns, and each of
    its states as the JSON item of its `states` column, made once, when the state arrives (so
    a batch builds a row by joining them, whatever the number of states)."""

    __slots__ = (
        "failure",
        "items",
        "kind",
        "name",
        "order",
        "position",
        "result",
        "run_id",
        "state",
        "state_type",
        "updated",
    )  # fmt: skip

    def __init__(
        self,
        run_id: str,
        name: str,
        position: int,
        kind: str,
        state: str = "Pending",
        state_type: str = "PENDING",
        updated: float = 0.0,
        order: int | None = None,
        result: Encoded | None = None,
        failure: dict[str, Any] | None = None,
        items: list[str] | None = None,
    ) -> None:
        self.run_id, self.name, self.position, self.kind = run_id, name, position, kind
        self.state, self.state_type, self.updated, self.order = state, state_type, updated, order
        self.result, self.failure = result, failure
        self.items = items if items is not None else []

    @classmethod
    def of(cls, r: AtomRecord) -> KeptAtom:
        """A stored atom's row, to go on from (a resumed run)."""
        items = [json.dumps([s.name, s.type, s.timestamp, s.message]) for s in r.states]
        return cls(
            r.run_id, r.name, r.position, r.kind, r.state, r.state_type, r.updated, r.order,
            r.result, r.failure, items,
        )  # fmt: skip

    def add(self, name: str, type_name: str, timestamp: float, message: str) -> None:
        """A new state (names and type names are reflow's own: no JSON escaping needed)."""
        self.state, self.state_type, self.updated = name, type_name, timestamp
        text = json.dumps(message) if message else '""'
        self.items.append(f'["{name}", "{type_name}", {timestamp!r}, {text}]')

    def row(self) -> tuple[Any, ...]:
        """Its row (`ATOM_COLUMNS`) as of now."""
        encoding, blob = result_columns(self.result)
        return (
            self.run_id, self.name, self.position, self.kind, self.state, self.state_type,
            self.updated, self.order, encoding, blob,
            None if self.failure is None else json.dumps(self.failure),
            f"[{', '.join(self.items)}]",
        )  # fmt: skip
