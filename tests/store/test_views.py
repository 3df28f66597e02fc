"""The read-only queries the dashboard pages with (`reflow.store.views`), on both stores:
runs paged and counted with filters, task runs as light rows, a page of them with their
states, log lines newest first, counts by state, results previewed without being read."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from reflow.store import (
    Encoded,
    FlowRunRecord,
    LogRecord,
    PostgresStore,
    SQLiteStore,
    StateRecord,
    TaskRunRecord,
)
from reflow.store.atom_records import AtomRunRecord
from reflow.store.base import SQLStore


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SQLStore]:
    made: SQLStore
    if request.param == "sqlite":
        made = SQLiteStore(tmp_path / "reflow.db")
    else:
        made = PostgresStore(request.getfixturevalue("postgres_url"))
    with made:
        yield made


def _flow(
    run_id: str, name: str, state: str, kind: str, at: float, **extra: object
) -> FlowRunRecord:
    return FlowRunRecord(run_id, name, state, kind, at, at + 1, **extra)  # type: ignore[arg-type]


def _task(
    i: int, state: str = "Completed", kind: str = "COMPLETED", **extra: object
) -> TaskRunRecord:
    states = [StateRecord(f"t{i}", "task", "Running", "RUNNING", 10.0 + i, "", 1),
              StateRecord(f"t{i}", "task", state, kind, 10.5 + i, "", 1)]  # fmt: skip
    return TaskRunRecord(
        f"t{i}",
        "f1",
        f"fetch-0[{i}]",
        "fetch",
        state,
        kind,
        10.0 + i,
        10.5 + i,
        states=states,
        **extra,  # type: ignore[arg-type]
    )


def test_runs_are_paged_counted_and_filtered(store: SQLStore) -> None:
    store.write(flow_runs=[
        _flow("a", "crawl", "Failed", "FAILED", 1.0),
        _flow("b", "crawl", "TimedOut", "FAILED", 2.0),
        _flow("c", "load", "Completed", "COMPLETED", 3.0, result=Encoded("json", b"[1]")),
        _flow("d", "load", "Completed", "COMPLETED", 4.0, parent_id="c"),
    ])  # fmt: skip
    assert [r.id for r in store.flow_runs_page(limit=2)] == ["d", "c"]
    assert [r.id for r in store.flow_runs_page(limit=2, offset=2)] == ["b", "a"]
    assert store.flow_runs_page(limit=1)[0].result is None  # light: no result read
    assert [r.id for r in store.flow_runs_page(state_type="FAILED")] == ["b", "a"]
    assert [r.id for r in store.flow_runs_page(state="TimedOut")] == ["b"]
    assert [r.id for r in store.flow_runs_page(name="load", roots_only=True)] == ["c"]
    assert store.count_flow_runs() == 4
    assert store.count_flow_runs(state_type="FAILED", name="crawl") == 2
    assert store.flow_names() == ["crawl", "load"]
    light = store.flow_run_light("c")
    assert light is not None
    assert (light.name, light.result, light.call) == ("load", None, None)
    assert store.flow_run_light("zz") is None
    assert store.result_preview("c") == ("json", b"[1]", 3)
    assert store.result_preview("c", limit=2) == ("json", None, 3)
    assert store.result_preview("a") == (None, None, 0)


def test_task_runs_are_read_light_and_a_page_at_a_time(store: SQLStore) -> None:
    store.write(flow_runs=[_flow("f1", "crawl", "Running", "RUNNING", 1.0)])
    tasks = [_task(i, upstream=[f"t{i - 1}"] if i else []) for i in range(5)]
    tasks[3] = _task(3, "Failed", "FAILED", error="ConnectionError: reset", attempts=3,
                     result=Encoded("json", b"1"))  # fmt: skip
    store.write(task_runs=tasks)

    rows = store.task_run_summaries("f1")
    assert [r.key for r in rows] == [f"fetch-0[{i}]" for i in range(5)]
    assert rows[1].upstream == ["t0"]
    assert (rows[3].state, rows[3].attempts, rows[3].error) == (
        "Failed",
        3,
        "ConnectionError: reset",
    )
    page = store.task_runs_by_id("f1", ["t4", "t1", "nope"])
    assert [t.key for t in page] == ["fetch-0[1]", "fetch-0[4]"]
    assert [s.name for s in page[0].states] == ["Running", "Completed"]
    assert store.task_runs_by_id("other", ["t1"]) == []
    one = store.task_run_light("t3")
    assert one is not None
    assert (one.result, one.states[-1].name) == (None, "Failed")
    assert store.result_preview("t3", task=True) == ("json", b"1", 1)
    counts = {(c.state, c.count, c.updated) for c in store.task_state_counts("f1")}
    assert counts == {("Completed", 4, 14.5), ("Failed", 1, 13.5)}


def test_logs_are_read_newest_first_by_task_and_activity_moves(store: SQLStore) -> None:
    store.write(flow_runs=[_flow("f1", "crawl", "Running", "RUNNING", 1.0)])
    before = store.activity("f1")
    store.write(logs=[LogRecord(0, "f1", "t1" if i % 2 else None, 20.0 + i, 20, "reflow.runs",
                                f"line {i}") for i in range(6)])  # fmt: skip
    last = store.logs_page("f1", limit=2)
    assert [r.message for r in last] == ["line 4", "line 5"]
    older = store.logs_page("f1", limit=2, before=last[0].seq)
    assert [r.message for r in older] == ["line 2", "line 3"]
    assert [r.message for r in store.logs_page("f1", task_run_id="t1")] == [
        "line 1", "line 3", "line 5",
    ]  # fmt: skip
    assert store.activity("f1") != before
    assert store.atoms_run_ids(["f1", "x"]) == set()
    store.write_atoms(atom_runs=[AtomRunRecord("f1", ["a"])])
    assert store.atoms_run_ids(["f1", "x"]) == {"f1"}
