"""A SQLite store's log is copied back into the database by a thread of its own."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from reflow.store import SQLiteStore
from reflow.store.checkpoints import WAL_LIMIT_PAGES, Checkpointer
from reflow.store.records import StateRecord

BOUND = 30.0


def test_the_log_is_checkpointed_by_its_own_thread_every_so_many_commits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Checkpointer, "every_commits", 5)
    with SQLiteStore(tmp_path / "runs.db") as store:
        (limit,) = store._query("PRAGMA wal_autocheckpoint")[0]
        assert limit == WAL_LIMIT_PAGES  # the committing connection leaves it to the thread
        for i in range(20):
            store.write(states=[StateRecord(f"run-{i}", "flow", "Pending", "PENDING", 0.0, "")])
        deadline = time.monotonic() + BOUND
        while store._checkpoints.done < 1:
            assert time.monotonic() < deadline, "no checkpoint was made"
            time.sleep(0.01)
        assert store._checkpoints._thread is not None
    assert store._checkpoints._thread is None or not store._checkpoints._thread.is_alive()


def test_reads_do_not_count_as_commits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Checkpointer, "every_commits", 1)
    with SQLiteStore(tmp_path / "runs.db") as store:
        for _ in range(10):
            store.flow_runs()
        assert store._checkpoints._thread is None
