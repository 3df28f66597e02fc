"""Atoms runs kept in a store: `reflow.atoms.run(flow, runs=...)` and `reflow.atoms.resume`.

`AtomsKeeper` is the store's side of the atoms layer's `Keeper` seam, one per store. A run's
start and end are written at once, in the caller's thread; in between, the engine hands every
atom state change to `changed`, which queues it on the store's `Recorder` (the writer thread
the flow runs use; not through the events bus, which an atoms run then leaves idle). The
writer hands each batch's atom events to `AtomsKeeper._write`: one row per atom touched per
batch (built by joining the JSON of its states, each made once as it arrived, and written many
rows to a statement), and the new tries of each controller that changed, in one transaction.
The run's end flushes that writer first, so the final state is committed last, before
`run()` returns. Every write of a run is fenced by the epoch this process holds it under
(`reflow.store.fencing`): when another process took the run over, nothing more of it is
written here, and the run stops at its next atom state change with `RunTakenOver` (no
reverts: the run is the other process's now).

Results are encoded with the store's `ResultCodec` (JSON, or HMAC-signed cloudpickle) and
decoded, signatures checked, when a run is read back; failures are kept as text. Secrets are
masked in what is shown (the initial store as the run's `parameters`, errors, messages), and
kept by name in what must come back (the initial store, results, controllers' values: the
codec reads them again where the run resumes), never in clear.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reflow.atoms.failure import Failure
from reflow.atoms.persistence import RecordedAtom, RecordedRun, Try
from reflow.atoms.retry import History
from reflow.secrets import redact, redact_text
from reflow.store import persistence as store_persistence
from reflow.store.atom_records import AtomRecord, AtomRunRecord, RetryHistoryRecord
from reflow.store.atom_sql import KeptAtom
from reflow.store.base import SQLStore
from reflow.store.claims import take_over
from reflow.store.fencing import RunTakenOver
from reflow.store.histories import encode, failure_dict, history_record, tries_of
from reflow.store.persistence import StorePersistence, persistence
from reflow.store.records import FlowRunRecord, StateRecord
from reflow.store.results import Encoded
from reflow.store.sql import StoreConflict, StoreError

logger = logging.getLogger("reflow.store")
_lock = threading.Lock()
_keepers: weakref.WeakKeyDictionary[StorePersistence, AtomsKeeper] = weakref.WeakKeyDictionary()


def keeper(runs: Any) -> AtomsKeeper | None:
    """The keeper of the store `runs` names (True: the default store, or `REFLOW_STORE`;
    None when `REFLOW_STORE=memory` keeps runs in memory)."""
    if runs is True:
        kept = persistence(True, None)
    elif isinstance(runs, str | Path | SQLStore):
        kept = persistence(True, runs)
    else:
        raise TypeError(
            "runs= takes True (the default store), a path or URL of a store or a reflow.store "
            f"Store (SQLiteStore, PostgresStore), got {runs!r}"
        )
    if kept is None:
        return None
    with _lock:
        found = _keepers.get(kept)
        if found is None:
            found = _keepers[kept] = AtomsKeeper(kept)
        return found


@dataclass
class _Run:
    """What the writer keeps of a running atoms run between batches."""

    record: FlowRunRecord
    atom_run: AtomRunRecord
    atoms: dict[str, KeptAtom] = field(default_factory=dict)
    ended: int = 0
    """How many executions of its atoms have ended (completed or failed) so far."""


class AtomsKeeper:
    """Keeps atoms runs in one store (`reflow.atoms.persistence.Keeper`)."""

    def __init__(self, kept: StorePersistence) -> None:
        self.kept = kept
        self.store = kept.store
        self.codec = kept.codec
        self._runs: dict[str, _Run] = {}
        self._loaded: dict[str, FlowRunRecord] = {}  # run id -> its record as load() read it
        kept.recorder.atom_writer = self._write
        self._enqueue = kept.recorder.enqueue_atom
        self._holds = kept.recorder.holds
        self._lost = self._holds.lost  # run id -> RunTakenOver: checked at each change

    # -- the engine's side ----------------------------------------------------------------------

    def begin(
        self,
        run_id: str,
        name: str,
        atoms: Sequence[str],
        retries: Collection[str],
        store: Mapping[str, Any],
        defer_reverts: bool,
        run_key: str | None = None,
    ) -> str | None:
        if self.store.flow_run(run_id) is not None:
            raise StoreConflict(
                f"a run {run_id!r} is already in {self.store!r}: continue it with "
                f"reflow.atoms.resume({run_id!r}, flow, runs=...), or give a new run_id"
            )
        now = time.time()
        record = FlowRunRecord(
            id=run_id, name=name, state="Running", state_type="RUNNING", created=now,
            updated=now, parameters=redact(store), heartbeat=now,
            worker=store_persistence.WORKER, run_key=run_key,
        )  # fmt: skip
        atom_run = AtomRunRecord(
            run_id, list(atoms), sorted(retries), self._encode(dict(store), "its initial store"),
            defer_reverts,
        )  # fmt: skip
        run = self._runs[run_id] = _Run(record, atom_run)
        for position, atom in enumerate(atoms):
            kind = "retry" if atom in retries else "atom"
            run.atoms[atom] = KeptAtom(run_id, atom, position, kind, updated=now)
        try:
            self.store.write_atoms(
                flow_runs=[record],
                states=[StateRecord(run_id, "atoms", "Running", "RUNNING", now)],
                atom_runs=[atom_run],
            )  # before its atoms' first events
        except StoreConflict:
            del self._runs[run_id]
            taken = self.find(run_key) if run_key is not None else None
            if taken is None:
                raise
            return taken  # another process began the keyed run first
        self._holds.hold(run_id, 0, f"atoms run {run_id} ({name})")
        self.kept.recorder.track(run_id, listen=False)  # its changes come through changed()
        self.kept._keep_alive(run_id)
        return None

    def find(self, run_key: str) -> str | None:
        record = self.store.flow_run_by_key(run_key)
        if record is None:
            return None
        if self.store.atom_run(record.id) is None:
            raise StoreError(
                f"run_key {run_key!r} in {self.store!r} is the key of flow run {record.id} "
                f"({record.name}), not of an atoms run: give this run a key of its own"
            )
        return record.id

    def load(self, run_id: str) -> RecordedRun:
        record = self.store.flow_run(run_id)
        if record is None:
            raise LookupError(f"no atoms run {run_id!r} in {self.store!r}")
        atom_run = self.store.atom_run(run_id)
        if atom_run is None:
            raise StoreError(
                f"run {run_id} in {self.store!r} is a flow run ({record.name}), not an atoms "
                f"run: resume it with reflow.resume({run_id!r})"
            )
        if atom_run.store is None:
            raise StoreError(
                f"atoms run {run_id} ({record.name}) cannot be resumed: its initial store could "
                "not be stored (a value cloudpickle cannot pickle?)"
            )
        rows = self.store.atoms(run_id)
        tries: dict[str, list[Try]] = {
            h.controller: tries_of(self.codec, h) for h in self.store.retry_histories(run_id)
        }
        if record.state not in ("Completed", "Failed"):
            self._loaded[run_id] = record  # what resumed() takes over, if it is still so
        result = None
        if record.state == "Completed" and record.result is not None:
            result = self.codec.decode(record.result)
        return RecordedRun(
            run_id=run_id,
            name=record.name,
            state=record.state,
            atoms=tuple(atom_run.atoms),
            retries=frozenset(atom_run.retries),
            store=dict(self.codec.decode(atom_run.store)),
            defer_reverts=atom_run.defer_reverts,
            records={row.name: self._recorded(row) for row in rows},
            histories=tries,
            result=result,
            errors=tuple(Failure.from_dict(e) for e in atom_run.errors),
        )

    def resumed(self, run_id: str) -> None:
        record = self._loaded.pop(run_id, None) or self.store.flow_run(run_id)
        atom_run = self.store.atom_run(run_id)
        if record is None or atom_run is None:
            raise LookupError(f"no atoms run {run_id!r} in {self.store!r}")
        take_over(self.kept, record, "Running", "atoms run")  # RunHeld: another process has it
        now = time.time()
        record.state, record.state_type, record.updated = "Running", "RUNNING", now
        record.heartbeat, record.error = now, None
        record.worker = store_persistence.WORKER
        run = self._runs[run_id] = _Run(record, atom_run)
        for row in self.store.atoms(run_id):
            run.atoms[row.name] = KeptAtom.of(row)
        run.ended = 1 + max((row.order or 0 for row in run.atoms.values()), default=0)
        known = set(run.atoms)
        for position, atom in enumerate(atom_run.atoms):  # never recorded: no state reached us
            if atom not in known:
                kind = "retry" if atom in atom_run.retries else "atom"
                run.atoms[atom] = KeptAtom(run_id, atom, position, kind, updated=now)
        lost = self.store.write_atoms(
            flow_runs=[record],
            states=[StateRecord(run_id, "atoms", "Running", "RUNNING", now, "resumed")],
            fences=self._holds.fence(run_id),
        )
        if lost:  # taken over again since this process took it over
            self._runs.pop(run_id, None)
            self._holds.lose(lost)
            error = self._holds.release(run_id)
            assert error is not None
            raise error
        self.kept.recorder.track(run_id, listen=False)
        self.kept._keep_alive(run_id)

    def changed(
        self, run_id: str, atom: str, state: Any, previous: Any, history: History | None
    ) -> None:
        if run_id in self._lost:  # another process took the run over: stop here, no reverts
            raise self._lost[run_id]
        self._enqueue((run_id, atom, state, previous, history))

    def end(
        self,
        run_id: str,
        result: dict[str, Any] | None,
        errors: Sequence[BaseException],
        histories: Mapping[str, History],
    ) -> None:
        self.kept.recorder.flush()  # every atom state published so far is written
        run = self._runs.pop(run_id)
        now = time.time()
        record = run.record
        failed = result is None
        record.state, record.state_type = (
            ("Failed", "FAILED") if failed else ("Completed", "COMPLETED")
        )
        record.updated = now
        record.result = None if failed else self._encode(result, "its result")
        record.error = redact_text(f"{type(errors[0]).__name__}: {errors[0]}") if errors else None
        run.atom_run.errors = [failure_dict(Failure(e)) for e in errors]
        try:
            taken = self.store.write_atoms(
                flow_runs=[record],
                states=[StateRecord(run_id, "atoms", record.state, record.state_type, now)],
                atom_runs=[run.atom_run],
                histories=[self._history(run_id, name, h) for name, h in histories.items()],
                fences=self._holds.fence(run_id),
            )
            if taken:
                self._holds.lose(taken)
        finally:
            lost = self._stop(run_id)
        if isinstance(lost, RunTakenOver):
            raise lost
        if lost is not None:  # a batch of its atoms' changes was not written (it was logged)
            raise StoreError(
                f"atoms run {run_id} ({record.name}) ended {record.state}, but writing its "
                f"records to {self.store!r} failed ({type(lost).__name__}: {lost}): the store "
                "does not hold all of it, so it cannot be resumed from there"
            ) from lost

    def interrupted(self, run_id: str) -> None:
        self.kept.recorder.flush()  # what it did is written; its state stays Running
        self._runs.pop(run_id, None)
        self._stop(run_id)

    def _stop(self, run_id: str) -> BaseException | None:
        """Stop keeping the run; the error of a write of it that failed, if one did."""
        self.kept._alive.discard(run_id)
        return self.kept.recorder.release(run_id)  # flushed first

    # -- the writer thread's side ---------------------------------------------------------------

    def _write(self, batch: list[tuple[Any, ...]]) -> None:
        """One transaction for a batch of atom state changes (`changed`'s tuples): each
        touched atom's row as of its last change, and the history of each controller that
        changed."""
        touched: dict[str, dict[str, KeptAtom]] = {}  # run id -> its atoms touched, by name
        histories: dict[tuple[str, str], RetryHistoryRecord] = {}
        runs = self._runs
        apply = self._apply
        for run_id, name, state, previous, history in batch:
            run = runs.get(run_id)
            if run is None:
                continue
            atom = run.atoms.get(name)
            if atom is None:
                continue
            apply(run, atom, state, previous)
            (touched.get(run_id) or touched.setdefault(run_id, {}))[name] = atom
            if history is not None:  # a controller's history as of the change
                histories[run_id, name] = self._history(run_id, name, history)
        if touched or histories:
            rows = [a.row() for atoms in touched.values() for a in atoms.values()]
            fences = self._holds.fences({}, touched, (h.run_id for h in histories.values()))
            lost = self.store.write_atoms(
                atom_rows=rows, histories=list(histories.values()), fences=fences
            )
            if lost:  # another process took these runs over: their rows were left out
                self._holds.lose(lost)

    def _apply(self, run: _Run, atom: KeptAtom, state: Any, previous: Any) -> None:
        name = state.name
        message = state.message
        atom.add(name, state.type._name_, state.timestamp, redact_text(message) if message else "")
        if name == "Running":
            return
        if name == "Pending":  # a new execution: the last one's outcome is over
            atom.result, atom.failure, atom.order = None, None, None
        elif name == "Completed":
            try:
                atom.result = self.codec.encode(state.data)
            except Exception:  # unpicklable: logged, the run is kept without it
                atom.result = self._encode(state.data, f"the result of atom {atom.name}")
            atom.order, run.ended = run.ended, run.ended + 1
        elif name == "Failed" and (previous is None or previous.name != "Reverting"):
            exc = state.exception
            atom.failure = failure_dict(Failure(exc)) if exc is not None else None
            atom.result = None
            atom.order, run.ended = run.ended, run.ended + 1
        # a failed revert keeps the execution's outcome; its error is in the state's message

    # -- encoding ---------------------------------------------------------------------------------

    def _encode(self, value: Any, what: str) -> Encoded | None:
        return encode(self.codec, value, what)

    def _history(self, run_id: str, controller: str, history: History) -> RetryHistoryRecord:
        return history_record(self.codec, run_id, controller, history)

    def _recorded(self, row: AtomRecord) -> RecordedAtom:
        return RecordedAtom(
            name=row.name,
            states=tuple(s.name for s in row.states),
            result=None if row.result is None else self.codec.decode(row.result),
            has_result=row.result is not None,
            failure=None if row.failure is None else Failure.from_dict(row.failure),
            order=row.order,
        )


__all__ = ["AtomsKeeper", "keeper"]
