"""What a kept flow run records beyond its states: each failed attempt's error, the run
logger's records, results too large for a row, and the task cache (which outlives the
process)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

import reflow
from reflow import flow, task
from reflow.store import SQLiteStore

HERE = Path(__file__).parent


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("REFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("REFLOW_STORE", raising=False)
    return tmp_path / "home"


def test_every_failed_attempt_keeps_its_error_and_traceback(tmp_path: Path) -> None:
    calls: list[int] = []

    @task(retries=2)
    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError(f"reset by peer ({len(calls)})")
        return "ok"

    @flow(store=str(tmp_path / "runs.db"))
    def pipeline() -> str:
        return flaky()

    flow_run = pipeline.run()

    with SQLiteStore(tmp_path / "runs.db") as store:
        (run,) = store.task_runs(flow_run.id)
    failed = [s for s in run.states if s.error is not None]
    assert [s.error for s in failed] == [
        "ConnectionError: reset by peer (1)",
        "ConnectionError: reset by peer (2)",
    ]
    assert [s.attempt for s in failed] == [1, 2]
    assert all(s.traceback and "raise ConnectionError" in s.traceback for s in failed)
    assert (run.state, run.attempts) == ("Completed", 3)


def test_a_failed_flow_keeps_its_traceback_in_its_final_state(tmp_path: Path) -> None:
    @flow(store=str(tmp_path / "runs.db"))
    def pipeline() -> None:
        raise LookupError("no such team")

    flow_run = pipeline.run()

    with SQLiteStore(tmp_path / "runs.db") as store:
        final = store.states(flow_run.id)[-1]
    assert (final.name, final.error) == ("Failed", "LookupError: no such team")
    assert final.traceback is not None
    assert "pipeline" in final.traceback


def test_run_logs_are_kept_with_their_task_runs(tmp_path: Path) -> None:
    @task
    def fetch(member: str) -> str:
        reflow.get_run_logger().info("fetching %s", member)
        return member.upper()

    @flow(store=str(tmp_path / "runs.db"))
    def pipeline() -> list[str]:
        log = reflow.get_run_logger()
        log.info("standup starts")
        try:
            raise TimeoutError("slack is slow")
        except TimeoutError:
            log.exception("posting failed")
        return fetch.map(["ana", "bo"]).result()

    flow_run = pipeline.run()

    with SQLiteStore(tmp_path / "runs.db") as store:
        lines = store.logs(flow_run.id)
    by_task = {r.id: r.key for r in flow_run.task_runs}
    assert [(r.level, r.message.splitlines()[0]) for r in lines[:2]] == [
        (logging.INFO, "standup starts"),
        (logging.ERROR, "posting failed"),
    ]
    assert "TimeoutError: slack is slow" in lines[1].message  # its traceback is kept
    assert lines[0].task_run_id is None
    assert sorted((by_task[r.task_run_id or ""], r.message) for r in lines[2:]) == [
        ("fetch-0[0]", "fetching ana"),
        ("fetch-0[1]", "fetching bo"),
    ]


def test_a_run_in_memory_keeps_no_logs_in_a_store(home: Path) -> None:
    @flow(persist=False)
    def pipeline() -> int:
        reflow.get_run_logger().info("only printed")
        return 1

    assert pipeline() == 1
    assert not (home / "reflow.db").exists()


def test_a_large_result_is_a_file_and_a_resume_reads_it_back(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    ran: list[int] = []

    @task
    def report(n: int) -> str:
        ran.append(n)
        return "x" * n

    @flow(store=SQLiteStore(path, inline_limit=1000))
    def pipeline(n: int) -> int:
        return len(report(n))

    flow_run = pipeline.run(5000)
    stored = [p for p in (tmp_path / "runs-results").rglob("*") if p.is_file()]
    with SQLiteStore(path) as store:
        (row,) = store._query("SELECT result_encoding FROM reflow_task_runs")
    pipeline.resume(flow_run.id)

    assert len(stored) == 1
    assert row[0] == "file:json"
    assert ran == [5000]  # the resume took the stored result from its file


def test_cached_results_outlive_the_process(tmp_path: Path, home: Path) -> None:
    side = tmp_path / "side.txt"
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]); import cached_task; "
        "print(cached_task.slow_square(7))"
    )
    env = dict(os.environ, CACHE_SIDE=str(side))

    outputs = [
        subprocess.run(
            [sys.executable, "-c", script, str(HERE)],
            env=env, capture_output=True, text=True, timeout=60, check=True,
        ).stdout.strip()
        for _ in range(2)
    ]  # fmt: skip

    assert outputs == ["49", "49"]
    assert side.read_text().splitlines() == ["7"]  # the second process took the cache
    with SQLiteStore(home / "reflow.db") as store:
        assert store.cache_size() == 1
        assert store._query("SELECT task_name FROM reflow_cache")[0][0] == "slow_square"


def test_memory_keeps_the_cache_in_the_process(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REFLOW_STORE", "memory")
    from reflow.task import INPUTS

    calls: list[int] = []

    @task(cache_policy=INPUTS)
    def square(x: int) -> int:
        calls.append(x)
        return x * x

    assert [square(3), square(3)] == [9, 9]
    assert calls == [3]
    assert not (home / "reflow.db").exists()


def test_a_cache_entry_signed_with_another_key_is_not_used(
    tmp_path: Path, home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from reflow.store import ResultCodec
    from reflow.store.cache import StoreCache
    from reflow.task.cache import CacheEntry

    with SQLiteStore(tmp_path / "runs.db") as store:
        StoreCache(store, ResultCodec(b"a" * 32)).put("k", CacheEntry((1, 2), 1.0, None, "t"))
        ours = StoreCache(store, ResultCodec(b"b" * 32))

        with caplog.at_level(logging.WARNING, logger="reflow.store"):
            assert ours.get("k") is None
    assert "is not used" in caplog.text
    assert "signature does not match" in caplog.text
