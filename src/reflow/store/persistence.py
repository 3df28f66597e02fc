"""Flow runs kept in a store, and resumed from it in another process.

`persistence(persist, store)` is what the flow layer calls (through `reflow.flow.persistence`)
for a flow's `persist=`/`store=` options: a flow's runs go to its `store=`, else to the store
`REFLOW_STORE` names, else to the default SQLite store `$REFLOW_HOME/reflow.db`;
`REFLOW_STORE=memory` (or the flow's `persist=False`) keeps them in memory. Each store is
opened once per process; a forked child leaves its parent's alone and opens its own.
`resume(run_id)` runs a stored flow run again: calls completed in an earlier process return
their stored results without running.
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reflow.flow.persistence import StoredCall
from reflow.states import NOT_KEPT
from reflow.store.base import SQLStore
from reflow.store.claims import take_over
from reflow.store.fencing import RunTakenOver
from reflow.store.flow_paths import SCRIPT_MODULE as SCRIPT_MODULE
from reflow.store.flow_paths import find_flow as find_flow
from reflow.store.flow_paths import flow_path as flow_path
from reflow.store.flow_paths import load_script as load_script
from reflow.store.postgres import PostgresStore
from reflow.store.records import StateRecord
from reflow.store.results import ResultCodec, load_or_create_key, reflow_home
from reflow.store.sql import StoreError
from reflow.store.sqlite import SQLiteStore
from reflow.store.writer import Begun, Recorder

if TYPE_CHECKING:
    from reflow.store.cache import StoreCache

_lock = threading.Lock()
logger = logging.getLogger("reflow.store")
_kept: dict[Any, StorePersistence] = {}


class StorePersistence:
    """Keeps flow runs in one store (one per store, shared by every run that uses it)."""

    idle_exit = 5.0
    """Seconds the heartbeat thread stays once no run of this process is running (a program
    calling a small flow in a loop keeps it; a quiet one does not keep a thread)."""

    def __init__(self, store: SQLStore, codec: ResultCodec) -> None:
        self.store = store
        self.codec = codec
        self.recorder = Recorder(store, codec)
        self._completed: dict[str, dict[str, Any]] = {}
        self._paused: dict[str, set[str]] = {}  # flow run id -> keys of calls left Paused
        self._tries: dict[str, dict[str, list[Any]]] = {}  # resumed run -> recorded histories
        self._alive: set[str] = set()  # root runs of this process that are running
        self._runs: dict[str, Any] = {}  # every running run of this process (cancel requests)
        self._reopened: set[str] = set()  # runs taken from the store, about to begin
        self._beating: threading.Thread | None = None
        self._closed = False  # at exit: the heartbeat thread stops
        self.cache: StoreCache | None = None
        """The task cache kept in this store (made when tasks first use it)."""
        self.recorder.holds.on_lost.append(self._lost)

    def begin(self, flow_run: Any) -> None:
        parent = flow_run.parent_id
        if parent is None:
            self._keep_alive(flow_run.id)
        args, kwargs = flow_run.call
        try:  # JSON when the arguments are (a list, unlike a tuple, comes back as it went)
            call: Any = self.codec.encode([list(args), kwargs])
        except Exception:
            call = None  # recorded, but it cannot be resumed in another process
        path, now = flow_path(flow_run.flow), time.time()
        before = [] if self.recorder.tracks(flow_run.id) else list(flow_run.states)
        states = [
            StateRecord(flow_run.id, "flow", s.name, s.type.name, s.timestamp, s.message, s.attempt)
            for s in before
        ]  # the states from before it was tracked
        root = self.recorder.root_of(parent) if parent is not None else None
        self.recorder.track(flow_run.id, root)
        self._runs[flow_run.id] = flow_run
        # A new run (a fresh id, never run before) is written with its first batch, and has
        # nothing to look up. A run with a key is written now: the key's uniqueness is what
        # keeps a second process from running it too. A run from the store is looked up.
        reopened = flow_run.id in self._reopened
        self._reopened.discard(flow_run.id)
        begun = Begun(flow_run, flow_run.state, path, call, now, WORKER, states)
        if not reopened and flow_run.attempts == 0 and flow_run.run_key is None:
            self.recorder.begin(begun)
            return
        record = self.recorder.begun_record(begun)
        self.recorder.flush()  # what was published before goes first
        holds = self.recorder.holds
        lost = self.store.write(
            flow_runs=[record],
            states=states,
            fences=holds.fences(self.recorder._tracked, [flow_run.id]),  # a resumed run's
        )
        if lost:  # taken over between its take-over here and now
            holds.lose(lost)
        elif parent is None:
            holds.began(flow_run)  # a new run with a key: its writes are fenced from now on
        stored = self.store.task_runs(flow_run.id)
        self._completed[flow_run.id] = {r.key: r for r in stored if r.state_type == "COMPLETED"}
        self._paused[flow_run.id] = {r.key for r in stored if r.state_type == "PAUSED"}
        if parent is None and self.store.cancel_requested([flow_run.id]):
            flow_run.cancel()  # asked before it started (a queued run claimed meanwhile)
        if (root or flow_run.id) in holds.lost:
            flow_run.cancel()  # taken over already: it ends at once, with RunTakenOver

    def paused(self, flow_run_id: str, key: str) -> bool:
        return key in self._paused.get(flow_run_id, ())

    def completed(self, flow_run_id: str, key: str) -> StoredCall | None:
        record = self._completed.get(flow_run_id, {}).get(key)
        if record is None:
            return None
        encoded = record.result  # None: not kept (persist_result=False, or not storable)
        result = NOT_KEPT if encoded is None else self.codec.decode(encoded)
        return StoredCall(record.id, result, record.attempts, record.state)

    def by_run_key(self, run_key: str) -> tuple[str, str, Any, str | None] | None:
        record = self.store.flow_run_by_key(run_key)
        if record is None:
            return None
        if record.result is not None:
            result = self.codec.decode(record.result)
        else:  # a completed run's result that was not kept
            result = NOT_KEPT if record.state_type == "COMPLETED" else None
        return record.id, record.state, result, record.error

    def keep_tries(self, flow_run_id: str, controller: str, tries: list[Any]) -> None:
        from reflow.store.histories import history_record

        record = history_record(self.codec, flow_run_id, controller, tries)
        holds = self.recorder.holds
        try:
            lost = self.store.write_atoms(
                histories=[record], fences=holds.fences(self.recorder._tracked, [flow_run_id])
            )
            if lost:
                holds.lose(lost)
        except Exception as exc:  # never silent: logged, and the run's end raises StoreError
            logger.exception("reflow: writing the retry history of flow run %s failed", flow_run_id)
            self.recorder.errors.append(exc)
            self.recorder._failed.setdefault(self.recorder.root_of(flow_run_id) or flow_run_id, exc)

    def tries(self, flow_run_id: str, controller: str) -> list[Any]:
        return self._tries.pop(flow_run_id, {}).get(controller, [])

    def resume(self, run_id: str, flow: Any = None, *, clear_cancel: bool = False) -> Any:
        """Run the stored run again here (see `resume`); `clear_cancel`: a resume asked for
        on purpose forgets the cancel request made before it took the run over."""
        self.recorder.flush()  # a run of this process may not be written yet: it is now
        record = self.store.flow_run(run_id)
        if record is None:
            raise LookupError(f"no flow run {run_id!r} in {self.store!r}")
        if record.flow_path is None and self.store.atom_run(run_id) is not None:
            raise StoreError(
                f"run {run_id} ({record.name}) is an atoms run: continue it with "
                f"reflow.atoms.resume({run_id!r}, flow, runs=...), given the flow it ran"
            )
        if record.flow_path is None or record.call is None:
            raise StoreError(
                f"flow run {run_id} ({record.name}) cannot be resumed here: its flow or its "
                "arguments were not recorded (an unpicklable argument?)"
            )
        if flow is None:
            flow = find_flow(record.flow_path)
        elif flow.name != record.name:
            raise ValueError(
                f"flow run {run_id} is a run of {record.name!r}, not of {flow.name!r}: "
                "resume it with its own flow, or with reflow.resume(run_id)"
            )
        args, kwargs = self.codec.decode(record.call)
        take_over(self, record, "Pending", "flow run", clear_cancel=clear_cancel)  # or RunHeld
        if getattr(flow, "retry", None) is not None and record.state_type != "FAILED":
            self._tries[run_id] = self._recorded_tries(run_id)  # a failed run's start afresh
        self._reopened.add(run_id)  # its begin looks up what it did before
        return flow._resume_stored(run_id, tuple(args), dict(kwargs), self, record.run_key)

    def _recorded_tries(self, run_id: str) -> dict[str, list[Any]]:
        """The run's controllers' histories, as tries, by controller name."""
        from reflow.store.histories import tries_of

        return {h.controller: tries_of(self.codec, h) for h in self.store.retry_histories(run_id)}

    def _keep_alive(self, run_id: str) -> None:
        """Beat for this run until it ends, so other processes can tell it is not dead."""
        self._alive.add(run_id)
        if self._beating is None:
            with _lock:
                if self._beating is None:
                    self._beating = threading.Thread(
                        target=self._beat, name="reflow-heartbeat", daemon=True
                    )
                    self._beating.start()

    def _beat(self) -> None:
        """Beat every `heartbeat_seconds`; in between, about every second, read the cancel
        requests of the runs still alive and cancel them here, where they run. Ends once no
        run was alive for `idle_exit` seconds (`_keep_alive` starts another)."""
        next_beat = time.monotonic() + heartbeat_seconds()
        idle_since: float | None = None
        while True:
            time.sleep(max(0.0, min(1.0, next_beat - time.monotonic())))
            if self._closed:
                return
            alive = list(self._alive)
            if not alive:
                now = time.monotonic()
                next_beat = now + heartbeat_seconds()  # a run that begins wrote its own
                idle_since = now if idle_since is None else idle_since
                if now - idle_since >= self.idle_exit:
                    with _lock:
                        if not self._alive:
                            self._beating = None
                            return
                continue
            idle_since = None
            try:
                self._cancel_requested(alive)
                if time.monotonic() >= next_beat:
                    next_beat = time.monotonic() + heartbeat_seconds()
                    holds = self.recorder.holds
                    fences = holds.fences({}, alive)
                    lost = self.store.heartbeat(alive, time.time(), WORKER, fences=fences)
                    if lost:  # taken over by another process: this one stops it
                        holds.lose(lost)
            except Exception:  # logged; the next beat tries again
                logger.exception("reflow: writing the heartbeat of %d run(s) failed", len(alive))

    def _cancel_requested(self, alive: list[str]) -> None:
        for run_id in self.store.cancel_requested(alive):
            for flow_run in list(self._runs.values()):
                if flow_run.id == run_id or self.recorder.root_of(flow_run.id) == run_id:
                    if not flow_run.cancel_requested:
                        logger.info("reflow: flow run %s is cancelled (asked in the store)", run_id)
                    flow_run.cancel()

    def _lost(self, root_id: str) -> None:
        """Another process took the run over: stop it here (its tasks not started yet are
        cancelled); its call raises `RunTakenOver` when it ends."""
        self._alive.discard(root_id)
        for flow_run in list(self._runs.values()):
            if flow_run.id == root_id or self.recorder.root_of(flow_run.id) == root_id:
                flow_run.cancel()

    def end(self, flow_run: Any) -> None:
        self._alive.discard(flow_run.id)
        self._runs.pop(flow_run.id, None)
        if flow_run.parent_id is None:
            failed = self.recorder.release(flow_run.id)  # flushed: committed before returning
        else:
            self.recorder.flush()
            failed = None
        if not flow_run.state.is_paused():
            self._completed.pop(flow_run.id, None)
            self._paused.pop(flow_run.id, None)
        if isinstance(failed, RunTakenOver):
            raise failed
        if failed is not None:
            raise StoreError(
                f"flow run {flow_run.id} ({flow_run.name}) ended {flow_run.state.name}, but "
                f"writing its records to {self.store!r} failed ({type(failed).__name__}: "
                f"{failed}): the store does not hold all of it, so it cannot be resumed "
                "from there"
            ) from failed


WORKER = f"{socket.gethostname()}:{os.getpid()}"
"""Who runs a run: this host and process (after a fork, see `_refresh_worker`)."""


def _refresh_worker() -> None:
    global WORKER
    WORKER = f"{socket.gethostname()}:{os.getpid()}"


os.register_at_fork(after_in_child=_refresh_worker)


def heartbeat_seconds() -> float:
    """How often a running flow run says it is alive: `REFLOW_HEARTBEAT_SECONDS` (10)."""
    from reflow.settings import settings

    return settings().heartbeat_seconds


def mark_crashed(store: Any = None, stale_after: float | None = None) -> list[str]:
    """Mark the runs whose heartbeat is older than `stale_after` seconds (default: three
    heartbeats) as Crashed, fire their flows' `on_crashed` hooks, and return their ids.

    Each crash is reported once, whichever process looks. A crashed run can be resumed.
    """
    kept = persistence(True, store)
    assert kept is not None
    now = time.time()
    limit = 3 * heartbeat_seconds() if stale_after is None else stale_after
    crashed = []
    for record in kept.store.stale_runs(now - limit):
        seen = record.heartbeat or record.updated
        message = f"no heartbeat from {record.worker or 'its process'} for {now - seen:.0f} s"
        if kept.store.mark_crashed(record.id, now, message):
            crashed.append(record.id)
            _fire_on_crashed(record, message)
    return crashed


def _fire_on_crashed(record: Any, message: str) -> None:
    from reflow.flow.run import FlowRun
    from reflow.states import new_state

    try:
        flow = find_flow(record.flow_path) if record.flow_path else None
    except Exception:
        logger.warning(
            "reflow: flow run %s crashed; its flow %s cannot be imported here, so its "
            "on_crashed hooks were not called", record.id, record.flow_path,
        )  # fmt: skip
        return
    if flow is None:
        return
    flow_run = FlowRun(flow, run_id=record.id)
    flow_run.parameters = dict(record.parameters)
    state = new_state("Crashed", message=message)
    flow_run.states.append(state)
    flow._finish_hooks(flow_run, state)


def _close_all() -> None:
    """At exit: write what is pending, then close the stores (connections, files)."""
    global _default
    with _lock:
        kept = list(_kept.values())
        _kept.clear()
        _default = None
    for each in kept:
        each._closed = True
        try:
            each.recorder.close()
            each.store.close()
        except Exception:
            logger.exception("reflow: closing the store %r at exit failed", each.store)


atexit.register(_close_all)

_inherited: list[StorePersistence] = []
"""The stores a forked child inherited from its parent: never used, written or closed there
(an SQLite connection or a PostgreSQL socket used by two processes is corrupted), and kept
referenced so the collector does not close them either."""


def _forget_after_fork() -> None:
    """In a forked child: the parent's stores, connections and threads stay the parent's. The
    child opens its own when one of its flows is kept (and then writes its own runs only)."""
    global _lock, _default
    _lock = threading.Lock()  # another thread of the parent may have held it at the fork
    _inherited.extend(_kept.values())
    for each in _kept.values():
        each.recorder.disown()
    _kept.clear()
    _default = None


os.register_at_fork(after_in_child=_forget_after_fork)


def open_store(url: str | Path | None = None) -> SQLStore:
    """A store from a URL: `postgresql://...`, `sqlite:///path`, a path, or None (default)."""
    if url is None:
        return SQLiteStore()
    text = str(url)
    if text.startswith(("postgresql://", "postgres://")):
        return PostgresStore(text)
    if text.startswith("sqlite:///"):
        return SQLiteStore(text.removeprefix("sqlite:///"))
    if "://" in text:
        raise StoreError(
            f"unknown store {text!r}: use postgresql://..., sqlite:///path, or a file path"
        )
    return SQLiteStore(text)


_default: tuple[Any, StorePersistence] | None = None
"""The default store's persistence, with the settings object it was found for: a flow call
that finds the same settings (nothing changed) takes it without looking further."""


def persistence(persist: bool | None, store: Any) -> StorePersistence | None:
    """The flow layer's factory: how a flow with these options is kept (None: memory).

    With no `store`, runs go to `REFLOW_STORE` (`memory`: None), else to the default SQLite
    store, `$REFLOW_HOME/reflow.db`. Each store is opened once per process (and path): every
    flow that uses it shares it, with its writer and heartbeat threads.
    """
    global _default
    if store is not None:
        return _open_kept(store)
    from reflow.settings import settings

    current = settings()
    found = _default
    if found is not None and found[0] is current:
        return found[1]
    if current.store == "memory":
        return None
    kept = _open_kept(current.store or None)
    _default = (current, kept)
    return kept


def _open_kept(store: Any) -> StorePersistence:
    """The persistence of this store (a URL, path, store object, or None: the default), made
    the first time the process asks for it."""
    key = _store_key(store)
    with _lock:
        kept = _kept.get(key)
        if kept is None:
            opened = store if isinstance(store, SQLStore) else open_store(store)
            kept = _kept[key] = StorePersistence(opened, ResultCodec(load_or_create_key()))
        return kept


def _store_key(store: Any) -> Any:
    """What names a store in this process: SQLite files by their absolute path (the default
    store's depends on REFLOW_HOME now), servers by their URL, store objects by identity."""
    if isinstance(store, SQLStore):
        return id(store)
    if store is None:
        return ("sqlite", os.path.abspath(reflow_home() / "reflow.db"))
    text = str(store)
    if text.startswith(("postgresql://", "postgres://")) or "://" in text.removeprefix(
        "sqlite:///"
    ):
        return text
    return ("sqlite", os.path.abspath(text.removeprefix("sqlite:///")))


def resume(run_id: str, store: Any = None) -> Any:
    """Run a stored flow run again to its end (from any process); returns its final state.

    Task calls that completed before return their stored results without running; the rest
    run. The flow is found by the path recorded with the run (its module must be importable).
    A run that another live process is running is refused with `RunHeld` (nothing runs).
    """
    kept = persistence(True, store)
    assert kept is not None
    outcome = kept.resume(run_id)
    if hasattr(outcome, "__await__"):  # an async flow: await resume() to run it
        return _state_after(outcome)
    return outcome.state


async def _state_after(flow_run: Any) -> Any:
    return (await flow_run).state
