"""One suite, both stores: what a `Store` keeps and gives back, and how it refuses to open.

PostgreSQL tests use `REFLOW_TEST_POSTGRES_URL` (CI sets it); each test gets a schema of its
own. With the variable set, an unreachable server is a failure; without it they are skipped.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from reflow.store import (
    Encoded,
    FlowRunRecord,
    LogRecord,
    PostgresStore,
    ResultCodec,
    SQLiteStore,
    StateRecord,
    StoreConflict,
    StoreError,
    TaskRunRecord,
    UntrustedResultError,
)
from reflow.store import sql as schema
from reflow.store.atom_records import (
    AtomRecord,
    AtomRunRecord,
    RetryHistoryRecord,
    RetryTryRecord,
)
from reflow.store.base import SQLStore
from reflow.store.fencing import FencedOff

POSTGRES_URL = os.environ.get("REFLOW_TEST_POSTGRES_URL")


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SQLStore]:
    made: SQLStore
    if request.param == "sqlite":
        made = SQLiteStore(tmp_path / "reflow.db")
    else:
        made = PostgresStore(request.getfixturevalue("postgres_url"))
    with made:
        yield made


def flow_record(run_id: str = "f1", **changes: object) -> FlowRunRecord:
    record = FlowRunRecord(
        id=run_id, name="pipeline", state="Running", state_type="RUNNING", created=1.0,
        updated=1.0, version="2", parameters={"n": 3, "names": ["a", "b"]},
    )  # fmt: skip
    for key, value in changes.items():
        setattr(record, key, value)
    return record


def task_record(run_id: str, key: str, **changes: object) -> TaskRunRecord:
    record = TaskRunRecord(
        id=run_id, flow_run_id="f1", key=key, task_name=key.split("-")[0], state="Running",
        state_type="RUNNING", created=2.0, updated=2.0,
    )  # fmt: skip
    for name, value in changes.items():
        setattr(record, name, value)
    return record


def test_a_flow_run_round_trips(store: SQLStore) -> None:
    codec = ResultCodec(b"k" * 32)
    record = flow_record(result=codec.encode((1, 2)), run_key="nightly-2026-11-23")

    store.write(flow_runs=[record])
    back = store.flow_run("f1")

    assert back == record
    assert back is not None
    assert back.result is not None
    assert codec.decode(back.result) == (1, 2)
    assert store.flow_run("missing") is None


def test_writing_a_run_again_updates_it(store: SQLStore) -> None:
    store.write(flow_runs=[flow_record()])
    store.write(
        flow_runs=[
            flow_record(
                state="Completed", state_type="COMPLETED", updated=5.0,
                result=Encoded("json", b"42"),
            )
        ]
    )  # fmt: skip

    back = store.flow_run("f1")

    assert back is not None
    assert (back.state, back.updated, back.result) == ("Completed", 5.0, Encoded("json", b"42"))
    assert back.created == 1.0


def test_flow_runs_lists_newest_first_and_filters(store: SQLStore) -> None:
    store.write(
        flow_runs=[
            flow_record("a", created=1.0),
            flow_record("b", created=2.0, state="Failed", state_type="FAILED"),
            flow_record("c", created=3.0, name="other"),
        ]
    )

    assert [r.id for r in store.flow_runs()] == ["c", "b", "a"]
    assert [r.id for r in store.flow_runs(state_type="FAILED")] == ["b"]
    assert [r.id for r in store.flow_runs(name="pipeline")] == ["b", "a"]
    assert [r.id for r in store.flow_runs(limit=1)] == ["c"]


def test_a_run_key_names_one_run(store: SQLStore) -> None:
    store.write(flow_runs=[flow_record("a", run_key="k1")])

    found = store.flow_run_by_key("k1")

    assert found is not None
    assert found.id == "a"
    assert store.flow_run_by_key("k2") is None
    with pytest.raises(StoreConflict, match="refused"):
        store.write(flow_runs=[flow_record("b", run_key="k1")])
    assert store.flow_run("b") is None  # the failed write left nothing behind


def test_task_runs_and_the_completed_call_a_resume_reuses(store: SQLStore) -> None:
    store.write(
        flow_runs=[flow_record()],
        task_runs=[
            task_record("t1", "fetch-0", state="Completed", state_type="COMPLETED",
                        result=Encoded("json", b"[1,2]"), attempts=2),
            task_record("t2", "parse-0", upstream=["t1"], state="Failed", state_type="FAILED",
                        error="ValueError: bad", created=3.0),
        ],
    )  # fmt: skip

    runs = store.task_runs("f1")
    done = store.completed_task_run("f1", "fetch-0")

    assert [(r.key, r.state, r.upstream, r.attempts) for r in runs] == [
        ("fetch-0", "Completed", [], 2),
        ("parse-0", "Failed", ["t1"], 0),
    ]
    assert done is not None
    assert done.result == Encoded("json", b"[1,2]")
    assert store.completed_task_run("f1", "parse-0") is None
    assert store.completed_task_run("other", "fetch-0") is None


def test_a_new_run_of_a_call_replaces_the_stored_one(store: SQLStore) -> None:
    store.write(task_runs=[task_record("t1", "fetch-0")])

    store.write(task_runs=[task_record("t2", "fetch-0", state="Completed", created=9.0)])

    (run,) = store.task_runs("f1")
    assert (run.id, run.state, run.created) == ("t2", "Completed", 9.0)


def test_states_come_back_in_the_order_written(store: SQLStore) -> None:
    changes = [
        StateRecord("t1", "task", name, kind, float(i), f"m{i}", attempt)
        for i, (name, kind, attempt) in enumerate(
            [("Pending", "PENDING", 0), ("Running", "RUNNING", 1), ("Completed", "COMPLETED", 1)]
        )
    ]

    store.write(states=changes[:2])
    store.write(states=changes[2:])

    assert store.states("t1") == changes
    assert store.states("other") == []


def test_a_write_is_all_or_nothing(store: SQLStore) -> None:
    store.write(flow_runs=[flow_record("a", run_key="k1")])

    with pytest.raises(StoreConflict, match="refused"):
        store.write(
            flow_runs=[flow_record("b", run_key="k1")],  # clashes: the whole write rolls back
            task_runs=[task_record("t2", "fetch-0")],
        )

    assert store.task_runs("f1") == []


def test_reopening_keeps_everything_and_migrates_nothing_twice(tmp_path: Path) -> None:
    path = tmp_path / "reflow.db"
    with SQLiteStore(path) as first:
        first.write(flow_runs=[flow_record()])
    with SQLiteStore(path) as second:
        assert second.flow_run("f1") is not None
    conn = sqlite3.connect(path)
    version = conn.execute("SELECT value FROM reflow_meta").fetchone()[0]
    conn.close()
    assert int(version) == schema.SCHEMA_VERSION


def test_sqlite_uses_wal_and_passes_its_integrity_check(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "reflow.db") as store:
        store.write(flow_runs=[flow_record()])
        mode = store._query("PRAGMA journal_mode")[0][0]
        assert mode == "wal"
        assert store.integrity_check() == "ok"


def test_the_default_sqlite_store_lives_in_reflow_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REFLOW_HOME", str(tmp_path / "home"))

    with SQLiteStore() as store:
        assert store.path == tmp_path / "home" / "reflow.db"
    assert store.path.exists()


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("these are my notes, not a database\n" * 100)

    with pytest.raises(StoreError, match="cannot be used as a reflow store"):
        SQLiteStore(path)


def test_another_applications_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE customers (id INTEGER)")
    conn.commit()
    conn.close()

    with pytest.raises(StoreError, match=r"not a reflow one .*customers"):
        SQLiteStore(path)


def test_a_store_from_a_newer_reflow_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "reflow.db"
    SQLiteStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE reflow_meta SET value = '999' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()

    with pytest.raises(StoreError, match="newer than this reflow"):
        SQLiteStore(path)


def test_a_postgres_store_that_is_not_there_is_a_clear_error() -> None:
    with pytest.raises(StoreError, match="cannot reach the PostgreSQL store"):
        PostgresStore("postgresql://nobody:secret@127.0.0.1:1/none", connect_timeout=1)


def test_the_password_never_shows_in_errors_or_repr(postgres_url: str) -> None:
    with pytest.raises(StoreError) as raised:
        PostgresStore("postgresql://nobody:hunter2@127.0.0.1:1/none", connect_timeout=1)
    assert "hunter2" not in str(raised.value)
    with PostgresStore(postgres_url) as store:
        assert "secret" not in repr(store)


def test_two_postgres_stores_opening_at_once_migrate_once(postgres_url: str) -> None:
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        stores = list(pool.map(lambda _: PostgresStore(postgres_url), range(4)))
    try:
        stores[0].write(flow_runs=[flow_record()])
        assert all(s.flow_run("f1") is not None for s in stores)
    finally:
        for s in stores:
            s.close()


def test_a_task_runs_states_are_kept_in_its_record(store: SQLStore) -> None:
    history = [
        StateRecord("t1", "task", "Pending", "PENDING", 1.0),
        StateRecord("t1", "task", "Running", "RUNNING", 2.0, "", 1),
        StateRecord("t1", "task", "Failed", "FAILED", 3.0, "ValueError: x", 1),
    ]
    store.write(task_runs=[task_record("t1", "fetch-0", states=history)])

    (run,) = store.task_runs("f1")

    assert run.states == history
    assert store.states("t1") == history


def test_a_flow_states_failure_round_trips(store: SQLStore) -> None:
    failed = StateRecord(
        "f1", "flow", "Failed", "FAILED", 4.0, "it broke", 1, "ValueError: bad",
        "Traceback (most recent call last):\n  ...\nValueError: bad",
    )  # fmt: skip
    store.write(states=[StateRecord("f1", "flow", "Running", "RUNNING", 3.0), failed])

    assert store.states("f1")[-1] == failed
    assert store.states("f1")[0].error is None


def test_a_task_states_failure_round_trips_in_its_record(store: SQLStore) -> None:
    history = [
        StateRecord("t1", "task", "Running", "RUNNING", 2.0, "", 1),
        StateRecord("t1", "task", "AwaitingRetry", "SCHEDULED", 3.0, "", 1, "OSError: x", "tb"),
        StateRecord("t1", "task", "Completed", "COMPLETED", 4.0, "", 2),
    ]
    store.write(task_runs=[task_record("t1", "fetch-0", states=history)])

    assert store.states("t1") == history


def test_logs_come_back_in_order_after_a_point(store: SQLStore) -> None:
    lines = [
        LogRecord(0, "f1", None, 1.0, logging.INFO, "reflow.runs", "starting"),
        LogRecord(0, "f1", "t1", 2.0, logging.WARNING, "reflow.runs", "slow reply"),
        LogRecord(0, "other", None, 2.5, logging.INFO, "reflow.runs", "elsewhere"),
    ]
    store.write(logs=lines[:2])
    store.write(logs=lines[2:])
    store.write(logs=[LogRecord(0, "f1", "t2", 3.0, logging.ERROR, "app", "gave up")])

    got = store.logs("f1")
    assert [(r.task_run_id, r.level, r.logger, r.message) for r in got] == [
        (None, logging.INFO, "reflow.runs", "starting"),
        ("t1", logging.WARNING, "reflow.runs", "slow reply"),
        ("t2", logging.ERROR, "app", "gave up"),
    ]
    assert [r.seq for r in got] == sorted(r.seq for r in got)
    assert [r.message for r in store.logs("f1", after=got[0].seq)] == ["slow reply", "gave up"]
    assert [r.message for r in store.logs("f1", limit=1)] == ["starting"]
    assert store.logs("missing") == []


def test_the_task_cache_keeps_replaces_and_forgets(store: SQLStore) -> None:
    store.cache_put("k1", "fetch", 1.0, None, Encoded("json", b"1"))
    store.cache_put("k2", "parse", 1.0, 9.0, Encoded("json", b"2"))
    store.cache_put("k1", "fetch", 2.0, 5.0, Encoded("json", b"3"))

    assert store.cache_get("k1") == ("fetch", 2.0, 5.0, Encoded("json", b"3"))
    assert store.cache_get("k3") is None
    assert store.cache_size() == 2
    assert store.cache_clear("parse") == 1
    assert store.cache_get("k2") is None
    assert store.cache_clear() == 1
    assert store.cache_size() == 0


def test_a_version_1_database_is_migrated_keeping_its_runs(tmp_path: Path) -> None:
    path = tmp_path / "reflow.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE reflow_meta (key TEXT PRIMARY KEY, value TEXT)")
    conn.execute("INSERT INTO reflow_meta VALUES ('schema_version', '1')")
    for statement in schema.statements(schema.MIGRATIONS[0], SQLiteStore.types):
        conn.execute(statement)
    conn.execute(
        "INSERT INTO reflow_states (run_id, run_kind, name, type, timestamp, message, attempt) "
        "VALUES ('f1', 'flow', 'Running', 'RUNNING', 1.0, '', 0)"
    )


# --- atoms runs ------------------------------------------------------------------------------


def atom_record(name: str, position: int, **changes: object) -> AtomRecord:
    record = AtomRecord(
        run_id="f1", name=name, position=position, kind="atom", state="Pending",
        state_type="PENDING", updated=1.0,
        states=[StateRecord("f1", "atom", "Pending", "PENDING", 1.0)],
    )  # fmt: skip
    for key, value in changes.items():
        setattr(record, key, value)
    return record


def test_an_atoms_run_round_trips_beside_its_flow_run(store: SQLStore) -> None:
    codec = ResultCodec(b"k" * 32)
    run = AtomRunRecord(
        "f1", ["twice", "fetch", "parse"], ["twice"], codec.encode({"url": "x"}), True,
        [{"type_names": ["builtins.ValueError"], "exception_str": "bad", "traceback_str": "T"}],
    )  # fmt: skip

    store.write_atoms(flow_runs=[flow_record()], atom_runs=[run])

    assert store.atom_run("f1") == run
    assert store.flow_run("f1") is not None
    assert store.atom_run("missing") is None


def test_an_atom_run_keeps_only_its_new_errors_when_written_again(store: SQLStore) -> None:
    first = AtomRunRecord("f1", ["a"], [], Encoded("json", b"{}"))
    store.write_atoms(atom_runs=[first])
    failure = {"type_names": ["builtins.OSError"], "exception_str": "x", "traceback_str": ""}

    store.write_atoms(atom_runs=[AtomRunRecord("f1", ["other"], [], None, True, [failure])])

    back = store.atom_run("f1")
    assert back is not None
    assert (back.atoms, back.store, back.errors) == (["a"], Encoded("json", b"{}"), [failure])


def test_atoms_come_back_in_the_flows_order_with_their_states_and_results(
    store: SQLStore,
) -> None:
    done = atom_record(
        "fetch", 1, state="Completed", state_type="COMPLETED", updated=3.0, order=0,
        result=Encoded("json", b"[1,2]"),
        states=[
            StateRecord("f1", "atom", "Pending", "PENDING", 1.0),
            StateRecord("f1", "atom", "Running", "RUNNING", 2.0),
            StateRecord("f1", "atom", "Completed", "COMPLETED", 3.0),
        ],
    )  # fmt: skip
    failed = atom_record(
        "parse", 2, state="Failed", state_type="FAILED", order=1,
        failure={"type_names": ["builtins.KeyError"], "exception_str": "'a'", "traceback_str": ""},
    )  # fmt: skip
    store.write_atoms(atoms=[failed, done, atom_record("twice", 0, kind="retry")])

    assert [a.name for a in store.atoms("f1")] == ["twice", "fetch", "parse"]
    assert store.atoms("f1")[1:] == [done, failed]
    assert store.atoms("other") == []


def test_writing_an_atom_again_updates_it(store: SQLStore) -> None:
    store.write_atoms(atoms=[atom_record("fetch", 0)])

    store.write_atoms(atoms=[atom_record("fetch", 0, state="Running", state_type="RUNNING")])

    (atom,) = store.atoms("f1")
    assert (atom.state, atom.position) == ("Running", 0)


def test_a_controllers_history_is_replaced_whole(store: SQLStore) -> None:
    failure = {"type_names": ["builtins.TimeoutError"], "exception_str": "", "traceback_str": ""}
    tries = [
        RetryTryRecord(Encoded("json", b"1"), {"fetch": failure}),
        RetryTryRecord(Encoded("json", b"2"), {}),
    ]
    store.write_atoms(histories=[RetryHistoryRecord("f1", "twice", tries)])
    store.write_atoms(histories=[RetryHistoryRecord("f1", "other", tries[:1])])

    assert store.retry_histories("f1") == [
        RetryHistoryRecord("f1", "other", tries[:1]),
        RetryHistoryRecord("f1", "twice", tries),
    ]
    store.write_atoms(histories=[RetryHistoryRecord("f1", "twice", [])])  # reset
    assert store.retry_histories("f1") == [RetryHistoryRecord("f1", "other", tries[:1])]
    assert store.retry_histories("nothing") == []


def test_an_atoms_write_is_all_or_nothing(store: SQLStore) -> None:
    store.write_atoms(flow_runs=[flow_record("a", run_key="k1")])

    with pytest.raises(StoreConflict, match="refused"):
        store.write_atoms(
            flow_runs=[flow_record("b", run_key="k1")],  # clashes: the whole write rolls back
            atoms=[atom_record("fetch", 0)],
            histories=[RetryHistoryRecord("f1", "twice", [RetryTryRecord(None)])],
        )

    assert store.atoms("f1") == []
    assert store.retry_histories("f1") == []


def test_a_worker_never_claims_an_atoms_run(store: SQLStore) -> None:
    crashed = {"state": "Crashed", "state_type": "CRASHED"}
    store.write_atoms(
        flow_runs=[flow_record("atoms", **crashed)], atom_runs=[AtomRunRecord("atoms", [])]
    )
    store.write(flow_runs=[flow_record("flow", created=2.0, **crashed)])

    claimed = store.claim("w1", 3.0)

    assert claimed is not None
    assert claimed.id == "flow"
    assert store.claim("w1", 3.0) is None


def test_a_store_made_before_atoms_runs_gains_their_tables_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "reflow.db"
    SQLiteStore(path).close()
    conn = sqlite3.connect(path)  # as schema 3, the one before atoms runs, left it
    for table in ("reflow_atom_runs", "reflow_atoms", "reflow_retry_histories"):
        conn.execute(f"DROP TABLE {table}")
    conn.execute("ALTER TABLE reflow_flow_runs DROP COLUMN epoch")  # schema 5's
    conn.execute("UPDATE reflow_meta SET value = '3' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()

    with SQLiteStore(path) as store:
        store.write_atoms(atom_runs=[AtomRunRecord("f1", ["a"])])
        assert store.atom_run("f1") is not None


def test_a_version_4_store_gains_run_epochs_keeping_its_runs(store: SQLStore) -> None:
    store.write(flow_runs=[flow_record(state="Crashed", state_type="CRASHED")])
    with store._transaction() as cur:  # as schema 4, the one before fencing, left it
        cur.execute("ALTER TABLE reflow_flow_runs DROP COLUMN epoch")
        cur.execute("UPDATE reflow_meta SET value = '4' WHERE key = 'schema_version'")
    store.close()

    where = store.path if isinstance(store, SQLiteStore) else store.url  # type: ignore[attr-defined]
    with type(store)(where) as again:
        record = again.flow_run("f1")
        version = again._query("SELECT value FROM reflow_meta")[0][0]
        assert record is not None
        assert (record.state, record.epoch, version) == ("Crashed", 0, str(schema.SCHEMA_VERSION))
        assert again.take_over(record, "Pending", "PENDING", "w", 2.0) == 1


def test_a_take_over_moves_the_epoch_on_and_fences_the_earlier_holders_writes(
    store: SQLStore,
) -> None:
    store.write(flow_runs=[flow_record(state="Crashed", state_type="CRASHED")])
    earlier = {"f1": ("f1", 0)}  # the fence of the process that held it at epoch 0
    record = store.flow_run("f1")
    assert record is not None

    assert store.take_over(record, "Pending", "PENDING", "new:2", 2.0) == 1
    lost = store.write(
        flow_runs=[flow_record(state="Completed", state_type="COMPLETED", updated=3.0)],
        task_runs=[task_record("t1", "fetch-0")],
        states=[StateRecord("f1", "flow", "Completed", "COMPLETED", 3.0)],
        fences=earlier,
    )
    beat = store.heartbeat(["f1"], 4.0, "old:1", fences=earlier)

    assert lost == beat == {"f1": FencedOff("new:2", "Pending", 1)}
    after = store.flow_run("f1")
    assert after is not None
    assert (after.state, after.worker, after.heartbeat, after.epoch) == ("Pending", "new:2", 2.0, 1)
    assert store.task_runs("f1") == []
    assert store.states("f1") == []
    assert store.write(flow_runs=[flow_record(updated=5.0)], fences={"f1": ("f1", 1)}) == {}
    assert store.write_atoms(histories=[RetryHistoryRecord("f1", "c")], fences=earlier) == {
        "f1": FencedOff("new:2", "Running", 1)
    }


def test_a_large_result_is_kept_in_a_file_beside_the_database(tmp_path: Path) -> None:
    big = Encoded("pickle", b"x" * 5000)
    with SQLiteStore(tmp_path / "reflow.db", inline_limit=1000) as store:
        store.write(
            flow_runs=[flow_record(result=big, call=Encoded("json", b"[[], {}]"))],
            task_runs=[task_record("t1", "fetch-0", result=big)],
        )
        store.cache_put("k1", "fetch", 1.0, None, big)

        files = [p for p in (tmp_path / "reflow-results").rglob("*") if p.is_file()]
        (raw,) = store._query("SELECT result_encoding, length(result) FROM reflow_task_runs")
        (flow,) = [store.flow_run("f1")]
        (task,) = store.task_runs("f1")
        cached = store.cache_get("k1")
    assert len(files) == 1  # one file: the same bytes are kept once
    assert raw[0] == "file:pickle"
    assert raw[1] < 200
    assert flow is not None
    assert flow.result == big
    assert flow.call == Encoded("json", b"[[], {}]")
    assert task.result == big
    assert cached is not None
    assert cached[3] == big


def test_a_result_file_changed_on_disk_is_refused(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "reflow.db", inline_limit=10) as store:
        store.write(
            task_runs=[
                task_record("t1", "fetch-0", result=Encoded("json", b'"' + b"a" * 50 + b'"'))
            ]
        )
        (path,) = [p for p in (tmp_path / "reflow-results").rglob("*") if p.is_file()]
        path.write_bytes(b'"' + b"b" * 50 + b'"')

        with pytest.raises(UntrustedResultError, match="changed after it was written"):
            store.task_runs("f1")
        path.unlink()
        with pytest.raises(StoreError, match="missing"):
            store.task_runs("f1")


def _open_and_close(path: str) -> None:
    SQLiteStore(path).close()


def test_processes_opening_a_new_sqlite_file_at_once_migrate_it_once(tmp_path: Path) -> None:
    import multiprocessing

    path = str(tmp_path / "reflow.db")
    context = multiprocessing.get_context("fork")
    opening = [context.Process(target=_open_and_close, args=(path,)) for _ in range(4)]
    for process in opening:
        process.start()
    for process in opening:
        process.join(60)

    assert [p.exitcode for p in opening] == [0, 0, 0, 0]
    with SQLiteStore(path) as store:
        assert store._query("SELECT value FROM reflow_meta")[0][0] == str(schema.SCHEMA_VERSION)

        store.write_atoms(atom_runs=[AtomRunRecord("f1", ["a"])])
        assert store.atom_run("f1") is not None
