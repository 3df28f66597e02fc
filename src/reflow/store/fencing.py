"""Fencing: a process that lost its run writes nothing more of it.

A run's row carries an `epoch`, which every take-over changes (`SQLStore.take_over`, a
worker's `claim`, and a cancel that ends a run at once). The process holding a run knows the
epoch it holds it under (`Holds`). Each write it makes of the run's rows (its writer's
batches, its heartbeats, an atoms run's start and end, a controller's history) first locks the
run's row under that epoch, in the write's own transaction (`SQLStore._fence`): if the epoch
moved on, another process took the run over, so the run's rows are left out of the write
(never overwriting the new holder's) and the run is lost here. This process then stops it (a
flow run is cancelled here, an atoms run stops at its next state change), and the call that
ran it raises `RunTakenOver`, naming who holds it now.

That covers a process whose heartbeat went stale while it was alive (stopped, suspended, a
long pause, cut off from its database) and whose run was resumed elsewhere meanwhile.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

from reflow.store.sql import StoreConflict

logger = logging.getLogger("reflow.store")

Fence = tuple[str, int]
"""What a write of a run's rows is fenced by: (its root run's id, the epoch it is held under)."""


class FencedOff(NamedTuple):
    """A run's row as a fenced write found it, under another epoch (None: deleted)."""

    worker: str | None
    state: str | None
    epoch: int | None


class RunTakenOver(StoreConflict):
    """This process ran the run, but another took it over meanwhile (its heartbeat here had
    gone stale): nothing this process did after the take-over is in the store, and the run is
    the other's now. `run_id` and `worker` (`host:pid`) say which run, and who holds it."""

    def __init__(self, message: str, run_id: str, worker: str | None) -> None:
        super().__init__(message)
        self.run_id = run_id
        self.worker = worker


class Holds:
    """The root runs this process holds, each under its epoch, and those it lost."""

    def __init__(self) -> None:
        self._epochs: dict[str, int] = {}
        self._labels: dict[str, str] = {}
        self._lock = threading.Lock()
        self.lost: dict[str, RunTakenOver] = {}
        """Root run id -> the error its call raises: the runs taken over from this process."""
        self.on_lost: list[Callable[[str], None]] = []
        """Called with each root run lost, in the thread that found out (stop it there)."""

    def hold(self, root: str, epoch: int, label: str) -> None:
        """This process holds `root` under `epoch` (`label` names it: "flow run ID (name)")."""
        with self._lock:
            self._epochs[root] = epoch
            self._labels[root] = label
            self.lost.pop(root, None)

    def holds(self, root: str) -> bool:
        return root in self._epochs

    def began(self, flow_run: Any) -> None:
        """A flow run's first row is written: a new root run (not held yet) is held from now
        on, at the epoch a row starts with (a run taken over is held already, at its own)."""
        if flow_run.parent_id is None and flow_run.id not in self._epochs:
            self.hold(flow_run.id, 0, f"flow run {flow_run.id} ({flow_run.name})")

    def fences(self, root_of: Mapping[str, str], *ids: Iterable[str]) -> dict[str, Fence]:
        """The fence of each run id given (its root's, via `root_of`) that is held here."""
        epochs = self._epochs
        if not epochs:
            return {}
        found: dict[str, Fence] = {}
        for group in ids:
            for run_id in group:
                if run_id in found:
                    continue
                root = root_of.get(run_id, run_id)
                epoch = epochs.get(root)
                if epoch is not None:
                    found[run_id] = (root, epoch)
        return found

    def fence(self, root: str) -> dict[str, Fence]:
        """The fence of a root run's own rows (none when it is not held here)."""
        epoch = self._epochs.get(root)
        return {} if epoch is None else {root: (root, epoch)}

    def lose(self, lost: Mapping[str, FencedOff]) -> None:
        """These roots were found under another epoch: each is lost here, once (logged, and
        `on_lost` told)."""
        from reflow.store.persistence import WORKER

        for root, now in lost.items():
            with self._lock:
                if root in self.lost or root not in self._epochs:
                    continue
                label = self._labels.get(root, f"run {root}")
                self.lost[root] = error = taken_over(label, root, now, WORKER)
            logger.error("reflow: %s", error)
            for callback in self.on_lost:
                callback(root)

    def release(self, root: str) -> RunTakenOver | None:
        """Stop holding `root` (its run ended here); the error of its loss, if it was lost."""
        with self._lock:
            self._epochs.pop(root, None)
            self._labels.pop(root, None)
            return self.lost.pop(root, None)


def taken_over(label: str, run_id: str, now: FencedOff, here: str) -> RunTakenOver:
    """The error of a run found under another epoch than the one this process holds it by."""
    if now.state is None:
        what = "was deleted from the store"
    elif now.worker and now.worker != here:
        what = f"was taken over by {now.worker} (it is {now.state} there)"
    else:
        what = f"was changed by another process (it is {now.state} now)"
    return RunTakenOver(
        f"{label} {what} while this process ({here}) ran it: its heartbeat had gone stale "
        "here (the process stopped, suspended, paused or cut off from the store for longer "
        "than three heartbeats). This process stopped writing it at once, so nothing it did "
        "since is in the store, and the run is not this process's any more",
        run_id,
        now.worker,
    )


__all__ = ["Fence", "FencedOff", "Holds", "RunTakenOver", "taken_over"]
