"""No two processes carry on the same run at once.

Resuming a kept run (`reflow.resume`, `reflow.atoms.resume`, a `run_key=` that finds an
unfinished run) first takes the run over: one compare-and-set statement makes this process
its holder, provided the row is as it was read and no live process holds it. A process holds a
run while the run is Pending or Running and the process is alive, as far as can be told from
here:

- this process: while it runs the run (its heartbeat thread beats for it);
- another process on this host: while a process of that pid exists;
- a process elsewhere: while its heartbeat is fresh (younger than three heartbeats).

A run that is Crashed, Paused, Failed, Cancelled or queued has no holder. Of two processes
taking over the same run at the same moment, the compare-and-set lets exactly one through;
the other gets `RunHeld`, as does one that finds a live holder. Nothing of the run runs
before it is taken over.

A process can be alive and still look dead from elsewhere (stopped, suspended, cut off from
the database for longer than three heartbeats): then its run may be taken over. The take-over
moves the run's epoch on, and the earlier holder's writes, fenced by the epoch it held the run
under, stop at once (`reflow.store.fencing`: it ends the run with `RunTakenOver`).
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from reflow.store.records import FlowRunRecord
from reflow.store.sql import StoreConflict

_LIVE = ("RUNNING", "PENDING")


class RunHeld(StoreConflict):
    """The run is being run by another live process, so it was not taken over (nothing of it
    ran here). `run_id` and `worker` (`host:pid`) say which run, and who holds it."""

    def __init__(self, message: str, run_id: str, worker: str | None) -> None:
        super().__init__(message)
        self.run_id = run_id
        self.worker = worker


def take_over(
    kept: Any, record: FlowRunRecord, state: str, kind: str, *, clear_cancel: bool = False
) -> int:
    """Make this process the holder of the run `record` read (now in `state`, "Running" or
    "Pending") and return the run's new epoch, which its writes are fenced by from now on
    (`reflow.store.fencing`); `RunHeld` when a live process holds it, or another took it over
    first.

    `kept` is the run's `StorePersistence`; `kind` names the run in messages ("flow run").
    `clear_cancel`: the take-over also forgets a cancel request made before it (a resume
    asked for on purpose, `reflow runs resume`); a take-over that loses forgets nothing.
    """
    from reflow.store import persistence

    now = time.time()
    stale_after = 3 * persistence.heartbeat_seconds()
    if _held(record, now, stale_after):
        raise _refusal(record, kind, now, stale_after)
    state_type = "RUNNING" if state == "Running" else "PENDING"
    epoch = kept.store.take_over(
        record, state, state_type, persistence.WORKER, now, clear_cancel=clear_cancel
    )
    if epoch is not None:
        kept.recorder.holds.hold(record.id, epoch, f"{kind} {record.id} ({record.name})")
        return int(epoch)
    current = kept.store.flow_run(record.id) or record
    raise _refusal(current, kind, now, stale_after, first=True)


def held(record: FlowRunRecord, now: float | None = None) -> bool:
    """Whether a live process holds the run, as far as this process can tell (at `now`)."""
    from reflow.store import persistence

    at = time.time() if now is None else now
    return _held(record, at, 3 * persistence.heartbeat_seconds())


def _held(record: FlowRunRecord, now: float, stale_after: float) -> bool:
    """Whether a live process holds the run (see the module's documentation)."""
    from reflow.store import persistence

    if record.state_type not in _LIVE or not record.worker:
        return False
    if record.worker == persistence.WORKER:
        return running_here(record.id)
    host, _, pid = record.worker.rpartition(":")
    if host == socket.gethostname() and pid.isdigit() and not _exists(int(pid)):
        return False
    seen = record.heartbeat if record.heartbeat is not None else record.updated
    return now - seen < stale_after


def running_here(run_id: str) -> bool:
    """Whether this process runs the run now (through any of its stores' persistences)."""
    from reflow.store import persistence

    with persistence._lock:
        kept = list(persistence._kept.values())
    return any(run_id in each._alive for each in kept)


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's: it exists
        return True
    return True


def _refusal(
    record: FlowRunRecord, kind: str, now: float, stale_after: float, first: bool = False
) -> RunHeld:
    seen = record.heartbeat if record.heartbeat is not None else record.updated
    who = record.worker or "another process"
    how = "took it over a moment before this process" if first else "runs it"
    return RunHeld(
        f"{kind} {record.id} ({record.name}) is {record.state}: {who} {how} (its last "
        f"heartbeat {max(0.0, now - seen):.0f} s ago), and a run is carried on by one process "
        "at a time. Wait for it to end; if that process is dead, resume the run here once it "
        f"is gone (on this host) or its heartbeat is older than {stale_after:.0f} s (three "
        "REFLOW_HEARTBEAT_SECONDS)",
        record.id,
        record.worker,
    )


__all__ = ["RunHeld", "held", "running_here", "take_over"]
