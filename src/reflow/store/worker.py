"""Queued runs and the workers that run them.

`submit_run(flow, ...)` puts a run in the store's queue (state Scheduled) and returns its id.
`run_worker(store)` takes queued runs one at a time and runs them to their end; any number of
worker processes can share a store (PostgreSQL for several machines): a run is taken by one
worker only. A worker also marks runs whose heartbeat went stale as Crashed and takes those
too, so a run whose worker was killed is resumed by another, without redoing finished calls.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from reflow.secrets import redact
from reflow.store import persistence as _persistence
from reflow.store.persistence import (
    flow_path,
    heartbeat_seconds,
    mark_crashed,
    persistence,
)
from reflow.store.records import FlowRunRecord, StateRecord
from reflow.store.sql import StoreError

logger = logging.getLogger("reflow.worker")


def submit_run(flow: Any, *args: Any, store: Any = None, **kwargs: Any) -> str:
    """Queue a run of `flow` with these arguments; a worker will run it. Returns its id."""
    from reflow._ids import new_id

    kept = persistence(True, store if store is not None else getattr(flow, "store", None))
    if kept is None:
        raise StoreError("submit_run() needs a store: REFLOW_STORE is 'memory'")
    bound = flow._parameters.bind(args, kwargs) if flow.validate_parameters else None
    if bound is None:
        bound = flow._parameters.signature.bind(*args, **kwargs)
        bound.apply_defaults()
    now = time.time()
    run_id = new_id()
    record = FlowRunRecord(
        id=run_id, name=flow.name, state="Scheduled", state_type="SCHEDULED", created=now,
        updated=now, version=flow.version,
        parameters=redact(bound.arguments, flow._parameters.signature),
        flow_path=flow_path(flow), call=kept.codec.encode((bound.args, bound.kwargs)),
    )  # fmt: skip
    state = StateRecord(run_id, "flow", "Scheduled", "SCHEDULED", now, "queued")
    kept.store.write(flow_runs=[record], states=[state])
    return run_id


def run_worker(
    store: Any = None,
    *,
    max_runs: int | None = None,
    idle_exit: float | None = None,
    poll: float = 0.2,
    stale_after: float | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Run queued runs until `max_runs` ran, nothing came for `idle_exit` seconds (None:
    forever), or `stop` is set (checked between runs). Returns how many runs it ran."""
    kept = persistence(True, store)
    if kept is None:
        raise StoreError("run_worker() needs a store: REFLOW_STORE is 'memory'")
    ran, idle_since = 0, time.monotonic()
    next_check = 0.0
    while (max_runs is None or ran < max_runs) and not (stop is not None and stop.is_set()):
        if time.monotonic() >= next_check:
            mark_crashed(store, stale_after)
            next_check = time.monotonic() + heartbeat_seconds()
        record = kept.store.claim(_persistence.WORKER, time.time())
        if record is None:
            if idle_exit is not None and time.monotonic() - idle_since >= idle_exit:
                break
            if stop is not None:
                stop.wait(poll)
            else:
                time.sleep(poll)
            continue
        logger.info("reflow: worker %s runs %s (%s)", _persistence.WORKER, record.id, record.name)
        try:
            kept.resume(record.id)
        except Exception:  # the run's own failure is in its state; this is the worker's
            logger.exception("reflow: worker %s could not run %s", _persistence.WORKER, record.id)
        ran += 1
        idle_since = time.monotonic()
    return ran
