"""`Recorder`: writes the state changes of persisted flow runs to a store, in batches.

It subscribes to `reflow.events`. A state change of a tracked flow run (or of its task runs
and subflows) becomes a `StateRecord`, and the run's current record is upserted with it. A
writer thread writes whatever has gathered in one transaction, then what gathered meanwhile
(group commit): a busy flow pays one transaction per batch, not one per state, and a quiet one
has each change written at once. `flush()` returns once everything published so far is
written (a flow run's end is flushed before the flow returns).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from reflow import events
from reflow.store.base import Store
from reflow.store.records import FlowRunRecord, StateRecord, TaskRunRecord
from reflow.store.results import Encoded, ResultCodec

logger = logging.getLogger("reflow.store")


class Recorder:
    """Keeps the runs it tracks in a store; one per store, shared by every flow run."""

    def __init__(self, store: Store, codec: ResultCodec) -> None:
        self.store = store
        self.codec = codec
        self._tracked: dict[str, str] = {}  # run id -> the id of the root run it belongs to
        self._pending: list[events.StateChange] = []
        self._cond = threading.Condition()  # guards _pending, _tracked and the counters
        self._queued = 0  # events handed to the writer so far
        self._written = 0  # events written (or failed) so far
        self._writer: threading.Thread | None = None
        self._subscription: events.Subscription | None = None
        self.errors: list[BaseException] = []
        """Writes that failed (each also logged): the runs they held are not in the store."""
        self.atom_writer: Callable[[list[events.StateChange]], None] | None = None
        """Writes a batch's atom state changes (of the atoms runs it tracks); set by
        `reflow.store.atoms`. Without it, atom events are not recorded."""

    def track(self, flow_run_id: str, root_id: str | None = None) -> None:
        """Record this flow run from now on (its task runs and subflows with it)."""
        with self._cond:
            self._tracked.setdefault(flow_run_id, root_id or flow_run_id)
            if self._subscription is None:
                self._subscription = events.subscribe(self._on_event)
            if self._writer is None:
                self._writer = threading.Thread(
                    target=self._write_loop, name="reflow-store-writer", daemon=True
                )
                self._writer.start()

    def tracks(self, run_id: str) -> bool:
        return run_id in self._tracked

    def root_of(self, run_id: str) -> str | None:
        return self._tracked.get(run_id)

    def release(self, root_id: str) -> None:
        """Stop recording a root run and its subflows (after a final flush); with nothing
        left to record, stop listening to events."""
        self.flush()
        with self._cond:
            for run_id in [r for r, root in self._tracked.items() if root == root_id]:
                del self._tracked[run_id]
            if not self._tracked and self._subscription is not None:
                self._subscription.unsubscribe()
                self._subscription = None

    def _on_event(self, event: events.Event) -> None:
        if not isinstance(event, events.StateChange):
            return
        if event.run_kind == "atom" and self.atom_writer is None:
            return
        tracked = self._tracked
        if event.run_id not in tracked and event.parent_id not in tracked:
            return
        with self._cond:
            if event.run_kind == "flow" and event.run_id not in tracked:
                tracked[event.run_id] = tracked[event.parent_id or ""]  # a subflow
            self._pending.append(event)
            self._queued += 1
            if len(self._pending) == 1:  # the writer sleeps only on an empty batch
                self._cond.notify_all()

    def flush(self) -> None:
        """Wait until everything published so far is written."""
        with self._cond:
            target = self._queued
            while self._written < target:
                self._cond.wait(0.5)

    def _write_loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending:
                    self._cond.wait()
                batch, self._pending = self._pending, []
            try:
                self._write(batch)
            except Exception as exc:  # never silent: logged, kept, and the runs go on
                self.errors.append(exc)
                logger.exception(
                    "reflow: writing %d state change(s) to the store failed", len(batch)
                )
            with self._cond:
                self._written += len(batch)
                self._cond.notify_all()

    def _write(self, batch: list[events.StateChange]) -> None:
        """One transaction: each run's record as of its last change in the batch; a flow
        run's changes as rows of their own, a task run's inside its record."""
        if self.atom_writer is not None:  # atoms runs' changes go to their own writer
            atoms = [e for e in batch if e.run_kind == "atom"]
            if atoms:
                self.atom_writer(atoms)
                batch = [e for e in batch if e.run_kind != "atom"]
                if not batch:
                    return
        states = [
            StateRecord(
                e.run_id, e.run_kind, e.state.name, e.state.type.name, e.state.timestamp,
                e.state.message, e.state.attempt,
            )
            for e in batch
            if e.run_kind == "flow"
        ]  # fmt: skip
        last = {e.run_id: e for e in batch}  # records are built once per run, not per state
        flows = [self.flow_record(e.run, e.state) for e in last.values() if e.run_kind == "flow"]
        tasks = [self._task_record(e.run, e.state) for e in last.values() if e.run_kind != "flow"]
        self.store.write(flow_runs=flows, task_runs=tasks, states=states)

    def flow_record(self, flow_run: Any, state: Any) -> FlowRunRecord:
        """The flow run's record as of `state`."""
        created = flow_run.states[0].timestamp if flow_run.states else state.timestamp
        return FlowRunRecord(
            id=flow_run.id,
            name=flow_run.name,
            state=state.name,
            state_type=state.type.name,
            created=created,
            updated=state.timestamp,
            version=flow_run.version,
            parent_id=flow_run.parent_id,
            parameters=dict(flow_run.parameters),
            run_key=getattr(flow_run, "run_key", None),
            result=self._encode(state.data) if state.is_completed() else None,
            error=_error(state),
        )

    def _task_record(self, run: Any, state: Any) -> TaskRunRecord:
        created = run.states[0].timestamp if run.states else state.timestamp
        return TaskRunRecord(
            id=run.id,
            flow_run_id=run.parent_id or "",
            key=run.key or run.task_name,
            task_name=run.task_name,
            state=state.name,
            state_type=state.type.name,
            created=created,
            updated=state.timestamp,
            upstream=list(run.upstream),
            attempts=len(run.attempts),
            result=self._encode(state.data) if state.is_completed() else None,
            error=_error(state),
            states=[
                StateRecord(run.id, "task", s.name, s.type.name, s.timestamp, s.message, s.attempt)
                for s in _until(run.states, state)
            ],
        )

    def _encode(self, value: Any) -> Encoded | None:
        try:
            return self.codec.encode(value)
        except Exception as exc:  # unpicklable: the run is recorded, its result cannot be
            logger.warning(
                "reflow: a result cannot be stored (%s); its run is kept without it", exc
            )
            return None


def _until(states: list[Any], last: Any) -> list[Any]:
    """The run's states up to `last` (the run may have gone on since the event)."""
    for i in range(len(states) - 1, -1, -1):
        if states[i] is last:
            return states[: i + 1]
    return list(states)


def _error(state: Any) -> str | None:
    exc = state.exception
    if exc is None:
        return state.message or None if state.is_failed() else None
    return f"{type(exc).__name__}: {exc}"
