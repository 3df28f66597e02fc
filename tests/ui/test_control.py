"""Which runs may be resumed: the one check `reflow runs resume` and the dashboard share."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from reflow.store.control import Refused, check_resumable
from reflow.store.records import FlowRunRecord


def _run(state: str, state_type: str, **extra: object) -> FlowRunRecord:
    now = time.time()
    return FlowRunRecord("r1", "crawl", state, state_type, now - 60, now, **extra)  # type: ignore[arg-type]


def test_runs_that_did_not_complete_may_be_resumed() -> None:
    for state, kind in (("Failed", "FAILED"), ("Crashed", "CRASHED"), ("Paused", "PAUSED"),
                        ("Cancelled", "CANCELLED"), ("Scheduled", "SCHEDULED")):  # fmt: skip
        check_resumable(_run(state, kind), atoms=False)


@pytest.mark.parametrize(
    ("record", "atoms", "says", "usage"),
    [
        (lambda: _run("Completed", "COMPLETED"), False, "Completed: there is nothing to resume",
         False),
        (lambda: _run("Failed", "FAILED", parent_id="p9"), False, "resume its parent, p9", True),
        (lambda: _run("Failed", "FAILED"), True, "reflow.atoms.resume('r1', flow, runs=...)",
         False),
        (lambda: _run("Running", "RUNNING", heartbeat=time.time(), worker="box:42"), False,
         "is Running (worker box:42): it runs elsewhere", False),
    ],
)  # fmt: skip
def test_the_others_are_refused_saying_why(
    record: Callable[[], FlowRunRecord], atoms: bool, says: str, usage: bool
) -> None:
    with pytest.raises(Refused) as refused:
        check_resumable(record(), atoms=atoms)
    assert says in str(refused.value)
    assert refused.value.usage is usage


def test_a_running_run_whose_heartbeat_went_stale_may_be_resumed() -> None:
    stale = _run("Running", "RUNNING", heartbeat=time.time() - 3600, worker="gone:1")
    check_resumable(stale, atoms=False)  # its resume marks it Crashed first
