"""Resuming and cancelling a kept run, as `reflow runs resume | cancel` and the dashboard
(`reflow ui`) both do it: which runs may be resumed, and what asking to cancel one does. Both
front ends call these, so a button and a command refuse the same runs with the same words.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from reflow.store.base import SQLStore
from reflow.store.claims import held
from reflow.store.records import FlowRunRecord

LIVE = ("RUNNING", "PENDING")
"""State types of a run that some process may be running now."""


class Refused(Exception):
    """The run cannot be resumed or cancelled; the message says why and what to do.
    `usage` marks a request that was wrong in itself (a subflow run), not a state."""

    def __init__(self, message: str, *, usage: bool = False) -> None:
        super().__init__(message)
        self.usage = usage


def stale(record: FlowRunRecord, now: float | None = None) -> bool:
    """Whether a live run's heartbeat is older than three heartbeats: its process died, and
    resuming it marks it Crashed first (`reflow.store.mark_crashed`)."""
    from reflow.store.persistence import heartbeat_seconds

    now = time.time() if now is None else now
    seen = record.heartbeat if record.heartbeat is not None else record.updated
    return seen < now - 3 * heartbeat_seconds()


def check_resumable(record: FlowRunRecord, *, atoms: bool, now: float | None = None) -> None:
    """Raise `Refused` unless `record` can be resumed: it did not complete, it is not a
    subflow run nor an atoms run (those resume with their flow), and it is not running in a
    live process (`reflow.store.claims.held`: one whose process is gone from this host, or
    whose heartbeat went stale, may be resumed; a stale one is marked Crashed first)."""
    if record.state_type == "COMPLETED":
        raise Refused(f"flow run {record.id} ({record.name}) Completed: there is nothing to resume")
    if record.parent_id is not None:
        raise Refused(
            f"flow run {record.id} is a subflow run: resume its parent, {record.parent_id}",
            usage=True,
        )
    if atoms:
        raise Refused(
            f"run {record.id} ({record.name}) is an atoms run: continue it with "
            f"reflow.atoms.resume({record.id!r}, flow, runs=...), given the flow it ran"
        )
    if record.state_type in LIVE and held(record, now):
        raise Refused(
            f"flow run {record.id} is {record.state} (worker {record.worker}): it runs "
            "elsewhere; cancel it first, or wait until it is marked Crashed"
        )


@dataclass(frozen=True, slots=True)
class Cancelled:
    """What asking to cancel a run did: `outcome` is "cancelled" (it was not running: now
    Cancelled) or "requested" (its process cancels it within about a second)."""

    outcome: str
    message: str


def cancel(store: SQLStore, record: FlowRunRecord, by: str) -> Cancelled:
    """Cancel a run (`store.request_cancel`): at once when no process runs it, else by a
    request its process reads. `by` says who asked (kept with the request). Raises `Refused`
    for a run that ended, or is gone."""
    outcome = store.request_cancel(record.id, time.time(), by)
    if outcome == "ended":
        raise Refused(f"flow run {record.id} already ended {record.state}: nothing to cancel")
    if outcome == "missing":
        raise Refused(f"no flow run {record.id} in {store!r}")
    if outcome == "cancelled":
        return Cancelled(
            outcome, f"flow run {record.id} ({record.name}) was {record.state}: now Cancelled"
        )
    return Cancelled(
        outcome,
        f"flow run {record.id} ({record.name}) is {record.state}: asked its process "
        f"({record.worker or 'unknown'}) to cancel it",
    )


__all__ = ["LIVE", "Cancelled", "Refused", "cancel", "check_resumable", "stale"]
