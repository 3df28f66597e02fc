"""A decorated flow's `retry=` controller keeps its history in the store, as an atoms run's
controllers do (`store.retry_histories(run_id)`), and gets it back when the run is resumed:
`Times(3)` counts the tries of every process (a real process killed in its second try)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from reflow import Pause, flow, task
from reflow.atoms import ForEach, Times
from reflow.store import PostgresStore, SQLiteStore

SCRIPT = str(Path(__file__).parent / "retry_flow.py")


def values(store: SQLiteStore | PostgresStore, run_id: str) -> list[object]:
    (history,) = store.retry_histories(run_id)
    return [None if t.value is None else json.loads(t.value.data) for t in history.tries]


def failures(store: SQLiteStore | PostgresStore, run_id: str) -> list[list[str]]:
    (history,) = store.retry_histories(run_id)
    return [sorted(t.failures) for t in history.tries]


def test_a_kept_flows_controller_keeps_every_try(tmp_path: Path) -> None:
    db = str(tmp_path / "runs.db")
    outcomes = iter([ConnectionError("reset"), ConnectionError("reset again")])

    @task
    def call(attempt: int) -> str:
        error = next(outcomes, None)
        if error is not None:
            raise error
        return f"200 on try {attempt}"

    @flow(store=db, retry=Times(3, name="thrice", provides="attempt"))
    def fetch(attempt: int) -> str:
        return call(attempt)

    flow_run = fetch.run()

    assert flow_run.result() == "200 on try 3"
    with SQLiteStore(db) as store:
        (history,) = store.retry_histories(flow_run.id)
        assert history.controller == "thrice"
        assert values(store, flow_run.id) == [1, 2, 3]
        assert failures(store, flow_run.id) == [["call-0"], ["call-0"], []]
    assert history.tries[1].failures["call-0"]["exception_str"] == "reset again"
    assert history.tries[1].failures["call-0"]["type_names"][0] == "builtins.ConnectionError"


def test_an_unnamed_controller_is_kept_under_the_flows_name(tmp_path: Path) -> None:
    db = str(tmp_path / "runs.db")

    @task
    def connect(ip: str) -> str:
        if ip == "10.0.0.1":
            raise ConnectionError(f"{ip} is down")
        return ip

    @flow(store=db, retry=ForEach(["10.0.0.1", "10.0.0.2"], provides="ip"))
    def reach(ip: str) -> str:
        return connect(ip)

    flow_run = reach.run()

    assert flow_run.result() == "10.0.0.2"
    with SQLiteStore(db) as store:
        (history,) = store.retry_histories(flow_run.id)
        assert history.controller == "reach"
        assert values(store, flow_run.id) == ["10.0.0.1", "10.0.0.2"]


def test_a_flow_that_failed_for_good_keeps_the_tries_that_exhausted_it(tmp_path: Path) -> None:
    db = str(tmp_path / "runs.db")

    @task
    def call() -> None:
        raise TimeoutError("slow")

    @flow(store=db, retry=Times(2, name="twice"))
    def fetch() -> None:
        call()

    flow_run = fetch.run()

    assert flow_run.state.is_failed()
    with SQLiteStore(db) as store:
        assert failures(store, flow_run.id) == [["call-0"], ["call-0"]]


def test_a_failed_run_resumed_starts_its_controller_afresh(tmp_path: Path) -> None:
    """It decided (the tries are spent): a resume, after fixing what failed, is a new series
    of tries, kept in place of the old one."""
    db = str(tmp_path / "runs.db")
    seen: list[int] = []
    broken = [True]

    @task
    def call(attempt: int) -> str:
        seen.append(attempt)
        if broken[0]:
            raise TimeoutError("slow")
        return f"done on try {attempt}"

    @flow(store=db, retry=Times(2, provides="attempt"))
    def fetch(attempt: int) -> str:
        return call(attempt)

    flow_run = fetch.run()
    broken[0] = False

    assert fetch.resume(flow_run.id).result() == "done on try 1"
    assert seen == [1, 2, 1]
    with SQLiteStore(db) as store:
        assert values(store, flow_run.id) == [1]


def test_a_paused_run_resumed_from_the_store_goes_on_with_the_same_try(tmp_path: Path) -> None:
    db = str(tmp_path / "runs.db")
    seen: list[int] = []
    pauses = iter([True])

    @task
    def approve(attempt: int) -> str:
        seen.append(attempt)
        if next(pauses, False):
            raise Pause("waiting for approval")
        if attempt == 1:
            raise ConnectionError("declined")
        return f"approved on try {attempt}"

    @flow(store=db, retry=Times(2, name="twice", provides="attempt"))
    def gate(attempt: int) -> str:
        return approve(attempt)

    flow_run = gate.run()
    assert flow_run.state.is_paused()
    with SQLiteStore(db) as store:
        assert failures(store, flow_run.id) == [[]]  # try 1 began, and did not end

    assert gate.resume(flow_run.id).result() == "approved on try 2"

    assert seen == [1, 1, 2]
    with SQLiteStore(db) as store:
        assert values(store, flow_run.id) == [1, 2]
        assert failures(store, flow_run.id) == [["approve-0"], []]


def test_a_controller_killed_in_its_second_try_counts_three_tries_across_processes(
    tmp_path: Path,
) -> None:
    db, side = str(tmp_path / "runs.db"), tmp_path / "side.txt"
    env = dict(os.environ, KILL_DB=db, KILL_SIDE=str(side))
    killed = subprocess.run([sys.executable, SCRIPT, "start"], env=env, timeout=120)
    assert killed.returncode == -signal.SIGKILL
    with SQLiteStore(db) as store:
        (record,) = store.flow_runs(name="flaky")
        assert values(store, record.id) == [1, 2]  # what the store had when it died

    resumed = subprocess.run(
        [sys.executable, SCRIPT, "resume", record.id],
        env=env, timeout=120, capture_output=True, text=True,
    )  # fmt: skip

    assert resumed.stdout.splitlines()[-1] == "failed TimeoutError: try 3 timed out"
    assert side.read_text().split() == [
        "x:call:1", "x:call:2", "killed",  # the first process, killed in try 2
        "x:call:2", "x:call:3",  # the resumed one: try 2 again, then 3: three in all
    ]  # fmt: skip
    with SQLiteStore(db) as store:
        assert values(store, record.id) == [1, 2, 3]
        assert failures(store, record.id) == [["call-0"], ["call-0"], ["call-0"]]
        final = store.flow_run(record.id)
        assert final is not None
        assert final.state == "Failed"


def test_a_postgres_store_keeps_and_restores_a_flows_history(postgres_url: str) -> None:
    seen: list[int] = []
    pauses = iter([True])

    @task
    def call(attempt: int) -> str:
        seen.append(attempt)
        if next(pauses, False):
            raise Pause("hold on")
        if attempt < 3:
            raise TimeoutError("slow")
        return "done"

    @flow(store=postgres_url, retry=Times(3, name="thrice", provides="attempt"))
    def fetch(attempt: int) -> str:
        return call(attempt)

    flow_run = fetch.run()
    assert fetch.resume(flow_run.id).result() == "done"

    assert seen == [1, 1, 2, 3]
    with PostgresStore(postgres_url) as store:
        assert values(store, flow_run.id) == [1, 2, 3]
        assert failures(store, flow_run.id) == [["call-0"], ["call-0"], []]


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REFLOW_HOME", str(tmp_path / "home"))
