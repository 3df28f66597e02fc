"""`Recorder`: writes the state changes of persisted flow runs to a store, in batches.

It subscribes to `reflow.events` and to the run loggers (`reflow.flow.runlog`). A state change
of a tracked flow run (or of its task runs and subflows) becomes a `StateRecord`, and the run's
current record is upserted with it; a log record of it becomes a `LogRecord`. Atoms runs hand
their changes over directly (`enqueue_atom`), written by `atom_writer`. A writer thread writes
whatever has gathered in one transaction, then what gathered meanwhile (group commit): a busy
flow pays one transaction per batch, not one per state. `flush()` writes everything published
so far in the caller's thread (a flow run's end is flushed before the flow returns), so a small
flow pays one transaction and no thread hand-off. A batch is fenced by the epochs this process
holds its runs under (`holds`, `reflow.store.fencing`): the rows of a run another process took
over meanwhile are left out.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
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


@dataclass(slots=True)
class Begun:
    """A run that began: what its first record holds besides its state (written with the
    next batch, or merged into the record of its last change in that batch)."""

    run: Any
    state: Any
    flow_path: str
    call: Encoded | None
    heartbeat: float
    worker: str
    states: list[StateRecord]
    """Its states from before it was tracked."""


class Recorder:
    """Keeps the runs it tracks in a store; one per store, shared by every flow run."""

    commit_interval = 0.05
    """Seconds the writer gathers changes before a commit: a busy flow pays one transaction
    per interval, and a process killed meanwhile loses at most this much (its tasks run again
    on resume)."""

    hold_seconds = 1.0
    """Seconds a task run's change that is not its end may wait to be written with a later
    one (a flush writes it at once): how late a running flow's store can show it."""

    idle_exit = 5.0
    """Seconds the writer thread waits for work once no run is tracked before it ends (the
    next tracked run starts another): a loop of small flows keeps one thread."""

    def __init__(self, store: Store, codec: ResultCodec) -> None:
        self.store = store
        self.codec = codec
        self._tracked: dict[str, str] = {}  # run id -> the id of the root run it belongs to
        # Publishers append (event, encoded result), a LogRecord or a Begun; the drainer pops.
        # deque.append and popleft are atomic: publishing takes no lock.
        self._pending: deque[Any] = deque()
        self._wake = threading.Event()  # something is pending
        self._lock = threading.Lock()  # guards _tracked's changes and the writer's start
        self._draining = threading.Lock()  # one drainer at a time: batches commit in order
        self._writer: threading.Thread | None = None
        self._subscription: events.Subscription | None = None
        self._log_sink = self._on_log  # one bound method, so remove_sink finds it again
        self._pid = os.getpid()  # a forked child's copy writes nothing (see `disown`)
        self._closed = False
        self.errors: list[BaseException] = []
        """Writes that failed (each also logged): the runs they held are not in the store."""
        self._failed: dict[str, BaseException] = {}  # root run id -> its first failed write
        self._deferred: dict[str, tuple[events.StateChange, Encoded | None, float]] = {}
        """Task runs whose last change (not an end) is held back: (event, result, since)."""
        self._atoms: deque[tuple[Any, ...]] = deque()  # kept atoms runs' changes
        self.atom_writer: Callable[[list[tuple[Any, ...]]], None] | None = None
        """Writes a batch's atom state changes (`enqueue_atom`'s); set by
        `reflow.store.atoms`."""
        self.holds = Holds()
        """The runs this process holds, by epoch: every write of theirs is fenced by it."""
        self._told: set[tuple[str, str]] = set()  # tasks and flows whose results cannot be kept

    def track(self, flow_run_id: str, root_id: str | None = None, *, listen: bool = True) -> None:
        """Record this flow run from now on (its task runs and subflows with it). `listen=False`:
        its changes are handed over (`enqueue_atom`: an atoms run's), not heard from events."""
        with self._lock:
            self._tracked.setdefault(flow_run_id, root_id or flow_run_id)
            if listen and self._subscription is None:
                self._subscription = events.subscribe(self._on_event)
                runlog.add_sink(self._log_sink)
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

    def begin(self, begun: Begun) -> None:
        """A tracked run's first record (and its states from before it was tracked): written
        with the next batch."""
        self._pending.append(begun)
        if not self._wake.is_set():
            self._wake.set()

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
                runlog.remove_sink(self._log_sink)
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
        # value as it was returned, not as later code may have changed it. A run that keeps
        # no result (persist_result=False) has none encoded: nothing of it reaches the store.
        encoded = None
        if state.type is _COMPLETED and event.run.persist_result is not False:
            encoded = self._encode(state.data, event.run)
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
        """Write everything published so far (or record why its write failed), here, in the
        caller's thread: no hand-off to the writer, which may be writing an earlier batch."""
        if self._pid != os.getpid():
            return  # a forked child's copy: what it holds is the parent's to write
        with self._draining:
            self._drain(final=True)

    def close(self) -> None:
        """Write what is pending and write nothing more (at exit, before the store closes):
        a run still going in a daemon thread then is not written, and a warning says so."""
        if self._pid != os.getpid():
            return
        with self._draining:
            self._drain(final=True)
            self._closed = True

    def disown(self) -> None:
        """In a forked child: stop listening, and never write (the parent does)."""
        self._pid = -1
        if self._subscription is not None:
            self._subscription.unsubscribe()
            runlog.remove_sink(self._log_sink)
        self._tracked.clear()
        self._pending.clear()
        self._deferred.clear()

    def _write_loop(self) -> None:
        wait = self.idle_exit
        while True:
            if not self._wake.wait(wait):
                if not self._deferred:
                    with self._lock:
                        if not self._tracked and not self._pending and not self._atoms:
                            self._writer = None  # the next tracked run starts another
                            return
            else:
                time.sleep(self.commit_interval)  # gather (a flush writes at once, itself)
                self._wake.clear()
            with self._draining:
                self._drain(final=False)  # with what was held back long enough
                deferred = self._deferred
                oldest = next(iter(deferred.values()))[2] if deferred else None
            if oldest is None:
                wait = self.idle_exit
            else:  # until the oldest held change is due
                wait = max(0.01, oldest + self.hold_seconds - time.monotonic())

    def _drain(self, final: bool) -> None:
        """Write what is pending, as one transaction (the caller holds `_draining`); unless
        `final`, a task run not ended yet whose change is new waits for the next batch."""
        pending = self._pending
        batch: list[Any] = []
        logs: list[LogRecord] = []
        begun: list[Begun] = []
        while pending:
            item = pending.popleft()
            kind = type(item)
            (batch if kind is tuple else logs if kind is LogRecord else begun).append(item)
        atom_changes, atoms = self._atoms, []  # after the flow runs': what came before is in
        while atom_changes:
            atoms.append(atom_changes.popleft())
        if not (batch or logs or begun or atoms or self._deferred):
            return
        if self._closed:
            logger.warning(
                "reflow: %d state change(s) of a run still going at exit are not written to "
                "%r (it was closed)", len(batch) + len(begun) + len(atoms), self.store,
            )  # fmt: skip
            return
        try:
            self._write(batch, logs, begun, final, atoms)
        except Exception as exc:  # never silent: logged, kept, and told at the end
            self._record_failure(batch, logs, begun, exc, atoms)

    def _record_failure(
        self,
        batch: list[tuple[events.StateChange, Encoded | None]],
        logs: list[LogRecord],
        begun: list[Begun],
        exc: BaseException,
        atoms: list[tuple[Any, ...]],
    ) -> None:
        self.errors.append(exc)
        logger.exception(
            "reflow: writing %d state change(s) and %d log record(s) to the store failed",
            len(batch) + len(atoms) + len(begun), len(logs),
        )  # fmt: skip
        tracked = self._tracked
        ids = [(event.run_id, event.parent_id or "") for event, _ in batch]
        ids += [(change[0], "") for change in atoms]  # an atom change: its atoms run's id first
        ids += [(r.flow_run_id, "") for r in logs]
        ids += [(b.run.id, b.run.parent_id or "") for b in begun]
        for run_id, parent_id in ids:
            root = tracked.get(run_id) or tracked.get(parent_id)
            if root is not None:
                self._failed.setdefault(root, exc)

    def _write(
        self,
        batch: list[tuple[events.StateChange, Encoded | None]],
        logs: list[LogRecord],
        begun: list[Begun],
        final: bool = True,
        atoms: list[tuple[Any, ...]] | None = None,
    ) -> None:
        """One transaction: each run's record as of its last change in the batch (with what
        it began with, for a run that began in it); a flow run's changes as rows of their own,
        a task run's inside its record; the logs. Atoms runs' changes go to their own writer,
        in a transaction of their own.

        Unless `final`, a task run whose last change is not an end (Pending, Running, ...) is
        held back, for `hold_seconds` at most: in a map most runs end by then, and their row is
        written once, not once Pending and again Completed."""
        if atoms and self.atom_writer is not None:
            self.atom_writer(atoms)
        if not batch and not logs and not begun and not self._deferred:
            return
        states = [s for b in begun for s in b.states]
        states += [_flow_state(e) for e, _ in batch if e.run_kind == "flow"]
        last = {e.run_id: (e, encoded) for e, encoded in batch}  # one record per run
        flows = [self.begun_record(b) for b in begun if b.run.id not in last]
        first = {b.run.id: b for b in begun if b.run.id in last}
        tasks: dict[tuple[str, str], tuple[Any, ...]] = {}  # one row per call: its last run
        deferred, now = self._deferred, time.monotonic()
        taken: dict[str, tuple[events.StateChange, Encoded | None, float]] = {}
        if final:  # everything held is written, as the batch leaves it
            taken, self._deferred = deferred, {}
            deferred = self._deferred
            for e, encoded, _ in taken.values():
                row = task_row(e.run, e.state, encoded)
                tasks[row[1], row[2]] = row
        for e, encoded in last.values():
            if e.run_kind == "flow":
                record = self.flow_record(e.run, e.state, encoded)
                began = first.get(e.run_id)
                if began is not None:  # one row, not a first row and its update
                    record.flow_path, record.call = began.flow_path, began.call
                    record.heartbeat, record.worker = began.heartbeat, began.worker
                flows.append(record)
            elif final or e.state.is_final():
                deferred.pop(e.run_id, None)
                row = task_row(e.run, e.state, encoded)
                tasks[row[1], row[2]] = row
            else:  # held back; a run held already keeps its place and its time
                held = deferred.get(e.run_id)
                deferred[e.run_id] = (e, encoded, now if held is None else held[2])
        too_old = now - self.hold_seconds
        for run_id, (e, encoded, since) in deferred.items():  # the oldest first
            if since > too_old:
                break
            taken[run_id] = (e, encoded, since)
            row = task_row(e.run, e.state, encoded)
            tasks[row[1], row[2]] = row
        for run_id in taken:
            deferred.pop(run_id, None)
        rows = list(tasks.values())
        if not (flows or rows or states or logs):
            return  # all held back
        fences = self.holds.fences(
            self._tracked, [f.id for f in flows], {r[1] for r in rows}, [s.run_id for s in states],
            {r.flow_run_id for r in logs},
        )  # fmt: skip
        try:
            lost = self.store.write(
                flow_runs=flows, task_rows=rows, states=states, logs=logs, fences=fences
            )
        except Exception:
            for run_id, item in taken.items():  # not written: the next batch tries them again
                self._deferred.setdefault(run_id, item)
            raise
        if lost:  # another process took these runs over: their rows were left out
            self.holds.lose(lost)
        for b in begun:  # a new run's row is written: its writes are fenced from now on
            self.holds.began(b.run)

    def begun_record(self, begun: Begun) -> FlowRunRecord:
        """The first record of a run that began."""
        record = self.flow_record(begun.run, begun.state)
        record.flow_path, record.call = begun.flow_path, begun.call
        record.heartbeat, record.worker = begun.heartbeat, begun.worker
        return record

    def flow_record(
        self, flow_run: Any, state: Any, encoded: Encoded | None = None
    ) -> FlowRunRecord:
        """The flow run's record as of `state` (`encoded`: its result, when it completed)."""
        created = flow_run.states[0].timestamp if flow_run.states else state.timestamp
        if encoded is None and state.is_completed() and flow_run.persist_result is not False:
            encoded = self._encode(state.data, flow_run)
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

    def _encode(self, value: Any, run: Any) -> Encoded | None:
        try:
            return self.codec.encode(value)
        except Exception as exc:  # unpicklable: the run is recorded, its result cannot be
            self._cannot_keep(run, exc)
            return None

    def _cannot_keep(self, run: Any, exc: Exception) -> None:
        """Say (once per task or flow, in this process) that a result is not kept, what that
        means for a resume, and how to say it is meant."""
        task = getattr(run, "task_name", None)
        kind, name = ("task", task) if task is not None else ("flow", run.name)
        if (kind, name) in self._told:
            return
        self._told.add((kind, name))
        logger.warning(
            "reflow: a result of %s %s cannot be kept in the store (%s: %s): its run is kept "
            "without it, and a resume of its flow run runs the call again where the value is "
            "needed. If the %s returns what is not meant to be stored (an open connection, a "
            "handle, a value too large or too private to keep), give it @%s(persist_result="
            "False): its results are then never written, and this is not reported. Later "
            "results of %s %s that cannot be kept are not reported either",
            kind, name, type(exc).__name__, exc, kind, kind, kind, name,
        )  # fmt: skip


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
