"""The operations tables on both stores: cancel requests, schedules, run look-ups; and the
scheduler that fires schedules (without sleeping: it is given the time)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from reflow.schedule import Cron, Interval
from reflow.store import FlowRunRecord, PostgresStore, SQLiteStore
from reflow.store.base import SQLStore
from reflow.store.operations import ScheduleRecord
from reflow.store.scheduler import Scheduler, schedule_of

sys.path.insert(0, str(Path(__file__).parent))
import ops_flows


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SQLStore]:
    made: SQLStore
    if request.param == "sqlite":
        made = SQLiteStore(tmp_path / "reflow.db")
    else:
        made = PostgresStore(request.getfixturevalue("postgres_url"))
    with made:
        yield made


def queued(run_id: str, state: str = "Scheduled", state_type: str = "SCHEDULED") -> FlowRunRecord:
    return FlowRunRecord(
        id=run_id, name="nightly", state=state, state_type=state_type, created=1.0, updated=1.0
    )


def test_a_queued_run_is_cancelled_at_once(store: SQLStore) -> None:
    store.write(flow_runs=[queued("a1")])
    assert store.request_cancel("a1", 5.0, "ops") == "cancelled"
    record = store.flow_run("a1")
    assert record is not None
    assert (record.state, record.error) == ("Cancelled", "cancelled by ops")
    assert [s.name for s in store.states("a1")] == ["Cancelled"]
    assert store.claim("w", 6.0) is None
    assert store.request_cancel("a1", 7.0, "ops") == "ended"
    assert store.request_cancel("nope", 7.0, "ops") == "missing"


def test_a_running_run_gets_a_request_its_process_reads(store: SQLStore) -> None:
    store.write(flow_runs=[queued("r1", "Running", "RUNNING"), queued("r2", "Running", "RUNNING")])
    assert store.request_cancel("r1", 5.0, "ops") == "requested"
    assert store.request_cancel("r1", 6.0, "ops") == "requested"  # asking twice is harmless
    assert store.flow_run("r1").state == "Running"  # type: ignore[union-attr]
    assert store.cancel_requested(["r1", "r2"]) == {"r1"}
    store.clear_cancel("r1")
    assert store.cancel_requested(["r1"]) == set()


def test_a_take_over_that_wins_forgets_only_the_cancel_requests_made_before_it(
    store: SQLStore,
) -> None:
    store.write(flow_runs=[queued("c1", "Crashed", "CRASHED"), queued("c2", "Crashed", "CRASHED")])
    before, later = store.flow_run("c1"), store.flow_run("c2")
    assert before is not None
    assert later is not None
    store.write(flow_runs=[queued("c1", "Paused", "PAUSED")])  # c1's row changed: a stale read
    with store._transaction() as cur:  # asked at 5.0 (request_cancel would end them at once)
        for run_id in ("c1", "c2"):
            cur.execute(
                "INSERT INTO reflow_cancel_requests (run_id, requested, requested_by) VALUES "
                f"({store.placeholder}, 5.0, 'ops')",
                (run_id,),
            )

    assert not store.take_over(before, "Pending", "PENDING", "w", 10.0, clear_cancel=True)
    assert store.cancel_requested(["c1"]) == {"c1"}  # the loser forgets nothing
    assert store.take_over(later, "Pending", "PENDING", "w", 4.0, clear_cancel=True)
    assert store.cancel_requested(["c2"]) == {"c2"}  # asked after the take-over's time: kept
    later = store.flow_run("c2")
    assert later is not None
    assert store.take_over(later, "Pending", "PENDING", "w2", 6.0, clear_cancel=True)
    assert store.cancel_requested(["c2"]) == set()


def test_runs_are_found_by_prefix_and_by_parent(store: SQLStore) -> None:
    child = queued("abcd02")
    child.parent_id = "abcd01"
    store.write(flow_runs=[queued("abcd01"), child, queued("abce03"), queued("a_cd04")])
    assert store.run_ids_starting("abcd") == ["abcd01", "abcd02"]
    assert store.run_ids_starting("a_") == ["a_cd04"]  # _ is not a wildcard
    assert [r.id for r in store.subflow_runs("abcd01")] == ["abcd02"]


def test_a_fire_time_moves_on_once(store: SQLStore) -> None:
    record = ScheduleRecord(
        name="nightly", flow_name="nightly", flow_path="ops_flows:nightly", kind="cron",
        expression="0 2 * * *", timezone="Europe/Paris", created=1.0, updated=1.0,
        parameters={"x": 2}, next_run=100.0,
    )  # fmt: skip
    store.save_schedule(record)
    assert store.advance_schedule("nightly", 100.0, 200.0, 100.0, 101.0)
    assert not store.advance_schedule("nightly", 100.0, 200.0, 100.0, 101.0)  # taken already
    kept = store.schedule("nightly")
    assert kept is not None
    assert (kept.next_run, kept.last_run) == (200.0, 100.0)
    assert kept.parameters == {"x": 2}
    assert schedule_of(kept) == Cron("0 2 * * *", "Europe/Paris")
    store.schedule_heartbeat("nightly", "host:1", 150.0)
    assert [(s.name, s.server) for s in store.schedules()] == [("nightly", "host:1")]


def _scheduler(path: Path, schedule: Interval | Cron, catchup: bool = False) -> Scheduler:
    return Scheduler(
        ops_flows.nightly, schedule, store=str(path), parameters={"x": 3}, catchup=catchup
    )


def test_the_scheduler_queues_a_run_at_each_fire_time(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    anchor = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    scheduler = _scheduler(path, Interval(60, datetime.fromtimestamp(anchor, UTC)))
    started = scheduler.start(now=anchor + 10)
    assert started.next_run == anchor + 60

    assert scheduler.tick(now=anchor + 59) is None
    first = scheduler.tick(now=anchor + 61)
    assert first is not None
    assert scheduler.tick(now=anchor + 62) is None
    with SQLiteStore(path) as db:
        record = db.flow_run(first)
        assert record is not None
        assert record.state == "Scheduled"
        assert record.parameters == {"x": 3}
        kept = db.schedule("nightly")
        assert kept is not None
        assert kept.last_run_id == first
        assert kept.next_run == anchor + 120
        db.request_cancel(first, time.time(), "test")  # so the next tick is not held back
    second = scheduler.tick(now=anchor + 500)  # late: one run, not a storm
    assert second is not None
    assert scheduler.tick(now=anchor + 501) is None
    with SQLiteStore(path) as db:
        assert db.schedule("nightly").next_run == anchor + 540  # type: ignore[union-attr]


def test_nothing_more_is_queued_while_the_last_run_waits(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    anchor = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    scheduler = _scheduler(path, Interval(60, datetime.fromtimestamp(anchor, UTC)))
    scheduler.start(now=anchor)
    assert scheduler.tick(now=anchor + 60) is not None
    assert scheduler.tick(now=anchor + 120) is None  # the first one has not started
    assert len(scheduler.queued) == 1


@pytest.mark.parametrize(("catchup", "expected"), [(False, 0), (True, 5)])
def test_missed_fire_times_are_replayed_only_with_catchup(
    tmp_path: Path, catchup: bool, expected: int
) -> None:
    path = tmp_path / "s.db"
    anchor = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    every = Interval(60, datetime.fromtimestamp(anchor, UTC))
    _scheduler(path, every).start(now=anchor)  # next run: anchor + 60; then it stops
    later = _scheduler(path, every, catchup=catchup)
    restarted = later.start(now=anchor + 330)  # down while 60, 120, 180, 240, 300 passed

    assert len(later.queued) == expected
    assert restarted.next_run == anchor + 360
