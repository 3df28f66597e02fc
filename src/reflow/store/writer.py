"""`Recorder`: writes the state changes of persisted flow runs to a store, in batches.

It subscribes to `reflow.events` and to the run loggers (`reflow.flow.runlog`). A state change
of a tracked flow run (or of its task runs and subflows) becomes a `StateRecord`, and the run's
current record is upserted with it; a log record of it becomes a `LogRecord`. Atoms runs hand
their changes over directly (`enqueue_atom`), written by `atom_writer`. A writer thread writes
what gathered over `commit_interval` (50 ms) in one transaction, at once when a flush waits: a
busy flow pays one transaction per batch, not one per state. `flush()` returns once everything
published so far is written (a flow run's end is flushed before the flow returns). A batch is
fenced by the epochs this process holds its runs under (`holds`, `reflow.store.fencing`): the
rows of a run another process took over meanwhile are left out.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from reflow import events
from reflow.flow import runlog
from reflow.secrets import redact, redact_text
from reflow.states import StateType
from reflow.store import sql
from reflow.store.base import Store
from reflow.store.fencing import Holds
from reflow.store.records import FlowRunRecord, LogRecord, StateRecord
from reflow.store.results import Encoded, ResultCodec

_COMPLETED = StateType.COMPLETED

logger = logging.getLogger("reflow.store")


class Recorder:
    """Keeps the runs it tracks in a store; one per store, shared by every flow run."""

    commit_interval = 0.05
    """Seconds the writer gathers changes before a commit (unless a flush wants them at once):
    a busy flow pays one transaction per interval, and a process killed meanwhile loses at
    most this much (its tasks run again on resume)."""

    def __init__(self, store: Store, codec: ResultCodec) -> None:
        self.store = store
        self.codec = codec
        self._tracked: dict[str, str] = {}  # run id -> the id of the root run it belongs to
        # Publishers append (event, encoded result) or a flush's threading.Event; the writer
        # pops. deque.append and popleft are atomic: publishing takes no lock.
        self._pending: deque[Any] = deque()
        self._wake = threading.Event()  # something is pending
        self._urgent = threading.Event()  # a flush waits: write now
        self._lock = threading.Lock()  # guards _tracked's changes and the writer's start
        self._writer: threading.Thread | None = None
        self._subscription: events.Subscription | None = None
        self.errors: list[BaseException] = []
        """Writes that failed (each also logged): the runs they held are not in the store."""
        self._failed: dict[str, BaseException] = {}  # root run id -> its first failed write
        self._atoms: deque[tuple[Any, ...]] = deque()  # kept atoms runs' changes
        self.atom_writer: Callable[[list[tuple[Any, ...]]], None] | None = None
        """Writes a batch's atom state changes (`enqueue_atom`'s); set by
        `reflow.store.atoms`."""
        self.holds = Holds()
        """The runs this process holds, by epoch: every write of theirs is fenced by it."""

    def track(self, flow_run_id: str, root_id: str | None = None, *, listen: bool = True) -> None:
        """Record this flow run from now on (its task runs and subflows with it). `listen=False`:
        its changes are handed over (`enqueue_atom`: an atoms run's), not heard from events."""
        with self._lock:
            self._tracked.setdefault(flow_run_id, root_id or flow_run_id)
            if listen and self._subscription is None:
                self._subscription = events.subscribe(self._on_event)
                runlog.add_sink(self._on_log)
            if self._writer is None:
                self._writer = threading.Thread(
                    target=self._write_loop, name="reflow-store-writer", daemon=True
                )
                self._writer.start()

    def enqueue_atom(self, change: tuple[Any, ...]) -> None:
        """Write this atom state change with the next batch, through `atom_writer`: an atoms
        run's keeper hands its changes over as plain tuples, not through the events bus."""
        self._atoms.append(change)
        if not self._wake.is_set():
            self._wake.set()

    def tracks(self, run_id: str) -> bool:
        return run_id in self._tracked

    def root_of(self, run_id: str) -> str | None:
        return self._tracked.get(run_id)

    def release(self, root_id: str) -> BaseException | None:
        """Stop recording a root run and its subflows (after a final flush); with nothing
        left to record, stop listening to events. Returns the error of a write of the run
        that failed, if one did (the store misses some of it)."""
        self.flush()
        with self._lock:
            for run_id in [r for r, root in self._tracked.items() if root == root_id]:
                del self._tracked[run_id]
            if not self._tracked and self._subscription is not None:
                self._subscription.unsubscribe()
                self._subscription = None
                runlog.remove_sink(self._on_log)
            failed = self._failed.pop(root_id, None)
        return self.holds.release(root_id) or failed  # lost: its writes were fenced off

    def failure_of(self, root_id: str) -> BaseException | None:
        """The first failed write of this root run's records, if any."""
        return self._failed.get(root_id)

    def _on_event(self, event: events.Event) -> None:
        if type(event) is not events.StateChange:
            return
        if event.run_kind == "atom":
            return  # an atoms run's keeper hands its changes over (enqueue_atom)
        tracked = self._tracked
        if event.run_id not in tracked and event.parent_id not in tracked:
            return
        if event.run_kind == "flow" and event.run_id not in tracked:
            with self._lock:
                tracked[event.run_id] = tracked[event.parent_id or ""]  # a subflow
        state = event.state
        # A result is encoded as the run completes, in the run's thread: what is stored is the
        # value as it was returned, not as later code may have changed it.
        encoded = self._encode(state.data) if state.type is _COMPLETED else None
        self._pending.append((event, encoded))
        if not self._wake.is_set():
            self._wake.set()

    def _on_log(self, record: logging.LogRecord) -> None:
        """A run logger's record: kept when its flow run is (formatted now, in its thread)."""
        flow_run_id = getattr(record, "flow_run_id", None)
        if flow_run_id is None or flow_run_id not in self._tracked:
            return
        message = record.getMessage()
        if record.exc_info:
            message = f"{message}\n{logging.Formatter().formatException(record.exc_info)}"
        message = redact_text(message)
        self._pending.append(
            LogRecord(
                0,
                flow_run_id,
                getattr(record, "task_run_id", None),
                record.created,
                record.levelno,
                record.name,
                message,
            )
        )
        if not self._wake.is_set():
            self._wake.set()

    def flush(self) -> None:
        """Wait until everything published so far is written (or its write failed)."""
        if self._writer is None:
            return  # never tracked a run: nothing was published to it
        done = threading.Event()
        self._pending.append(done)
        self._urgent.set()
        self._wake.set()
        while not done.wait(1.0):
            writer = self._writer
            if writer is None or not writer.is_alive():
                raise RuntimeError(
                    f"the writer of {self.store!r} has stopped: nothing more is written"
                )

    def _write_loop(self) -> None:
        pending, atom_changes = self._pending, self._atoms
        while True:
            self._wake.wait()
            self._urgent.wait(self.commit_interval)  # gather, unless a flush is waiting
            self._wake.clear()
            self._urgent.clear()
            batch: list[Any] = []
            waiters: list[threading.Event] = []
            logs: list[LogRecord] = []
            while pending:
                item = pending.popleft()
                kind = type(item)
                (
                    waiters if kind is threading.Event else logs if kind is LogRecord else batch
                ).append(item)
            atoms = []  # after the waiters: what was handed over before a flush is in
            while atom_changes:
                atoms.append(atom_changes.popleft())
            if batch or logs or atoms:
                try:
                    self._write(batch, logs, atoms)
                except Exception as exc:  # never silent: logged, kept, and told at the end
                    self._record_failure(batch + atoms, logs, exc)
            for waiter in waiters:
                waiter.set()

    def _record_failure(self, batch: list[Any], logs: list[LogRecord], exc: BaseException) -> None:
        self.errors.append(exc)
        logger.exception(
            "reflow: writing %d state change(s) and %d log record(s) to the store failed",
            len(batch), len(logs),
        )  # fmt: skip
        tracked = self._tracked
        ids = [  # (event, encoded) pairs, and atom changes (their atoms run's id first)
            (item[0].run_id, item[0].parent_id or "") if len(item) == 2 else (item[0], "")
            for item in batch
        ]
        ids += [(r.flow_run_id, "") for r in logs]
        for run_id, parent_id in ids:
            root = tracked.get(run_id) or tracked.get(parent_id)
            if root is not None:
                self._failed.setdefault(root, exc)

    def _write(
        self,
        batch: list[tuple[events.StateChange, Encoded | None]],
        logs: list[LogRecord],
        atoms: list[tuple[Any, ...]] | None = None,
    ) -> None:
        """One transaction: each run's record as of its last change in the batch; a flow
        run's changes as rows of their own, a task run's inside its record; the logs. Atoms
        runs' changes go to their own writer, in a transaction of their own."""
        if atoms and self.atom_writer is not None:
            self.atom_writer(atoms)
        if not batch and not logs:
            return
        states = [_flow_state(e) for e, _ in batch if e.run_kind == "flow"]
        last = {e.run_id: (e, encoded) for e, encoded in batch}  # one record per run
        flows = []
        tasks: dict[tuple[str, str], tuple[Any, ...]] = {}  # one row per call: its last run
        for e, encoded in last.values():
            if e.run_kind == "flow":
                flows.append(self.flow_record(e.run, e.state, encoded))
            else:
                row = task_row(e.run, e.state, encoded)
                tasks[row[1], row[2]] = row
        rows = list(tasks.values())
        fences = self.holds.fences(
            self._tracked, [f.id for f in flows], {r[1] for r in rows}, [s.run_id for s in states],
            {r.flow_run_id for r in logs},
        )  # fmt: skip
        lost = self.store.write(
            flow_runs=flows, task_rows=rows, states=states, logs=logs, fences=fences
        )
        if lost:  # another process took these runs over: their rows were left out
            self.holds.lose(lost)

    def flow_record(
        self, flow_run: Any, state: Any, encoded: Encoded | None = None
    ) -> FlowRunRecord:
        """The flow run's record as of `state` (`encoded`: its result, when it completed)."""
        created = flow_run.states[0].timestamp if flow_run.states else state.timestamp
        if encoded is None and state.is_completed():
            encoded = self._encode(state.data)
        return FlowRunRecord(
            id=flow_run.id,
            name=flow_run.name,
            state=state.name,
            state_type=state.type.name,
            created=created,
            updated=state.timestamp,
            version=flow_run.version,
            parent_id=flow_run.parent_id,
            parameters=redact(flow_run.parameters, _signature(flow_run)),
            run_key=getattr(flow_run, "run_key", None),
            result=encoded,
            error=_error(state),
        )

    def _encode(self, value: Any) -> Encoded | None:
        try:
            return self.codec.encode(value)
        except Exception as exc:  # unpicklable: the run is recorded, its result cannot be
            logger.warning(
                "reflow: a result cannot be stored (%s); its run is kept without it", exc
            )
            return None


def task_row(run: Any, state: Any, encoded: Encoded | None) -> tuple[Any, ...]:
    """The task run's row (`sql.TASK_COLUMNS`) as of `state`, built straight from the run:
    this is the writer's hot path, one per task per batch."""
    states = _until(run.states, state)
    return (
        run.id, run.parent_id or "", run.key or run.task_name, run.task_name, state.name,
        state.type._value_, _upstream(run.upstream), len(run.attempts), states[0].timestamp,
        state.timestamp, *sql.result_columns(encoded), _error(state),
        sql.states_json(states, run.attempts),
    )  # fmt: skip


def _flow_state(event: events.StateChange) -> StateRecord:
    s = event.state
    error, traceback = sql.failure_text(s.exception) if s.exception is not None else (None, None)
    return StateRecord(
        event.run_id, "flow", s.name, s.type._value_, s.timestamp, redact_text(s.message),
        s.attempt, error, traceback,
    )  # fmt: skip


def _signature(flow_run: Any) -> Any:
    """The flow function's signature (which parameters are hinted `Secret[...]`)."""
    return getattr(getattr(flow_run.flow, "_parameters", None), "signature", None)


def _upstream(ids: tuple[str, ...]) -> str:
    return "[]" if not ids else json.dumps(list(ids))


def _until(states: list[Any], last: Any) -> list[Any]:
    """The run's states up to `last` (the run may have gone on since the event)."""
    for i in range(len(states) - 1, -1, -1):
        if states[i] is last:
            return states[: i + 1]
    return list(states)


def _error(state: Any) -> str | None:
    exc = state.exception
    if exc is None:
        return redact_text(state.message) or None if state.is_failed() else None
    return redact_text(f"{type(exc).__name__}: {exc}")
