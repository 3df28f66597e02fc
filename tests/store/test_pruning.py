"""Deleting old runs (`store.delete_runs`) and collecting orphaned result files
(`store.collect_result_files`), on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reflow import Pause, flow, task
from reflow.atoms import FunctorTask, LinearFlow, Times, run
from reflow.store import Encoded, FlowRunRecord, PostgresStore, SQLiteStore, SQLStore
from reflow.store.claims import take_over
from reflow.store.persistence import persistence
from reflow.store.pruning import Pruning

DAY = 86_400.0
BIG = "x" * 200  # past the tests' inline_limit: kept in a file


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("REFLOW_STORE", raising=False)


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SQLStore]:
    """A store that keeps results of more than 64 bytes in files."""
    if request.param == "sqlite":
        opened: SQLStore = SQLiteStore(tmp_path / "runs.db", inline_limit=64)
    else:
        url = request.getfixturevalue("postgres_url")
        opened = PostgresStore(url, results_dir=tmp_path / "results", inline_limit=64)
    with opened:
        yield opened


def age(store: SQLStore, run_id: str, days: float) -> None:
    """Make the run look `days` older than it is."""
    p = store.placeholder
    with store._transaction() as cur:
        cur.execute(
            f"UPDATE reflow_flow_runs SET updated = updated - {p}, created = created - {p} "
            f"WHERE id = {p}",
            (days * DAY, days * DAY, run_id),
        )


def count(store: SQLStore, table: str, column: str, run_id: str) -> int:
    rows = store._query(
        f"SELECT COUNT(*) FROM {table} WHERE {column} = {store.placeholder}", (run_id,)
    )
    return int(rows[0][0])


def kept_of(store: SQLStore, run_id: str) -> dict[str, int]:
    """How many rows of each kind the store keeps of a run."""
    return {
        "run": count(store, "reflow_flow_runs", "id", run_id),
        "tasks": count(store, "reflow_task_runs", "flow_run_id", run_id),
        "states": count(store, "reflow_states", "run_id", run_id),
        "logs": count(store, "reflow_logs", "flow_run_id", run_id),
        "subflows": count(store, "reflow_flow_runs", "parent_id", run_id),
        "atoms": count(store, "reflow_atoms", "run_id", run_id),
        "histories": count(store, "reflow_retry_histories", "run_id", run_id),
    }


def report_flow(store: SQLStore) -> Any:
    @task
    def summarise(n: int) -> str:
        from reflow import get_run_logger

        get_run_logger().info("summarising %d", n)
        return BIG + str(n)

    @flow(store=store)
    def part(n: int) -> str:
        return summarise(n)

    @flow(store=store)
    def report(n: int) -> str:
        return part(n) + summarise(n)

    return report


# --- delete_runs -------------------------------------------------------------------------------


def test_old_runs_are_deleted_with_all_that_is_kept_of_them(store: SQLStore) -> None:
    report = report_flow(store)
    old, new = report.run(1), report.run(2)
    (sub,) = store.subflow_runs(old.id)
    age(store, old.id, days=40)
    before = kept_of(store, old.id)
    assert all(before[kind] > 0 for kind in ("run", "tasks", "states", "logs", "subflows"))

    deleted = store.delete_runs(older_than=30 * DAY)

    assert deleted == [old.id, sub.id]
    assert set(kept_of(store, old.id).values()) == {0}
    assert set(kept_of(store, sub.id).values()) == {0}
    assert kept_of(store, new.id) == kept_of(store, new.id) | {"run": 1, "subflows": 1}
    assert store.flow_run(new.id) is not None


def test_an_atoms_run_is_deleted_with_its_atoms_and_histories(store: SQLStore) -> None:
    tries = iter([TimeoutError("slow"), None])

    def call() -> str:
        error = next(tries)
        if error is not None:
            raise error
        return "done"

    flow_ = LinearFlow("fetch", retry=Times(2, name="twice"))
    run(flow_.add(FunctorTask(call, name="call")), runs=store, run_id="a1")
    assert kept_of(store, "a1")["histories"] == 2

    assert store.delete_runs(older_than=0) == ["a1"]

    assert set(kept_of(store, "a1").values()) == {0}
    assert store.atom_run("a1") is None


def test_a_dry_run_says_what_would_go_and_deletes_nothing(store: SQLStore) -> None:
    report = report_flow(store)
    flow_run = report.run(1)
    (sub,) = store.subflow_runs(flow_run.id)

    assert store.delete_runs(older_than=0, dry_run=True) == [flow_run.id, sub.id]

    assert store.flow_run(flow_run.id) is not None
    assert kept_of(store, flow_run.id)["tasks"] == 1


def test_only_runs_that_ended_are_deleted_unless_other_states_are_asked(store: SQLStore) -> None:
    now = time.time()
    for run_id, state, state_type in (
        ("done", "Completed", "COMPLETED"), ("failed", "Failed", "FAILED"),
        ("crashed", "Crashed", "CRASHED"), ("paused", "Paused", "PAUSED"),
        ("queued", "Scheduled", "SCHEDULED"),
    ):  # fmt: skip
        store.write(flow_runs=[FlowRunRecord(run_id, "job", state, state_type, now, now)])

    assert store.delete_runs(states=["Failed"]) == ["failed"]
    assert store.delete_runs() == ["done"]
    assert store.delete_runs(states=["CRASHED", "Paused"]) == ["crashed", "paused"]
    assert [r.id for r in store.flow_runs()] == ["queued"]


def test_a_running_run_is_never_deleted(store: SQLStore) -> None:
    now = time.time() - 100 * DAY
    store.write(flow_runs=[FlowRunRecord("busy", "job", "Running", "RUNNING", now, now)])

    with pytest.raises(ValueError, match="Pending or Running are never deleted"):
        store.delete_runs(states=["Running"])
    with pytest.raises(ValueError, match="never deleted"):
        store.delete_runs(states=["PENDING"])
    assert store.delete_runs(states=["Completed", "Failed", "Crashed"]) == []
    assert store.flow_run("busy") is not None


def test_a_run_resumed_while_it_was_being_chosen_stays(
    store: SQLStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chosen as Paused, taken over by a resume before the delete: the delete leaves it."""
    pauses = iter([True])

    @task
    def gate() -> str:
        if next(pauses, False):
            raise Pause("hold")
        return "through"

    @flow(store=store)
    def held() -> str:
        return gate()

    flow_run = held.run()
    kept = persistence(True, store)
    delete_chunk = Pruning._delete_chunk

    def resumed_meanwhile(self: Pruning, roots: list[str]) -> list[str]:
        record = store.flow_run(flow_run.id)
        assert record is not None
        take_over(kept, record, "Pending", "flow run")  # as reflow.resume does
        return delete_chunk(self, roots)

    monkeypatch.setattr(Pruning, "_delete_chunk", resumed_meanwhile)

    assert store.delete_runs(states=["Paused"]) == []
    record = store.flow_run(flow_run.id)
    assert record is not None
    assert record.state == "Pending"


def test_expired_cache_entries_are_deleted(store: SQLStore) -> None:
    now = time.time()
    store.cache_put("old", "fetch", now - 10, now - 1, Encoded("json", b"1"))
    store.cache_put("fresh", "fetch", now, now + 60, Encoded("json", b"2"))
    store.cache_put("forever", "fetch", now, None, Encoded("json", b"3"))

    assert store.cache_expire() == 1

    assert store.cache_get("old") is None
    assert store.cache_get("fresh") is not None
    assert store.cache_get("forever") is not None


# --- collect_result_files ----------------------------------------------------------------------


def result_files(store: SQLStore) -> set[str]:
    assert store.files is not None
    folder = store.files.folder
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def test_the_files_of_deleted_runs_are_collected_and_the_others_kept(store: SQLStore) -> None:
    report = report_flow(store)
    old, new = report.run(1), report.run(2)
    store.cache_put("k", "fetch", time.time(), None, Encoded("json", b'"' + b"c" * 100 + b'"'))
    assert store.files is not None
    folder = store.files.folder
    store.delete_runs(run_ids=[old.id], older_than=0)
    kept_by_rows = store.referenced_files()
    orphans = result_files(store) - kept_by_rows
    size = sum((folder / name).stat().st_size for name in orphans)

    collected = store.collect_result_files(grace=0)

    # its tasks' and subflow's equal results (one file), and its own (its call, [[1], {}], is
    # JSON small enough to stay in its row)
    assert len(orphans) == 2
    assert sorted(p.relative_to(folder).as_posix() for p in collected.paths) == sorted(orphans)
    assert collected.bytes == size
    assert result_files(store) == kept_by_rows
    assert report.run(2).result() == new.result()  # the kept files still load
    assert store.cache_get("k") is not None


def test_young_files_are_spared_and_a_dry_run_removes_nothing(store: SQLStore) -> None:
    report = report_flow(store)
    flow_run = report.run(1)
    store.delete_runs(run_ids=[flow_run.id], older_than=0)
    orphans = result_files(store)
    assert orphans

    assert store.collect_result_files().paths == []  # younger than the hour of grace
    assert len(store.collect_result_files(grace=0, dry_run=True).paths) == len(orphans)
    assert result_files(store) == orphans


def test_a_file_a_writer_reuses_while_it_is_collected_is_put_back(
    store: SQLStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An old orphan file, listed for collection; a writer storing the same bytes touches it
    (it exists) and commits a row naming it before the collector reads the rows' names."""
    assert store.files is not None
    encoding, reference = store.files.put("json", b'"' + b"y" * 100 + b'"')
    (name,) = result_files(store)
    path = store.files.folder / name
    os.utime(path, (time.time() - 2 * DAY, time.time() - 2 * DAY))
    referenced = Pruning.referenced_files

    def writer_meanwhile(self: Pruning) -> set[str]:
        assert store.files is not None
        store.files.put("json", b'"' + b"y" * 100 + b'"')  # touches the file
        return referenced(self)  # no row names it yet: it commits after this read

    monkeypatch.setattr(Pruning, "referenced_files", writer_meanwhile)

    assert store.collect_result_files(grace=3600).paths == []
    assert path.exists()
    assert store.files.load(encoding, reference).data == b'"' + b"y" * 100 + b'"'


def test_partial_files_left_by_a_dead_writer_are_collected(store: SQLStore) -> None:
    assert store.files is not None
    folder = store.files.folder / "ab"
    folder.mkdir(parents=True)
    partial = folder / f".{'ab' * 32}.4242.partial"
    partial.write_bytes(b"half a result")
    os.utime(partial, (time.time() - 2 * DAY, time.time() - 2 * DAY))

    collected = store.collect_result_files(grace=DAY)

    assert collected.paths == [partial]
    assert not folder.exists()  # the emptied folder goes too


def test_a_store_without_a_results_folder_has_nothing_to_collect(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "runs.db") as store:
        assert store.collect_result_files(grace=0).paths == []
